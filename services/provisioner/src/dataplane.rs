//! The data plane's host (`paved-runtime`, see that crate): found beside the
//! Paved binaries, started when none answers on the data directory's
//! socket, and commanded on routing's behalf. The host holds the workloads'
//! proxies in a process of its own, so a provisioner that restarts or
//! crashes leaves their traffic alone; when the host itself is lost, a new
//! one is started and routing gives it every proxy back.

use paved_local::{Route, Traffic};
use paved_runtime::{
    client::{Client, Start, connect_or_start, take_over},
    pb,
};
use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};
use tonic::Status;

/// The host's binary.
const BINARY: &str = "paved-runtime";

pub(crate) struct Dataplane {
    start: Start,
    client: Mutex<Client>,
    /// Attached from the connection on, so that the host's grace period
    /// does not run out while this provisioner reconciles; unread, and
    /// dropped once `Routing::watch` attaches to read the events.
    early: Mutex<Option<tonic::Streaming<pb::HostEvent>>>,
}

/// A host of another build than `start.binary` hands its proxies to a new
/// one of this build (their sockets stay open: no connection is refused).
/// When that fails, the old host serves on, and is the one returned.
async fn upgraded(start: &Start, mut client: Client) -> Client {
    let ours = match paved_runtime::build_of(&start.binary) {
        Ok(build) => build,
        Err(e) => {
            tracing::warn!(binary = %start.binary.display(), error = %e, "cannot tell the data plane host's build");
            return client;
        }
    };
    let theirs = client.get_host(pb::GetHostRequest {}).await.map(|h| h.into_inner().build);
    match &theirs {
        Ok(build) if *build == ours => return client,
        // A build from before hand-overs: it cannot hand its sockets over.
        Err(e) if e.code() == tonic::Code::Unimplemented => {
            tracing::warn!(
                "the data plane host predates hand-overs: it serves on; stop it (SIGTERM to paved-runtime) to run the new build"
            );
            return client;
        }
        _ => {}
    }
    tracing::info!(running = ?theirs.ok(), ours, "the data plane host is another build: a new one takes its proxies over");
    match take_over(start).await {
        Ok(new) => new,
        Err(e) => {
            tracing::warn!(error = %e, "the data plane host could not be taken over: it serves on");
            client
        }
    }
}

impl Dataplane {
    /// Connects to the host of `data_dir`, starting one if none runs, and
    /// says what it serves already (empty when it was just started): the
    /// proxies this provisioner adopts.
    pub(crate) async fn connect(
        bin_dirs: &[PathBuf],
        data_dir: &Path,
        grace: Option<Duration>,
    ) -> anyhow::Result<(Self, Vec<pb::ProxyState>)> {
        let binary =
            bin_dirs.iter().map(|d| d.join(BINARY)).find(|p| p.is_file()).ok_or_else(|| {
                anyhow::anyhow!("{BINARY} not found in {bin_dirs:?}: build every binary (cargo build --workspace --bins)")
            })?;
        let start = Start {
            binary,
            socket: data_dir.join("runtime.sock"),
            grace,
            run_dir: Some(data_dir.join("run")),
            log: data_dir.join("logs").join("runtime.log"),
        };
        let (mut client, started) = connect_or_start(&start).await?;
        if !started {
            client = upgraded(&start, client).await;
        }
        let early = client.attach(pb::AttachRequest { name: format!("provisioner {} (starting)", std::process::id()) }).await?.into_inner();
        let proxies = client.list_proxies(pb::ListProxiesRequest {}).await?.into_inner().proxies;
        if started {
            tracing::info!(socket = %start.socket.display(), "data plane host started");
        } else {
            tracing::info!(socket = %start.socket.display(), proxies = proxies.len(), "data plane host running: adopting its proxies");
        }
        Ok((Self { start, client: Mutex::new(client), early: Mutex::new(Some(early)) }, proxies))
    }

    fn client(&self) -> Client {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connects again (starting a host if none runs): after the host was lost.
    pub(crate) async fn reconnect(&self) -> anyhow::Result<()> {
        let (client, started) = connect_or_start(&self.start).await?;
        tracing::warn!(started, "data plane host reconnected");
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
        Ok(())
    }

    /// Opens a workload's proxy on `port` (another when it is taken); where it listens.
    pub(crate) async fn open(&self, workload_id: &str, host: IpAddr, port: u16) -> Result<SocketAddr, Status> {
        let request = pb::OpenProxyRequest { workload_id: workload_id.to_string(), host: host.to_string(), port: u32::from(port) };
        let addr = self.client().open_proxy(request).await?.into_inner().addr;
        addr.parse().map_err(|_| paved_grpc::status::internal(&format!("the data plane host answered {addr:?}, not ip:port")))
    }

    pub(crate) async fn set_routes(&self, workload_id: &str, routes: &[Route]) -> Result<(), Status> {
        let routes = routes.iter().map(paved_runtime::route_to).collect();
        self.client().set_routes(pb::SetRoutesRequest { workload_id: workload_id.to_string(), routes }).await?;
        Ok(())
    }

    /// Puts a proxy to sleep; `keep_pending_wake`: one already asleep keeps a
    /// wake asked for meanwhile (said again after a restart).
    pub(crate) async fn sleep(&self, workload_id: &str, keep_pending_wake: bool) -> Result<(), Status> {
        self.client().sleep(pb::SleepRequest { workload_id: workload_id.to_string(), keep_pending_wake }).await?;
        Ok(())
    }

    pub(crate) async fn waking(&self, workload_id: &str) -> Result<(), Status> {
        self.client().waking(pb::WakingRequest { workload_id: workload_id.to_string() }).await?;
        Ok(())
    }

    /// Closes proxies and waits until their ports are released.
    pub(crate) async fn close(&self, workload_ids: Vec<String>) -> Result<(), Status> {
        self.client().close_proxies(pb::CloseProxiesRequest { workload_ids }).await?;
        Ok(())
    }

    /// Every proxy the host serves.
    pub(crate) async fn proxies(&self) -> Result<Vec<pb::ProxyState>, Status> {
        Ok(self.client().list_proxies(pb::ListProxiesRequest {}).await?.into_inner().proxies)
    }

    /// A proxy's routes, and each revision's traffic through it.
    pub(crate) async fn traffic(&self, workload_id: &str) -> Result<(Vec<Route>, Vec<(String, Traffic)>), Status> {
        let answer = self.client().get_traffic(pb::GetTrafficRequest { workload_id: workload_id.to_string() }).await?.into_inner();
        let routes = answer.routes.into_iter().map(paved_runtime::route_from).collect::<Result<_, _>>()?;
        Ok((routes, answer.revisions.into_iter().map(paved_runtime::traffic_from).collect()))
    }

    /// The proxies' Prometheus families (None when the host cannot be reached).
    pub(crate) async fn metrics(&self) -> Option<String> {
        Some(self.client().get_metrics(pb::GetMetricsRequest {}).await.ok()?.into_inner().text)
    }

    /// The host's events, for as long as this provisioner reads them.
    pub(crate) async fn attach(&self) -> Result<tonic::Streaming<pb::HostEvent>, Status> {
        let name = format!("provisioner {}", std::process::id());
        let events = self.client().attach(pb::AttachRequest { name }).await?.into_inner();
        self.early.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(events)
    }

    /// Stops the host: its proxies, the workloads recorded, and itself.
    pub(crate) async fn shutdown(&self) -> Result<(), Status> {
        self.client().shutdown(pb::ShutdownRequest {}).await?;
        Ok(())
    }
}
