//! `paved up` never leaks what it started. Run as `cargo xtask up 2>&1 |
//! tee up.log` runs it (stdout and stderr one pipe), with the example
//! workload; then the pipe's reader goes away (the terminal's Ctrl-C ends
//! `tee` too) and `paved up` is ended by SIGINT (that Ctrl-C), SIGTERM, or
//! SIGHUP (a closed terminal). Each time it exits 0, with no panic writing
//! to the dead pipe, and no workload process or data plane outlives it by
//! more than a few seconds. SIGKILL, the fourth way, leaves them serving
//! for the data plane's grace period only (`dataplane`).

use paved_integration_tests::{bin_dir, eventually, process_gone, recorded_replicas};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    time::Duration,
};

async fn ended_by(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut child = std::process::Command::new(bin_dir().join("paved"))
        .arg("up")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("PAVED_CONFIG_DIR", dir.path().join("cli"))
        .stdout(writer.try_clone().expect("pipe"))
        .stderr(writer)
        .spawn()
        .expect("paved up");
    // Read as tee reads, until the greeting's last line.
    let greeted = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(reader).lines();
        let mut seen = String::new();
        for line in lines.by_ref() {
            let line = line.expect("read");
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Press Ctrl-C to stop") {
                return (lines, seen);
            }
        }
        panic!("paved up ended before its greeting:\n{seen}");
    });
    let (lines, seen) = tokio::time::timeout(Duration::from_secs(120), greeted).await.expect("greeted in time").expect("read");
    let run = dir.path().join("data/provisioner/run");
    let pids: Vec<i32> = recorded_replicas(&run).into_values().collect();
    assert!(!pids.is_empty(), "the example workload runs:\n{seen}");
    let socket = dir.path().join("data/provisioner/runtime.sock");
    assert!(socket.exists());
    // The reader goes: every later write of paved up fails (EPIPE).
    drop(lines);

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill").success());
    let status = tokio::time::timeout(Duration::from_secs(30), tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("paved up ends in time")
        .expect("join")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "SIG{signal}: a clean stop, not a panic on the closed pipe");
    eventually("every workload process to be gone", Duration::from_secs(5), || async {
        pids.iter().all(|pid| process_gone(*pid)).then_some(())
    })
    .await;
    eventually("the data plane to be gone", Duration::from_secs(5), || async { (!Path::new(&socket).exists()).then_some(()) }).await;
}

#[tokio::test]
async fn ctrl_c_with_its_pipe_gone_stops_every_workload() {
    ended_by("INT").await;
}

#[tokio::test]
async fn sigterm_with_its_pipe_gone_stops_every_workload() {
    ended_by("TERM").await;
}

#[tokio::test]
async fn a_closed_terminal_stops_every_workload() {
    ended_by("HUP").await;
}

/// The data directory is `paved up`'s alone: one that other users can
/// write is refused, with what to do; one they can read is closed (0700),
/// its files too, the databases included (0600).
#[tokio::test]
async fn a_data_directory_others_can_write_is_refused_and_one_they_can_read_is_closed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = std::process::Command::new(bin_dir().join("paved"))
        .args(["up", "--no-example", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .env("PAVED_CONFIG_DIR", dir.path().join("cli"))
        .output()
        .expect("paved up");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(stderr.contains("can be written by other users (mode 777)") && stderr.contains("chmod 700"), "{stderr}");
    assert!(!data.join("secrets-broker.db").exists() && !data.join("root.key").exists(), "nothing made there");

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data.join("notes.txt"), "left by an earlier release").expect("write");
    std::fs::set_permissions(data.join("notes.txt"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let up = crate::secrets::up_on(dir.path(), 0, port, &[], &[]);
    let mode = |path: &Path| std::fs::metadata(path).expect("metadata").mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("notes.txt")), 0o600);
    let databases: Vec<_> =
        std::fs::read_dir(&data).expect("read").flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "db")).collect();
    assert!(databases.len() >= 5, "{databases:?}");
    for db in &databases {
        assert_eq!(mode(db), 0o600, "{}", db.display());
    }
    crate::secrets::stop(up);
}
