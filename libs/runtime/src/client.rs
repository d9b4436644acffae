//! Reaching a host: connecting to its socket, starting one when none
//! answers there, or starting one that takes over from the host there.

use crate::pb::{self, runtime_service_client::RuntimeServiceClient};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use tonic::transport::{Channel, Endpoint};

pub type Client = RuntimeServiceClient<Channel>;

/// How long a host that was just started gets to answer: a take-over
/// waits for the old host's sockets, bounded by the hand-over's timeouts.
const START_TIMEOUT: Duration = Duration::from_secs(40);

/// How to start a host.
#[derive(Debug, Clone)]
pub struct Start {
    /// The `paved-runtime` binary.
    pub binary: PathBuf,
    /// Its socket.
    pub socket: PathBuf,
    /// How long it serves with no control plane attached before it stops
    /// its workloads and itself; `None`: it never does.
    pub grace: Option<Duration>,
    /// Where the local runtime records the workload processes (stopped
    /// with the host).
    pub run_dir: Option<PathBuf>,
    /// Its log (appended to).
    pub log: PathBuf,
}

/// Connects to the host listening on `socket`.
pub async fn connect(socket: &Path) -> Result<Client, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("unix://{}", socket.display()))?.connect().await?;
    Ok(RuntimeServiceClient::new(channel))
}

/// Connects to the host on `start.socket`, or starts one there (detached:
/// its own process group, so that it outlives its starter) and connects.
/// Whether it was started is the second value.
pub async fn connect_or_start(start: &Start) -> anyhow::Result<(Client, bool)> {
    if let Ok(client) = connect(&start.socket).await {
        return Ok((client, false));
    }
    let child = spawn(start, false)?;
    Ok((answered(start, child).await?, true))
}

/// Starts a host of `start.binary` that takes the proxies of the one on
/// `start.socket` over (see `handover`), and connects to it once it serves
/// there. When it fails, the host that ran goes on serving.
pub async fn take_over(start: &Start) -> anyhow::Result<Client> {
    let child = spawn(start, true)?;
    answered(start, child).await
}

fn spawn(start: &Start, take_over: bool) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&start.log)?;
    let mut command = tokio::process::Command::new(&start.binary);
    command.arg("--socket").arg(&start.socket);
    if let Some(grace) = start.grace {
        command.arg("--grace").arg(format!("{}ms", grace.as_millis()));
    }
    if let Some(run_dir) = &start.run_dir {
        command.arg("--run-dir").arg(run_dir);
    }
    if take_over {
        command.arg("--take-over");
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Not in its starter's group: a Ctrl-C at the starter's terminal
        // goes to the starter, which decides what becomes of the host.
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", start.binary.display()))
}

/// Waits until `child` answers on the socket (not another host there).
async fn answered(start: &Start, mut child: tokio::process::Child) -> anyhow::Result<Client> {
    let pid = child.id();
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(mut client) = connect(&start.socket).await {
            let serving = client.get_host(pb::GetHostRequest {}).await.map(|h| Some(h.into_inner().pid));
            if serving.is_ok_and(|p| p == pid) {
                // Reaped when it exits, while its starter lives.
                tokio::spawn(async move { child.wait().await });
                return Ok(client);
            }
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{} exited ({status}) before it answered; see {}", start.binary.display(), start.log.display());
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill().await;
            anyhow::bail!("{} did not answer on {} within {START_TIMEOUT:?}", start.binary.display(), start.socket.display());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
