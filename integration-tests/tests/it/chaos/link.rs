//! A network link the chaos run can cut: a TCP forwarder on loopback in
//! front of one service, PostgreSQL or Redis, which everything else dials
//! instead of the server itself.
//!
//! A cut is a partition, not a reset (the tests' `Cuttable` is the reset:
//! connections dropped, nothing listening): connections stay open and nothing
//! crosses them (bytes read are held back, new connections are accepted
//! but not forwarded) until the link is restored, as when a switch or a
//! firewall drops packets and TCP retransmits. That is the harder fault
//! for a client: nothing tells it the peer is gone but its own timeouts.

use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
    sync::watch,
    task::JoinHandle,
};

pub(crate) struct Link {
    /// Where the link listens: what others dial.
    pub(crate) port: u16,
    cut: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Link {
    /// A link to `upstream` (a loopback port) on a free port.
    pub(crate) fn open(upstream: u16) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let listener = TcpListener::from_std(listener).expect("a listener");
        let (cut, open) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream, open.clone()));
            }
        });
        Self { port, cut, accept }
    }

    /// Cuts the link (true) or restores it (false).
    pub(crate) fn cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Waits while the link is cut.
async fn passable(cut: &mut watch::Receiver<bool>) {
    // The sender lives as long as the link; once it is gone nothing waits.
    let _ = cut.wait_for(|cut| !cut).await;
}

async fn forward(client: TcpStream, upstream: u16, mut cut: watch::Receiver<bool>) {
    passable(&mut cut).await;
    let Ok(Ok(server)) = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(("127.0.0.1", upstream))).await else {
        return; // the server is down: the client sees its connection closed
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(pipe(client_read, server_write, cut.clone()), pipe(server_read, client_write, cut));
}

/// Copies one direction, holding each chunk back while the link is cut.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        passable(&mut cut).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Not even the close crosses a cut link.
    passable(&mut cut).await;
    let _ = to.shutdown().await;
}
