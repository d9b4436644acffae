//! The `paved` binary as a user runs it, against a platform started in-process.

use paved::up::{Platform, UpOptions};
use paved_integration_tests::{bin_dir, paved, paved_with, text, up_options};
use std::time::Duration;

#[tokio::test]
async fn status_deploy_and_bad_specs_through_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = UpOptions { example: true, ..up_options(dir.path().join("data")) };
    let platform = Platform::start(&options).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let endpoint = platform.addr.to_string();

    let out = paved_with(&platform.root_token, &["status", "--output", "json", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(status["services"].as_array().map(Vec::len), Some(5));
    assert_eq!(status["services"][0]["name"], "provisioner");
    assert_eq!(status["services"][0]["state"], "serving");
    let hello = &status["workloads"][0];
    assert_eq!(
        (hello["name"].as_str(), hello["environment"].as_str(), hello["state"].as_str()),
        (Some("hello"), Some("dev"), Some("healthy"))
    );
    assert_eq!(hello["revision"], 1);
    assert!(hello["endpoint"].as_str().is_some_and(|e| e.starts_with("127.0.0.1:")));

    // A malformed spec: file, line and column, non-zero exit, nothing deployed.
    let svc = dir.path().join("svc");
    std::fs::create_dir_all(&svc).expect("mkdir");
    std::fs::write(svc.join("paved.yaml"), "name: svc\ncommand: [\"hello\"]\nreplicas: 0\n").expect("write");
    let out = paved_with(&platform.root_token, &["deploy", svc.to_str().expect("path"), "--env", "dev", "--endpoint", &endpoint]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paved.yaml:3:11: replicas must be between 1 and 64, got 0"), "{stderr}");

    // A good one: followed until healthy, then visible in the table.
    std::fs::write(svc.join("paved.yaml"), "name: svc\ncommand: [\"hello\"]\nenv:\n  HELLO_VERSION: svc-1\n").expect("write");
    let out = paved_with(&platform.root_token, &["deploy", svc.to_str().expect("path"), "--env", "qa", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "revision 1 of svc: promoted\n");
    let out = paved_with(&platform.root_token, &["status", "--endpoint", &endpoint]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with("svc ") && l.contains("qa") && l.contains("healthy")), "{table}");

    // Unreachable platform: a clear message, non-zero exit.
    let out = paved_with(&platform.root_token, &["status", "--endpoint", "127.0.0.1:1"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Paved at 127.0.0.1:1"));
    platform.stop().await.expect("stop");
}

/// A service binary with a bad configuration says what is wrong and exits 2;
/// a config file is read, and `PAVED_*` variables override it.
#[tokio::test]
async fn service_binaries_read_layered_config() {
    let bin = bin_dir().join("paved-audit");
    let out = tokio::process::Command::new(&bin).args(["--config", "/nonexistent/audit.yaml"]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config file /nonexistent/audit.yaml does not exist"), "{out:?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("audit.yaml");
    std::fs::write(&file, "listen: not-an-address\n").expect("write");
    let out = tokio::process::Command::new(&bin).arg("--config").arg(&file).output().await.expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"), "{out:?}");

    // The file's bad listen address is overridden by the environment; the
    // database URL comes from the file.
    let database = paved_integration_tests::postgres_database("it_cfg").await;
    std::fs::write(&file, format!("listen: not-an-address\ndatabase_url: {database}\n")).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let stream = paved_integration_tests::redis_namespace("it_cfg").await;
    // Serving needs the broker's key set.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (broker, _token, broker_task) = paved_integration_tests::start_broker(&stream, &shutdown).await;
    let mut child = tokio::process::Command::new(&bin)
        .arg("--config")
        .arg(&file)
        .env("PAVED_LISTEN", format!("127.0.0.1:{port}"))
        .env("PAVED_STREAM_URL", &stream)
        .env("PAVED_BROKER_URL", format!("http://{broker}"))
        .env("PAVED_ROOT_KEY", paved_integration_tests::ROOT_KEY)
        .kill_on_drop(true)
        .spawn()
        .expect("start paved-audit");
    let body = paved_integration_tests::eventually("paved-audit to serve /healthz", Duration::from_secs(30), || async {
        let body = crate::services::try_http_get(&format!("127.0.0.1:{port}"), "/healthz").await?;
        (body == "serving\n").then_some(body)
    })
    .await;
    assert_eq!(body, "serving\n");
    nix_term(&child);
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("stops on SIGTERM").expect("wait");
    assert!(status.success(), "a drained shutdown exits 0: {status}");
    shutdown.cancel();
    broker_task.await.expect("broker task").expect("broker stopped cleanly");
}

fn nix_term(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(status.success());
}

/// Overlays: `paved render` shows the spec an environment gets; a deploy to
/// that environment runs it; an overlay that changes structure is refused
/// with its file, line and column.
#[tokio::test]
async fn environments_are_overlays_of_the_base_spec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let svc = dir.path().join("svc");
    std::fs::create_dir_all(&svc).expect("mkdir");
    std::fs::write(svc.join("paved.yaml"), "name: svc\ncommand: [\"hello\"]\nenv:\n  HELLO_VERSION: base\n").expect("write");
    std::fs::write(svc.join("paved.staging.yaml"), "env:\n  HELLO_VERSION: staging\n").expect("write");
    std::fs::write(svc.join("paved.qa.yaml"), "env:\n  HELLO_VERSION: qa\n").expect("write");
    std::fs::write(svc.join("paved.preview.yaml"), "env:\n  HELLO_VERSION: preview\n").expect("write");
    let path = svc.to_str().expect("path");

    let rendered = |env: &'static str| async move { paved(&["render", path, "--env", env]).await };
    let out = rendered("staging").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HELLO_VERSION: staging"));
    assert!(String::from_utf8_lossy(&rendered("pr-42").await.stdout).contains("HELLO_VERSION: preview"));
    assert!(String::from_utf8_lossy(&rendered("dev").await.stdout).contains("HELLO_VERSION: base"));

    let options = up_options(dir.path().join("data"));
    let platform = Platform::start(&options).await.expect("paved up");
    let endpoint = platform.addr.to_string();
    let out = paved_with(&platform.root_token, &["deploy", path, "--env", "qa", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    let svc_endpoint = &status.workloads.iter().find(|w| w.environment == "qa").expect("qa workload").endpoint;
    assert_eq!(crate::services::http_get(svc_endpoint, "/").await, "hello from qa\n");

    std::fs::write(svc.join("paved.prod.yaml"), "env:\n  HELLO_VERSION: prod\nreplicas: 3\n").expect("write");
    let out = paved_with(&platform.root_token, &["deploy", path, "--env", "prod", "--endpoint", &endpoint]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paved.prod.yaml:3:1: `replicas` is not in the base spec"), "{stderr}");
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    assert!(status.workloads.iter().all(|w| w.environment != "prod"), "nothing deployed to prod");

    // A valid overlay, but the policy gate blocks prod: with every rule's
    // message and the bundle's digest; still nothing in prod.
    std::fs::write(svc.join("paved.prod.yaml"), "env:\n  HELLO_VERSION: prod\n").expect("write");
    let out = paved_with(&platform.root_token, &["deploy", path, "--env", "prod", "--endpoint", &endpoint]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "denied by policy (bundle sha256:",
        "the artifact is not pinned by digest",
        "resources.limits.cpu is not set",
        "prod requires a signed SBOM",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?}:\n{stderr}");
    }
    let out = paved_with(&platform.root_token, &["plan", path, "--env", "prod", "--endpoint", &endpoint]).await;
    assert_eq!(out.status.code(), Some(1), "a plan the gate would deny fails: {out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("  ! policy: prod requires a signed SBOM"), "{out:?}");
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    assert!(status.workloads.iter().all(|w| w.environment != "prod"), "a denied deploy records nothing");
    platform.stop().await.expect("stop");
}

/// `paved policy test`: the shipped bundle passes its own tests; a failing
/// test and a syntax error are reported, with a non-zero exit.
#[tokio::test]
async fn policy_bundles_are_tested_like_code() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies");
    let out = paved(&["policy", "test", shipped.to_str().expect("path")]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("PASS data.paved.deploy_test.test_a_good_prod_deploy_passes_clean"), "{stdout}");
    assert!(stdout.lines().last().is_some_and(|l| l.starts_with("PASS: ") && l.ends_with(" passed, 0 failed")), "{stdout}");

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("p.rego"), "package paved.deploy\n\ndeny contains \"no\" if { true }\n").expect("write");
    std::fs::write(
        dir.path().join("p_test.rego"),
        "package p_test\n\nimport data.paved.deploy\n\ntest_allows if {\n\tcount(deploy.deny) == 0\n}\n",
    )
    .expect("write");
    let out = paved(&["policy", "test", dir.path().to_str().expect("path")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL data.p_test.test_allows"), "{out:?}");

    std::fs::write(dir.path().join("p.rego"), "package paved.deploy\n\ndeny contains msg if {\n\tmsg := \n}\n").expect("write");
    let out = paved(&["policy", "test", dir.path().to_str().expect("path")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("p.rego:4:9"), "a syntax error is located: {out:?}");
}

/// A Score file is a workload like a `paved.yaml`: rendered with its
/// environment's values and placeholders resolved, deployed, served; a field
/// Paved cannot honour is refused at its line and column, nothing deployed.
#[tokio::test]
async fn score_files_deploy_like_native_specs() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-score");
    let path = example.to_str().expect("path");
    let out = paved(&["render", path, "--env", "qa"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("HELLO_VERSION: ${metadata.name}-qa"), "{}", text(&out.stdout));

    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&up_options(dir.path().join("data"))).await.expect("paved up");
    let endpoint = platform.addr.to_string();
    let out = paved_with(&platform.root_token, &["deploy", path, "--env", "qa", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "revision 1 of hello-score: promoted\n");
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    let w = status.workloads.iter().find(|w| w.name == "hello-score").expect("the Score workload");
    assert_eq!(crate::services::http_get(&w.endpoint, "/").await, "hello from hello-score-qa\n", "placeholders resolved");

    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    let score = std::fs::read_to_string(example.join("score.yaml")).expect("read");
    std::fs::write(bad.join("score.yaml"), score.replace("image: .            # no image: run `command` on the host", "image: nginx:1.27"))
        .expect("write");
    let out = paved_with(&platform.root_token, &["deploy", bad.to_str().expect("path"), "--env", "qa", "--endpoint", &endpoint]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("score.yaml:12:5: container image \"nginx:1.27\" cannot run here"), "{stderr}");
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    assert_eq!(status.workloads.len(), 1, "the bad Score file deployed nothing");
    platform.stop().await.expect("stop");
}

/// `paved render --target kubernetes`: manifests for a workload pinned by
/// digest, a weighted route for a canary, a clear refusal otherwise.
#[tokio::test]
async fn kubernetes_manifests_render_from_the_spec() {
    let dir = tempfile::tempdir().expect("temp dir");
    let digest = format!("sha256:{}", "5e".repeat(32));
    std::fs::write(dir.path().join("paved.yaml"), format!("name: api\nartifact: {digest}\nport: 9000\nreplicas: 2\n")).expect("write");
    std::fs::write(dir.path().join("paved.prod.yaml"), "replicas: 4\n").expect("write");
    let path = dir.path().to_str().expect("path");
    let out = paved(&["render", path, "--env", "prod", "--target", "kubernetes"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    for expected in [
        "kind: Deployment",
        "replicas: 4",
        &format!("image: registry.paved.local/api@{digest}"),
        "readOnlyRootFilesystem: true",
        "runAsNonRoot: true",
        "kind: NetworkPolicy",
        "kind: PodDisruptionBudget",
        "namespace: prod",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert!(!yaml.contains("HTTPRoute"), "no route without a canary");
    let out = paved(&["render", path, "--env", "prod", "--target", "kubernetes", "--canary-weight", "10"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(yaml.contains("kind: HTTPRoute") && yaml.contains("name: api-canary") && yaml.contains("weight: 90"), "{yaml}");

    // The operator's default schedule of the environment, for a spec without one.
    std::fs::write(dir.path().join("schedules.yaml"), "pr-*:\n  uptime: \"Mon-Fri 08:00-18:00 UTC\"\n").expect("write");
    let defaults = dir.path().join("schedules.yaml");
    let defaults = ["--schedule-defaults", defaults.to_str().expect("path")];
    let out = paved(&[&["render", path, "--env", "pr-7", "--target", "kubernetes"][..], &defaults].concat()).await;
    let yaml = text(&out.stdout);
    assert!(yaml.contains("downscaler/uptime: Mon-Fri 08:00-18:00 UTC"), "{yaml}{}", text(&out.stderr));
    let out = paved(&[&["render", path, "--env", "prod", "--target", "kubernetes"][..], &defaults].concat()).await;
    assert!(out.status.success() && !text(&out.stdout).contains("uptime"), "no default for prod: {}", text(&out.stdout));
    std::fs::write(dir.path().join("schedules.yaml"), "pr-*:\n  uptime: \"Mon-Fri 08:00\"\n").expect("write");
    let out = paved(&[&["render", path, "--env", "pr-7", "--target", "kubernetes"][..], &defaults].concat()).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success() && stderr.contains("schedules.yaml:2:11: invalid range"), "{stderr}");

    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-score");
    let out = paved(&["render", example.to_str().expect("path"), "--env", "dev", "--target", "kubernetes"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("runs artifacts pinned by digest"), "{}", text(&out.stderr));
    let out = paved(&["render", path, "--env", "prod", "--target", "kubernetes", "--apply", "--kubeconfig", "/nonexistent"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no kubeconfig"), "{}", text(&out.stderr));
}

/// A revision is what runs, never where its spec was read from: the same
/// spec planned and deployed from a copy in another directory (another
/// checkout, as CI makes on every run) changes nothing; an update of an
/// unchanged spec names its real cause.
#[tokio::test]
async fn the_same_spec_from_another_directory_is_the_same_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&up_options(dir.path().join("data"))).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let endpoint = platform.addr.to_string();
    let token = platform.root_token.clone();
    let run = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--endpoint", &endpoint]);
        paved_with(&token, &args)
    };
    let write = |checkout: &str, name: &str, command: &str| {
        let svc = dir.path().join(checkout);
        std::fs::create_dir_all(&svc).expect("mkdir");
        let spec = format!("name: {name}\ncommand: [{command}]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: one\n");
        std::fs::write(svc.join("paved.yaml"), spec).expect("write");
        svc.to_str().expect("path").to_string()
    };
    let first = write("checkout-1", "svc", "\"hello\"");
    let out = run(&["deploy", &first, "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "revision 1 of svc: promoted\n");

    let copy = write("checkout-2", "svc", "\"hello\"");
    let out = run(&["plan", &copy, "--env", "dev", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "nothing to change: {}{}", text(&out.stdout), text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((plan["action"].as_str(), plan["reason"].as_str()), (Some("none"), Some("revision 1 runs this spec")), "{plan}");
    let out = run(&["deploy", &copy, "--env", "dev", "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deployed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((deployed["revision"].as_i64(), deployed["state"].as_str()), (Some(1), Some("unchanged")), "{deployed}");

    // A first revision that fails (its command does not exist; nothing to
    // roll back to), then the same spec again: an update, and the plan
    // says which revision failed and why.
    let broken = write("checkout-3", "broken", "\"no-such-command-here\"");
    let out = run(&["deploy", &broken, "--env", "dev"]).await;
    assert!(!out.status.success(), "the broken revision is not promoted: {}", text(&out.stdout));
    let out = run(&["plan", &broken, "--env", "dev"]).await;
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.starts_with("broken in dev: update"), "{said}");
    assert!(said.contains("(the same spec: revision 1 runs this spec but is failed: program \"no-such-command-here\" not found"), "{said}");
    platform.stop().await.expect("stop");
}

/// Shell completions and man pages come from the commands themselves.
#[tokio::test]
async fn completions_and_man_pages_cover_every_command() {
    for (shell, marker) in [("bash", "_paved()"), ("zsh", "#compdef paved"), ("fish", "complete -c paved")] {
        let out = paved(&["completions", shell]).await;
        let script = text(&out.stdout);
        assert!(out.status.success() && script.contains(marker) && script.contains("rightsize"), "{shell}: {}", text(&out.stderr));
    }
    let out = paved(&["completions", "tcsh"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("invalid value 'tcsh'"), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().expect("temp dir");
    let out = paved(&["man", "--dir", dir.path().to_str().expect("path")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("paved-deploy.1")).expect("a page per command");
    assert!(page.starts_with(".ie") || page.contains(".TH paved-deploy"), "{page}");
    assert!(dir.path().join("paved.1").is_file() && dir.path().join("paved-cost-rightsize.1").is_file());
}

/// `paved init` scaffolds workloads that `paved deploy` takes live as they
/// are: the HTTP one answers on its endpoint, the worker is healthy; a
/// directory in use is refused.
#[tokio::test]
async fn init_scaffolds_workloads_that_deploy_as_they_are() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = paved_integration_tests::ready(&up_options(dir.path().join("data"))).await;
    for (name, template) in [("shop", "http"), ("mailer", "worker")] {
        let target = dir.path().join(name);
        let target = target.to_str().expect("path");
        let out = paved(&["init", name, "--template", template, "--team", "demo", "--dir", target]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("Take it live:  paved deploy {target} --env dev")), "{}", text(&out.stdout));
        let out = paved_integration_tests::paved_on(&platform, &["deploy", target, "--env", "dev"]).await;
        assert!(out.status.success(), "{name}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    let status =
        paved::status::status(paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"))
            .await
            .expect("status");
    let shop = status.workloads.iter().find(|w| w.name == "shop").expect("shop");
    let answer = crate::services::http_get(shop.endpoint.trim_start_matches("http://"), "/").await;
    assert!(answer.starts_with("hello from shop ("), "{answer}");
    let mailer = status.workloads.iter().find(|w| w.name == "mailer").expect("mailer");
    assert_eq!(mailer.state, "healthy");
    let out = paved(&["init", "again", "--dir", dir.path().join("shop").to_str().expect("path")]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("exists and is not empty"), "{}", text(&out.stderr));
    let out = paved(&["init", "Bad_Name"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("invalid workload name"), "{}", text(&out.stderr));
    platform.stop().await.expect("stop");
}
