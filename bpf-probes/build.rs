//! Compiles the eBPF C programs with clang (CO-RE against the running kernel's BTF).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C sources and headers; every one is a rerun trigger.
const SOURCES: &[&str] = &[
    "bpf/agent.bpf.c",
    "bpf/include/common.h",
    "bpf/include/events.h",
    "bpf/maps/active_io.h",
    "bpf/maps/config.h",
    "bpf/maps/conns.h",
    "bpf/maps/counters.h",
    "bpf/maps/events.h",
    "bpf/maps/scratch.h",
    "bpf/maps/skip.h",
    "bpf/maps/tail_calls.h",
    "bpf/socket/data.h",
    "bpf/socket/emit.h",
    "bpf/socket/http1_start.h",
    "bpf/socket/lifecycle.h",
    "bpf/socket/sniff.h",
    "bpf/socket/sock.h",
    "bpf/maps/tls.h",
    "bpf/tls/correlate.h",
    "bpf/tls/probes.h",
    "bpf/tls/go.h",
];

fn main() {
    for s in SOURCES {
        println!("cargo:rerun-if-changed={s}");
    }
    println!("cargo:rerun-if-env-changed=VMLINUX_H");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let include = out.join("include");
    std::fs::create_dir_all(&include).expect("create OUT_DIR/include");
    let vmlinux = include.join("vmlinux.h");
    match env::var("VMLINUX_H") {
        Ok(path) => {
            std::fs::copy(&path, &vmlinux).unwrap_or_else(|e| panic!("copy VMLINUX_H={path}: {e}"));
        }
        Err(_) => generate_vmlinux(&vmlinux),
    }
    let object = out.join("agent.bpf.o");
    compile(Path::new("bpf/agent.bpf.c"), &include, &object);
}

/// `bpftool btf dump file /sys/kernel/btf/vmlinux format c`.
fn generate_vmlinux(dest: &Path) {
    let btf = "/sys/kernel/btf/vmlinux";
    if !Path::new(btf).exists() {
        panic!(
            "{btf} is missing: the kernel must have BTF (CONFIG_DEBUG_INFO_BTF), or set VMLINUX_H"
        );
    }
    let bpftool = find_tool("BPFTOOL", &["bpftool", "/usr/sbin/bpftool"]);
    let output = Command::new(&bpftool)
        .args(["btf", "dump", "file", btf, "format", "c"])
        .output()
        .unwrap_or_else(|e| panic!("run {bpftool} (apt-get install bpftool): {e}"));
    if !output.status.success() {
        panic!(
            "bpftool btf dump failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::write(dest, output.stdout).expect("write vmlinux.h");
}

fn compile(src: &Path, include: &Path, object: &Path) {
    let clang = find_tool("CLANG", &["clang", "clang-16", "clang-15", "clang-14"]);
    let status = Command::new(&clang)
        .args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            // v3: atomic exchange (the scratch slot's guard, maps/scratch.h),
            // 32-bit jumps; Linux >= 5.12, within the 5.13 minimum.
            "-mcpu=v3",
            "-D__TARGET_ARCH_x86",
            "-Wall",
            "-Werror",
        ])
        .arg("-Ibpf")
        .arg(format!("-I{}", include.display()))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(object)
        .status()
        .unwrap_or_else(|e| panic!("run {clang} (apt-get install clang libbpf-dev): {e}"));
    if !status.success() {
        panic!("clang failed to compile {}", src.display());
    }
}

fn find_tool(var: &str, candidates: &[&str]) -> String {
    if let Ok(v) = env::var(var) {
        return v;
    }
    for c in candidates {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if found || Path::new(c).exists() {
            return (*c).to_string();
        }
    }
    candidates[0].to_string()
}
