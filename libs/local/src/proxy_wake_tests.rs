//! The proxy of a sleeping workload, end to end: requests held and served
//! once it woke, one wake asked; bounds and timeouts answered with 503 and
//! `Retry-After`. And a proxy handed over: its connections drained.

use super::{Proxy, Route};
use crate::hold::Hold;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::net::SocketAddr;
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// A backend answering `woke` to everything, on a port of its own.
pub(super) async fn backend() -> SocketAddr {
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

pub(super) async fn proxy(hold: Hold, shutdown: &CancellationToken) -> Arc<Proxy> {
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

/// One GET on a kept-alive HTTP/1 connection: the answer's head, lowercased.
async fn keep_alive_get(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET / HTTP/1.1\r\nhost: w\r\n\r\n").await.expect("write");
    let mut answer = Vec::new();
    while !answer.ends_with(b"woke") {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).to_lowercase()
}

#[tokio::test]
async fn a_drained_proxy_closes_its_connections_after_an_answer_while_its_successor_accepts() {
    use tokio::io::AsyncReadExt;
    let shutdown = CancellationToken::new();
    let backend = backend().await;
    let route = vec![Route { revision: "r1".into(), weight: 1, addrs: vec![backend] }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let old = Proxy::start("dev/w".into(), listener, &shutdown).expect("proxy");
    old.set_routes(route.clone());
    let mut kept = tokio::net::TcpStream::connect(old.addr).await.expect("connect");
    assert!(!keep_alive_get(&mut kept).await.contains("connection: close"), "kept alive while it serves");

    // Its successor serves the same listening socket.
    let copy = std::net::TcpListener::from(old.listener_fd().expect("a copy"));
    copy.set_nonblocking(true).expect("nonblocking");
    let new = Proxy::start("dev/w".into(), tokio::net::TcpListener::from_std(copy).expect("listener"), &shutdown).expect("proxy");
    new.set_routes(route);
    new.restore_counts(&[("r1".to_string(), old.traffic("r1"))], old.last_request_ms());
    assert_eq!(new.traffic("r1").total(), 1, "counts carried over");
    let addr = old.addr;
    let drained = tokio::spawn(old.drain());
    let head = keep_alive_get(&mut kept).await;
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(kept.read(&mut [0u8; 16]).await.expect("read"), 0, "closed after the answer");
    tokio::time::timeout(Duration::from_secs(1), drained).await.expect("drained once its connection closed").expect("join");
    let mut fresh = tokio::net::TcpStream::connect(addr).await.expect("the socket still listens");
    assert!(!keep_alive_get(&mut fresh).await.contains("connection: close"), "served by the successor");
    assert_eq!(new.traffic("r1").total(), 2);
}

#[tokio::test]
async fn a_request_held_by_a_proxy_that_is_handed_over_is_answered_503_and_asks_again() {
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy = Proxy::start("dev/w".into(), listener, &shutdown).expect("proxy");
    proxy.sleep(Arc::new(|| {}));
    let addr = proxy.addr;
    let held = tokio::spawn(get(addr));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!held.is_finished(), "held while the workload wakes");
    let started = std::time::Instant::now();
    let drained = tokio::spawn(proxy.drain());
    let (status, retry, body) = held.await.expect("join");
    assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
    assert!(body.contains("waking up on another data plane host"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(1), "answered at once, not at the hold timeout");
    tokio::time::timeout(Duration::from_secs(5), drained).await.expect("drained").expect("join");
}
