//! A host hands its proxies to a new build of itself without closing their
//! listening sockets, so that upgrading the data plane refuses no
//! connection: connections wait in the sockets' backlogs for whichever host
//! accepts first, and the old host drains the ones it holds.
//!
//! The new host (`paved-runtime --take-over`) listens on a SEQPACKET socket
//! beside the control socket and calls the old one's `HandOver`. The old
//! host sends each proxy's state, counts and listening socket (`fds`), then
//! `HandOverDone`. The new host opens the proxies, takes the control socket
//! over and answers `HandOverDone`: only then does the old host let go
//! (`Host::released`). Whatever fails before that, the old host serves on.

use crate::{
    client, convert, fds,
    host::Host,
    pb::{self, hand_over_message::Message},
};
use paved_grpc::status;
use paved_local::Proxy;
use prost::Message as _;
use std::{
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::Arc,
};
use tonic::Status;

impl Host {
    /// The old host's side of `HandOver`: sends every proxy to the receiver
    /// and waits for it to serve; how many proxies were handed.
    pub(crate) async fn hand_over_to(self: &Arc<Self>, receiver: PathBuf) -> Result<u32, Status> {
        if self.handing_over.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(status::unavailable("HANDING_OVER", "a hand-over is in progress".to_string()));
        }
        let _attached = self.attached_guard();
        let socket = self.socket.clone();
        let ours = socket.as_deref().and_then(inode);
        let sent = self.send_proxies(receiver).await;
        match &sent {
            Ok(n) => {
                tracing::info!(proxies = n, "handed over to a new host: draining");
                self.released.cancel();
            }
            // The successor binds the control socket before it answers: if
            // it did, it serves the proxies, whatever became of the answer,
            // and two hosts must not both think they do.
            Err(e) if ours.is_some() && socket.as_deref().and_then(inode) != ours => {
                tracing::warn!(error = %e, "hand-over unconfirmed, but a new host took the control socket over: draining");
                self.released.cancel();
            }
            Err(e) => {
                tracing::warn!(error = %e, "hand-over failed: serving on");
                self.handing_over.store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
        sent
    }

    async fn send_proxies(&self, receiver: PathBuf) -> Result<u32, Status> {
        let handed: Vec<(Vec<u8>, OwnedFd)> = {
            let proxies = self.proxies();
            let mut ids: Vec<&String> = proxies.keys().collect();
            ids.sort();
            ids.into_iter()
                .map(|id| {
                    let proxy = &proxies[id];
                    let message = pb::HandOverMessage { message: Some(Message::Proxy(handed(id, proxy))) };
                    proxy.listener_fd().map(|fd| (message.encode_to_vec(), fd))
                })
                .collect::<std::io::Result<_>>()
                .map_err(|e| status::unavailable("HAND_OVER_FAILED", format!("cannot copy a listening socket: {e}")))?
        };
        let count = u32::try_from(handed.len()).unwrap_or(u32::MAX);
        let sent = tokio::task::spawn_blocking(move || -> std::io::Result<u32> {
            let channel = fds::connect(&receiver)?;
            for (bytes, fd) in &handed {
                channel.send(bytes, Some(fd))?;
            }
            channel.send(&done(count), None)?;
            match channel.receive()? {
                Some((bytes, None)) if bytes == done(count) => Ok(count),
                Some(_) => Err(std::io::Error::other("the new host answered something else than that it serves")),
                None => Err(std::io::Error::other("the new host closed the hand-over before it served")),
            }
        });
        sent.await
            .map_err(std::io::Error::other)
            .and_then(|sent| sent)
            .map_err(|e| status::unavailable("HAND_OVER_FAILED", format!("hand-over: {e}")))
    }

    /// The new host's side: opens a handed proxy on its listening socket,
    /// as it was (routes, sleep, counts).
    fn adopt(self: &Arc<Self>, proxy: pb::HandedProxy, fd: OwnedFd) -> anyhow::Result<()> {
        let state = proxy.state.ok_or_else(|| anyhow::anyhow!("a handed proxy without its state"))?;
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        let opened = Proxy::start(state.workload_id.clone(), tokio::net::TcpListener::from_std(listener)?, &self.stopping())?;
        let routes = state.routes.into_iter().map(convert::route_from).collect::<Result<Vec<_>, _>>()?;
        opened.set_routes(routes);
        if state.asleep {
            opened.sleep(self.wake_fn(&state.workload_id));
            if state.wake_asked {
                opened.waking();
            }
        }
        let traffic: Vec<_> = proxy.traffic.into_iter().map(convert::traffic_from).collect();
        opened.restore_counts(&traffic, Some(state.last_request_ms).filter(|ms| *ms > 0));
        tracing::info!(workload = %state.workload_id, addr = %opened.addr, "proxy taken over");
        self.insert(state.workload_id, opened);
        Ok(())
    }
}

/// The inode of the file at `path`: who binds the control socket there.
fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// What is handed of a proxy: its state, and the counts of its routed
/// revisions (the rollout gate's) and of the requests none took.
fn handed(workload_id: &str, proxy: &Proxy) -> pb::HandedProxy {
    let state = convert::state_of(workload_id, proxy);
    let counted = |revision: &str| revision == "none" || state.routes.iter().any(|r| r.revision == revision);
    let traffic = proxy.traffic_all().into_iter().filter(|(r, _)| counted(r)).map(|(r, t)| convert::traffic_to(r, t)).collect();
    pb::HandedProxy { state: Some(state), traffic }
}

fn done(proxies: u32) -> Vec<u8> {
    pb::HandOverMessage { message: Some(Message::Done(pb::HandOverDone { proxies })) }.encode_to_vec()
}

/// A hand-over received, until the new host says it serves.
pub struct TakeOver {
    channel: fds::Channel,
    proxies: u32,
    call: tokio::task::JoinHandle<Result<tonic::Response<pb::HandOverResponse>, Status>>,
}

/// Takes the proxies of the host serving `socket` into `host`; `None` when
/// no host answers there. The old host lets go after [`TakeOver::serving`].
pub async fn take_over(host: &Arc<Host>, socket: &Path) -> anyhow::Result<Option<TakeOver>> {
    let Ok(mut old) = client::connect(socket).await else {
        return Ok(None);
    };
    let path = socket.with_extension(format!("{}.handover", std::process::id()));
    let listener = Arc::new(fds::listen(&path)?);
    let receiver = path.display().to_string();
    let mut call = tokio::spawn(async move { old.hand_over(pb::HandOverRequest { receiver }).await });
    let mut receiving = tokio::task::spawn_blocking({
        let listener = listener.clone();
        move || receive(&listener)
    });
    let received = tokio::select! {
        received = &mut receiving => received,
        // The old host answers only after the new one serves: an answer
        // now is a refusal (another hand-over, or a build without it).
        answer = &mut call => {
            let _ = std::fs::remove_file(&path);
            // Wakes the blocked accept, so that this process can exit.
            let _ = rustix::net::shutdown(&*listener, rustix::net::Shutdown::Both);
            return Err(match answer {
                Ok(Err(status)) => anyhow::anyhow!("the host on {} refused the hand-over: {}", socket.display(), status.message()),
                _ => anyhow::anyhow!("the host on {} answered before it handed over", socket.display()),
            });
        }
    };
    let _ = std::fs::remove_file(&path);
    let (channel, proxies) = received??;
    let count = u32::try_from(proxies.len()).unwrap_or(u32::MAX);
    for (proxy, fd) in proxies {
        host.adopt(proxy, fd)?;
    }
    Ok(Some(TakeOver { channel, proxies: count, call }))
}

type Received = (fds::Channel, Vec<(pb::HandedProxy, OwnedFd)>);

fn receive(listener: &OwnedFd) -> anyhow::Result<Received> {
    let channel = fds::accept(listener)?;
    let mut proxies = Vec::new();
    loop {
        let Some((bytes, fd)) = channel.receive()? else {
            anyhow::bail!("the old host closed the hand-over after {} proxies", proxies.len());
        };
        match (pb::HandOverMessage::decode(bytes.as_slice())?.message, fd) {
            (Some(Message::Proxy(proxy)), Some(fd)) => proxies.push((proxy, fd)),
            (Some(Message::Done(done)), None) if done.proxies as usize == proxies.len() => return Ok((channel, proxies)),
            (Some(Message::Done(done)), None) => anyhow::bail!("the old host sent {} proxies and said {}", proxies.len(), done.proxies),
            _ => anyhow::bail!("a hand-over message without its listening socket, or one the old host should not send"),
        }
    }
}

impl TakeOver {
    /// This host serves (its proxies accept, its control socket is bound):
    /// the old host may let go. How many proxies were taken over.
    pub async fn serving(self) -> anyhow::Result<u32> {
        let Self { channel, proxies, call } = self;
        tokio::task::spawn_blocking(move || channel.send(&done(proxies), None)).await??;
        call.await?.map_err(|s| anyhow::anyhow!("the old host did not let go: {}", s.message()))?;
        Ok(proxies)
    }
}
