//! Times to live as people type them on the command line (`48h`, `30m`,
//! `2d`, `90s`): the value parser of every `--ttl`-like flag.

use std::time::Duration;

/// A span such as `48h`, `30m`, `2d` or `90s`, in seconds; `None` for a
/// missing number, `Some(Err(unit))` for a unit that is none of those.
pub fn seconds(text: &str) -> Option<Result<u64, String>> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "s" => Ok(n),
        "m" => Ok(n.saturating_mul(60)),
        "h" => Ok(n.saturating_mul(3600)),
        "d" => Ok(n.saturating_mul(86_400)),
        other => Err(other.to_string()),
    })
}

/// How far back a window reaches (`--since 30d`): more than 0.
pub fn parse_since(text: &str) -> Result<u64, String> {
    match crate::ttl::seconds(text) {
        Some(Ok(s)) if s > 0 => Ok(s),
        Some(Ok(_)) => Err(format!("--since {text:?} must be more than 0")),
        _ => Err(format!("invalid --since {text:?}: expected e.g. 30d, 12h or 90m")),
    }
}

/// The Unix ms `seconds` ago (a window's start from `--since`).
pub fn ago_ms(seconds: u64) -> i64 {
    let back = i64::try_from(seconds).unwrap_or(i64::MAX / 1000).saturating_mul(1000);
    chrono::Utc::now().timestamp_millis().saturating_sub(back)
}

/// A time to live such as `48h`, `30m`, `2d` or `90s`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let seconds = match seconds(text) {
        None => return Err(format!("invalid ttl {text:?}: expected e.g. 48h, 30m, 2d")),
        Some(Err(_)) => return Err(format!("invalid ttl {text:?}: the unit must be s, m, h or d")),
        Some(Ok(s)) => s,
    };
    if seconds == 0 || seconds > 30 * 86_400 {
        return Err(format!("ttl {text:?} must be more than 0 and at most 30d"));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ttls() {
        assert_eq!(parse_ttl("48h"), Ok(Duration::from_secs(48 * 3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("31d").expect_err("too long").contains("at most 30d"));
        assert!(parse_ttl("5y").expect_err("unit").contains("s, m, h or d"));
        assert!(parse_ttl("h").expect_err("number").contains("invalid ttl"));
    }
}
