//! Zero dropped requests on a switch: a workload under steady load through
//! rollouts promoted, rolled back by the analyzer and rolled back on
//! command, with every request answered by the workload itself (a bad
//! canary's own errors are its, not the platform's).
//!
//! `PAVED_SWITCH_ROLLOUTS` (default 6) and `PAVED_SWITCH_REQUESTS` (default
//! 0) say how long it runs: until both are reached. `cargo xtask bench
//! switch` runs it with 50 and 1,000,000.

use crate::rollouts::{embedded, endpoint_of};
use paved_integration_tests::{Load, paved_with, text};
use std::time::{Duration, Instant};

/// Keep-alive clients on the workload, all along: as many sending GETs
/// (which the proxy may send again) as POSTs (which it may not), each
/// answered in 2 ms, and a few POSTs answered in 100 ms, so that some are
/// in flight at every switch.
const WORKERS: usize = 4;
const SLOW: &str = "/?latency_ms=100";

/// `web` exits at once on SIGTERM, failing what it has not answered: only
/// a drain before the stop saves those.
fn spec(version: u32, bad: bool) -> String {
    let errors = if bad { "0.5" } else { "0" };
    format!(
        "name: web\ncommand: [hello]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 2s\n  max_error_rate: 0.05\nenv:\n  HELLO_VERSION: v{version}\n  HELLO_ERROR_RATE: \"{errors}\"\n  HELLO_LATENCY_MS: \"2\"\n  HELLO_STOP: immediate\n"
    )
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a count")))
}

#[tokio::test]
async fn no_request_is_dropped_through_rollouts_and_rollbacks() {
    let (rollouts, requests) = (setting("PAVED_SWITCH_ROLLOUTS", 6), setting("PAVED_SWITCH_REQUESTS", 0));
    let (_dir, platform, svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path");
    let deploy = |version: u32, bad: bool| {
        std::fs::write(svc.join("paved.yaml"), spec(version, bad)).expect("write spec");
        paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--endpoint", &endpoint])
    };
    let out = deploy(1, false).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let web = endpoint_of(&endpoint, &platform.root_token, "web").await;

    // The baseline: the same load with nothing switching.
    let (getting, posting, slow) = (Load::start(&web, WORKERS), Load::posting(&web, "/", WORKERS), Load::posting(&web, SLOW, WORKERS));
    let answered = || getting.answered() + posting.answered() + slow.answered();
    let begun = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady_rate = answered() as f64 / begun.elapsed().as_secs_f64();

    let (mut promoted, mut rolled_back, mut on_command) = (0, 0, 0);
    let (begun, before) = (Instant::now(), answered());
    let mut version = 2;
    // A load that stalled would never reach its count (its requests fail
    // as dropped, after 10 s each).
    let deadline = Duration::from_secs(600) + Duration::from_millis(requests as u64 * 10);
    while promoted + rolled_back < rollouts || answered() - before < requests {
        assert!(begun.elapsed() < deadline, "not done within {deadline:?}: {} requests answered", answered() - before);
        let bad = version % 3 == 0;
        let out = deploy(version, bad).await;
        let stderr = text(&out.stderr);
        if bad {
            assert_eq!(out.status.code(), Some(1), "v{version} (bad) was not rolled back:\n{stderr}");
            assert!(stderr.contains("rolled_back"), "{stderr}");
            rolled_back += 1;
        } else {
            assert!(out.status.success(), "v{version} was not promoted:\n{stderr}");
            promoted += 1;
            // Now and then back to the standby and forth again, on command.
            if promoted % 4 == 0 {
                for _ in 0..2 {
                    let out = paved_with(&platform.root_token, &["rollback", "web", "--env", "dev", "--endpoint", &endpoint]).await;
                    assert!(out.status.success(), "paved rollback: {}", text(&out.stderr));
                    on_command += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        version += 1;
    }
    let elapsed = begun.elapsed().as_secs_f64();
    let answered = answered() - before;
    let (gets, posts, slows) = (getting.dropped(), posting.dropped(), slow.dropped());
    let (dropped, seen) = (gets.0 + posts.0 + slows.0, [gets.1, posts.1, slows.1].concat());
    drop((getting, posting, slow));
    println!(
        "switch: {answered} requests in {elapsed:.0} s through {promoted} promotions, {rolled_back} rollbacks by the analyzer and {on_command} on command: {dropped} dropped; {:.0} requests/s against {steady_rate:.0} with nothing switching ({:.2}x)",
        answered as f64 / elapsed,
        answered as f64 / elapsed / steady_rate
    );
    assert_eq!(dropped, 0, "requests the platform failed, the first of them: {seen:#?}");
    assert!(promoted > 0 && rolled_back > 0, "both ends were switched to");
    platform.stop().await.expect("stop");
}
