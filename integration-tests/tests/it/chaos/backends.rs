//! The chaos run's own PostgreSQL and Redis, started for it alone, so that
//! restarting them breaks no other test: the machine's servers are shared
//! by every test of the suite, and its Redis keeps nothing on disk (a
//! restart of it would lose every stream).
//!
//! PostgreSQL is a cluster of its own (`initdb` into a temporary directory;
//! as root, run as the `postgres` user, which initdb requires), restarted
//! the hard way: `pg_ctl stop -m immediate` is a crash, and the start
//! recovers from the write-ahead log. Redis runs with an append-only file,
//! as compose.yaml runs it, and is restarted with `SHUTDOWN`, which writes
//! that file out: a restart loses nothing.

use std::{path::PathBuf, time::Duration};
use tokio::process::Command;

/// A command's output, or a panic that says what failed and why. (Async:
/// the run's load must go on while a server stops or starts.)
async fn run(command: &mut Command) -> String {
    let out = command.output().await.unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(out.status.success(), "{command:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The directory of PostgreSQL's programs (`initdb` and `pg_ctl` are not
/// on Debian's PATH).
fn postgres_bin() -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL's programs under /usr/lib/postgresql");
    let mut bins: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect();
    bins.sort();
    bins.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// A PostgreSQL cluster of the run's own on a free port.
pub(crate) struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Set when this process is root: the user the server runs as.
    user: Option<String>,
    pub(crate) port: u16,
}

impl Postgres {
    pub(crate) async fn start(port: u16) -> Self {
        let dir = tempfile::Builder::new().prefix("paved-chaos-pg").tempdir().expect("temp dir");
        let root = run(Command::new("id").arg("-u")).await.trim() == "0";
        let user = root.then(|| "postgres".to_string());
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let uid: u32 = run(Command::new("id").args(["-u", "postgres"])).await.trim().parse().expect("postgres's uid");
            let gid: u32 = run(Command::new("id").args(["-g", "postgres"])).await.trim().parse().expect("postgres's gid");
            for sub in ["data", "run"] {
                std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
                std::os::unix::fs::chown(dir.path().join(sub), Some(uid), Some(gid)).expect("chown");
            }
        }
        let postgres = Self { bin: postgres_bin(), user, port, dir };
        run(&mut postgres.command("initdb", &["-D", &postgres.path("data"), "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]))
            .await;
        postgres.up().await;
        postgres
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).display().to_string()
    }

    /// One of PostgreSQL's programs, as the server's user.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        Command::from(self.std_command(program, args))
    }

    fn std_command(&self, program: &str, args: &[&str]) -> std::process::Command {
        let program = self.bin.join(program);
        let mut command = match &self.user {
            Some(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => std::process::Command::new(program),
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    async fn up(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300", self.port, self.path("run"));
        run(&mut self
            .command("pg_ctl", &["start", "-w", "-t", "60", "-D", &self.path("data"), "-l", &self.path("run/log"), "-o", &options]))
        .await;
    }

    /// Crashes the server (every connection cut, nothing flushed but what
    /// was committed); it stays down until [`Postgres::start_again`].
    pub(crate) async fn crash(&self) {
        run(&mut self.command("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", &self.path("data")])).await;
    }

    /// Starts it again: it recovers what was committed from its WAL.
    pub(crate) async fn start_again(&self) {
        self.up().await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.std_command("pg_ctl", &["stop", "-m", "immediate", "-D", &self.path("data")]).output();
    }
}

/// A Redis of the run's own on a free port, keeping an append-only file.
pub(crate) struct Redis {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    child: Option<tokio::process::Child>,
}

impl Redis {
    pub(crate) async fn start(port: u16) -> Self {
        let dir = tempfile::Builder::new().prefix("paved-chaos-redis").tempdir().expect("temp dir");
        let mut redis = Self { dir, port, child: None };
        redis.up().await;
        redis
    }

    async fn up(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.path().display().to_string();
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("log")).expect("log");
        let args = ["--port", &port, "--bind", "127.0.0.1", "--dir", &dir, "--appendonly", "yes", "--save", ""];
        let child = Command::new("redis-server").args(args).stdout(log.try_clone().expect("log")).stderr(log).kill_on_drop(true).spawn();
        self.child = Some(child.expect("redis-server (Debian's redis-server package)"));
        paved_integration_tests::eventually("the chaos run's Redis", Duration::from_secs(30), || async {
            let client = redis::Client::open(self.url()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
        })
        .await;
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `SHUTDOWN` (the append-only file written out, every connection
    /// cut); down until [`Redis::start_again`].
    pub(crate) async fn stop(&mut self) {
        let _ = Command::new("redis-cli").args(["-p", &self.port.to_string(), "shutdown"]).output().await;
        if let Some(mut child) = self.child.take() {
            let status = child.wait().await.expect("redis-server ends");
            assert!(status.success(), "redis-server's SHUTDOWN: {status}; see {}", self.log().display());
        }
    }

    pub(crate) async fn start_again(&mut self) {
        self.up().await;
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }
}
