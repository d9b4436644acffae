//! What changes between two specs, field by field: the body of `paved plan`.

use crate::workload::WorkloadSpec;
use serde_json::Value;
use std::collections::BTreeMap;

/// One field that differs: its dotted path, and its value before and after
/// (None where the field is absent on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The fields that differ between `before` (None: nothing yet) and `after`,
/// in path order.
pub fn diff(before: Option<&WorkloadSpec>, after: &WorkloadSpec) -> Vec<FieldChange> {
    let (a, b) = (before.map(flatten).unwrap_or_default(), flatten(after));
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| FieldChange { path: p.clone(), before: a.get(p).cloned(), after: b.get(p).cloned() })
        .collect()
}

/// Every leaf of the spec's canonical JSON form by dotted path (list items
/// by index), values as JSON text.
fn flatten(spec: &WorkloadSpec) -> BTreeMap<String, String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeMap<String, String>) {
        let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, &join(k), out)),
            Value::Array(items) if !items.is_empty() => items.iter().enumerate().for_each(|(i, v)| walk(v, &join(&i.to_string()), out)),
            leaf => {
                out.insert(path.to_string(), leaf.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&serde_json::to_value(spec).unwrap_or(Value::Null), "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_changed_added_and_removed_fields() {
        let before = crate::parse("name: a\ncommand: [x]\nenv:\n  A: '1'\n  B: '2'\n", "f").expect("valid");
        let after = crate::parse("name: a\ncommand: [x, --y]\nenv:\n  A: '1'\n  C: '3'\nreplicas: 2\n", "f").expect("valid");
        let changes = diff(Some(&before), &after);
        let shown: Vec<(&str, Option<&str>, Option<&str>)> =
            changes.iter().map(|c| (c.path.as_str(), c.before.as_deref(), c.after.as_deref())).collect();
        assert_eq!(
            shown,
            [
                ("env.B", Some("\"2\""), None),
                ("env.C", None, Some("\"3\"")),
                ("replicas", Some("1"), Some("2")),
                ("run.command.1", None, Some("\"--y\"")),
            ]
        );
        assert!(diff(Some(&before), &before).is_empty());
        assert!(diff(None, &before).iter().all(|c| c.before.is_none()) && diff(None, &before).len() > 5);
    }
}
