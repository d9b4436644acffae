//! Requests that fail on their way to an instance: sent again to another
//! where that is safe, once where it is not.

use super::{
    Route,
    wake_tests::{backend, proxy},
};
use crate::hold::Hold;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// A port bound but not listening: connections to it are refused, and no
/// other test can take it while the socket lives.
fn refusing() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    let addr = socket.local_addr().expect("addr");
    (socket, addr)
}

/// An instance that reads a request and closes the connection without an
/// answer (as one does that stops mid-request); counts what it read.
async fn closing(read: Arc<AtomicUsize>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            if stream.read(&mut buf).await.is_ok_and(|n| n > 0) {
                read.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    addr
}

/// The status of `method /` through the proxy, with `body`.
async fn send(proxy: SocketAddr, method: http::Method, body: &'static str) -> u16 {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request =
        http::Request::builder().method(method).uri(format!("http://{proxy}/")).body(Full::new(Bytes::from(body))).expect("request");
    let response = client.request(request).await.expect("an answer");
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

fn one_revision(addrs: Vec<SocketAddr>) -> Vec<Route> {
    vec![Route { revision: "r1".into(), weight: 100, addrs }]
}

#[tokio::test]
async fn a_request_refused_by_an_instance_is_sent_to_another() {
    let shutdown = CancellationToken::new();
    let proxy = proxy(Hold::default(), &shutdown).await;
    let (_refusing, refused) = refusing();
    proxy.set_routes(vec![
        Route { revision: "r1".into(), weight: 50, addrs: vec![refused] },
        Route { revision: "r2".into(), weight: 50, addrs: vec![backend().await] },
    ]);
    for method in [http::Method::GET, http::Method::POST] {
        for _ in 0..20 {
            // No connection was made: safe to send again, whatever the method.
            assert_eq!(send(proxy.addr, method.clone(), "").await, 200, "{method}");
        }
    }
    // Every attempt is counted against the revision that made it: the one
    // that refused them shows only failures, the other every answer.
    let (r1, r2) = (proxy.traffic("r1"), proxy.traffic("r2"));
    assert_eq!((r2.total(), r2.errors()), (40, 0));
    assert!(r1.total() > 0 && r1.errors() == r1.total(), "{} attempts, {} failed", r1.total(), r1.errors());
    shutdown.cancel();
}

#[tokio::test]
async fn an_idempotent_request_cut_off_by_an_instance_is_sent_again_and_a_post_is_not() {
    let shutdown = CancellationToken::new();
    let proxy = proxy(Hold::default(), &shutdown).await;
    let read = Arc::new(AtomicUsize::new(0));
    let closer = closing(read.clone()).await;
    proxy.set_routes(one_revision(vec![closer, backend().await]));
    for _ in 0..10 {
        assert_eq!(send(proxy.addr, http::Method::GET, "").await, 200);
    }
    assert!(read.load(Ordering::SeqCst) > 0, "some went to the closing instance first");

    // A POST may have been acted on: it is not sent again, even without a body.
    proxy.set_routes(one_revision(vec![closer]));
    let before = read.load(Ordering::SeqCst);
    assert_eq!(send(proxy.addr, http::Method::POST, "").await, 502);
    assert_eq!(read.load(Ordering::SeqCst) - before, 1, "sent once");
    // Nor is one with a body, whatever its method: the body is not kept.
    let before = read.load(Ordering::SeqCst);
    assert_eq!(send(proxy.addr, http::Method::PUT, "payload").await, 502);
    assert_eq!(read.load(Ordering::SeqCst) - before, 1, "sent once");
    // An idempotent one is, a bounded number of times.
    let before = read.load(Ordering::SeqCst);
    assert_eq!(send(proxy.addr, http::Method::GET, "").await, 502);
    assert_eq!(read.load(Ordering::SeqCst) - before, 1 + super::RETRIES);
    shutdown.cancel();
}
