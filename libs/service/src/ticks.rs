//! [`Ticks`]: a background loop's clock — every period until shutdown.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Ticks every `period` until `shutdown`. A pass that overruns delays the
/// next tick rather than bunching the missed ones: a loop that fell behind
/// does one pass, not a burst.
pub struct Ticks {
    interval: tokio::time::Interval,
    shutdown: CancellationToken,
}

impl Ticks {
    /// The first tick is immediate.
    pub fn new(period: Duration, shutdown: CancellationToken) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { interval, shutdown }
    }

    /// Waits for the next tick; false once shutdown began.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.interval.tick() => !self.shutdown.is_cancelled(),
            _ = self.shutdown.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_until_shutdown() {
        let shutdown = CancellationToken::new();
        let mut ticks = Ticks::new(Duration::from_millis(50), shutdown.clone());
        let started = tokio::time::Instant::now();
        assert!(ticks.next().await, "the first tick is immediate");
        assert!(ticks.next().await);
        assert!(started.elapsed() >= Duration::from_millis(50), "then one per period");
        shutdown.cancel();
        assert!(!ticks.next().await, "none after shutdown");
        // Shutdown ends a wait under way, not only the next one.
        let shutdown = CancellationToken::new();
        let mut slow = Ticks::new(Duration::from_secs(3600), shutdown.clone());
        assert!(slow.next().await);
        tokio::spawn(async move { shutdown.cancel() });
        assert!(!slow.next().await);
    }
}
