//! `cargo xtask test compose`: compose.yaml brought up on a real Docker
//! engine with Debian's docker-compose, `hello` deployed through it with
//! the CLI as a user would, and what only Docker can show checked: the
//! `depends_on` conditions, the health check, who owns each volume, the
//! read-only mounts, both SDKs as production clients over TLS, a restart
//! on the certificate kept (not a new enrolment), OTLP export to
//! the collector, Prometheus scraping the five services by their compose
//! names; then torn down with its volumes. Images: `docker.rs`.

use crate::{
    build_bins,
    docker::{self, Engine, docker, output},
    target_dir,
    venv::root,
};
use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// The compose project: its containers and volumes are named after it.
const PROJECT: &str = "paved-compose-test";
/// compose.yaml's images this machine cannot pull, and their stand-ins.
const STAND_INS: [(&str, &str); 4] = [
    ("postgres:16", "postgres"),
    ("redis:7", "redis"),
    ("prom/prometheus:v2.54.1", "prometheus"),
    ("otel/opentelemetry-collector:0.111.0", "otel-collector"),
];
/// Not packaged by Debian, PyPI or npm: the only service not started.
const NOT_STARTED: &str = "grafana";
/// The services that enrol with a token `enrol` wrote: all but the broker,
/// whose CA gives it its certificate.
fn enrolled() -> impl Iterator<Item = &'static str> {
    paved_grpc::tls::PLATFORM_SERVICES.into_iter().filter(|s| *s != "secrets-broker")
}

pub fn test() -> anyhow::Result<()> {
    let started = Instant::now();
    let work = target_dir("docker");
    let _engine = Engine::ensure(&work)?;
    let bin = build_bins(false)?;
    docker::ensure_base(&work)?;
    for (tag, dir) in STAND_INS {
        let context = work.join("stand-ins").join(dir);
        let _ = std::fs::remove_dir_all(&context);
        copy_dir(&root().join("xtask/stand-ins").join(dir), &context)?;
        if dir == "otel-collector" {
            docker::strip(&bin.join("otlp-receiver"), &context.join("otlp-receiver"))?;
        }
        docker::stand_in(tag, &context)?;
    }
    docker::paved_image(&root(), &bin, &work.join("paved"))?;
    docker::prune()?;
    eprintln!("xtask: images ready after {:.0?}", started.elapsed());

    let stack = Stack::new(bin);
    stack.compose(&["down", "--volumes", "--remove-orphans"])?;
    let services: Vec<String> = output(&mut stack.command(&["config", "--services"]))?.lines().map(str::to_string).collect();
    let wanted: Vec<&str> = services.iter().map(String::as_str).filter(|s| *s != NOT_STARTED).collect();
    let checked = stack.compose(&[&["up", "--detach", "--no-build"][..], &wanted].concat()).and_then(|()| stack.check());
    if checked.is_err() {
        let _ = stack.compose(&["logs", "--no-color", "--tail", "40"]);
    }
    let down = stack.down();
    match (checked, down) {
        (Err(failed), Err(down)) => bail!("{failed:#}; and then: {down:#}"),
        (checked, down) => {
            checked?;
            down?;
        }
    }
    eprintln!("xtask: compose test passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The project, with the root key it was brought up with.
struct Stack {
    root_key: String,
    bin: PathBuf,
}

impl Stack {
    fn new(bin: PathBuf) -> Self {
        let root_key: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
        Self { root_key, bin }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker-compose");
        command.args(["--project-name", PROJECT, "--file", "compose.yaml"]).args(args).current_dir(root());
        command.env("PAVED_ROOT_KEY", &self.root_key);
        command
    }

    /// Runs `docker-compose ARGS`, its output shown (said, as every command
    /// is, without its environment: that holds the root key).
    fn compose(&self, args: &[&str]) -> anyhow::Result<()> {
        crate::run(&mut self.command(args))
    }

    fn exec(&self, service: &str, args: &[&str]) -> anyhow::Result<String> {
        output(&mut self.command(&[&["exec", "-T", service][..], args].concat()))
    }

    /// `paved ARGS` against the stack, as its operator.
    fn paved(&self, token: &str, bundle: &Path, args: &[&str]) -> anyhow::Result<String> {
        output(Command::new(self.bin.join("paved")).args(args).env("PAVED_TOKEN", token).env("PAVED_CA_BUNDLE", bundle))
    }

    /// The container `docker inspect` tells of, for `service`.
    fn inspect(&self, service: &str) -> anyhow::Result<serde_json::Value> {
        let id = output(docker().args(["ps", "--all", "--quiet"]).args([
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]))?;
        let id = id.lines().next().with_context(|| format!("no container for {service}"))?;
        let json: serde_json::Value = serde_json::from_str(&output(docker().args(["inspect", id]))?)?;
        Ok(json[0].clone())
    }

    fn check(&self) -> anyhow::Result<()> {
        // Prometheus, by compose's host names, scrapes all five over TLS.
        eventually("Prometheus to scrape the five services", Duration::from_secs(180), || {
            let up = prometheus("count(up{job=\"paved\"} == 1)").ok()?;
            (up == "5").then_some(())
        })?;
        let rules = output(Command::new("curl").args(["-sf", "--max-time", "5", "http://127.0.0.1:9090/api/v1/rules"]))?;
        ensure!(rules.contains("PavedServiceErrorBudgetBurn"), "Prometheus did not load the mounted rules: {rules}");

        // depends_on: the services that enrol started after `enrol` ended
        // well; PostgreSQL answered its health check.
        let enrol = self.inspect("enrol")?;
        ensure!(enrol["State"]["ExitCode"] == 0, "enrol failed: {}", enrol["State"]);
        let enrolled_at = time(&enrol["State"]["FinishedAt"])?;
        for service in enrolled() {
            let container = self.inspect(service)?;
            let started = time(&container["State"]["StartedAt"])?;
            ensure!(started > enrolled_at, "{service} started at {started}, before enrol ended at {enrolled_at}");
            // Its latest start, unless it never restarted.
            ensure!(container["RestartCount"] == 0, "{service} restarted {} times", container["RestartCount"]);
        }
        let health = &self.inspect("postgres")?["State"]["Health"]["Status"];
        ensure!(health == "healthy", "postgres is {health}");

        // Volumes: each service's token and key belong to it alone; the
        // bundle and the tokens are mounted read-only.
        let mut tokens = Vec::new();
        for service in enrolled() {
            let owners =
                self.exec(service, &["stat", "-c", "%U %a %n", "/var/lib/paved/enrol/identity.token", "/var/lib/paved/certs/key.pem"])?;
            for line in owners.lines() {
                ensure!(line.starts_with("paved 600 "), "{service}: {line}");
            }
            tokens.push(self.exec(service, &["cat", "/var/lib/paved/enrol/identity.token"])?.trim().to_string());
            for mount in ["/var/lib/paved/trust", "/var/lib/paved/enrol"] {
                let write = self.command(&["exec", "-T", service, "touch", &format!("{mount}/probe")]).output()?;
                let said = String::from_utf8_lossy(&write.stderr);
                ensure!(!write.status.success() && said.contains("Read-only file system"), "{service} could write to {mount}: {said}");
            }
        }

        // The operator's way in: the bundle, the root token from the key.
        let bundle = target_dir("docker").join("bundle.pem");
        std::fs::write(&bundle, self.exec("secrets-broker", &["cat", "/var/lib/paved/trust/bundle.pem"])?)?;
        let minted = output(&mut self.command(&["run", "--rm", "-T", "enrol", "paved", "token", "root"]))?;
        // Never echoed: what it printed may hold the token in another form.
        let token = minted.lines().find(|l| l.starts_with("pvt1.")).context("`paved token root` printed no pvt1. line")?.to_string();
        let listed = self.paved(&token, &bundle, &["token", "list", "--endpoint", "https://127.0.0.1:7402"])?;
        for service in enrolled() {
            ensure!(listed.contains(&format!("platform/{service}")), "no token for {service} in {listed}");
        }

        // hello, deployed with the CLI and served by its proxy inside the
        // provisioner's container.
        let provisioner = "https://127.0.0.1:7401";
        let deployed =
            self.paved(&token, &bundle, &["deploy", "examples/hello", "--env", "dev", "--endpoint", provisioner, "--output", "json"]);
        let deployed: serde_json::Value = serde_json::from_str(&deployed?)?;
        ensure!(deployed["state"] == "promoted", "hello's rollout: {deployed}");
        self.hello_answers(&token, &bundle)?;

        self.sdks(&token, &bundle)?;

        // A restart by Docker: the provisioner comes back on the certificate
        // it kept, not by enrolling again (its enrolling token, spoiled
        // first, would be refused).
        let spoil = "echo pvt1.spoiled > /enrol/identity.token";
        let volume = format!("{PROJECT}_enrol-provisioner:/enrol");
        output(docker().args(["run", "--rm", "-v", &volume, docker::BASE, "sh", "-c", spoil]))?;
        self.compose(&["restart", "provisioner"])?;
        self.hello_answers(&token, &bundle)?;

        // The collector got the deploy's spans, naming the workload.
        eventually("the provisioner's spans naming dev/hello at the collector", Duration::from_secs(30), || {
            let spans = output(&mut self.command(&["logs", "--no-color", "otel-collector"])).ok()?;
            let named = |l: &&str| l.contains("\"service\":\"paved-provisioner\"") && l.contains("\"workload\":\"dev/hello\"");
            spans.lines().any(|l| named(&l)).then_some(())
        })?;

        // No secret in any container's log.
        let logs = output(&mut self.command(&["logs", "--no-color"]))?;
        ensure!(!logs.contains(&self.root_key), "a container logged the root key");
        ensure!(!logs.contains(&token), "a container logged the root token");
        ensure!(tokens.iter().all(|t| !logs.contains(t.as_str())), "a container logged an enrolling token");
        Ok(())
    }

    /// Both SDKs reach the provisioner over TLS as production clients:
    /// Python's grpcio checks the host name the certificate names beside its
    /// SPIFFE id (`server_name`), TypeScript the SPIFFE id itself.
    fn sdks(&self, token: &str, bundle: &Path) -> anyhow::Result<()> {
        const PYTHON: &str = "import os, paved\n\
            from paved.provisioner.v1 import provisioner_pb2 as pb\n\
            bundle = open(os.environ['PAVED_CA_BUNDLE'], 'rb').read()\n\
            with paved.Client('https://127.0.0.1:7401', root_certificates=bundle, server_name='provisioner') as client:\n\
            \x20   print(client.provisioner.GetWorkload(pb.GetWorkloadRequest(environment='dev', name='hello')).workload.name)\n";
        const TYPESCRIPT: &str = "const { Client } = await import(process.argv[1]);\n\
            const client = new Client({ endpoint: 'https://127.0.0.1:7401' });\n\
            const got = await client.provisioner.getWorkload({ environment: 'dev', name: 'hello' });\n\
            console.log(got.workload.name);\n";
        let python = crate::sdk::ensure_python()?;
        let mut python = Command::new(python);
        python.args(["-c", PYTHON]).env("PYTHONPATH", root().join("sdk/python/src"));
        let said = output(python.env("PAVED_TOKEN", token).env("PAVED_CA_BUNDLE", bundle))?;
        ensure!(said.trim() == "hello", "the Python SDK said {said:?}");
        crate::sdk::ensure_typescript()?;
        let sdk = root().join("sdk/typescript/dist/index.js");
        let mut node = Command::new("node");
        node.args(["--input-type=module", "-e", TYPESCRIPT]).arg(&sdk).env("PAVED_TOKEN", token).env("PAVED_CA_BUNDLE", bundle);
        let said = output(&mut node)?;
        ensure!(said.trim() == "hello", "the TypeScript SDK said {said:?}");
        Ok(())
    }

    /// `hello`'s endpoint from `paved status`, reached at the provisioner
    /// container's address, answers `hello from v1`.
    fn hello_answers(&self, token: &str, bundle: &Path) -> anyhow::Result<()> {
        let address = self.inspect("provisioner")?["NetworkSettings"]["Networks"]
            .as_object()
            .and_then(|n| n.values().next())
            .and_then(|n| n["IPAddress"].as_str())
            .context("the provisioner's address")?
            .to_string();
        eventually("hello to answer through its proxy", Duration::from_secs(90), || {
            let status = self.paved(token, bundle, &["status", "--endpoint", "https://127.0.0.1:7401", "--output", "json"]).ok()?;
            let status: serde_json::Value = serde_json::from_str(&status).ok()?;
            let hello = status["workloads"].as_array()?.iter().find(|w| w["name"] == "hello")?.clone();
            let port = hello["endpoint"].as_str()?.rsplit_once(':')?.1.to_string();
            let body = output(Command::new("curl").args(["-sf", "--max-time", "2", &format!("http://{address}:{port}/")])).ok()?;
            body.contains("hello from v1").then_some(())
        })
    }

    /// Down with its volumes; none is left.
    fn down(&self) -> anyhow::Result<()> {
        self.compose(&["down", "--volumes", "--remove-orphans"])?;
        let left = output(docker().args(["volume", "ls", "--quiet", "--filter", &format!("label=com.docker.compose.project={PROJECT}")]))?;
        ensure!(left.trim().is_empty(), "volumes left after down: {left}");
        Ok(())
    }
}

/// The value of a one-number PromQL query against compose's Prometheus.
fn prometheus(query: &str) -> anyhow::Result<String> {
    let out = output(Command::new("curl").args([
        "-sf",
        "--max-time",
        "5",
        "http://127.0.0.1:9090/api/v1/query",
        "--data-urlencode",
        &format!("query={query}"),
    ]))?;
    let json: serde_json::Value = serde_json::from_str(&out)?;
    json["data"]["result"][0]["value"][1].as_str().map(str::to_string).context("no value")
}

fn time(value: &serde_json::Value) -> anyhow::Result<DateTime<Utc>> {
    let text = value.as_str().context("a time")?;
    Ok(DateTime::parse_from_rfc3339(text).with_context(|| format!("{text}: not RFC 3339"))?.with_timezone(&Utc))
}

/// Polls `check` every second until it gives a value, for at most `timeout`.
fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let start = Instant::now();
    let mut said = start;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if start.elapsed() > timeout {
            bail!("waited {timeout:?} for {what}");
        }
        if said.elapsed() > Duration::from_secs(15) {
            eprintln!("xtask: still waiting for {what} ({:.0?})", start.elapsed());
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}
