//! Wake on request: a sleeping workload's proxy holds the requests that reach
//! it, asks once for the workload to be woken, and sends them on when an
//! instance is healthy. Held requests are bounded in number and in declared
//! body bytes (the bodies stay unread, in the connection, meanwhile); past
//! the bounds or the timeout a request gets 503 with `Retry-After`, never a
//! hang.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::Semaphore;

/// Called (once per sleep) when a request reaches a sleeping workload.
pub type WakeFn = Arc<dyn Fn() + Send + Sync>;

/// The bounds on requests held while a workload wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// How long a request waits for a healthy instance.
    pub timeout: Duration,
    /// How many requests wait at once.
    pub requests: usize,
    /// How many body bytes (by `Content-Length`) they may carry together.
    pub bytes: u64,
}

impl Default for Hold {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), requests: 256, bytes: 16 << 20 }
    }
}

/// A body of unknown length (chunked) counts as this many bytes.
const UNKNOWN_LENGTH: u64 = 64 << 10;

/// A sleeping workload's state in its proxy.
pub(crate) struct Asleep {
    wake: WakeFn,
    /// A wake was asked for (by a request, or by the platform): the next
    /// healthy route ends the sleep.
    asked: AtomicBool,
}

impl Asleep {
    pub(crate) fn new(wake: WakeFn) -> Self {
        Self { wake, asked: AtomicBool::new(false) }
    }

    /// Marks the wake as asked; true the first time.
    pub(crate) fn ask(&self) -> bool {
        !self.asked.swap(true, Ordering::SeqCst)
    }

    pub(crate) fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Asks for the wake, once.
    pub(crate) fn wake(&self) {
        if self.ask() {
            (self.wake)();
        }
    }
}

/// Room for held requests.
pub(crate) struct Room {
    pub(crate) hold: Hold,
    requests: Arc<Semaphore>,
    bytes: Arc<AtomicU64>,
}

/// A held request's place; given back when dropped.
pub(crate) struct Place {
    _permit: tokio::sync::OwnedSemaphorePermit,
    bytes: Arc<AtomicU64>,
    size: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.bytes.fetch_sub(self.size, Ordering::SeqCst);
    }
}

impl Room {
    pub(crate) fn new(hold: Hold) -> Self {
        Self { hold, requests: Arc::new(Semaphore::new(hold.requests)), bytes: Arc::default() }
    }

    /// A place for a request with a body of `length` bytes (`None`: unknown),
    /// or why there is none.
    pub(crate) fn take(&self, length: Option<u64>) -> Result<Place, &'static str> {
        let permit = self.requests.clone().try_acquire_owned().map_err(|_| "too many requests are waiting for it to wake")?;
        let size = length.unwrap_or(UNKNOWN_LENGTH);
        let before = self.bytes.fetch_add(size, Ordering::SeqCst);
        let place = Place { _permit: permit, bytes: self.bytes.clone(), size };
        if before.saturating_add(size) > self.hold.bytes {
            return Err("the requests waiting for it to wake carry too many bytes");
        }
        Ok(place)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_in_number_and_bytes_and_given_back() {
        let room = Room::new(Hold { timeout: Duration::from_secs(1), requests: 2, bytes: 100 });
        let a = room.take(Some(60)).expect("room");
        assert!(room.take(Some(60)).is_err(), "120 bytes is over 100");
        let b = room.take(Some(40)).expect("exactly 100");
        assert!(room.take(Some(0)).is_err(), "two requests at most");
        drop((a, b));
        assert!(room.take(None).is_err(), "an unknown length counts as 64 KiB");
        room.take(Some(100)).expect("all given back");
    }

    #[test]
    fn a_wake_is_asked_for_once() {
        let count = Arc::new(AtomicU64::new(0));
        let seen = count.clone();
        let asleep = Asleep::new(Arc::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(!asleep.asked());
        asleep.wake();
        asleep.wake();
        assert!(asleep.asked());
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
