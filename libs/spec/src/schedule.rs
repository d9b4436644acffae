//! The `schedule` section: when a workload sleeps, in kube-downscaler's
//! vocabulary.
//!
//! ```yaml
//! schedule:
//!   uptime: "Mon-Fri 07:30-20:30 Europe/Berlin"  # or downtime:; several ranges
//!                                                # as a list or comma-separated
//!   exclude: ["2026-12-24", "2026-12-25"]        # asleep all day
//!   idle_after: 30m                              # no request this long: sleep
//! ```
//!
//! A range is `<day>[-<day>] <HH:MM>-<HH:MM> <time zone>` with days `Mon` to
//! `Sun` (a day range may wrap, `Sat-Mon`) and a tz database zone; an end at
//! or before its start runs past midnight into the next day (`Fri 22:00-06:00`
//! ends on Saturday morning), and `24:00` ends at midnight. `always` and
//! `never` stand alone. Excluded dates are whole days in the time zone of the
//! first range (UTC without one).

use crate::types::Str;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{Error, SeqAccess, Visitor},
};
use std::{fmt, time::Duration};

/// A validated `schedule` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub hours: Hours,
    pub exclude: Vec<NaiveDate>,
    /// Sleep after this long without a request.
    #[serde(skip_serializing_if = "Option::is_none", with = "secs")]
    pub idle_after: Option<Duration>,
}

/// The hours a workload is up. `downtime:` ranges and `never`/`always` are
/// read into one of these, so there is one way to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hours {
    /// Up at every hour (but excluded dates).
    Always,
    /// Up only inside one of these ranges (none: never up).
    Uptime(Vec<Range>),
    /// Up except inside one of these ranges.
    Downtime(Vec<Range>),
}

/// One weekly range, as written (`Mon-Fri 07:30-20:30 Europe/Berlin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Bit `n` set: the range starts on the day `n` days after Monday.
    days: u8,
    start: NaiveTime,
    /// `None`: midnight at the end of the day.
    end: Option<NaiveTime>,
    tz: Tz,
    text: String,
}

impl Range {
    /// As written, e.g. `Mon-Fri 07:30-20:30 Europe/Berlin`.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Serialize for Range {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl Range {
    /// Whether the instant falls inside the range.
    fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let (day, time) = (local.weekday(), local.time());
        let starts = |d: Weekday| self.days & (1 << d.num_days_from_monday()) != 0;
        match self.end {
            None => starts(day) && time >= self.start,
            Some(end) if end > self.start => starts(day) && time >= self.start && time < end,
            Some(end) => (starts(day) && time >= self.start) || (starts(day.pred()) && time < end),
        }
    }

    /// The instants, in UTC, at which the range opens and closes on `date`.
    fn edges(&self, date: NaiveDate) -> [DateTime<Utc>; 2] {
        let end = match self.end {
            Some(end) if end > self.start => date.and_time(end),
            Some(end) => date.checked_add_days(Days::new(1)).unwrap_or(date).and_time(end),
            None => date.checked_add_days(Days::new(1)).unwrap_or(date).and_time(NaiveTime::MIN),
        };
        [local(self.tz, date.and_time(self.start)), local(self.tz, end)]
    }
}

/// The UTC instant of a local wall-clock time; in a daylight-saving gap, the
/// first instant after it.
fn local(tz: Tz, naive: chrono::NaiveDateTime) -> DateTime<Utc> {
    let mut naive = naive;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            return t.with_timezone(&Utc);
        }
        naive += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&naive)
}

impl Schedule {
    /// Whether the workload should be up at `at`.
    pub fn awake_at(&self, at: DateTime<Utc>) -> bool {
        if !self.exclude.is_empty() && self.exclude.contains(&at.with_timezone(&self.zone()).date_naive()) {
            return false;
        }
        match &self.hours {
            Hours::Always => true,
            Hours::Uptime(ranges) => ranges.iter().any(|r| r.contains(at)),
            Hours::Downtime(ranges) => !ranges.iter().any(|r| r.contains(at)),
        }
    }

    /// The next instant after `at` at which [`Schedule::awake_at`] changes,
    /// if it changes within the days the schedule can tell apart (a week,
    /// plus one day per excluded date).
    pub fn next_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = self.awake_at(at);
        let today = at.with_timezone(&self.zone()).date_naive();
        let span = 9 + self.exclude.len() as u64;
        let mut edges: Vec<DateTime<Utc>> = Vec::new();
        let ranges = match &self.hours {
            Hours::Always => &[][..],
            Hours::Uptime(r) | Hours::Downtime(r) => r,
        };
        for n in 0..=span {
            let Some(date) = today.checked_sub_days(Days::new(1)).and_then(|d| d.checked_add_days(Days::new(n))) else { continue };
            for range in ranges {
                edges.extend(range.edges(date));
            }
        }
        for date in &self.exclude {
            let next = date.checked_add_days(Days::new(1)).unwrap_or(*date);
            edges.extend([local(self.zone(), date.and_time(NaiveTime::MIN)), local(self.zone(), next.and_time(NaiveTime::MIN))]);
        }
        edges.retain(|e| *e > at);
        edges.sort_unstable();
        edges.into_iter().find(|e| self.awake_at(*e) != now)
    }

    /// The zone excluded dates are read in.
    fn zone(&self) -> Tz {
        match &self.hours {
            Hours::Uptime(r) | Hours::Downtime(r) => r.first().map_or(Tz::UTC, |r| r.tz),
            Hours::Always => Tz::UTC,
        }
    }
}

/// The section as written, each field checked where it stands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    uptime: Option<Ranges>,
    downtime: Option<Ranges>,
    #[serde(default)]
    exclude: Vec<Date>,
    idle_after: Option<Idle>,
}

impl RawSchedule {
    /// The schedule, or which field is wrong and why.
    pub(crate) fn build(self) -> Result<Schedule, (&'static str, String)> {
        let hours = match (self.uptime, self.downtime) {
            (Some(_), Some(_)) => {
                return Err(("downtime", "set `uptime` or `downtime`, not both: one says when it is up, the other when it is not".into()));
            }
            (Some(Ranges::Always) | None, None) | (None, Some(Ranges::Never)) => Hours::Always,
            (Some(Ranges::Never), None) | (None, Some(Ranges::Always)) => Hours::Uptime(Vec::new()),
            (Some(Ranges::Some(r)), None) => Hours::Uptime(r),
            (None, Some(Ranges::Some(r))) => Hours::Downtime(r),
        };
        let mut exclude: Vec<NaiveDate> = self.exclude.into_iter().map(|d| d.0).collect();
        exclude.sort_unstable();
        exclude.dedup();
        Ok(Schedule { hours, exclude, idle_after: self.idle_after.map(|i| i.0) })
    }
}

/// `always`, `never`, or ranges.
#[derive(Debug)]
enum Ranges {
    Always,
    Never,
    Some(Vec<Range>),
}

impl<'de> Deserialize<'de> for Ranges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ranges;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("ranges such as \"Mon-Fri 07:30-20:30 Europe/Berlin\" (a list, or separated by commas), `always` or `never`")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Ranges, E> {
                match v.trim() {
                    "always" => Ok(Ranges::Always),
                    "never" => Ok(Ranges::Never),
                    _ => v.split(',').map(parse_range).collect::<Result<_, _>>().map(Ranges::Some).map_err(E::custom),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ranges, A::Error> {
                let mut out = Vec::new();
                while let Some(text) = seq.next_element::<String>()? {
                    out.push(parse_range(&text).map_err(A::Error::custom)?);
                }
                if out.is_empty() {
                    return Err(A::Error::custom("an empty list of ranges: write `never` (or `always`) to say so"));
                }
                Ok(Ranges::Some(out))
            }
        }
        d.deserialize_any(V)
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `<day>[-<day>] <HH:MM>-<HH:MM> <zone>`.
fn parse_range(text: &str) -> Result<Range, String> {
    let text = text.trim();
    let shape = || format!("invalid range {text:?}: write days, hours and a time zone, e.g. \"Mon-Fri 07:30-20:30 Europe/Berlin\"");
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [days, hours, zone] = parts[..] else { return Err(shape()) };
    let day = |d: &str| {
        DAYS.iter().position(|n| *n == d).ok_or_else(|| format!("invalid day {d:?} in {text:?}: use Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
    };
    let (first, last) = match days.split_once('-') {
        Some((a, b)) => (day(a)?, day(b)?),
        None => (day(days)?, day(days)?),
    };
    let mut mask = 0u8;
    let mut d = first;
    loop {
        mask |= 1 << d;
        if d == last {
            break;
        }
        d = (d + 1) % 7;
    }
    let (start, end) = hours.split_once('-').ok_or_else(shape)?;
    let time = |t: &str| {
        NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("invalid time {t:?} in {text:?}: use HH:MM from 00:00 to 24:00"))
    };
    let start = time(start)?;
    let end = if end == "24:00" { None } else { Some(time(end)?) };
    if end == Some(start) {
        return Err(format!("the range {text:?} starts and ends at the same time: for a whole day write 00:00-24:00"));
    }
    let tz: Tz =
        zone.parse().map_err(|_| format!("unknown time zone {zone:?} in {text:?}: use a tz database name such as Europe/Berlin or UTC"))?;
    Ok(Range { days: mask, start, end, tz, text: text.to_string() })
}

/// A date, `YYYY-MM-DD`.
#[derive(Debug)]
struct Date(NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Str(
            |s: &str| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Date)
                    .map_err(|_| format!("invalid date {s:?}: use YYYY-MM-DD, e.g. 2026-12-24"))
            },
            "a date such as 2026-12-24",
        ))
    }
}

/// `idle_after`: `45s`, `30m` or `2h`, from one second to a week.
#[derive(Debug)]
struct Idle(Duration);

impl<'de> Deserialize<'de> for Idle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Str(|s: &str| parse_idle(s).map(Idle), "a duration such as 45s, 30m or 2h"))
    }
}

fn parse_idle(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use seconds, minutes or hours, e.g. 45s, 30m or 2h");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = s[..split].parse().map_err(|_| bad())?;
    let unit = match &s[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    let d = Duration::from_secs(n.saturating_mul(unit));
    if d.is_zero() || d > Duration::from_secs(7 * 24 * 3600) {
        return Err(format!("idle_after {s:?} must be at least 1s and at most a week (168h)"));
    }
    Ok(d)
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.map_or(0, |d| d.as_secs()))
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
