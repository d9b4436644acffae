//! Time as the broker stores it: Unix milliseconds in every column, and
//! durations turned into milliseconds without wrapping.

/// Now, in Unix milliseconds: how every time is stored here.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `d` in milliseconds (saturating: a "forever" must not wrap into the past).
pub(crate) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
