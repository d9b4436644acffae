//! Benchmarks of the deployment pipeline (issue #3), each against a baseline
//! measured in the same run:
//!
//! - `deploy`: plan + apply of 1,000 workloads in the embedded mode (target
//!   < 5 s), against re-applying the same 1,000 once their rollouts are
//!   done (nothing changes); how long until every rollout is promoted is
//!   reported.
//! - `rollback`: all traffic on the known-good revision, p99 over 20
//!   rollbacks (target < 1 s), against 20 requests through the proxy.
//! - `proxy`: the same load generator against `hello` directly and through
//!   its proxy (targets: added p99 < 1 ms, throughput ≥ 70%), for a workload
//!   that does no work (reported) and one with 1 ms of work (judged).
//! - `policy`: the default bundle's decision per deploy (target < 1 ms),
//!   against serialising its input.

use crate::measure::{free_port, ms};
use anyhow::{Context, bail};
use paved_grpc::client::AuthChannel as Channel;
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRolloutRequest, GetWorkloadRequest, ListWorkloadsRequest, PlanWorkloadRequest, RollbackWorkloadRequest,
    RolloutState, provisioner_service_client::ProvisionerServiceClient,
};
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `paved up` in a temporary data directory, stopped on drop.
pub struct Platform {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
    /// The root token it printed.
    pub token: String,
}

impl Platform {
    pub fn start(bin: &Path, name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("paved-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port()?;
        let mut child = Command::new(bin.join("paved"))
            .args(["up", "--no-example", "--data-dir"])
            .arg(&dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "error")
            .env("PAVED_CONFIG_DIR", dir.join("cli"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("start paved up")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        if !lines.by_ref().any(|l| l.is_ok_and(|l| l.starts_with("Paved is up"))) {
            bail!("paved up exited before it was up");
        }
        // The root token is printed once, on a line of its own.
        let token = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.trim().starts_with("pvt1.").then(|| l.trim().to_string()))
            .context("paved up printed no root token")?;
        std::thread::spawn(move || lines.count());
        Ok(Self { child, dir, endpoint: format!("http://127.0.0.1:{port}"), token })
    }

    /// A channel presenting the root token.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        channel_to(&self.endpoint, &self.token).await
    }

    pub(crate) async fn client(&self) -> anyhow::Result<ProvisionerServiceClient<Channel>> {
        Ok(ProvisionerServiceClient::new(self.channel().await?).max_decoding_message_size(64 << 20))
    }
}

/// A new connection to `endpoint`, presenting `token`.
pub async fn channel_to(endpoint: &str, token: &str) -> anyhow::Result<Channel> {
    let channel = tonic::transport::Channel::from_shared(endpoint.to_string())?.connect().await?;
    Ok(paved_grpc::client::Bearer::new(token)?.on(channel))
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

pub fn deploy(bin: &Path) -> anyhow::Result<()> {
    const N: usize = 1000;
    let platform = Platform::start(bin, "deploy")?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let client = platform.client().await?;
        // A workload that needs no port of its own: a long sleep, checked
        // only by the runtime's process supervision... is not possible (every
        // workload has an HTTP health check), so each runs `hello`.
        let spec = |i: usize| format!("name: w{i}\ncommand: [\"hello\"]\nenv:\n  HELLO_VERSION: v{i}\n");
        let run = |reapply: bool| {
            let client = client.clone();
            async move {
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for chunk in (0..N).collect::<Vec<_>>().chunks(N / 8) {
                    let (mut client, chunk) = (client.clone(), chunk.to_vec());
                    tasks.spawn(async move {
                        let mut changed = 0;
                        for i in chunk {
                            let (environment, spec_yaml) = ("bench".to_string(), spec(i));
                            let plan = PlanWorkloadRequest {
                                environment: environment.clone(),
                                spec_yaml: spec_yaml.clone(),
                                spec_path: String::new(),
                                spec: None,
                            };
                            client.plan_workload(plan).await?;
                            let apply = ApplyWorkloadRequest {
                                environment,
                                spec_yaml,
                                spec_path: String::new(),
                                request_id: String::new(),
                                spec: None,
                            };
                            changed += usize::from(client.apply_workload(apply).await?.into_inner().changed);
                        }
                        Ok::<usize, tonic::Status>(changed)
                    });
                }
                let mut changed = 0;
                while let Some(r) = tasks.join_next().await {
                    changed += r??;
                }
                if changed != if reapply { 0 } else { N } {
                    bail!("{changed} of {N} applies changed something (reapply: {reapply})");
                }
                Ok::<Duration, anyhow::Error>(start.elapsed())
            }
        };
        let first = run(false).await?;
        // The rollouts go on after their applies returned; the baseline is
        // measured once they are done, on a platform at rest.
        let settled = promoted(client.clone(), N).await? + first;
        let again = run(true).await?;
        println!("bench deploy: plan + apply of {N} new workloads (embedded, 8 clients)");
        println!("  {:.0} ms, {:.2} ms per workload (target < 5000 ms)", ms(first), ms(first) / N as f64);
        println!(
            "  every rollout promoted (each workload's process started and healthy) {:.1} s after the first apply",
            settled.as_secs_f64()
        );
        println!("  baseline: the same {N} re-applied (nothing changes): {:.0} ms; ratio {:.1}×", ms(again), ms(first) / ms(again));
        if first >= Duration::from_secs(5) {
            bail!("plan + apply of {N} workloads took {first:?}, over the 5 s target");
        }
        Ok(())
    })
}

/// Waits until all `n` workloads of environment `bench` run their first
/// revision as the stable one; how long that took.
async fn promoted(mut client: ProvisionerServiceClient<Channel>, n: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let (mut done, mut token) = (0, String::new());
        loop {
            let page = ListWorkloadsRequest { environment: "bench".into(), page_size: 1000, page_token: token };
            let page = client.list_workloads(page).await?.into_inner();
            done += page.workloads.iter().filter(|w| !w.stable_revision.is_empty() && w.stable_revision == w.current_revision).count();
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if done == n {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("only {done} of {n} rollouts promoted after 5 minutes");
        }
        // Each poll reads every workload: not so often that it slows them.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// GETs `/` on `addr` over a fresh connection; the body.
pub(crate) async fn get(addr: &str) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string()))
}

/// Deploys `hello` as workload `name` (with `env`, YAML lines) and waits
/// until its rollout is promoted; its proxy's address.
pub(crate) async fn deploy_version(
    client: &mut ProvisionerServiceClient<Channel>,
    name: &str,
    version: &str,
    env: &str,
) -> anyhow::Result<String> {
    let spec = format!(
        "name: {name}\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [100]\n  interval: 200ms\nenv:\n  HELLO_VERSION: {version}\n{env}"
    );
    let request = ApplyWorkloadRequest {
        environment: "bench".into(),
        spec_yaml: spec,
        spec_path: String::new(),
        request_id: String::new(),
        spec: None,
    };
    let rollout = client.apply_workload(request).await?.into_inner().rollout.context("a rollout")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.get_rollout(GetRolloutRequest { id: rollout.id.clone() }).await?.into_inner().rollout.context("rollout")?;
        if r.state == RolloutState::Promoted as i32 {
            let w = client.get_workload(GetWorkloadRequest { environment: "bench".into(), name: name.into() }).await?.into_inner();
            return Ok(w.workload.context("workload")?.endpoint);
        }
        if r.state != RolloutState::Running as i32 || Instant::now() > deadline {
            bail!("rollout of {version} ended {}: {}", r.state, r.message);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn rollback(bin: &Path) -> anyhow::Result<()> {
    const N: usize = 20;
    const CONFIRM: usize = 20;
    let platform = Platform::start(bin, "rollback")?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut client = platform.client().await?;
        deploy_version(&mut client, "web", "v1", "").await?;
        let endpoint = deploy_version(&mut client, "web", "v2", "").await?;
        let mut switch = Vec::new();
        let mut floor = Vec::new();
        let mut on = "v2";
        for _ in 0..N {
            let target = if on == "v2" { "v1" } else { "v2" };
            let start = Instant::now();
            client.rollback_workload(RollbackWorkloadRequest { environment: "bench".into(), workload: "web".into() }).await?;
            // Done when CONFIRM requests in a row are answered by the target.
            let mut streak = 0;
            while streak < CONFIRM {
                if start.elapsed() > Duration::from_secs(10) {
                    bail!("traffic did not move to {target} within 10 s");
                }
                streak = if get(&endpoint).await?.contains(&format!("hello from {target}")) { streak + 1 } else { 0 };
            }
            switch.push(start.elapsed());
            let start = Instant::now();
            for _ in 0..CONFIRM {
                get(&endpoint).await?;
            }
            floor.push(start.elapsed());
            on = target;
        }
        let p99 = percentile(&mut switch, 0.99);
        let p50 = percentile(&mut switch, 0.5);
        let floor = percentile(&mut floor, 0.5);
        println!("bench rollback: {N} rollbacks, each until {CONFIRM} requests in a row reach the known-good revision");
        println!("  p50 {:.1} ms, p99 {:.1} ms (target p99 < 1000 ms)", ms(p50), ms(p99));
        println!("  baseline: {CONFIRM} requests alone: median {:.1} ms; p99 / baseline {:.1}×", ms(floor), ms(p99) / ms(floor));
        if p99 >= Duration::from_secs(1) {
            bail!("rollback p99 {p99:?} is over the 1 s target");
        }
        Ok(())
    })
}

/// Requests over `connections` keep-alive connections for `duration`:
/// (requests per second, p50, p99).
async fn load(addr: String, connections: usize, duration: Duration) -> anyhow::Result<(f64, Duration, Duration)> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let addr = addr.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut s = tokio::net::TcpStream::connect(&addr).await?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; 4096];
            while start.elapsed() < duration {
                let t = Instant::now();
                s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
                read_response(&mut s, &mut buf).await?;
                latencies.push(t.elapsed());
            }
            Ok::<Vec<Duration>, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    let rps = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rps, percentile(&mut all, 0.5), percentile(&mut all, 0.99)))
}

/// Reads one HTTP/1.1 response with a content-length body.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut have = 0;
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
        have += n;
        let text = String::from_utf8_lossy(&buf[..have]);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
                .context("no content-length")??;
            if have >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

/// The address `hello` itself listens on as workload `name`: the port the
/// runtime gave it, from its process's environment.
fn workload_addr(platform: &Platform, name: &str) -> anyhow::Result<String> {
    for entry in std::fs::read_dir(platform.dir.join("provisioner/run"))?.flatten() {
        // A record holds `<pgid> <port>` (see paved-local's `record`).
        let Some(pid) = std::fs::read_to_string(entry.path()).ok().and_then(|p| p.split_whitespace().next()?.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let vars: Vec<&str> = env.split(|b| *b == 0).filter_map(|kv| std::str::from_utf8(kv).ok()).collect();
        if vars.contains(&format!("PAVED_WORKLOAD={name}").as_str())
            && let Some(port) = vars.iter().find_map(|kv| kv.strip_prefix("PORT="))
        {
            return Ok(format!("127.0.0.1:{port}"));
        }
    }
    bail!("no process of workload {name}")
}

pub fn proxy(bin: &Path) -> anyhow::Result<()> {
    const CONNECTIONS: usize = 16;
    const DURATION: Duration = Duration::from_secs(5);
    let platform = Platform::start(bin, "proxy")?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut client = platform.client().await?;
        println!(
            "bench proxy: {CONNECTIONS} keep-alive connections for {DURATION:?} each way, GET / on hello, direct then through its proxy"
        );
        // A workload that does no work is the proxy's worst case: on two
        // cores the proxy then takes CPU from the workload and the load
        // generator alike. A workload with 1 ms of work per request is the
        // case the targets are judged on.
        let mut met = true;
        for (name, env, what) in [
            ("noop", "", "no work per request (CPU-bound worst case)"),
            ("work", "  HELLO_LATENCY_MS: \"1\"\n", "1 ms of work per request"),
        ] {
            let proxy = deploy_version(&mut client, name, "v1", env).await?;
            let direct = workload_addr(&platform, name)?;
            load(direct.clone(), CONNECTIONS, Duration::from_secs(1)).await?; // warm-up
            let (d_rps, d_p50, d_p99) = load(direct, CONNECTIONS, DURATION).await?;
            let (p_rps, p_p50, p_p99) = load(proxy, CONNECTIONS, DURATION).await?;
            let added = p_p99.saturating_sub(d_p99);
            let share = p_rps / d_rps;
            println!("  {what}:");
            println!("    direct:  {d_rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms", ms(d_p50), ms(d_p99));
            println!("    proxied: {p_rps:.0} req/s, p50 {:.2} ms, p99 {:.2} ms", ms(p_p50), ms(p_p99));
            println!("    throughput {:.0}% of direct (target ≥ 70%), added p99 {:.2} ms (target < 1 ms)", 100.0 * share, ms(added));
            if name == "work" {
                met = share >= 0.7 && added < Duration::from_millis(1);
            }
        }
        if !met {
            bail!("the proxy missed its targets with 1 ms of work per request");
        }
        Ok(())
    })
}

pub fn policy() -> anyhow::Result<()> {
    const N: usize = 2000;
    let bundle = paved_policy::Bundle::default_bundle()?;
    // A new workload name each time: the bundle keeps its decisions by
    // input, and a decision served from there is not an evaluation.
    let input = |i: usize| {
        serde_json::json!({
            "environment": "prod",
            "workload": {
                "name": format!("web-{i}"), "run": {"artifact": format!("sha256:{}", "a".repeat(64))}, "env": {"DB_PASSWORD": "${secret:db}", "MODE": "fast"},
                "replicas": 3, "secrets": ["db"], "security": {"run_as_root": false, "privileged": false},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
            },
            "artifact": {"digest": "sha256:a", "attestations": {
                "sbom": {"verified": true}, "vulnerabilities": {"verified": true, "findings": [{"id": "CVE-1", "cvss": 5.0}]},
                "coverage": {"verified": true, "ratio": 0.9}}},
        })
    };
    let mut decide = Vec::with_capacity(N);
    let mut serialise = Vec::with_capacity(N);
    for i in 0..N {
        let input = input(i);
        let t = Instant::now();
        let decision = bundle.decide(&input)?;
        decide.push(t.elapsed());
        if !decision.allowed() {
            bail!("the benchmark's input should be allowed: {decision:?}");
        }
        let t = Instant::now();
        std::hint::black_box(input.to_string());
        serialise.push(t.elapsed());
    }
    let (p50, p99) = (percentile(&mut decide, 0.5), percentile(&mut decide, 0.99));
    println!("bench policy: the default bundle deciding a prod deploy, {N} times");
    println!("  p50 {:.3} ms, p99 {:.3} ms (target < 1 ms)", ms(p50), ms(p99));
    println!(
        "  baseline: serialising the input: p50 {:.3} ms; ratio {:.0}×",
        ms(percentile(&mut serialise, 0.5)),
        ms(p50) / ms(percentile(&mut serialise, 0.5))
    );
    if p50 >= Duration::from_millis(1) {
        bail!("a policy decision takes {p50:?}, over the 1 ms target");
    }
    Ok(())
}
