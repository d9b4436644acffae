//! Every command of the README's "Using it" block, run as written against a
//! live `paved up` (the endpoint and token from `PAVED_ENDPOINT` and
//! `PAVED_TOKEN`, as a logged-in shell has them). `a|b` runs each, `[x]` runs
//! without and with it, `<id>` is the rollout `--detach` printed; the test
//! fails when the README holds a command it does not run.

use paved::up::{CostOptions, UpOptions};
use paved_integration_tests::{clean_command, eventually, ready, text, up_options};
use std::{collections::BTreeSet, path::Path, process::Output, time::Duration};

/// The README's "Using it" commands, comments stripped.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README.md");
    let section = readme.split("## Using it").nth(1).expect("a Using it section");
    let block = section.split("```sh").nth(1).and_then(|b| b.split("```").next()).expect("its sh block");
    block
        .lines()
        .map(|l| l.split("  #").next().unwrap_or_default().trim().to_string())
        .filter(|l| l.starts_with("paved ") || l.starts_with("curl "))
        .collect()
}

/// A line as the commands it stands for: `a|b` each, `[x]` without and with.
fn expand(line: &str) -> Vec<String> {
    if let Some(start) = line.find('[') {
        let end = start + line[start..].find(']').expect("a closing ]");
        let (before, option, after) = (&line[..start], &line[start + 1..end], &line[end + 1..]);
        let without = format!("{}{}", before.trim_end(), after);
        let with = format!("{before}{option}{after}");
        return [expand(&without), expand(&with)].concat();
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.iter().position(|w| w.contains('|')) {
        Some(i) => {
            words[i].split('|').flat_map(|alternative| expand(&[&words[..i], &[alternative], &words[i + 1..]].concat().join(" "))).collect()
        }
        None => vec![words.join(" ")],
    }
}

struct Shell {
    dir: std::path::PathBuf,
    env: Vec<(String, String)>,
    ran: BTreeSet<String>,
}

impl Shell {
    /// Runs `command` as written (whitespace-separated, no quoting in the
    /// README), `<id>` replaced by `id`.
    async fn run(&mut self, command: &str, id: &str) -> Output {
        self.ran.insert(command.to_string());
        self.command(command, id).output().await.expect("run paved")
    }

    fn command(&self, command: &str, id: &str) -> tokio::process::Command {
        let words: Vec<String> = command.split_whitespace().map(|w| w.replace("<id>", id)).collect();
        assert_eq!(words[0], "paved", "{command}");
        let mut cmd = clean_command("paved");
        cmd.args(&words[1..]).current_dir(&self.dir).envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `command` until it succeeds (what it waits for comes by itself).
    async fn ok_within(&mut self, what: &str, command: &str, id: &str) -> String {
        self.ran.insert(command.to_string());
        let out = eventually(what, Duration::from_secs(60), || {
            let mut cmd = self.command(command, id);
            async move { cmd.output().await.ok().filter(|o| o.status.success()) }
        })
        .await;
        text(&out.stdout)
    }

    /// `command`, which must succeed; its standard output.
    async fn ok(&mut self, command: &str, id: &str) -> String {
        let out = self.run(command, id).await;
        assert!(out.status.success(), "`{command}` failed:\n{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }
}

#[tokio::test]
async fn every_readme_command_runs_as_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cost = CostOptions { sample_seconds: Some(1), ..Default::default() };
    let platform = ready(&UpOptions { example: true, cost, ..up_options(dir.path().join("data")) }).await;
    // A checkout's working directory: `examples/` beside what `paved init` makes.
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::os::unix::fs::symlink(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"), work.join("examples")).expect("link examples");
    let env = [("PAVED_ENDPOINT", platform.addr.to_string()), ("PAVED_TOKEN", platform.root_token.clone())];
    let mut sh = Shell { dir: work.clone(), env: env.map(|(k, v)| (k.to_string(), v)).to_vec(), ran: BTreeSet::new() };
    let commands: Vec<String> = readme_commands().iter().flat_map(|l| expand(l)).collect();
    let want: BTreeSet<String> = commands.iter().cloned().collect();
    assert!(want.len() >= 30, "{want:#?}");

    sh.ok("paved init my-service", "").await;
    sh.ok("paved deploy my-service --env dev", "").await;
    assert!(sh.ok("paved status", "").await.contains("my-service"));
    let status: serde_json::Value = serde_json::from_str(&sh.ok("paved status --output json", "").await).expect("JSON");
    let hello = status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == "hello").expect("hello");
    let endpoint = hello["endpoint"].as_str().expect("endpoint").to_string();
    // `curl http://<hello endpoint>/`
    sh.ran.insert("curl http://<hello endpoint>/".into());
    let (status, _, body) = paved_integration_tests::http_get(&format!("http://{endpoint}/")).await;
    assert!(status.is_success() && text(&body).starts_with("hello from"), "{status}: {}", text(&body));

    let plan = sh.run("paved plan examples/hello --env dev", "").await;
    assert!(matches!(plan.status.code(), Some(0 | 2)), "plan: {}", text(&plan.stderr));
    sh.ok("paved deploy examples/hello --env dev", "").await;
    // Unchanged, the detached deploy says so; changed (as a developer would
    // change it), it prints the new rollout's id at once.
    sh.ok("paved deploy ./my-service --env dev --detach", "").await;
    let spec = work.join("my-service/paved.yaml");
    let original = std::fs::read_to_string(&spec).expect("spec");
    assert!(!original.contains("\nenv:"), "the template's spec sets no environment yet:\n{original}");
    std::fs::write(&spec, format!("{original}env:\n  GREETING: hello again\n")).expect("write spec");
    let id = sh.ok("paved deploy ./my-service --env dev --detach", "").await.trim().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a rollout id: {id:?}");

    // Steering it: held, continued, promoted once its canary takes traffic.
    sh.ok("paved rollout get <id>", &id).await;
    sh.ok("paved rollout pause <id>", &id).await;
    sh.ok("paved rollout resume <id>", &id).await;
    sh.ok_within("the canary taking traffic, to promote", "paved rollout promote <id>", &id).await;
    assert!(sh.ok("paved rollout watch <id>", &id).await.contains("promoted"));
    // Ended, it can no longer be aborted, and says why.
    let abort = sh.run("paved rollout abort <id>", &id).await;
    assert!(!abort.status.success() && text(&abort.stderr).contains("ended"), "{}", text(&abort.stderr));
    sh.ok("paved rollout list hello --env dev", "").await;
    sh.ok("paved traffic hello --env dev", "").await;

    for command in [
        "paved sleep hello --env dev",
        "paved wake hello --env dev",
        "paved sleep hello --env dev --for 2h",
        "paved wake hello --env dev --for 2h",
    ] {
        sh.ok(command, "").await;
    }
    sh.ok("paved cost report --by team", "").await;
    sh.ok("paved cost report --by team --since 30d", "").await;
    let report: serde_json::Value = serde_json::from_str(&sh.ok("paved cost report --by team --output json", "").await).expect("JSON");
    assert!(report["lines"].is_array(), "{report}");
    let report: serde_json::Value =
        serde_json::from_str(&sh.ok("paved cost report --by team --since 30d --output json", "").await).expect("JSON");
    assert!(report["lines"].is_array(), "{report}");
    sh.ok("paved cost budget set --team shop --env dev --monthly 200", "").await;
    // Right-sizing needs ten samples of hello's use (one a second here).
    sh.ok_within("ten samples of hello's use", "paved cost rightsize hello --env dev", "").await;
    sh.ok("paved cost rightsize hello --env dev --vpa", "").await;
    sh.ok("paved cost rightsize hello --env dev --apply", "").await;
    sh.ok("paved cost rightsize hello --env dev --vpa --apply", "").await;
    // hello now has a second revision: roll back to the first.
    sh.ok("paved rollback hello --env dev", "").await;

    let missed: Vec<&String> = want.difference(&sh.ran).collect();
    assert!(missed.is_empty(), "README commands this test does not run: {missed:#?}");
    let extra: Vec<&String> = sh.ran.difference(&want).collect();
    assert!(extra.is_empty(), "commands run that the README does not hold: {extra:#?}");
    platform.stop().await.expect("stop");
}
