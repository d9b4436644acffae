//! How a revision's run ends: a drained stop waits out its drain, takes the
//! revision out of the routes, then stops it; a start during the drain
//! keeps the same processes; a start after a stop waits for it to end.

use paved_local::{Launch, LocalRuntime};
use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

fn runtime(dir: &Path) -> Arc<LocalRuntime> {
    // Reports are not looked at here.
    let (reports, _) = tokio::sync::mpsc::unbounded_channel();
    Arc::new(LocalRuntime::new(vec![], dir.join("logs"), dir.join("run"), reports).expect("runtime"))
}

fn launch(dir: &Path) -> Launch {
    let spec = paved_spec::parse("name: w\ncommand: [sleep, \"30\"]\n", "paved.yaml").expect("spec");
    Launch {
        revision_id: "r1".into(),
        revision: "r1".into(),
        workload: "w".into(),
        environment: "dev".into(),
        spec,
        workdir: dir.to_path_buf(),
        extra_env: Default::default(),
        artifact_digest: String::new(),
    }
}

fn record(dir: &Path) -> PathBuf {
    dir.join("run/r1-0.pgid")
}

/// The process group of r1's replica, once it is recorded.
async fn group(dir: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(record(dir)) {
            return text.split(' ').next().unwrap_or_default().to_string();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("r1 was not started within 5 s");
}

/// A runtime in a directory of its own, running r1: its replica's group.
async fn r1_running() -> (tempfile::TempDir, Arc<LocalRuntime>, String) {
    let dir = tempfile::tempdir().expect("dir");
    let runtime = runtime(dir.path());
    runtime.start(launch(dir.path()));
    let first = group(dir.path()).await;
    (dir, runtime, first)
}

fn alive(group: &str) -> bool {
    std::path::Path::new(&format!("/proc/{group}")).exists()
}

#[tokio::test]
async fn a_drained_stop_runs_until_the_drain_ends_then_unroutes_then_stops() {
    let (dir, runtime, first) = r1_running().await;
    let unrouted = Arc::new(AtomicBool::new(false));
    let stopping = tokio::spawn({
        let (runtime, unrouted, first) = (runtime.clone(), unrouted.clone(), first.clone());
        async move {
            let unroute = async {
                assert!(alive(&first), "taken out of the routes before it is signalled");
                unrouted.store(true, Ordering::SeqCst);
            };
            runtime.stop_drained("r1", Duration::from_secs(1), unroute).await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(runtime.is_draining("r1") && runtime.is_running("r1"), "on its way out");
    assert!(alive(&first) && !unrouted.load(Ordering::SeqCst), "it runs on while it drains");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("stopped in time").expect("stop");
    assert!(unrouted.load(Ordering::SeqCst));
    assert!(!runtime.is_running("r1") && !runtime.is_draining("r1"));
    assert!(!record(dir.path()).exists(), "its record is gone with it");
}

#[tokio::test]
async fn a_start_while_it_drains_keeps_the_same_processes() {
    let (dir, runtime, first) = r1_running().await;
    let unrouted = Arc::new(AtomicBool::new(false));
    let stopping = tokio::spawn({
        let (runtime, unrouted) = (runtime.clone(), unrouted.clone());
        async move { runtime.stop_drained("r1", Duration::from_millis(500), async move { unrouted.store(true, Ordering::SeqCst) }).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    runtime.start(launch(dir.path()));
    assert!(!runtime.is_draining("r1"), "wanted again");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("the drain ended").expect("stop");
    assert!(!unrouted.load(Ordering::SeqCst), "never taken out of the routes");
    assert_eq!(group(dir.path()).await, first, "the same process");
    assert!(alive(&first));
    runtime.stop_all().await;
}

#[tokio::test]
async fn the_last_drained_stop_decides_and_a_start_after_a_stop_waits_for_its_end() {
    let (dir, runtime, first) = r1_running().await;
    let early = runtime.stop_drained("r1", Duration::from_millis(100), async {});
    // Slow to take it out of the routes: a start meanwhile finds it taken
    // out of `running` but not yet stopped.
    let late = runtime.stop_drained("r1", Duration::from_millis(600), async { tokio::time::sleep(Duration::from_millis(500)).await });
    let (runtime2, dir2) = (runtime.clone(), dir.path().to_path_buf());
    let restart = async move {
        // After the early stop's drain, before the late one's: it still runs.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(runtime2.is_running("r1"), "the later stop's drain counts");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!runtime2.is_running("r1"), "the late stop has it");
        runtime2.start(launch(&dir2));
    };
    tokio::join!(early, late, restart);
    let second = group(dir.path()).await;
    assert_ne!(second, first, "a new process");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(record(dir.path()).exists() && alive(&second), "the new run keeps its record");
    assert!(!alive(&first), "the old one is gone");
    runtime.stop_all().await;
}
