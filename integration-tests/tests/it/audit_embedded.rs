//! The audit log in embedded mode: `paved up` killed with SIGKILL while
//! tokens are being issued (each a broker event, committed with the token
//! in SQLite), then started again on the same data directory. Every token
//! issued is in the log once, its workload's chain checks (nothing left
//! out), and `paved audit verify` passes.

use crate::secrets::{kill, paved_at, stop, up};
use paved_integration_tests::{eventually, text};
use std::time::Duration;

#[tokio::test]
async fn an_embedded_platform_killed_while_appending_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    // A workload's identity as the subject: its events form one chain.
    let issue = |endpoint: &str, token: &str| {
        let args = ["token", "issue", "--subject", "spiffe://paved/dev/killtest", "--scope", "read:audit", "--ttl", "1h"];
        paved_at(endpoint, &path, token, &args, None)
    };
    let first = up(dir.path(), 0);
    let mut issued = 0;
    for _ in 0..20 {
        issued += usize::from(issue(&first.endpoint, &first.root).await.status.success());
    }
    assert_eq!(issued, 20);
    // Forty more at once, the platform killed among them.
    let pending: Vec<_> = (0..40).map(|_| tokio::spawn(issue(&first.endpoint, &first.root))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(first);
    for p in pending {
        issued += usize::from(p.await.expect("issue").status.success());
    }

    let second = up(dir.path(), 1);
    let key = text(&paved_at(&second.endpoint, &path, "", &["audit", "key"], None).await.stdout).trim().to_string();
    let query = ["audit", "query", "--workload", "killtest", "--env", "dev", "--key", &key, "--output", "json"];
    let logged: Vec<serde_json::Value> = eventually("every issued token in the log", Duration::from_secs(60), || {
        let out = paved_at(&second.endpoint, &path, &second.root, &query, None);
        async move {
            let out = out.await;
            assert!(
                out.status.success() || text(&out.stderr).contains("NO_CHECKPOINT") || text(&out.stderr).contains("checkpoint"),
                "{}",
                text(&out.stderr)
            );
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            let tokens: Vec<serde_json::Value> =
                rows.into_iter().filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("token.issued"))).collect();
            (tokens.len() >= issued).then_some(tokens)
        }
    })
    .await;
    assert!(issued < 60, "the kill came after every token was issued: nothing was in flight");
    // A token issued when the kill came may be committed with its answer lost.
    assert!(logged.len() <= 60, "{} leaves for at most 60 tokens", logged.len());
    let ids: std::collections::HashSet<&str> = logged.iter().map(|r| r["event_id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), logged.len(), "an event twice in the log");
    let out = paved_at(&second.endpoint, &path, &second.root, &["audit", "verify", "--key", &key], None).await;
    assert!(text(&out.stdout).starts_with("verified: "), "{}{}", text(&out.stdout), text(&out.stderr));
    stop(second);
}
