//! The SDKs against a live platform: the Python SDK's test suite
//! (`sdk/python/tests`, pytest, in the virtualenv `cargo xtask test`
//! prepares: `PAVED_PYTHON_SDK`) and the TypeScript SDK's (`sdk/typescript/
//! test`, `node --test`, on the build `cargo xtask test` makes), each against
//! an embedded `paved up` started here; and a Go client generated from
//! `proto/` alone.

use paved_integration_tests::{text, up_options};
use std::{path::Path, process::Stdio};

/// Runs an SDK's test suite (`program args` in `sdk/<sdk>`) against an
/// embedded `paved up` started for it; its report, the suite passed.
async fn suite(sdk: &str, program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = paved_integration_tests::ready(&up_options(dir.path().join("data"))).await;
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk").join(sdk))
        .envs(env.iter().copied())
        .env("PAVED_ENDPOINT", platform.addr.to_string())
        .env("PAVED_TOKEN", &platform.root_token)
        // No stored login of whoever runs the tests.
        .env("PAVED_CONFIG_DIR", dir.path().join("config"))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "the {sdk} SDK's tests failed:\n{report}");
    platform.stop().await.expect("stop");
    report
}

#[tokio::test]
async fn the_python_sdk_against_a_live_platform() {
    let python = std::env::var("PAVED_PYTHON_SDK").unwrap_or_else(|_| {
        panic!("PAVED_PYTHON_SDK is not set: run the tests through `cargo xtask test`, which prepares the Python SDK's virtualenv")
    });
    // This checkout's SDK, not one installed elsewhere.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/python/src");
    let report = suite("python", &python, &["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], &[("PYTHONPATH", &src)]).await;
    assert!(report.contains(" passed"), "{report}");
}

#[tokio::test]
async fn the_typescript_sdk_against_a_live_platform() {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/typescript/dist/index.js");
    assert!(
        built.is_file(),
        "sdk/typescript is not built: run the tests through `cargo xtask test`, which installs its packages and builds it"
    );
    let report = suite("typescript", "node", &["--test", "test/"], &[]).await;
    assert!(report.contains("# fail 0") && !report.contains("# pass 0"), "{report}");
}

/// Go, which Paved ships no SDK for: a client generated from `proto/` alone
/// with buf's managed mode (`proto/buf.gen.go.yaml` sets `go_package`, which
/// the files leave out) builds with Debian's Go toolchain and gRPC, deploys
/// a spec built in code and decodes a refusal's details
/// (`integration-tests/go-client/main.go`).
#[tokio::test]
async fn a_go_client_generated_in_managed_mode() {
    let buf = std::env::var("PAVED_BUF").unwrap_or_else(|_| {
        panic!("PAVED_BUF is not set: run the tests through `cargo xtask test`, which installs buf and the Go toolchain")
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().expect("temp dir");
    let gopath = dir.path().join("go");
    let module = gopath.join("src/paved.dev");
    let generate = std::process::Command::new(&buf)
        .args(["generate", "--template", "buf.gen.go.yaml", "--output"])
        .arg(module.join("platform"))
        .current_dir(root.join("proto"))
        .output()
        .expect("run buf");
    assert!(generate.status.success(), "buf generate: {}", text(&generate.stderr));
    std::fs::create_dir_all(module.join("client")).expect("mkdir");
    std::fs::copy(root.join("integration-tests/go-client/main.go"), module.join("client/main.go")).expect("copy the client");
    let client = dir.path().join("client");
    // GOPATH mode: Debian's packaged modules (/usr/share/gocode), as no Go
    // module proxy is reachable here.
    let build = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&client)
        .arg(".")
        .current_dir(module.join("client"))
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
        .env("GOCACHE", dir.path().join("cache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run go (cargo xtask test installs it): {e}"));
    assert!(build.status.success(), "go build: {}", text(&build.stderr));

    let platform = paved_integration_tests::ready(&up_options(dir.path().join("data"))).await;
    let out = tokio::process::Command::new(&client)
        .env("PAVED_ENDPOINT", platform.addr.to_string())
        .env("PAVED_TOKEN", &platform.root_token)
        .output()
        .await
        .expect("run the Go client");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    assert!(report.contains("deployed revision 1 of from-go"), "{report}");
    assert!(report.contains("refused: InvalidArgument reason=INVALID_SPEC domain=paved.dev field=spec.health.timeout"), "{report}");
    platform.stop().await.expect("stop");
}
