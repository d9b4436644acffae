//! Request fields every area reads the same way.

use std::time::Duration;

/// A duration field: `default` when absent, else whole seconds from 1 s to
/// `max`; a field violation otherwise.
pub(super) fn duration(
    d: Option<&prost_types::Duration>,
    field: &str,
    default: Duration,
    max: Duration,
) -> Result<Duration, (String, String)> {
    let Some(d) = d else { return Ok(default) };
    if d.seconds < 1 || d.nanos < 0 {
        return Err((field.into(), "must be at least 1 s".into()));
    }
    let d = Duration::from_secs(d.seconds as u64);
    if d > max {
        return Err((field.into(), format!("must be at most {} s", max.as_secs())));
    }
    Ok(d)
}
