//! YAML files (multi-document ones too) parsed into JSON values.

use serde_json::Value;

use crate::files::read;

/// All documents of a YAML text, as JSON values.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple::<Value>(text).map_err(|e| e.to_string())
}

/// The single document of a YAML file.
pub fn yaml(rel: &str) -> Value {
    let mut docs = yaml_documents(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: expected one YAML document");
    docs.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_parsing_rejects_broken_files_and_reads_every_document() {
        assert!(yaml_documents("a: [1, 2\nb: 3\n").is_err());
        assert!(yaml_documents("a: 1\n  b: 2\n").is_err());
        let docs = yaml_documents("# c\n---\nkind: A\n---\nkind: B\n").expect("two documents");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["kind"], "B");
    }
}
