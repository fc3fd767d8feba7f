//! Why a configuration is refused.

use std::path::PathBuf;

use serde_saphyr::{Location, MessageFormatter};

/// Why a configuration is refused. The `Display` is one line:
/// `config.yaml:12:5: unknown field "levl", expected one of level, body_limit, decompress, sample, rules`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Something at a position in the file.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// File name as given.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column (characters).
        column: u64,
        /// What is wrong and the expected form.
        message: String,
    },
    /// Something about the file with no position.
    #[error("{file}: {message}")]
    InvalidFile {
        /// File name as given.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The file cannot be read.
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable has an impossible value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong and the expected form.
        message: String,
    },
}

impl ConfigError {
    /// `(line, column)` of a positioned error.
    pub fn position(&self) -> Option<(u64, u64)> {
        match self {
            ConfigError::Invalid { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }

    /// What is wrong, without the file and position.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Invalid { message, .. }
            | ConfigError::InvalidFile { message, .. }
            | ConfigError::Env { message, .. } => message.clone(),
            ConfigError::Read { source, .. } => source.to_string(),
        }
    }

    pub(crate) fn env(var: &str, message: impl Into<String>) -> Self {
        ConfigError::Env {
            var: var.to_string(),
            message: message.into(),
        }
    }
}

/// A semantic error found after reading, with the position of what it is about.
#[derive(Debug)]
pub(crate) struct Located {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Located {
    pub(crate) fn at(loc: &Location, message: impl Into<String>) -> Self {
        Located {
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
        }
    }

    pub(crate) fn into_error(self, file: &str) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_string(),
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }
}

/// A parse error as one line: positions from serde-saphyr, wording made plain.
pub(crate) fn from_yaml_error(e: &serde_saphyr::Error, file: &str) -> ConfigError {
    let inner = e.without_snippet();
    let raw = serde_saphyr::DefaultMessageFormatter.format_message(inner);
    let message = plain_message(&raw);
    match e.location().filter(|l| l.line() > 0) {
        Some(l) => ConfigError::Invalid {
            file: file.to_string(),
            line: l.line(),
            column: l.column(),
            message,
        },
        None => ConfigError::InvalidFile {
            file: file.to_string(),
            message,
        },
    }
}

/// Readable wording for the parser's terse messages; backticks become quotes;
/// control characters are escaped so the message stays one line.
fn plain_message(raw: &str) -> String {
    let replaced = match raw.trim() {
        "expected mapping start" | "expected mapping" => {
            "wrong type: expected a mapping (key: value lines)".to_string()
        }
        "expected sequence start" | "expected sequence" => {
            "wrong type: expected a list (- item lines or [a, b])".to_string()
        }
        "expected string scalar" | "expected scalar" => "wrong type: expected a string".to_string(),
        b if b.starts_with("invalid boolean") => "wrong type: expected true or false".to_string(),
        "invalid floating point" | "invalid f64" | "invalid f32" => {
            "wrong type: expected a number".to_string()
        }
        other => match other.strip_prefix("invalid ") {
            Some("u8") => "expected an integer from 0 to 255".to_string(),
            Some("u16") => "expected an integer from 0 to 65535".to_string(),
            Some("u32") => "expected an integer from 0 to 4294967295".to_string(),
            Some("u64") | Some("usize") => "expected a non-negative integer".to_string(),
            Some("i8") | Some("i16") | Some("i32") | Some("i64") | Some("isize") => {
                "expected an integer".to_string()
            }
            _ => other.to_string(),
        },
    };
    replaced
        .replace('`', "\"")
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_debug().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_plain_and_one_line() {
        assert_eq!(
            plain_message("invalid u32"),
            "expected an integer from 0 to 4294967295"
        );
        assert_eq!(
            plain_message("unknown field `levl`, expected one of level, rules"),
            "unknown field \"levl\", expected one of level, rules"
        );
        assert_eq!(plain_message("bad\nthing\u{0}"), "bad\\nthing\\0");
    }
}
