//! In-memory maps behind a `std` mutex, locked past a panic: they hold
//! handles and addresses (proxies, backends, drivers, change channels), never
//! a half-written record, so a holder that panicked leaves nothing the next
//! one cannot use.

use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
