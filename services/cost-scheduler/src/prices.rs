//! The price sheet: what a core-hour and a GiB-hour of memory cost, with
//! overrides per environment. Its defaults are OpenCost's (its default
//! on-premises pricing): CPU $0.031611 per vCPU-hour, RAM $0.004237 per
//! GB-hour, where OpenCost's GB is 2³⁰ bytes — so is ours.
//!
//! ```yaml
//! currency: USD
//! cpu_core_hour: 0.031611
//! memory_gib_hour: 0.004237
//! environments:
//!   prod: {cpu_core_hour: 0.045}   # what is not given comes from above
//! ```

use serde::Deserialize;
use std::{collections::BTreeMap, path::Path};

pub const DEFAULT_CPU_CORE_HOUR: f64 = 0.031611;
pub const DEFAULT_MEMORY_GIB_HOUR: f64 = 0.004237;

/// The prices of one environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub cpu_core_hour: f64,
    pub memory_gib_hour: f64,
}

impl Prices {
    /// What `cores` and `bytes` cost for `hours`.
    pub fn cost(&self, cores: f64, bytes: f64, hours: f64) -> f64 {
        hours * (cores * self.cpu_core_hour + bytes / GIB * self.memory_gib_hour)
    }
}

pub const GIB: f64 = 1_073_741_824.0;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSheet {
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default = "default_cpu")]
    pub cpu_core_hour: f64,
    #[serde(default = "default_memory")]
    pub memory_gib_hour: f64,
    #[serde(default)]
    pub environments: BTreeMap<String, Override>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub cpu_core_hour: Option<f64>,
    pub memory_gib_hour: Option<f64>,
}

fn usd() -> String {
    "USD".into()
}
fn default_cpu() -> f64 {
    DEFAULT_CPU_CORE_HOUR
}
fn default_memory() -> f64 {
    DEFAULT_MEMORY_GIB_HOUR
}

impl Default for PriceSheet {
    fn default() -> Self {
        Self { currency: usd(), cpu_core_hour: default_cpu(), memory_gib_hour: default_memory(), environments: BTreeMap::new() }
    }
}

impl PriceSheet {
    /// Reads a sheet; a bad one is refused with where it is bad (a wrong
    /// price is worse than none: every report would be off).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("price sheet {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("price sheet {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let sheet: Self = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
        let all = [("cpu_core_hour", Some(sheet.cpu_core_hour)), ("memory_gib_hour", Some(sheet.memory_gib_hour))]
            .into_iter()
            .chain(sheet.environments.values().flat_map(|o| [("cpu_core_hour", o.cpu_core_hour), ("memory_gib_hour", o.memory_gib_hour)]));
        for (field, price) in all {
            if let Some(p) = price
                && !(p.is_finite() && p >= 0.0)
            {
                return Err(format!("{field}: a price is a number of at least 0, not {p}"));
            }
        }
        Ok(sheet)
    }

    /// The prices in `environment`.
    pub fn prices(&self, environment: &str) -> Prices {
        let o = self.environments.get(environment);
        Prices {
            cpu_core_hour: o.and_then(|o| o.cpu_core_hour).unwrap_or(self.cpu_core_hour),
            memory_gib_hour: o.and_then(|o| o.memory_gib_hour).unwrap_or(self.memory_gib_hour),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_opencosts() {
        let sheet = PriceSheet::parse("{}").expect("empty sheet");
        assert_eq!(sheet, PriceSheet::default());
        assert_eq!(sheet.prices("dev"), Prices { cpu_core_hour: 0.031611, memory_gib_hour: 0.004237 });
        // A core and a GiB for a day.
        let day = sheet.prices("dev").cost(1.0, GIB, 24.0);
        assert!((day - 24.0 * (0.031611 + 0.004237)).abs() < 1e-12, "{day}");
    }

    #[test]
    fn environments_override_what_they_name() {
        let sheet = PriceSheet::parse("cpu_core_hour: 0.05\nenvironments:\n  prod: {memory_gib_hour: 0.01}\n").expect("sheet");
        assert_eq!(sheet.prices("prod"), Prices { cpu_core_hour: 0.05, memory_gib_hour: 0.01 });
        assert_eq!(sheet.prices("dev"), Prices { cpu_core_hour: 0.05, memory_gib_hour: DEFAULT_MEMORY_GIB_HOUR });
    }

    #[test]
    fn bad_sheets_are_refused_with_the_field() {
        let e = PriceSheet::parse("cpu_core_hour: -1\n").expect_err("negative");
        assert!(e.contains("cpu_core_hour") && e.contains("-1"), "{e}");
        let e = PriceSheet::parse("environments:\n  prod: {gpu_hour: 1}\n").expect_err("unknown field");
        assert!(e.contains("gpu_hour") && e.contains("line 2"), "{e}");
        let e = PriceSheet::parse("cpu_core_hour: cheap\n").expect_err("not a number");
        assert!(e.contains("cpu_core_hour"), "{e}");
    }
}
