//! The kernel's HTTP/1 request-line rule (`bpf/socket/http1_start.h`),
//! compiled for the host, against the case table its userspace twin
//! (`protocols::http1::request_line_start`) is tested with: one rule, one
//! table, two implementations that must agree.

mod harness;

#[test]
fn the_kernel_rule_agrees_with_the_shared_cases() {
    let exe = harness::build("http1_start");
    let cases = protocols::testdata::request_start_cases();
    assert!(cases.len() > 30, "{} cases", cases.len());
    let input: String = cases
        .iter()
        .map(|(_, bytes, _)| {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            hex + "\n"
        })
        .collect();
    let out = harness::run(&exe, &input);
    let verdicts: Vec<bool> = out.lines().map(|l| l == "1").collect();
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
