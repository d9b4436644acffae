//! `init`: a new workload from `paved init` to its first answer, as a user
//! does it — `paved init`, `paved deploy --env dev`, then a request to its
//! endpoint — against the same for a copy of `examples/hello` (`paved
//! deploy` and a request), measured in the same run on one platform.
//! Target: init → live in under 5 s.

use crate::{
    measure::{median, ms},
    pipeline::{Platform, get},
};
use anyhow::{Context, bail};
use paved_proto::provisioner::v1::GetWorkloadRequest;
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

const RUNS: usize = 5;

pub fn run(bin: &Path) -> anyhow::Result<()> {
    let platform = Platform::start(bin, "init")?;
    let dir = crate::measure::work_dir("init-work")?;
    let hello = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/paved.yaml"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let paved = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new(bin.join("paved"))
            .args(args)
            .args(["--endpoint", &platform.endpoint])
            .env("PAVED_TOKEN", &platform.token)
            .env("PAVED_CONFIG_DIR", dir.join("cli"))
            .output()?;
        if !out.status.success() {
            bail!("paved {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let (mut scaffolded, mut example) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        // The baseline: the example, deployed as it is (but for its name).
        let name = format!("hello{i}");
        let svc = dir.join(&name);
        std::fs::create_dir_all(&svc)?;
        std::fs::write(svc.join("paved.yaml"), hello.replace("name: hello", &format!("name: {name}")))?;
        let started = Instant::now();
        paved(&["deploy", svc.to_str().context("path")?, "--env", "dev"])?;
        runtime.block_on(first_answer(&platform, &name, "hello from"))?;
        example.push(started.elapsed());

        let name = format!("new{i}");
        let svc = dir.join(&name);
        let started = Instant::now();
        let out = Command::new(bin.join("paved")).args(["init", &name, "--team", "demo", "--dir"]).arg(&svc).output()?;
        if !out.status.success() {
            bail!("paved init: {}", String::from_utf8_lossy(&out.stderr));
        }
        paved(&["deploy", svc.to_str().context("path")?, "--env", "dev"])?;
        runtime.block_on(first_answer(&platform, &name, &format!("hello from {name}")))?;
        scaffolded.push(started.elapsed());
    }
    let (new, hello) = (median(scaffolded), median(example));
    println!("bench init: paved init + paved deploy + first answer, median of {RUNS}");
    println!("  examples/hello, deploy + first answer   {:>8.1} ms", ms(hello));
    println!("  paved init → live                        {:>8.1} ms  ({:.2}× the example)", ms(new), ms(new) / ms(hello));
    let _ = std::fs::remove_dir_all(&dir);
    if new >= Duration::from_secs(5) {
        bail!("init → live took {:.1} s: the target is under 5 s", new.as_secs_f64());
    }
    println!("  target < 5 s: met");
    Ok(())
}

/// Waits for the workload's first answer that starts with `expected`.
async fn first_answer(platform: &Platform, name: &str, expected: &str) -> anyhow::Result<()> {
    let mut client = platform.client().await?;
    let request = GetWorkloadRequest { environment: "dev".into(), name: name.into() };
    let endpoint = client.get_workload(request).await?.into_inner().workload.context("workload")?.endpoint;
    let addr = endpoint.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get(&addr).await.is_ok_and(|body| body.starts_with(expected)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
