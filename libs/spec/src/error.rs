//! Spec errors and where they point: [`SpecError`] carries the file, line,
//! column and field of a bad value, and the helpers here find them in the
//! YAML text. Every other module reports through these, so this one depends
//! on nothing else in the crate.

/// A spec error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending field, e.g. `health.path`; empty for the document.
    pub field: String,
    pub message: String,
}

impl SpecError {
    /// The field violation of an RPC that carried the spec in `field`:
    /// (`field.<path>`, the located message).
    pub fn violation(&self, field: &str) -> (String, String) {
        let path = if self.field.is_empty() { field.to_string() } else { format!("{field}.{}", self.field) };
        (path, self.to_string())
    }
}

pub(crate) fn error(file: &str, line: usize, column: usize, field: &str, message: impl Into<String>) -> SpecError {
    SpecError { file: file.to_string(), line, column, field: field.to_string(), message: message.into() }
}

/// Points an error at the first line that sets `key` (at any depth).
pub(crate) fn at_key(text: &str, file: &str, key: &str, message: &str) -> SpecError {
    let needle = format!("{key}:");
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with(&needle) {
            return error(file, n + 1, line.len() - trimmed.len() + 1, key, message);
        }
    }
    error(file, 1, 1, key, message)
}

pub(crate) fn from_yaml(text: &str, file: &str, e: &yaml_serde::Error) -> SpecError {
    let (mut line, mut column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    // At the end of a text with no final line break, the YAML reader points
    // at the line after the last; an editor has no such line. Found by the
    // `score` fuzz target.
    let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
    if line > lines {
        (line, column) = (lines, text.rsplit(['\n', '\r']).next().map_or(0, |l| l.chars().count()) + 1);
    }
    // The message reads "<path>: <what> at line L column C"; keep the path as
    // the field and drop the location, which we print in front.
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let (field, message) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
        _ => (String::new(), message),
    };
    error(file, line, column, &field, message)
}

/// Line and column of the key at `path` in block-style YAML: each key is
/// searched among its parent's direct children (the lines below it at the
/// first child's indentation), so a deeper key of the same name is skipped.
pub(crate) fn locate(text: &str, path: &[String]) -> Option<(usize, usize)> {
    let mut depth = 0;
    let mut parent_indent: Option<usize> = None;
    let mut level: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if parent_indent.is_some_and(|p| indent <= p) {
            return None;
        }
        if *level.get_or_insert(indent) != indent {
            continue;
        }
        let key = trimmed.trim_start_matches("- ");
        if key.strip_prefix(path.get(depth)?.as_str()).is_some_and(|rest| rest.starts_with(':')) {
            if depth + 1 == path.len() {
                return Some((n + 1, indent + 1));
            }
            parent_indent = Some(indent);
            level = None;
            depth += 1;
        }
    }
    None
}
