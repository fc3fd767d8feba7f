//! Host builds of kernel C (`bpf/`), for the tests that hold its rules
//! against cases: compiled with the system's clang, fed on stdin, read on
//! stdout.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The harnesses built by this test process: each once, so that a test
/// never runs one while another test writes it ("text file busy").
static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// `tests/<name>.c` built for the host (with `tests/host` before `bpf` on
/// the include path: its stand-ins for the kernel's headers come first),
/// once per test process.
pub fn build(name: &str) -> PathBuf {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(exe) = built.get(name) {
        return exe.clone();
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}_harness"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Werror",
            "-Wno-unknown-pragmas",
        ])
        .arg("-I")
        .arg(dir.join("tests/host"))
        .arg("-I")
        .arg(dir.join("bpf"))
        .arg(dir.join(format!("tests/{name}.c")))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("run {clang} (scripts/install-deps.sh installs it): {e}"));
    assert!(status.success(), "{clang} failed on tests/{name}.c");
    built.insert(name.to_owned(), exe.clone());
    exe
}

/// The harness `exe` run on `input`: its stdout.
pub fn run(exe: &Path, input: &str) -> String {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the harness");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    // Written from a thread: the harness answers while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("harness output");
    writer
        .join()
        .expect("writer thread")
        .expect("write the cases");
    assert!(out.status.success(), "the harness failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
