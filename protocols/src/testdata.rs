//! Case tables shared by a rule's implementations in different languages:
//! the kernel's C and its userspace twin run the same cases from one file.

/// The cases of the HTTP/1 request-line rule
/// (`testdata/http1/request_starts.txt`): `(line number, bytes, expected)`.
pub fn request_start_cases() -> Vec<(usize, Vec<u8>, bool)> {
    parse_cases(include_str!("../testdata/http1/request_starts.txt"))
}

/// Lines `yes|no[ BYTES]`, `#` comments and blank lines skipped; BYTES with
/// the escapes `\r \n \t \\ \xHH`. A malformed line is skipped: the tests
/// count their cases.
fn parse_cases(text: &str) -> Vec<(usize, Vec<u8>, bool)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (verdict, bytes) = line.split_once(' ').unwrap_or((line, ""));
        let expected = match verdict {
            "yes" => true,
            "no" => false,
            _ => continue,
        };
        if let Some(bytes) = unescape(bytes) {
            out.push((i + 1, bytes, expected));
        }
    }
    out
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match it.next()? {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex = [it.next()?, it.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_verdicts() {
        let cases = parse_cases("# c\n\nyes GET\\x20\\r\\n\\\\\nno\nbad x\nno \\q\n");
        assert_eq!(
            cases,
            [(3, b"GET \r\n\\".to_vec(), true), (4, vec![], false)]
        );
    }

    #[test]
    fn every_line_of_the_request_start_table_is_a_case() {
        let text = include_str!("../testdata/http1/request_starts.txt");
        let lines = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(request_start_cases().len(), lines);
    }
}
