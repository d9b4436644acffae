//! compose.yaml's platform, run as compose wires it: the `enrol` step and
//! every Paved service, from the workspace's binaries, with the command,
//! environment and volumes compose.yaml gives them, and Prometheus with
//! `deploy/prometheus/prometheus.yml`.
//!
//! Docker Hub's images cannot be pulled on this machine, so what compose
//! provides is stood in for, and only that: host names become loopback
//! addresses (each service's port a free one); a named volume becomes one
//! directory, linked where compose mounts it under a root of the service's
//! own that its container paths are taken relative to; PostgreSQL and
//! Redis are the machine's (a fresh database prefix and stream namespace).
//! A name the test cannot stand in for fails it.

use crate::prometheus::{free_port, prometheus_with};
use paved_grpc::tls::{Tls, platform_id};
use paved_integration_tests::{clean_command, eventually, paved_env, postgres_database, postgres_server, redis_namespace, text, unique};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// One service of compose.yaml, as compose would run it.
pub(crate) struct Service {
    name: String,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    volumes: Vec<Mount>,
}

/// A named volume where a service mounts it.
struct Mount {
    volume: String,
    path: String,
    read_only: bool,
}

/// compose.yaml with `PAVED_ROOT_KEY` set to `root_key`, `PAVED_WITNESSES`
/// to its default (none) (compose's interpolation of the variables it
/// takes) and its merge keys applied.
pub(crate) fn compose_file(root_key: &str) -> yaml_serde::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose.yaml");
    let mut text = std::fs::read_to_string(&path).expect("compose.yaml");
    while let Some(start) = text.find("${PAVED_ROOT_KEY") {
        let end = start + text[start..].find('}').expect("a closing brace");
        text.replace_range(start..=end, root_key);
    }
    text = text.replace("${PAVED_WITNESSES:-}", "\"\"");
    assert!(!text.contains("${"), "compose.yaml takes a variable this test does not set");
    let mut value: yaml_serde::Value = yaml_serde::from_str(&text).expect("compose.yaml parses");
    value.apply_merge().expect("merge keys");
    value
}

/// The services compose.yaml runs from the Paved image.
fn paved_services(compose: &yaml_serde::Value) -> Vec<Service> {
    let strings = |v: &yaml_serde::Value| -> Vec<String> {
        v.as_sequence().map(|s| s.iter().map(|x| x.as_str().expect("a string").to_string()).collect()).unwrap_or_default()
    };
    let services = compose["services"].as_mapping().expect("services");
    services
        .iter()
        .filter(|(_, s)| s["image"].as_str() == Some("paved:dev"))
        .map(|(name, s)| {
            let environment = s["environment"]
                .as_mapping()
                .map(|m| m.iter().map(|(k, v)| (k.as_str().expect("a name").to_string(), v.as_str().expect("a quoted value").to_string())))
                .into_iter()
                .flatten()
                .collect();
            let volumes = strings(&s["volumes"])
                .iter()
                .map(|v| {
                    let mut parts = v.split(':');
                    let (volume, path) = (parts.next().expect("a volume"), parts.next().expect("a mount point"));
                    assert!(!volume.starts_with(['.', '/']), "{v}: only named volumes are stood in for");
                    let read_only = parts.next() == Some("ro");
                    Mount { volume: volume.to_string(), path: path.to_string(), read_only }
                })
                .collect();
            Service { name: name.as_str().expect("a name").to_string(), command: strings(&s["command"]), environment, volumes }
        })
        .collect()
}

/// Rewrites compose's addresses and container paths for this machine.
pub(crate) struct Stand {
    /// (compose's text, this machine's), applied in order.
    replace: Vec<(String, String)>,
    /// Names no value may still hold.
    hosts: Vec<String>,
}

impl Stand {
    /// A command's argument or an environment value, a container path
    /// taken under `root`.
    fn value(&self, root: &Path, value: &str) -> String {
        match value.strip_prefix('/') {
            Some(path) => root.join(path).display().to_string(),
            None => self.text(value),
        }
    }

    /// `text` with this machine's addresses for compose's.
    pub(crate) fn text(&self, text: &str) -> String {
        let text = self.replace.iter().fold(text.to_string(), |t, (from, to)| t.replace(from, to));
        for host in &self.hosts {
            assert!(!text.contains(&format!("//{host}:")), "{text}: no stand-in for the host {host}");
        }
        text
    }
}

pub(crate) struct Running {
    pub(crate) child: tokio::process::Child,
    pub(crate) log: PathBuf,
}

/// compose.yaml's Paved services running as processes on this machine,
/// with what compose provides stood in for.
pub(crate) struct Platform {
    dir: PathBuf,
    services: Vec<Service>,
    pub(crate) stand: Stand,
    /// Each service's gRPC port, by name.
    pub(crate) ports: BTreeMap<String, u16>,
    /// Where the named volumes are.
    pub(crate) volumes: PathBuf,
    pub(crate) running: BTreeMap<String, Running>,
    /// The databases' name prefix.
    pub(crate) prefix: String,
    pub(crate) prometheus_port: u16,
    /// The PostgreSQL server the databases are on.
    postgres: String,
}

/// What a platform runs on: its PostgreSQL server (a URL with no
/// database), its Redis (a URL, a namespace allowed), and the port each
/// service is dialled at by the others, given the one it listens on.
pub(crate) struct Wiring<'a> {
    pub(crate) postgres: String,
    pub(crate) redis: String,
    pub(crate) reach: &'a mut dyn FnMut(&str, u16) -> u16,
}

impl Platform {
    /// Starts every Paved service of `compose` at once, harsher than
    /// compose's order (the services once enrol has ended): each must wait
    /// for what it needs. PostgreSQL and Redis are the machine's (a fresh
    /// database prefix and stream namespace).
    pub(crate) async fn start(dir: &Path, compose: &yaml_serde::Value) -> Self {
        postgres_database("compose_probe").await; // fails loudly without PostgreSQL
        let wiring = Wiring { postgres: postgres_server(), redis: redis_namespace("compose").await, reach: &mut |_, port| port };
        Self::start_wired(dir, compose, wiring).await
    }

    /// [`Platform::start`] on the servers and addresses `wiring` gives.
    pub(crate) async fn start_wired(dir: &Path, compose: &yaml_serde::Value, wiring: Wiring<'_>) -> Self {
        let services = paved_services(compose);
        let prefix = unique("compose");
        let mut ports = BTreeMap::new();
        let mut replace = vec![
            ("postgres://postgres@postgres:5432/paved_".to_string(), format!("{}/{prefix}_", wiring.postgres)),
            ("redis://redis:6379".to_string(), wiring.redis),
        ];
        let prometheus_port = free_port();
        replace.push(("prometheus:9090".into(), format!("127.0.0.1:{prometheus_port}")));
        for service in &services {
            if let Some(listen) = service.environment.get("PAVED_LISTEN") {
                let (_, port) = listen.rsplit_once(':').expect("host:port");
                let free = free_port();
                ports.insert(service.name.clone(), free);
                replace.push((format!("{}:{port}", service.name), format!("127.0.0.1:{}", (wiring.reach)(&service.name, free))));
                replace.push((listen.clone(), format!("127.0.0.1:{free}")));
            }
        }
        // Anything else bound to every interface (the provisioner's proxies) on loopback only.
        replace.push(("0.0.0.0".into(), "127.0.0.1".into()));
        let hosts = compose["services"].as_mapping().expect("services").keys().map(|k| k.as_str().expect("name").to_string()).collect();
        let mut platform = Self {
            dir: dir.to_path_buf(),
            services,
            stand: Stand { replace, hosts },
            ports,
            volumes: dir.join("volumes"),
            running: BTreeMap::new(),
            prefix,
            prometheus_port,
            postgres: wiring.postgres,
        };
        for i in 0..platform.services.len() {
            platform.mount(i);
            let name = platform.services[i].name.clone();
            let running = platform.spawn(&name);
            platform.running.insert(name, running);
        }
        platform
    }

    fn service(&self, name: &str) -> &Service {
        self.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("compose.yaml runs no {name}"))
    }

    fn root(&self, name: &str) -> PathBuf {
        self.dir.join("root").join(name)
    }

    /// A named volume becomes one directory, linked where compose mounts
    /// it under a root of the service's own.
    fn mount(&self, i: usize) {
        let service = &self.services[i];
        let root = self.root(&service.name);
        for Mount { volume, path, .. } in &service.volumes {
            let (shared, mount) = (self.volumes.join(volume), root.join(path.trim_start_matches('/')));
            std::fs::create_dir_all(&shared).expect("volume");
            std::fs::create_dir_all(mount.parent().expect("parent")).expect("mount point");
            std::os::unix::fs::symlink(&shared, &mount).expect("mount");
        }
        // The image's WORKDIR.
        std::fs::create_dir_all(root.join("var/lib/paved")).expect("workdir");
    }

    /// Starts a service as compose runs it; its output is appended to
    /// `<name>.log`.
    fn spawn(&self, name: &str) -> Running {
        let (service, root) = (self.service(name), self.root(name));
        let log = self.dir.join(format!("{name}.log"));
        let out = std::fs::File::options().create(true).append(true).open(&log).expect("log");
        let mut command = clean_command(&service.command[0]);
        command.args(service.command[1..].iter().map(|a| self.stand.value(&root, a)));
        for (key, value) in &service.environment {
            // No collector runs here.
            if key != "OTEL_EXPORTER_OTLP_ENDPOINT" {
                command.env(key, self.stand.value(&root, value));
            }
        }
        command.current_dir(root.join("var/lib/paved")).stdout(out.try_clone().expect("log")).stderr(out).kill_on_drop(true);
        Running { child: command.spawn().expect("start"), log }
    }

    /// Starts a service again, as compose's `restart: unless-stopped` does.
    pub(crate) fn restart(&mut self, name: &str) {
        let running = self.spawn(name);
        self.running.insert(name.to_string(), running);
    }

    /// Where the provisioner keeps its data (and its data plane's socket).
    pub(crate) fn provisioner_data(&self) -> PathBuf {
        self.root("provisioner").join("var/lib/paved/provisioner")
    }

    /// Waits for the enrol step to end, successfully; its log.
    pub(crate) async fn enrolled(&mut self) -> String {
        let enrol = self.running.get_mut("enrol").expect("enrol");
        let status = tokio::time::timeout(Duration::from_secs(60), enrol.child.wait()).await.expect("enrol ends").expect("enrol");
        let enrol_log = std::fs::read_to_string(&enrol.log).expect("log");
        assert!(status.success(), "enrol failed: {enrol_log}");
        enrol_log
    }

    /// The trust bundle the broker wrote, once it has.
    pub(crate) async fn bundle(&self) -> String {
        eventually("the broker's trust bundle", Duration::from_secs(60), || async {
            std::fs::read_to_string(self.volumes.join("trust/bundle.pem")).ok().filter(|b| b.contains("BEGIN CERTIFICATE"))
        })
        .await
    }

    /// A channel to `name` as a client of the platform (a person's
    /// identity, the server verified against `bundle`).
    pub(crate) fn channel(&self, name: &str, bundle: &str) -> tonic::transport::Channel {
        let client = Tls::new(format!("{}/people/compose-test", paved_grpc::tls::TRUST_DOMAIN), None);
        client.set_bundle(bundle).expect("bundle");
        let port = self.ports[name];
        paved_grpc::tls::connect(&format!("https://127.0.0.1:{port}"), Some(&client), Some(&platform_id(name)), |e| {
            e.timeout(Duration::from_secs(5))
        })
        .expect("channel")
    }

    /// Waits until `name` serves over mTLS (its health says so).
    pub(crate) async fn serving(&self, name: &str, bundle: &str) {
        let channel = self.channel(name, bundle);
        eventually(&format!("{name} serving over mTLS"), Duration::from_secs(90), || {
            let mut health = HealthClient::new(channel.clone());
            async move {
                let status = health.check(HealthCheckRequest { service: String::new() }).await.ok()?.into_inner().status;
                (status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await;
    }

    /// The URL of a service's database (`secrets_broker`, `audit`, …).
    pub(crate) fn database(&self, service: &str) -> String {
        format!("{}/{}_{service}", self.postgres, self.prefix)
    }

    /// The root token, made from the root key as an operator makes it.
    pub(crate) async fn root_token(&self, root_key: &str) -> String {
        let broker_database = self.database("secrets_broker");
        let stream = self.stand.text("redis://redis:6379");
        let holder = [("PAVED_ROOT_KEY", root_key)];
        let root = paved_env(&holder, &["token", "root", "--database-url", &broker_database, "--stream-url", &stream]).await;
        assert!(root.status.success(), "{}", text(&root.stderr));
        text(&root.stdout).trim().to_string()
    }
}

#[tokio::test]
async fn compose_runs_the_platform_on_mtls_with_tokens_it_enrols() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root_key = hex::encode(rand::random::<[u8; 32]>());
    let compose = compose_file(&root_key);
    let services = paved_services(&compose);
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    for wanted in paved_grpc::tls::PLATFORM_SERVICES.iter().chain(&["enrol"]) {
        assert!(names.contains(wanted), "compose.yaml runs {wanted}: {names:?}");
    }

    // What no process here can show: who may read and write what (all
    // run as one user), and that the image owns every mount point (a new
    // volume takes the owner of the directory it is mounted on).
    let enrolled: Vec<&str> = paved_grpc::tls::PLATFORM_SERVICES.into_iter().filter(|s| *s != "secrets-broker").collect();
    let mut mounts: BTreeMap<&str, Vec<(&str, bool)>> = BTreeMap::new();
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/docker/Dockerfile")).expect("Dockerfile");
    for service in &services {
        for mount in &service.volumes {
            mounts.entry(&mount.volume).or_default().push((&service.name, mount.read_only));
            assert!(dockerfile.split_whitespace().any(|word| word == mount.path), "the image makes no {} for {}", mount.path, service.name);
        }
    }
    fn sorted(mut mounted: Vec<(&str, bool)>) -> Vec<(&str, bool)> {
        mounted.sort();
        mounted
    }
    mounts.values_mut().for_each(|m| m.sort());
    let mut trust = vec![("secrets-broker", false)];
    for service in &enrolled {
        let (enrol, certs) = (format!("enrol-{service}"), format!("certs-{service}"));
        assert_eq!(mounts[enrol.as_str()], sorted(vec![("enrol", false), (service, true)]), "only {service} reads its token");
        assert_eq!(mounts[certs.as_str()], [(*service, false)], "only {service} holds its key");
        trust.push((service, true));
    }
    assert_eq!(mounts["trust"], sorted(trust), "only the broker writes the bundle");

    // What compose provides, stood in for; every service started at once.
    let mut platform = Platform::start(dir.path(), &compose).await;
    let volumes = platform.volumes.clone();

    // The enrol step, beside a broker migrating the same database, mints
    // each service's token into that service's volume only.
    let enrol_log = platform.enrolled().await;
    let mut tokens = Vec::new();
    for service in &enrolled {
        let file = volumes.join(format!("enrol-{service}")).join("identity.token");
        assert_eq!(private_mode(&file), 0o600, "{}\n{enrol_log}", file.display());
        tokens.push(std::fs::read_to_string(&file).expect("token"));
        // Its identity, the scope that enrols it for good, what its calls need.
        let enrols = format!("certs:enrol:platform/{service}");
        let scopes = [&[enrols.as_str()][..], paved::tokens::calls_of(service)].concat();
        assert!(enrol_log.contains(&format!("for {} ({})", platform_id(service), scopes.join(" "))), "{enrol_log}");
    }

    // Every service serves mTLS with a certificate for its own SPIFFE id;
    // the provisioner's health also needs the token its certificate got.
    let bundle = platform.bundle().await;
    for name in platform.ports.keys() {
        platform.serving(name, &bundle).await;
        let log = &platform.running[name].log;
        // Kept where a restart renews from it.
        if name != "secrets-broker" {
            let kept = volumes.join(format!("certs-{name}"));
            assert_eq!(private_mode(&kept.join("key.pem")), 0o600, "{}", std::fs::read_to_string(log).expect("log"));
            assert!(std::fs::read_to_string(kept.join("cert.pem")).expect("cert.pem").contains("BEGIN CERTIFICATE"));
        }
    }

    // Prometheus with compose's configuration scrapes all five over TLS.
    let config =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/prometheus.yml")).expect("config");
    let config = platform.stand.text(&config).replace("scrape_interval: 5s", "scrape_interval: 1s");
    let (_prometheus, url) = prometheus_with(dir.path(), &config, platform.prometheus_port);
    let provider = paved_prometheus::Prometheus::new(&url, Duration::from_secs(5));
    eventually("Prometheus scraping the five services", Duration::from_secs(60), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let end = std::time::SystemTime::now();
        let series =
            provider.query_range("count(up{job=\"paved\"} == 1)", end - Duration::from_secs(10), end, Duration::from_secs(1)).await.ok()?;
        (series.first()?.values.last()?.1 == 5.0).then_some(())
    })
    .await;

    // An operator: the root token from the root key, then the tokens over
    // https with the bundle the broker wrote.
    let root_token = platform.root_token(&root_key).await;
    let broker_database = format!("{}/{}_secrets_broker", postgres_server(), platform.prefix);
    let stream = platform.stand.text("redis://redis:6379");
    let bundle_file = volumes.join("trust/bundle.pem").display().to_string();
    let holder = [("PAVED_ROOT_KEY", root_key.as_str())];
    let broker = format!("https://127.0.0.1:{}", platform.ports["secrets-broker"]);
    let listed = paved_env(
        &[("PAVED_TOKEN", root_token.as_str()), ("PAVED_CA_BUNDLE", bundle_file.as_str())],
        &["token", "list", "--endpoint", &broker],
    )
    .await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    for service in &enrolled {
        assert!(text(&listed.stdout).contains(&platform_id(service)), "{}", text(&listed.stdout));
    }

    // Bad input to the enrol step: nothing minted, nothing written.
    let unknown = dir.path().join("unknown").display().to_string();
    let enrol = ["token", "enrol", "--database-url", &broker_database, "--stream-url", &stream, "--out", &unknown];
    let refused = paved_env(&holder, &[&enrol[..], &["billing"][..]].concat()).await;
    assert!(
        !refused.status.success() && text(&refused.stderr).contains("\"billing\" is not a platform service"),
        "{}",
        text(&refused.stderr)
    );
    let keyless = paved_env(&[], &enrol).await;
    assert!(!keyless.status.success() && text(&keyless.stderr).contains("the root key is needed"), "{}", text(&keyless.stderr));
    assert!(!Path::new(&unknown).exists(), "nothing written");

    // No secret in any log: not the root key, not a token.
    for (name, process) in &platform.running {
        let log = std::fs::read_to_string(&process.log).expect("log");
        assert!(!log.contains(&root_key), "{name} logged the root key");
        for token in &tokens {
            assert!(!log.contains(token.trim()), "{name} logged an enrolling token");
        }
    }

    // Stopped as compose stops it (SIGTERM): the provisioner leaves its data
    // plane serving for the next one (a restart, an upgrade); outside a
    // container, the host is stopped on its own.
    let provisioner = platform.running.get_mut("provisioner").expect("provisioner");
    let pid = provisioner.child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let stopped = tokio::time::timeout(Duration::from_secs(30), provisioner.child.wait()).await.expect("stops in time").expect("wait");
    assert!(stopped.success(), "{stopped:?}");
    let socket = platform.provisioner_data().join("runtime.sock");
    let mut host = paved_runtime::client::connect(&socket).await.expect("its data plane serves on");
    host.shutdown(paved_runtime::pb::ShutdownRequest {}).await.expect("shut down");
}

impl Drop for Platform {
    /// The data plane outlives the provisioner by design, in process groups
    /// of its own: whatever ends a test (a failed assertion included), it
    /// goes with the platform rather than serving on.
    fn drop(&mut self) {
        let data = self.provisioner_data();
        let _ = std::process::Command::new("pkill").arg("-f").arg(data.join("runtime.sock")).status();
        paved_local::stop_recorded(&data.join("run"));
    }
}

/// A file's permission bits; panics when it is missing.
fn private_mode(file: &Path) -> u32 {
    let meta = std::fs::metadata(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777
}
