//! The SDKs against a live platform: the Python SDK's test suite
//! (`sdk/python/tests`, pytest, in the virtualenv `cargo xtask test`
//! prepares: `PAVED_PYTHON_SDK`) and the TypeScript SDK's (`sdk/typescript/
//! test`, `node --test`, on the build `cargo xtask test` makes), each against
//! an embedded `paved up` started here.

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
