//! The operator's default schedules: the `schedule` of a workload whose spec
//! has none, by environment — so `dev` and previews sleep without every
//! team writing it, the way kube-downscaler's namespace annotations work.
//!
//! ```yaml
//! dev:
//!   uptime: "Mon-Fri 07:30-20:30 Europe/Berlin"
//!   idle_after: 30m
//! pr-*:                 # every environment whose name starts with `pr-`
//!   idle_after: 10m
//! ```
//!
//! Each key is an environment's name, a prefix ending in `*`, or `"*"` for
//! every environment; the most specific key applies (the name itself, then
//! the longest prefix). Each value is a `schedule` section, checked like one
//! in a spec. A spec's own schedule always wins, so a workload that must not
//! sleep where a default applies says `schedule: {uptime: always}`.

use crate::{
    error::{SpecError, error, from_yaml, locate},
    schedule::{RawSchedule, Schedule},
    types::check_name,
    workload::WorkloadSpec,
};
use std::{collections::BTreeMap, path::Path};

/// Default schedules by environment (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleDefaults {
    exact: BTreeMap<String, Schedule>,
    /// By prefix, longest first; `""` is `"*"`.
    prefixes: Vec<(String, Schedule)>,
}

impl ScheduleDefaults {
    /// Reads the file at `path` (none configured: no defaults); an
    /// unreadable or bad file is an error naming it (with the line and
    /// column of a bad value).
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else { return Ok(Self::default()) };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("default schedules {file}: {e}"))?;
        Self::parse(&text, &file).map_err(|e| format!("default schedules {e}"))
    }

    /// Parses `text`, the content of `file`.
    pub fn parse(text: &str, file: &str) -> Result<Self, SpecError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: BTreeMap<String, RawSchedule> = yaml_serde::from_str(text).map_err(|e| from_yaml(text, file, &e))?;
        let mut defaults = Self::default();
        for (key, section) in raw {
            let at = |field: &str, message: String| {
                let path = if field.is_empty() { vec![key.clone()] } else { vec![key.clone(), field.to_string()] };
                let (line, column) = locate(text, &path).or_else(|| locate(text, &path[..1])).unwrap_or((1, 1));
                error(file, line, column, &path.join("."), message)
            };
            let schedule = section.build().map_err(|(field, message)| at(field, message))?;
            match key.strip_suffix('*') {
                Some(prefix) => {
                    let valid = prefix.is_empty() || check_name(&format!("{prefix}x")).is_ok();
                    if !valid || prefix.contains('*') {
                        return Err(at(
                            "",
                            format!("invalid environment pattern {key:?}: use a name, a prefix ending in '*' (pr-*), or \"*\""),
                        ));
                    }
                    defaults.prefixes.push((prefix.to_string(), schedule));
                }
                None => {
                    check_name(&key).map_err(|m| at("", format!("{m} (a key is an environment, a prefix ending in '*', or \"*\")")))?;
                    defaults.exact.insert(key, schedule);
                }
            }
        }
        defaults.prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(defaults)
    }

    /// The default schedule of `environment`, if the operator set one.
    pub fn for_environment(&self, environment: &str) -> Option<&Schedule> {
        self.exact.get(environment).or_else(|| self.prefixes.iter().find(|(p, _)| environment.starts_with(p.as_str())).map(|(_, s)| s))
    }

    /// The schedule `spec` runs by in `environment`: its own, or the default.
    pub fn of<'a>(&'a self, spec: &'a WorkloadSpec, environment: &str) -> Option<&'a Schedule> {
        spec.schedule.as_ref().or_else(|| self.for_environment(environment))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Hours;

    const FILE: &str = "\
dev:
  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin\"
  idle_after: 30m
pr-*:
  idle_after: 10m
pr-1*:
  idle_after: 1m
\"*\":
  downtime: never
";

    #[test]
    fn the_most_specific_key_applies() {
        let d = ScheduleDefaults::parse(FILE, "schedules.yaml").expect("valid");
        let idle = |env: &str| d.for_environment(env).and_then(|s| s.idle_after).map(|i| i.as_secs());
        assert_eq!(idle("dev"), Some(1800));
        assert_eq!(idle("pr-7"), Some(600));
        assert_eq!(idle("pr-12"), Some(60), "the longer prefix");
        assert!(matches!(d.for_environment("prod"), Some(Schedule { hours: Hours::Always, idle_after: None, .. })), "\"*\"");
        assert!(ScheduleDefaults::default().for_environment("dev").is_none());
    }

    #[test]
    fn a_specs_own_schedule_wins() {
        let d = ScheduleDefaults::parse(FILE, "schedules.yaml").expect("valid");
        let without = crate::parse::parse("name: a\ncommand: [a]\n", "paved.yaml").expect("spec");
        let with = crate::parse::parse("name: a\ncommand: [a]\nschedule:\n  uptime: always\n", "paved.yaml").expect("spec");
        assert_eq!(d.of(&without, "dev").and_then(|s| s.idle_after).map(|i| i.as_secs()), Some(1800));
        assert_eq!(d.of(&with, "dev").map(|s| (&s.hours, s.idle_after)), Some((&Hours::Always, None)));
    }

    #[test]
    fn bad_values_are_located() {
        let cases = [
            ("dev:\n  uptime: \"Mon-Fry 07:30-20:30 UTC\"\n", 2, "invalid day"),
            ("dev:\n  idle_after: 10m\nqa:\n  uptime: always\n  downtime: never\n", 5, "not both"),
            ("Dev:\n  idle_after: 10m\n", 1, "invalid name \"Dev\""),
            ("dev:\n  idle_after: 1m\np*r*:\n  idle_after: 1m\n", 3, "invalid environment pattern"),
            ("dev:\n  sleep: now\n", 2, "unknown field `sleep`"),
            ("- dev\n", 1, "invalid type"),
        ];
        for (text, line, message) in cases {
            let e = ScheduleDefaults::parse(text, "schedules.yaml").expect_err(text);
            assert_eq!((e.file.as_str(), e.line), ("schedules.yaml", line), "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
        assert_eq!(ScheduleDefaults::parse("# nothing yet\n", "s.yaml").expect("empty"), ScheduleDefaults::default());
        assert_eq!(ScheduleDefaults::load(None).expect("none configured"), ScheduleDefaults::default());
        let missing = ScheduleDefaults::load(Some(Path::new("/nonexistent/schedules.yaml"))).expect_err("missing");
        assert!(missing.starts_with("default schedules /nonexistent/schedules.yaml: "), "{missing}");
    }
}
