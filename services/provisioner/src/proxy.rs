//! The per-workload proxy: a stable address in front of a workload's healthy
//! instances. HTTP/1.1 and HTTP/2 (so gRPC workloads work too), round robin
//! over the backends the runtime reported healthy.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use std::{
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Body = BoxBody<Bytes, hyper::Error>;

pub struct Proxy {
    pub addr: SocketAddr,
    backends: Arc<Backends>,
    stop: CancellationToken,
    accepting: tokio::task::JoinHandle<()>,
}

struct Backends {
    name: String,
    addrs: RwLock<Vec<SocketAddr>>,
    next: AtomicUsize,
    http1: Client<HttpConnector, Incoming>,
    http2: Client<HttpConnector, Incoming>,
}

impl Backends {
    fn pick(&self) -> Option<SocketAddr> {
        let addrs = self.addrs.read().unwrap_or_else(|p| p.into_inner());
        if addrs.is_empty() {
            return None;
        }
        Some(addrs[self.next.fetch_add(1, Ordering::Relaxed) % addrs.len()])
    }
}

impl Proxy {
    /// Serves on `listener` until `shutdown` or [`Proxy::close`].
    pub fn start(name: String, listener: TcpListener, shutdown: &CancellationToken) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let backends = Arc::new(Backends {
            name,
            addrs: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            http1: Client::builder(TokioExecutor::new()).build_http(),
            http2: Client::builder(TokioExecutor::new()).http2_only(true).build_http(),
        });
        let stop = shutdown.child_token();
        let accepting = tokio::spawn(accept(listener, backends.clone(), stop.clone()));
        Ok(Self { addr, backends, stop, accepting })
    }

    pub fn set_backends(&self, addrs: Vec<SocketAddr>) {
        *self.backends.addrs.write().unwrap_or_else(|p| p.into_inner()) = addrs;
    }

    /// Stops accepting; connections in flight get a grace period.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Closes and waits until the port is released.
    pub async fn shut(self) {
        self.stop.cancel();
        let _ = self.accepting.await;
    }
}

async fn accept(listener: TcpListener, backends: Arc<Backends>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(workload = %backends.name, error = %e, "proxy accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let backends = backends.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(backends.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            // Let requests in flight finish, within bounds.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), conn).await;
        });
    }
}

async fn forward(backends: Arc<Backends>, mut req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    let Some(backend) = backends.pick() else {
        return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, format!("no healthy instance of {}\n", backends.name)));
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = match format!("http://{backend}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "bad request URI\n".into())),
    };
    *req.uri_mut() = uri;
    let client = if req.version() == http::Version::HTTP_2 { &backends.http2 } else { &backends.http1 };
    match client.request(req).await {
        Ok(response) => Ok(response.map(|b| b.boxed())),
        Err(e) => {
            tracing::warn!(workload = %backends.name, %backend, error = %e, "proxy upstream failed");
            Ok(plain(StatusCode::BAD_GATEWAY, format!("upstream {backend} failed\n")))
        }
    }
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}
