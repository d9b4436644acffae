//! How a workload's secrets reach its processes: `${secret:<name>}` in an
//! env value (resolved at launch, anywhere in the value), `secret_files`
//! (written to a file only the process's user can read) and what a
//! rotation does (`on_rotation`). The runtime resolves them with the
//! workload's own identity; this module only says where the references are.

use serde::{Deserialize, Serialize};

const OPEN: &str = "${secret:";

/// What a new version of a delivered secret does to a running process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRotation {
    /// Its files are rewritten (atomically), then the process gets SIGHUP;
    /// env values keep what they were at launch.
    #[default]
    Signal,
    /// Each replica is restarted in turn, with the new values (env and files).
    Restart,
}

impl OnRotation {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The secret names `value` refers to, in order, each once.
pub fn references(value: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        if !names.contains(&name) {
            names.push(name);
        }
        rest = &after[end + 1..];
    }
    names
}

/// `value` with each `${secret:<name>}` replaced by `lookup(name)`; the
/// first name `lookup` has no value for is the error.
pub fn substitute<'a>(value: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        out.push_str(&rest[..start]);
        out.push_str(lookup(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_anywhere_in_a_value() {
        assert_eq!(references("${secret:db-password}"), ["db-password"]);
        assert_eq!(references("postgres://app:${secret:pw}@db/${secret:name}?x=${secret:pw}"), ["pw", "name"]);
        assert!(references("${literal} ${secret:unclosed").is_empty(), "an unclosed reference is text");
        let values = [("pw", "hunter2"), ("name", "shop")];
        let lookup = |n: &str| values.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!(substitute("postgres://app:${secret:pw}@db/${secret:name}", lookup), Ok("postgres://app:hunter2@db/shop".into()));
        assert_eq!(substitute("no reference, ${other}", lookup), Ok("no reference, ${other}".into()));
        assert_eq!(substitute("${secret:gone}", lookup), Err("gone".into()));
        assert_eq!(substitute("unclosed ${secret:pw", lookup), Ok("unclosed ${secret:pw".into()));
    }
}
