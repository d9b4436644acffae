//! The host as the provisioner uses it: the real `paved-runtime` binary,
//! started through `client::connect_or_start`, driven over its socket, with
//! real HTTP through its proxies.

use paved_runtime::{
    client::{Client, Start, connect_or_start},
    pb,
};
use std::{path::Path, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start(dir: &Path, grace: Option<Duration>) -> Start {
    Start {
        binary: env!("CARGO_BIN_EXE_paved-runtime").into(),
        socket: dir.join("runtime.sock"),
        grace,
        run_dir: Some(dir.join("run")),
        log: dir.join("runtime.log"),
    }
}

/// A backend answering `body` to every request.
async fn backend(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let app = axum::Router::new().fallback(move || async move { body });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// GET / through `addr`: the body, or None when the connection fails.
async fn get(addr: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"GET / HTTP/1.1\r\nhost: w\r\nconnection: close\r\n\r\n").await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

async fn open(client: &mut Client, workload: &str) -> String {
    let open = pb::OpenProxyRequest { workload_id: workload.into(), host: "127.0.0.1".into(), port: 0 };
    client.open_proxy(open).await.expect("open").into_inner().addr
}

async fn route(client: &mut Client, workload: &str, revision: &str, addrs: Vec<String>) {
    let routes = vec![pb::Route { revision: revision.into(), weight: 100, addrs }];
    client.set_routes(pb::SetRoutesRequest { workload_id: workload.into(), routes }).await.expect("routes");
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, within: Duration, mut f: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A workload process as the local runtime records it in `dir/run`.
fn recorded_workload(dir: &Path) -> std::process::Child {
    std::fs::create_dir_all(dir.join("run")).expect("run dir");
    let mut workload = std::process::Command::new("sleep");
    workload.arg("60").env("PAVED_REVISION", "rev1");
    std::os::unix::process::CommandExt::process_group(&mut workload, 0);
    let workload = workload.spawn().expect("sleep");
    std::fs::write(dir.join("run/rev1-0.pgid"), format!("{} 1", workload.id())).expect("record");
    workload
}

/// Waits (5 s at most) for the workload to be killed.
async fn stopped(mut workload: std::process::Child) {
    let status = tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(move || workload.wait()))
        .await
        .expect("the workload stopped in time")
        .expect("join")
        .expect("wait");
    assert!(!status.success(), "killed: {status:?}");
}

#[tokio::test]
async fn a_host_routes_wakes_and_outlives_its_control_plane_for_its_grace_period() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = start(dir.path(), Some(Duration::from_secs(1)));
    let (mut client, started) = connect_or_start(&start).await.expect("a host");
    assert!(started, "none ran there");
    // Attached at once: the grace period counts while none is.
    let mut events = client.attach(pb::AttachRequest { name: "test".into() }).await.expect("attach").into_inner();
    let (_, again) = connect_or_start(&start).await.expect("the same host");
    assert!(!again, "the running host is used, not a second one");
    let mode = std::fs::metadata(&start.socket).expect("socket").permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600, "only its user may drive it");

    let v1 = backend("v1").await;
    let proxy = open(&mut client, "dev/w").await;
    let reopened = pb::OpenProxyRequest { workload_id: "dev/w".into(), host: "127.0.0.1".into(), port: 0 };
    let reopened = client.open_proxy(reopened).await.expect("open").into_inner();
    assert_eq!((reopened.addr.as_str(), reopened.existed), (proxy.as_str(), true), "open is idempotent");
    route(&mut client, "dev/w", "r1", vec![v1.clone()]).await;
    assert_eq!(get(&proxy).await.as_deref(), Some("v1"));
    let traffic = client.get_traffic(pb::GetTrafficRequest { workload_id: "dev/w".into() }).await.expect("traffic").into_inner();
    let (revision, counted) = paved_runtime::traffic_from(traffic.revisions.into_iter().next().expect("r1 served"));
    assert_eq!((revision.as_str(), counted.classes[1], counted.total()), ("r1", 1, 1));
    let metrics = client.get_metrics(pb::GetMetricsRequest {}).await.expect("metrics").into_inner().text;
    assert!(metrics.contains("paved_proxy_requests_total{workload=\"dev/w\",revision=\"r1\",class=\"2xx\"} 1"), "{metrics}");
    let unknown = client.set_routes(pb::SetRoutesRequest { workload_id: "dev/none".into(), routes: vec![] }).await;
    assert_eq!(unknown.expect_err("no such proxy").code(), tonic::Code::NotFound);

    // Asleep: a request is held, the attached control plane is asked to
    // wake the workload, and the request is served once it is routed.
    route(&mut client, "dev/w", "r1", vec![]).await;
    client.sleep(pb::SleepRequest { workload_id: "dev/w".into(), keep_pending_wake: false }).await.expect("sleep");
    let held = tokio::spawn({
        let proxy = proxy.clone();
        async move { get(&proxy).await }
    });
    let event = tokio::time::timeout(Duration::from_secs(5), events.message()).await.expect("an event in time").expect("stream");
    let expected = pb::host_event::Event::WakeRequested(pb::WakeRequested { workload_id: "dev/w".into() });
    assert_eq!(event.and_then(|e| e.event), Some(expected.clone()));
    let listed = client.list_proxies(pb::ListProxiesRequest {}).await.expect("list").into_inner().proxies;
    assert!(listed[0].asleep && listed[0].wake_asked, "{listed:?}");
    // A control plane that attaches now learns of the pending wake.
    let mut late = client.attach(pb::AttachRequest { name: "late".into() }).await.expect("attach").into_inner();
    let event = tokio::time::timeout(Duration::from_secs(5), late.message()).await.expect("in time").expect("stream");
    assert_eq!(event.and_then(|e| e.event), Some(expected));
    // Said asleep again by a control plane that restarted: the wake stays
    // asked. Put to sleep afresh: the next request asks again.
    client.sleep(pb::SleepRequest { workload_id: "dev/w".into(), keep_pending_wake: true }).await.expect("sleep");
    let listed = client.list_proxies(pb::ListProxiesRequest {}).await.expect("list").into_inner().proxies;
    assert!(listed[0].wake_asked, "kept: {listed:?}");
    client.sleep(pb::SleepRequest { workload_id: "dev/w".into(), keep_pending_wake: false }).await.expect("sleep");
    let listed = client.list_proxies(pb::ListProxiesRequest {}).await.expect("list").into_inner().proxies;
    assert!(listed[0].asleep && !listed[0].wake_asked, "afresh: {listed:?}");
    route(&mut client, "dev/w", "r1", vec![v1.clone()]).await;
    assert_eq!(held.await.expect("held request").as_deref(), Some("v1"), "served once routed");

    // The control plane goes away: the proxy serves on for the grace
    // period, then the host stops it and exits.
    drop((events, late, client));
    let gone = tokio::time::Instant::now();
    assert_eq!(get(&proxy).await.as_deref(), Some("v1"), "served while the control plane is gone");
    eventually("the host to stop after its grace period", Duration::from_secs(10), || async {
        (get(&proxy).await.is_none() && !start.socket.exists()).then_some(())
    })
    .await;
    assert!(gone.elapsed() >= Duration::from_millis(900), "not before its grace period: {:?}", gone.elapsed());
}

#[tokio::test]
async fn shutdown_stops_the_recorded_workloads_and_the_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = start(dir.path(), None);
    let (mut client, _) = connect_or_start(&start).await.expect("a host");
    let workload = recorded_workload(dir.path());
    let pid = workload.id();
    // /proc shows its environment once the exec is done.
    eventually("the workload to run", Duration::from_secs(5), || async {
        std::fs::read(format!("/proc/{pid}/environ")).ok().filter(|e| e.windows(17).any(|w| w == b"PAVED_REVISION=re")).map(|_| ())
    })
    .await;
    let proxy = open(&mut client, "dev/w").await;

    // Without a grace period, a detached host serves on.
    let (detached, _) = connect_or_start(&start).await.expect("the host");
    drop(detached.clone().attach(pb::AttachRequest { name: "brief".into() }).await.expect("attach"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(tokio::net::TcpStream::connect(&proxy).await.is_ok(), "still listening");

    client.shutdown(pb::ShutdownRequest {}).await.expect("shutdown");
    stopped(workload).await;
    eventually("the host to exit", Duration::from_secs(10), || async { (!start.socket.exists()).then_some(()) }).await;
    assert!(tokio::net::TcpStream::connect(&proxy).await.is_err(), "its proxies are closed");
}

#[tokio::test]
async fn a_second_host_leaves_a_served_socket_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = start(dir.path(), None);
    let (mut client, _) = connect_or_start(&start).await.expect("a host");
    let out = tokio::process::Command::new(&start.binary).arg("--socket").arg(&start.socket).output().await.expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a host already serves"), "{}", String::from_utf8_lossy(&out.stderr));
    // The first one still answers.
    client.list_proxies(pb::ListProxiesRequest {}).await.expect("still served");
    client.shutdown(pb::ShutdownRequest {}).await.expect("shutdown");
}

/// Keep-alive clients sending GET / through `proxy` until `stop`: how many
/// were answered 200, and how many failed (anything else).
fn load(proxy: &str, clients: usize, stop: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<(u64, u64)> {
    let uri: hyper::Uri = format!("http://{proxy}/").parse().expect("uri");
    tokio::spawn(async move {
        let workers = (0..clients).map(|_| {
            let (uri, stop) = (uri.clone(), stop.clone());
            tokio::spawn(async move {
                let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Empty<bytes::Bytes>>();
                let (mut ok, mut failed) = (0, 0);
                while !stop.is_cancelled() {
                    match client.get(uri.clone()).await {
                        Ok(r) if r.status() == 200 => {
                            let _ = http_body_util::BodyExt::collect(r.into_body()).await;
                            ok += 1;
                        }
                        other => {
                            eprintln!("failed: {other:?}");
                            failed += 1;
                        }
                    }
                }
                (ok, failed)
            })
        });
        let mut total = (0, 0);
        for worker in futures::future::join_all(workers).await {
            let (ok, failed) = worker.expect("worker");
            total = (total.0 + ok, total.1 + failed);
        }
        total
    })
}

fn traffic_total(traffic: pb::GetTrafficResponse) -> u64 {
    traffic.revisions.into_iter().map(paved_runtime::traffic_from).map(|(_, t)| t.total()).sum()
}

#[tokio::test]
async fn a_new_host_takes_the_proxies_over_without_failing_a_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = start(dir.path(), None);
    let (mut old, _) = connect_or_start(&start).await.expect("a host");
    let old_pid = old.get_host(pb::GetHostRequest {}).await.expect("host").into_inner().pid;
    let mut events = old.attach(pb::AttachRequest { name: "test".into() }).await.expect("attach").into_inner();
    // Not the host's to stop when it hands over.
    let mut workload = recorded_workload(dir.path());

    let proxy = open(&mut old, "dev/w").await;
    let v1 = backend("v1").await;
    route(&mut old, "dev/w", "r1", vec![v1.clone()]).await;
    // Served before the hand-over only: its counts must arrive whole.
    let quiet = open(&mut old, "dev/quiet").await;
    route(&mut old, "dev/quiet", "r1", vec![v1]).await;
    for _ in 0..7 {
        assert_eq!(get(&quiet).await.as_deref(), Some("v1"));
    }
    // A sleeping workload whose wake was asked for, to be handed as it is.
    let sleeper = open(&mut old, "dev/sleeper").await;
    old.sleep(pb::SleepRequest { workload_id: "dev/sleeper".into(), keep_pending_wake: false }).await.expect("sleep");
    old.waking(pb::WakingRequest { workload_id: "dev/sleeper".into() }).await.expect("waking");

    let stop = tokio_util::sync::CancellationToken::new();
    let load = load(&proxy, 8, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counted =
        traffic_total(old.get_traffic(pb::GetTrafficRequest { workload_id: "dev/w".into() }).await.expect("traffic").into_inner());
    assert!(counted > 0, "the load is served");

    let mut new = paved_runtime::client::take_over(&start).await.expect("taken over");
    let new_pid = new.get_host(pb::GetHostRequest {}).await.expect("host").into_inner().pid;
    assert_ne!(new_pid, old_pid, "a new host serves the socket");
    // New connections too, while both hosts hold the listening socket.
    for _ in 0..20 {
        assert_eq!(get(&proxy).await.as_deref(), Some("v1"), "a new connection is served");
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), events.message()).await.expect("the old host's events end in time");
    assert!(matches!(ended, Ok(None) | Err(_)), "the old host ends its attached streams: {ended:?}");
    // The old host refuses commands, then closes: its clients connect
    // again, to the new host.
    eventually("the old host's clients to reach the new one", Duration::from_secs(20), || {
        let mut old = old.clone();
        async move { old.get_host(pb::GetHostRequest {}).await.ok().filter(|h| h.get_ref().pid == new_pid).map(|_| ()) }
    })
    .await;
    eventually("the old host to drain and exit", Duration::from_secs(20), || async {
        (!Path::new(&format!("/proc/{old_pid}")).exists()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let (ok, failed) = load.await.expect("load");
    assert_eq!(failed, 0, "no request failed across the hand-over ({ok} answered)");

    let listed = new.list_proxies(pb::ListProxiesRequest {}).await.expect("list").into_inner().proxies;
    let addrs: Vec<(&str, &str, bool, bool)> =
        listed.iter().map(|p| (p.workload_id.as_str(), p.addr.as_str(), p.asleep, p.wake_asked)).collect();
    let expected = vec![
        ("dev/quiet", quiet.as_str(), false, false),
        ("dev/sleeper", sleeper.as_str(), true, true),
        ("dev/w", proxy.as_str(), false, false),
    ];
    assert_eq!(addrs, expected);
    assert_eq!(listed[2].routes.first().map(|r| r.revision.as_str()), Some("r1"), "routes kept");
    let quiet_counts = new.get_traffic(pb::GetTrafficRequest { workload_id: "dev/quiet".into() }).await.expect("traffic").into_inner();
    assert_eq!(traffic_total(quiet_counts), 7, "the counts were handed over");
    let carried =
        traffic_total(new.get_traffic(pb::GetTrafficRequest { workload_id: "dev/w".into() }).await.expect("traffic").into_inner());
    assert!(carried >= counted && carried <= ok + 20, "counts carried over: {counted} before, {carried} after, {ok} answered");
    // The pending wake reaches a control plane that attaches to the new host.
    let mut events = new.attach(pb::AttachRequest { name: "test".into() }).await.expect("attach").into_inner();
    let event = tokio::time::timeout(Duration::from_secs(5), events.message()).await.expect("in time").expect("stream");
    let expected = pb::host_event::Event::WakeRequested(pb::WakeRequested { workload_id: "dev/sleeper".into() });
    assert_eq!(event.and_then(|e| e.event), Some(expected));
    assert!(workload.try_wait().expect("wait").is_none(), "the workload runs on");

    new.shutdown(pb::ShutdownRequest {}).await.expect("shutdown");
    stopped(workload).await;
}
