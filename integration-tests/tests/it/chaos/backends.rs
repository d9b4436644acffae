//! The chaos run's own PostgreSQL, started for it alone, so that crashing
//! it breaks no other test (its Redis is the tests' `OwnRedis`, durable).
//!
//! A cluster of its own (`initdb` into a temporary directory; as root, run
//! as the `postgres` user, which initdb requires), stopped the hard way:
//! `pg_ctl stop -m immediate` is a crash, and the start recovers from the
//! write-ahead log.

use std::path::PathBuf;
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
    // The newest major version (by number: 9.6 is older than 16).
    let version = |b: &PathBuf| -> u32 {
        let name = b.parent().and_then(|v| v.file_name()).and_then(|n| n.to_str()).unwrap_or("0");
        name.split('.').next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let bins = versions.flatten().map(|v| v.path().join("bin")).filter(|b| b.join("initdb").is_file());
    bins.max_by_key(version).expect("an initdb under /usr/lib/postgresql/*/bin")
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
        for sub in ["data", "run"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let uid: u32 = run(Command::new("id").args(["-u", "postgres"])).await.trim().parse().expect("postgres's uid");
            let gid: u32 = run(Command::new("id").args(["-g", "postgres"])).await.trim().parse().expect("postgres's gid");
            for sub in ["data", "run"] {
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
