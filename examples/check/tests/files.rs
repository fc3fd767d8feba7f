//! Every YAML and JSON file under `examples/` parses.

use examples_check::files::{example_files, is_yaml, json, read};
use examples_check::yaml::yaml_documents;

#[test]
fn every_yaml_and_json_file_parses() {
    let files = example_files();
    let (mut yaml_files, mut json_files) = (0, 0);
    for rel in &files {
        if is_yaml(rel) {
            let docs = yaml_documents(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(!docs.is_empty(), "{rel}: no YAML document");
            for (i, d) in docs.iter().enumerate() {
                assert!(d.is_object(), "{rel}: document {i} is not a mapping");
            }
            yaml_files += 1;
        } else if rel.ends_with(".json") {
            assert!(json(rel).is_object(), "{rel}: not a JSON object");
            json_files += 1;
        }
    }
    assert!(
        yaml_files >= 7,
        "YAML files found: {yaml_files} in {files:?}"
    );
    assert!(json_files >= 1, "JSON files: {files:?}");
}
