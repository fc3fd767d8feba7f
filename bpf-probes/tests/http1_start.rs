//! The kernel's HTTP/1 request-line rule (`bpf/socket/http1_start.h`),
//! compiled for the host, against the case table its userspace twin
//! (`protocols::http1::request_line_start`) is tested with: one rule, one
//! table, two implementations that must agree.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn the_kernel_rule_agrees_with_the_shared_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join("http1_start_harness");
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
        .arg(dir.join("bpf"))
        .arg(dir.join("tests/http1_start.c"))
        .arg("-o")
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("run {clang} (scripts/install-deps.sh installs it): {e}"));
    assert!(status.success(), "{clang} failed on tests/http1_start.c");

    let cases = protocols::testdata::request_start_cases();
    assert!(cases.len() > 30, "{} cases", cases.len());
    let input: String = cases
        .iter()
        .map(|(_, bytes, _)| {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            hex + "\n"
        })
        .collect();
    let mut child = Command::new(&exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the harness");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the cases");
    let out = child.wait_with_output().expect("harness output");
    assert!(out.status.success());
    let verdicts: Vec<bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l == "1")
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    for ((line, bytes, expected), got) in cases.iter().zip(verdicts) {
        assert_eq!(
            got,
            *expected,
            "request_starts.txt line {line}: {:?}",
            String::from_utf8_lossy(bytes)
        );
        // And the twin says the same.
        assert_eq!(
            protocols::http1::request_line_start(bytes),
            got,
            "line {line}"
        );
    }
}

#[test]
fn the_window_and_method_length_are_the_twins() {
    let header = include_str!("../bpf/socket/http1_start.h");
    let define = |name: &str| -> usize {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("#define {name} in http1_start.h"))
    };
    assert_eq!(define("HTTP1_START_WINDOW"), protocols::http1::START_WINDOW);
    assert_eq!(define("HTTP1_MAX_METHOD"), protocols::http1::MAX_METHOD_LEN);
}
