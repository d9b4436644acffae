//! When a workload should sleep or wake: a pure function of the time, its
//! schedule and what the provisioner says of it, so that every rule is
//! tested without a clock and a pass over 10,000 workloads is cheap.
//!
//! The rules, in order:
//! - a person's sleep or wake holds until its `hold_until`;
//! - asleep: it wakes when its hours begin, unless it sleeps for idleness
//!   (then a request wakes it, through its proxy);
//! - awake outside its hours: it sleeps, unless a request came within the
//!   last `idle_after` (15 minutes without one): a workload woken by a
//!   request, or in use when its hours end, is not cut off mid-use;
//! - awake inside its hours: it sleeps after `idle_after` without a request.

use chrono::{DateTime, Utc};
use paved_proto::provisioner::v1::PowerReason;
use paved_spec::Schedule;
use std::time::Duration;

/// Outside its hours, a workload without `idle_after` is kept up this long
/// after a request.
pub const OFF_HOURS_GRACE: Duration = Duration::from_secs(15 * 60);

/// What the provisioner says of a workload (times in Unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub sleeping: bool,
    /// `schedule`, `idle` or `person` while sleeping.
    pub sleep_reason: String,
    pub hold_until_ms: Option<i64>,
    pub last_request_ms: Option<i64>,
    /// Since when the cost scheduler has seen it awake (its idleness counts
    /// from here when no request came since).
    pub awake_since_ms: i64,
}

/// A command for the provisioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    Sleep(PowerReason, String),
    Wake(PowerReason, String),
}

pub fn decide(now: DateTime<Utc>, schedule: &Schedule, seen: &Seen) -> Option<Act> {
    let now_ms = now.timestamp_millis();
    if seen.hold_until_ms.is_some_and(|until| until > now_ms) {
        return None;
    }
    let in_hours = schedule.awake_at(now);
    if seen.sleeping {
        return (in_hours && seen.sleep_reason != "idle").then(|| Act::Wake(PowerReason::Schedule, "its hours began".into()));
    }
    let since_request = |ms: i64| seen.last_request_ms.is_some_and(|t| now_ms - t < ms);
    if !in_hours {
        let grace = schedule.idle_after.unwrap_or(OFF_HOURS_GRACE);
        return (!since_request(millis(grace))).then(|| Act::Sleep(PowerReason::Schedule, "outside its hours".into()));
    }
    let idle = schedule.idle_after?;
    let active = seen.last_request_ms.map_or(seen.awake_since_ms, |t| t.max(seen.awake_since_ms));
    (now_ms - active >= millis(idle)).then(|| Act::Sleep(PowerReason::Idle, format!("no request for {}s", idle.as_secs())))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(yaml: &str) -> Schedule {
        paved_spec::parse(&format!("name: w\ncommand: [w]\nschedule:\n{yaml}"), "paved.yaml").expect("valid").schedule.expect("a schedule")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn ms(s: &str) -> i64 {
        at(s).timestamp_millis()
    }

    const OFFICE: &str = "  uptime: \"Mon-Fri 08:00-18:00 UTC\"\n";

    #[test]
    fn office_hours_sleep_at_night_and_wake_in_the_morning() {
        let s = schedule(OFFICE);
        let awake = Seen { awake_since_ms: ms("2026-12-07T07:00:00Z"), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T12:00:00Z"), &s, &awake), None, "inside its hours");
        assert_eq!(decide(at("2026-12-07T18:00:00Z"), &s, &awake), Some(Act::Sleep(PowerReason::Schedule, "outside its hours".into())));
        let asleep = Seen { sleeping: true, sleep_reason: "schedule".into(), ..Seen::default() };
        assert_eq!(decide(at("2026-12-08T03:00:00Z"), &s, &asleep), None);
        assert_eq!(decide(at("2026-12-08T08:00:00Z"), &s, &asleep), Some(Act::Wake(PowerReason::Schedule, "its hours began".into())));
    }

    #[test]
    fn in_use_outside_its_hours_it_stays_up_for_the_grace() {
        let s = schedule(OFFICE);
        let used = Seen { last_request_ms: Some(ms("2026-12-07T17:55:00Z")), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T18:05:00Z"), &s, &used), None, "a request 10 minutes ago");
        assert!(matches!(decide(at("2026-12-07T18:10:00Z"), &s, &used), Some(Act::Sleep(PowerReason::Schedule, _))), "15 minutes quiet");
        let s = schedule(&format!("{OFFICE}  idle_after: 2s\n"));
        let woken = Seen { last_request_ms: Some(ms("2026-12-07T23:00:00Z")), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T23:00:01Z"), &s, &woken), None, "woken by a request at night");
        assert!(decide(at("2026-12-07T23:00:02Z"), &s, &woken).is_some(), "idle_after is the grace");
    }

    #[test]
    fn idle_inside_its_hours_sleeps_and_only_a_request_wakes_it() {
        let s = schedule("  idle_after: 30m\n");
        let seen = Seen { awake_since_ms: ms("2026-12-07T09:00:00Z"), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T09:29:59Z"), &s, &seen), None);
        assert_eq!(decide(at("2026-12-07T09:30:00Z"), &s, &seen), Some(Act::Sleep(PowerReason::Idle, "no request for 1800s".into())));
        let used = Seen { last_request_ms: Some(ms("2026-12-07T09:20:00Z")), ..seen.clone() };
        assert_eq!(decide(at("2026-12-07T09:30:00Z"), &s, &used), None, "a request 10 minutes ago");
        let idle = Seen { sleeping: true, sleep_reason: "idle".into(), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T10:00:00Z"), &s, &idle), None, "inside its hours, still asleep until a request");
    }

    #[test]
    fn a_persons_hold_wins_until_it_ends() {
        let s = schedule(OFFICE);
        let held = Seen { hold_until_ms: Some(ms("2026-12-07T22:00:00Z")), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T21:00:00Z"), &s, &held), None);
        assert!(matches!(decide(at("2026-12-07T22:00:00Z"), &s, &held), Some(Act::Sleep(..))));
        let asleep =
            Seen { sleeping: true, sleep_reason: "person".into(), hold_until_ms: Some(ms("2026-12-07T14:00:00Z")), ..Seen::default() };
        assert_eq!(decide(at("2026-12-07T13:00:00Z"), &s, &asleep), None);
        assert!(matches!(decide(at("2026-12-07T14:00:00Z"), &s, &asleep), Some(Act::Wake(..))));
    }
}
