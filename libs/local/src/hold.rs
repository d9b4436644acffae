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

    use crate::{Proxy, Route};
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    use std::net::SocketAddr;
    use tokio_util::sync::CancellationToken;

    /// A backend answering `woke` to everything, on a port of its own.
    async fn backend() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from("woke"))))
                });
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service));
            }
        });
        addr
    }

    async fn proxy(hold: Hold, shutdown: &CancellationToken) -> Arc<Proxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Arc::new(Proxy::start_with("dev/w".into(), listener, hold, shutdown).expect("proxy"))
    }

    /// (status, Retry-After, body) of a GET through the proxy.
    async fn get(proxy: SocketAddr) -> (u16, Option<String>, String) {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let response = client.get(format!("http://{proxy}/").parse().expect("uri")).await.expect("an answer");
        let retry = response.headers().get(http::header::RETRY_AFTER).map(|v| v.to_str().unwrap_or_default().to_string());
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, retry, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn held_requests_are_served_once_the_workload_woke_and_the_wake_is_asked_once() {
        let shutdown = CancellationToken::new();
        let proxy = proxy(Hold::default(), &shutdown).await;
        let wakes = Arc::new(AtomicU64::new(0));
        let (woken, seen) = (proxy.clone(), wakes.clone());
        proxy.sleep(Arc::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            let proxy = woken.clone();
            tokio::spawn(async move {
                // As a process takes a moment to start.
                tokio::time::sleep(Duration::from_millis(200)).await;
                proxy.set_routes(vec![Route { revision: "r1".into(), weight: 100, addrs: vec![backend().await] }]);
            });
        }));
        assert!(proxy.is_asleep());
        let answers = futures::future::join_all((0..5).map(|_| get(proxy.addr))).await;
        for answer in answers {
            assert_eq!(answer, (200, None, "woke".to_string()));
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "five held requests, one wake");
        assert!(!proxy.is_asleep(), "awake once routed");
        assert!(proxy.last_request_ms().is_some());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_workload_that_does_not_wake_in_time_or_too_many_waiting_get_503_with_retry_after() {
        let shutdown = CancellationToken::new();
        let proxy = proxy(Hold { timeout: Duration::from_millis(300), requests: 1, bytes: 1 << 20 }, &shutdown).await;
        proxy.sleep(Arc::new(|| {}));
        let started = std::time::Instant::now();
        let (first, second) = tokio::join!(get(proxy.addr), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            get(proxy.addr).await
        });
        assert_eq!((second.0, second.1.as_deref()), (503, Some("1")), "no room for a second: {}", second.2);
        assert!(second.2.contains("too many requests are waiting"), "{}", second.2);
        assert_eq!((first.0, first.1.as_deref()), (503, Some("1")), "{}", first.2);
        assert!(first.2.contains("did not wake within 300ms"), "{}", first.2);
        assert!(started.elapsed() < Duration::from_secs(2));
        // Awake and without an instance: 503 at once, as before sleeping.
        let proxy = self::proxy(Hold::default(), &shutdown).await;
        let (status, retry, body) = get(proxy.addr).await;
        assert_eq!((status, retry), (503, None), "{body}");
        shutdown.cancel();
    }
}
