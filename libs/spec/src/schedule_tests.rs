use super::*;
use crate::{SpecError, parse, render};

const BASE: &str = "name: hello\ncommand: [hello]\n";

fn schedule(section: &str) -> Result<Schedule, SpecError> {
    parse(&format!("{BASE}schedule:\n{section}"), "svc/paved.yaml").map(|s| s.schedule.expect("a schedule"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("a time").with_timezone(&Utc)
}

#[test]
fn office_hours_in_berlin_winter_and_summer() {
    let s = schedule("  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin\"\n").expect("valid");
    // Monday 7 December 2026: Berlin is UTC+1.
    assert!(!s.awake_at(at("2026-12-07T06:29:59Z")));
    assert!(s.awake_at(at("2026-12-07T06:30:00Z")));
    assert!(s.awake_at(at("2026-12-07T19:29:59Z")));
    assert!(!s.awake_at(at("2026-12-07T19:30:00Z")));
    assert!(!s.awake_at(at("2026-12-12T10:00:00Z")), "Saturday");
    // Monday 6 July 2026: UTC+2.
    assert!(s.awake_at(at("2026-07-06T05:30:00Z")));
    assert!(!s.awake_at(at("2026-07-06T05:29:00Z")));
}

#[test]
fn overnight_ranges_wrapping_days_and_downtime() {
    let s = schedule("  uptime: \"Fri 22:00-06:00 UTC\"\n").expect("valid");
    assert!(!s.awake_at(at("2026-12-11T21:59:00Z")));
    assert!(s.awake_at(at("2026-12-11T22:00:00Z")));
    assert!(s.awake_at(at("2026-12-12T05:59:00Z")), "Saturday morning is Friday's night");
    assert!(!s.awake_at(at("2026-12-12T06:00:00Z")));
    assert!(!s.awake_at(at("2026-12-12T23:00:00Z")), "Saturday night is not");
    let s = schedule("  downtime: [\"Sat-Mon 00:00-24:00 UTC\"]\n").expect("valid");
    for (day, up) in [("11", true), ("12", false), ("13", false), ("14", false), ("15", true)] {
        assert_eq!(s.awake_at(at(&format!("2026-12-{day}T12:00:00Z"))), up, "December {day}");
    }
}

#[test]
fn several_ranges_as_a_list_or_with_commas() {
    let listed = schedule("  uptime:\n    - Mon-Fri 08:00-12:00 UTC\n    - Sat 10:00-11:00 UTC\n").expect("valid");
    let commas = schedule("  uptime: \"Mon-Fri 08:00-12:00 UTC, Sat 10:00-11:00 UTC\"\n").expect("valid");
    assert_eq!(listed, commas);
    assert!(listed.awake_at(at("2026-12-12T10:30:00Z")));
    assert!(!listed.awake_at(at("2026-12-12T11:30:00Z")));
}

#[test]
fn excluded_dates_sleep_all_day_in_the_schedules_zone() {
    let s = schedule("  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin\"\n  exclude: [\"2026-12-24\", \"2026-12-25\"]\n").expect("valid");
    assert!(!s.awake_at(at("2026-12-24T10:00:00Z")));
    assert!(s.awake_at(at("2026-12-23T10:00:00Z")));
    // 23:30 UTC on the 23rd is already the 24th in Berlin, and asleep
    // anyway; 06:30 UTC on the 28th (Monday) is up again.
    assert_eq!(s.next_change(at("2026-12-23T19:30:00Z")), Some(at("2026-12-28T06:30:00Z")));
    let s = schedule("  exclude: [\"2026-12-24\"]\n").expect("valid");
    assert!(s.awake_at(at("2026-12-23T23:59:59Z")));
    assert!(!s.awake_at(at("2026-12-24T00:00:00Z")), "no range: UTC");
    assert_eq!(s.next_change(at("2026-12-24T03:00:00Z")), Some(at("2026-12-25T00:00:00Z")));
}

#[test]
fn the_next_change_says_when_it_wakes_or_sleeps() {
    let s = schedule("  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin\"\n").expect("valid");
    assert_eq!(s.next_change(at("2026-12-07T06:00:00Z")), Some(at("2026-12-07T06:30:00Z")));
    assert_eq!(s.next_change(at("2026-12-07T06:30:00Z")), Some(at("2026-12-07T19:30:00Z")));
    assert_eq!(s.next_change(at("2026-12-11T20:00:00Z")), Some(at("2026-12-14T06:30:00Z")), "Friday night: Monday");
    // Across the change to summer time (29 March 2026): 07:30 is 05:30 UTC.
    assert_eq!(s.next_change(at("2026-03-27T20:00:00Z")), Some(at("2026-03-30T05:30:00Z")));
    for never_changes in ["  uptime: always\n", "  uptime: never\n", "  downtime: never\n", "  idle_after: 30m\n"] {
        assert_eq!(schedule(never_changes).expect("valid").next_change(at("2026-12-07T06:00:00Z")), None, "{never_changes}");
    }
    assert!(!schedule("  downtime: always\n").expect("valid").awake_at(at("2026-12-07T12:00:00Z")));
}

#[test]
fn idle_after_takes_seconds_minutes_and_hours() {
    assert_eq!(schedule("  idle_after: 30m\n").expect("valid").idle_after, Some(Duration::from_secs(1800)));
    assert_eq!(schedule("  idle_after: 2s\n").expect("valid").idle_after, Some(Duration::from_secs(2)));
    assert_eq!(schedule("  idle_after: 2h\n").expect("valid").idle_after, Some(Duration::from_secs(7200)));
}

#[test]
fn bad_values_are_located_where_they_stand() {
    let cases = [
        ("  uptime: \"Mon-Fri 07:30-20:30 Europe/Berln\"\n", 4, "unknown time zone \"Europe/Berln\""),
        ("  uptime: \"Mon-Fry 07:30-20:30 UTC\"\n", 4, "invalid day \"Fry\""),
        ("  uptime: \"Mon-Fri 7h-20:30 UTC\"\n", 4, "invalid time \"7h\""),
        ("  uptime: \"Mon-Fri 07:30-20:30\"\n", 4, "invalid range"),
        ("  uptime: \"Mon 08:00-08:00 UTC\"\n", 4, "starts and ends at the same time"),
        ("  uptime: []\n", 4, "empty list"),
        ("  exclude: [\"24.12.2026\"]\n", 4, "invalid date \"24.12.2026\""),
        ("  idle_after: 0s\n", 4, "at least 1s"),
        ("  idle_after: 30 minutes\n", 4, "invalid duration"),
        ("  sleep: now\n", 4, "unknown field `sleep`"),
        ("  uptime: always\n  downtime: never\n", 5, "not both"),
    ];
    for (section, line, message) in cases {
        let e = schedule(section).expect_err(section);
        assert_eq!((e.file.as_str(), e.line), ("svc/paved.yaml", line), "{section}: {e}");
        assert!(e.field.starts_with("schedule"), "{section}: {e}");
        assert!(e.message.contains(message), "{section}: {e}");
    }
}

#[test]
fn an_overlay_adds_a_schedule_or_takes_it_away() {
    let dev = render(BASE, "svc/paved.yaml", Some(("schedule:\n  uptime: \"Mon-Fri 08:00-18:00 UTC\"\n", "svc/paved.dev.yaml")))
        .expect("an overlay may add a schedule");
    assert!(matches!(dev.spec.schedule, Some(Schedule { hours: Hours::Uptime(_), .. })));
    let base = format!("{BASE}schedule:\n  idle_after: 30m\n");
    let prod = render(&base, "svc/paved.yaml", Some(("schedule: null\n", "svc/paved.prod.yaml"))).expect("valid");
    assert_eq!(prod.spec.schedule, None);
    let e = render(BASE, "svc/paved.yaml", Some(("schedule:\n  uptime: \"Mon-Fri 08:00-18:00 Mars/Olympus\"\n", "svc/paved.dev.yaml")))
        .expect_err("a bad zone");
    assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("svc/paved.dev.yaml", 2, "schedule.uptime"), "{e}");
}

#[test]
fn a_spec_without_a_schedule_keeps_its_digest() {
    let plain = parse(BASE, "a").expect("valid");
    assert!(!serde_json::to_string(&plain).expect("json").contains("schedule"));
    let with = parse(&format!("{BASE}schedule:\n  idle_after: 30m\n"), "a").expect("valid");
    assert_ne!(plain.digest(), with.digest());
}
