//! Measuring helpers every benchmark shares: a free port to start a server
//! on, the median of timed runs, durations in milliseconds. Their own module
//! (not `bench.rs`, which dispatches to every benchmark) so that the
//! benchmark modules depend on them without depending on the dispatcher.

use std::time::Duration;

/// A port free on 127.0.0.1 now (the OS's choice), for a server to bind.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The middle value of `v` (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Spawns `hello` and times it until `/healthz` answers.
pub fn hello_alone(bin: &std::path::Path) -> anyhow::Result<Duration> {
    let port = free_port()?;
    let start = std::time::Instant::now();
    let mut child =
        std::process::Command::new(bin.join("hello")).env("PORT", port.to_string()).stdout(std::process::Stdio::null()).spawn()?;
    let deadline = start + Duration::from_secs(10);
    let result = loop {
        if healthz(port) {
            break Ok(start.elapsed());
        }
        if std::time::Instant::now() > deadline {
            break Err(anyhow::anyhow!("hello did not become healthy"));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    child.kill()?;
    child.wait()?;
    result
}

fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    if s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut out = String::new();
    s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200")
}

/// A fresh scratch directory for benchmark `name`, under the system's temp.
pub fn work_dir(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("paved-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
