//! Where the repository and its example files are, and reading them.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// This crate's directory, `examples/check/`: the checker, not an example.
fn checker_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root, two levels above this crate.
pub fn repo() -> PathBuf {
    checker_dir()
        .ancestors()
        .nth(2)
        .expect("examples/check/ is two levels below the repository")
        .to_path_buf()
}

/// `examples/` in the repository.
pub fn examples_dir() -> PathBuf {
    repo().join("examples")
}

/// Every file under `examples/` except this checker's own (`examples/check/`), as
/// paths relative to the repository, sorted.
pub fn example_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path == checker_dir() {
                continue;
            } else if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&examples_dir(), &mut files);
    let root = repo();
    let mut rel: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("under the repository")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    rel.sort();
    rel
}

/// The text of a file, by path relative to the repository; panics naming the file.
pub fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON file, by path relative to the repository, parsed; panics naming the file.
pub fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Whether a path names a YAML file (`.yaml` or `.yml`).
pub fn is_yaml(rel: &str) -> bool {
    rel.ends_with(".yaml") || rel.ends_with(".yml")
}
