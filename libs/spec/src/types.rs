//! Field types that validate themselves while being deserialised. The check
//! runs inside the visitor, so the YAML deserialiser attaches the line and
//! column of the offending value to the error.

use serde::{
    Deserialize, Deserializer,
    de::{Error, SeqAccess, Visitor},
};
use std::{collections::BTreeMap, fmt, time::Duration};

/// Visits a string and checks it.
pub(crate) struct Str<F>(pub(crate) F, pub(crate) &'static str);

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for Str<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

/// Environment values. A null (`KEY:`, `KEY: ~`, `KEY: null`) is the
/// empty string, as Kubernetes reads an env entry's `value:`; read as a
/// plain string, each spelling of null would be another value.
/// A null map (`env:` with nothing, or `env: null`) has no values; the
/// YAML reader took the first for an empty map and refused the second.
pub(crate) fn env_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<EnvName, String>, D::Error> {
    let raw = Option::<BTreeMap<EnvName, Option<String>>>::deserialize(d)?.unwrap_or_default();
    Ok(raw.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

/// Visits a non-negative integer and checks it.
struct Uint<F>(F, &'static str);

impl<'de, T, F: FnOnce(u64) -> Result<T, String>> Visitor<'de> for Uint<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{} must not be negative, got {v}", self.1))),
        }
    }
}

macro_rules! string_type {
    ($name:ident, $expecting:literal, $check:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub String);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let check: fn(&str) -> Result<(), String> = $check;
                d.deserialize_str(Str(|s: &str| check(s).map(|()| Self(s.to_string())), $expecting))
            }
        }
    };
}

macro_rules! range_type {
    ($name:ident, $inner:ty, $what:literal, $min:expr, $max:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_u64(Uint(
                    |v: u64| match <$inner>::try_from(v) {
                        Ok(v) if ($min..=$max).contains(&v) => Ok(Self(v)),
                        _ => Err(format!("{} must be between {} and {}, got {v}", $what, $min, $max)),
                    },
                    $what,
                ))
            }
        }
    };
}

string_type!(Name, "a workload name", check_name);

pub fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok { Ok(()) } else { Err(format!("invalid name {s:?}: use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'")) }
}

string_type!(EnvName, "an environment variable name", |s| {
    let ok =
        s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(format!("invalid environment variable name {s:?}: use letters, digits and '_', not starting with a digit"));
    }
    if s == "PORT" || s == "HOST" {
        return Err(format!("{s} is set by the runtime (where the workload listens) and cannot be overridden"));
    }
    Ok(())
});

string_type!(Cpu, "a CPU quantity such as 250m or 1", |s| {
    let digits = s.strip_suffix('m').unwrap_or(s);
    let ok = !digits.is_empty()
        && digits.split('.').count() <= 2
        && digits.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("invalid CPU quantity {s:?}: use cores (0.5, 2) or millicores (250m)")) }
});

string_type!(Memory, "a memory quantity such as 128Mi or 1Gi", |s| {
    let digits = ["Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T"].iter().find_map(|u| s.strip_suffix(u)).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("invalid memory quantity {s:?}: use bytes with a unit such as 128Mi or 1Gi"))
    }
});

string_type!(HttpPath, "an HTTP path", |p| if p.starts_with('/') { Ok(()) } else { Err(format!("health path {p:?} must start with '/'")) });

range_type!(Port, u16, "port", 1, 65535);
range_type!(Replicas, u32, "replicas", 1, 64);
range_type!(Threshold, u32, "failure_threshold", 1, 100);
range_type!(Percent, u32, "a traffic weight in percent", 1, 100);
range_type!(Score, u32, "a score", 0, 100);

/// Parts per million of `v` (saturating).
pub fn ppm(v: f64) -> u32 {
    (v * 1_000_000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Canary traffic weights in percent: increasing, ending at 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steps(pub Vec<u32>);

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Steps;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of traffic weights in percent, e.g. [1, 5, 25, 50, 100]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Steps, A::Error> {
                let mut out: Vec<u32> = Vec::new();
                while let Some(Percent(w)) = seq.next_element()? {
                    if out.last().is_some_and(|last| *last >= w) {
                        return Err(A::Error::custom(format!("steps must increase: {w} comes after {}", out.last().copied().unwrap_or(0))));
                    }
                    out.push(w);
                }
                if out.last() != Some(&100) {
                    return Err(A::Error::custom("the last step must be 100: a rollout ends with all traffic on the new revision"));
                }
                Ok(Steps(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A share between 0 and 1 (e.g. `0.01` for 1%), kept in parts per million
/// so that specs stay comparable with `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio(pub u32);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ratio;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a share between 0 and 1, e.g. 0.01 for 1%")
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Ratio, E> {
                if (0.0..=1.0).contains(&v) {
                    Ok(Ratio(ppm(v)))
                } else {
                    Err(E::custom(format!("must be between 0 and 1 (e.g. 0.01 for 1%), got {v}")))
                }
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Ratio, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Ratio, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

/// Program and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list: program, then arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Command, A::Error> {
                let mut out = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    out.push(arg);
                }
                match out.first() {
                    Some(p) if !p.trim().is_empty() => Ok(Command(out)),
                    _ => Err(A::Error::custom("`command` must name a program")),
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// A duration written as `500ms`, `2s` or `1m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationStr(pub Duration);

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Str(|s: &str| parse_duration(s).map(DurationStr), "a duration such as 500ms, 2s or 1m"))
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 2s or 1m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => {
            return Err(format!("invalid duration {s:?}: the unit must be ms, s or m"));
        }
    };
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(format!("duration {s:?} must be more than 0 and at most 1h"));
    }
    Ok(d)
}
