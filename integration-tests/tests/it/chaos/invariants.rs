//! What a chaos run checks of the event flow once the faults have ended,
//! each a `PASS`/`FAIL` line: the outboxes drained, every consumer group
//! through every stream, the audit log holding each event once.
//!
//! The event ids come from the streams themselves (Redis keeps every entry
//! of a run this short: far under the streams' length limit), so an event
//! a relay published twice counts once, and one never published is caught
//! by the outbox check instead.

use super::{
    leases::Leased,
    tokens::{Revocation, refused_everywhere},
};
use crate::compose::Platform;
use redis::Value;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

/// The run's verdicts, printed as they come.
#[derive(Default)]
pub(crate) struct Checks {
    pub(crate) failed: Vec<String>,
}

impl Checks {
    pub(crate) fn check(&mut self, ok: bool, line: String) {
        println!("chaos: {} {line}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            self.failed.push(line);
        }
    }
}

/// The services' databases, by the suffix compose.yaml gives them.
const DATABASES: [&str; 5] = ["provisioner", "secrets_broker", "canary_analyzer", "cost_scheduler", "audit"];

/// How long the flow may take to settle after the faults.
const SETTLE: Duration = Duration::from_secs(90);

async fn database(platform: &Platform, service: &str) -> DatabaseConnection {
    paved_store::connect(&platform.database(service)).await.unwrap_or_else(|e| panic!("{service}'s database: {e}"))
}

async fn number(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.expect("a row").try_get_by_index::<i64>(0).expect("a number")
}

/// Rows left in each service's outbox (of those that have one).
async fn outbox_rows(platform: &Platform) -> BTreeMap<&'static str, i64> {
    let mut rows = BTreeMap::new();
    for service in DATABASES {
        let db = database(platform, service).await;
        if number(&db, "SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'").await > 0 {
            rows.insert(service, number(&db, "SELECT count(*) FROM outbox").await);
        }
    }
    rows
}

pub(crate) async fn outboxes_drained(platform: &Platform, checks: &mut Checks) {
    let began = Instant::now();
    let rows = loop {
        let rows = outbox_rows(platform).await;
        if rows.values().all(|n| *n == 0) || began.elapsed() > SETTLE {
            break rows;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    checks.check(
        !rows.is_empty() && rows.values().all(|n| *n == 0),
        format!("every committed outbox row was relayed: rows left {rows:?}, {:.1} s after the faults", began.elapsed().as_secs_f64()),
    );
}

/// A Redis reply's map (RESP2's flat list of names and values).
fn fields(value: &Value) -> BTreeMap<String, Value> {
    let items = match value {
        Value::Array(items) => items.clone(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
        other => panic!("not a map: {other:?}"),
    };
    items.chunks(2).map(|kv| (redis::from_redis_value::<String>(kv[0].clone()).expect("a name"), kv[1].clone())).collect()
}

fn integer(value: Option<&Value>) -> Option<i64> {
    value.and_then(|v| redis::from_redis_value::<i64>(v.clone()).ok())
}

/// The streams' keys.
async fn streams(conn: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(conn).await.expect("KEYS");
    let mut streams = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(conn).await.expect("TYPE");
        if kind == "stream" {
            streams.push(key);
        }
    }
    streams.sort();
    streams
}

/// The groups of every stream not through it yet (entries pending an ack,
/// or not delivered), as `stream/group: pending p, lag l`.
async fn behind(conn: &mut redis::aio::MultiplexedConnection) -> (usize, Vec<String>) {
    let mut groups = 0;
    let mut behind = Vec::new();
    for stream in streams(conn).await {
        let reply: Vec<Value> = redis::cmd("XINFO").arg("GROUPS").arg(&stream).query_async(conn).await.expect("XINFO GROUPS");
        for group in reply.iter().map(fields) {
            groups += 1;
            let name = redis::from_redis_value::<String>(group["name"].clone()).expect("a group's name");
            // Redis 7 counts `lag`; nil when it cannot tell, which a
            // group through the stream never is.
            let (pending, lag) = (integer(group.get("pending")), integer(group.get("lag")));
            if pending != Some(0) || lag != Some(0) {
                behind.push(format!("{stream}/{name}: pending {pending:?}, lag {lag:?}"));
            }
        }
    }
    (groups, behind)
}

pub(crate) async fn groups_through(redis_url: &str, checks: &mut Checks) {
    let mut conn = redis::Client::open(redis_url).expect("Redis URL").get_multiplexed_async_connection().await.expect("Redis");
    let began = Instant::now();
    let (groups, behind) = loop {
        let (groups, behind) = behind(&mut conn).await;
        if behind.is_empty() || began.elapsed() > SETTLE {
            break (groups, behind);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    checks.check(
        groups > 0 && behind.is_empty(),
        format!("every consumer group read and acknowledged every entry: {groups} groups, behind {behind:?}"),
    );
    // A consumer gives an event up to `<stream>.dead` only when the event
    // itself is at fault (never for an outage); none here is.
    let mut dead = BTreeMap::new();
    for stream in streams(&mut conn).await.into_iter().filter(|s| s.ends_with(".dead")) {
        let len: usize = redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await.expect("XLEN");
        dead.insert(stream, len);
    }
    checks.check(dead.values().all(|n| *n == 0), format!("no event was dead-lettered: {dead:?}"));
}

/// Every event id in the streams, and how many entries carried them.
async fn event_ids(redis_url: &str) -> (BTreeSet<String>, usize) {
    let mut conn = redis::Client::open(redis_url).expect("Redis URL").get_multiplexed_async_connection().await.expect("Redis");
    let (mut ids, mut entries) = (BTreeSet::new(), 0);
    for stream in streams(&mut conn).await.into_iter().filter(|s| !s.ends_with(".dead")) {
        let mut start = "-".to_string();
        loop {
            let page: Vec<(String, BTreeMap<String, Vec<u8>>)> =
                redis::cmd("XRANGE").arg(&stream).arg(&start).arg("+").arg("COUNT").arg(1000).query_async(&mut conn).await.expect("XRANGE");
            let Some((last, _)) = page.last() else { break };
            start = format!("({last}");
            for (id, fields) in &page {
                let payload = fields.get("e").unwrap_or_else(|| panic!("{stream} {id}: no payload"));
                let envelope = paved_stream::event::decode(payload).unwrap_or_else(|e| panic!("{stream} {id}: {e}"));
                ids.insert(envelope.id);
                entries += 1;
            }
        }
    }
    (ids, entries)
}

pub(crate) async fn audit_holds_every_event(platform: &Platform, redis_url: &str, checks: &mut Checks) {
    let audit = database(platform, "audit").await;
    // Events still come (refusals, revocations): the log has until SETTLE
    // to hold those published so far.
    let began = Instant::now();
    let (ids, entries, leaves) = loop {
        let (ids, entries) = event_ids(redis_url).await;
        let rows = audit
            .query_all_raw(Statement::from_string(audit.get_database_backend(), "SELECT event_id FROM log_leaves"))
            .await
            .expect("the log's leaves");
        let leaves: BTreeSet<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).expect("an id")).collect();
        if ids.is_subset(&leaves) || began.elapsed() > SETTLE {
            break (ids, entries, leaves);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let missing: Vec<&String> = ids.difference(&leaves).collect();
    // Once: the leaves' event ids are a unique key.
    checks.check(
        !ids.is_empty() && missing.is_empty(),
        format!(
            "the audit log holds every event (once: by unique id): {} events in {entries} stream entries, {} leaves; missing {missing:?}",
            ids.len(),
            leaves.len()
        ),
    );
}

/// How long the faults in `windows` (each a start and an end) lasted
/// between `from` and `to`.
fn faulted(windows: &[(Instant, Instant)], from: Instant, to: Instant) -> Duration {
    windows.iter().map(|(start, end)| (*end).min(to).saturating_duration_since((*start).max(from))).sum()
}

/// How long after its revocation a token may still be taken somewhere:
/// the key set's poll (1 s) and a restart's or a reconnection's recovery
/// (2 s), plus however long faults lasted in between (`windows`, each a
/// fault's start and end): a service cut off from the broker, or a broker
/// without its database, learns nothing until that ends.
const REVOCATION_BOUND: Duration = Duration::from_secs(3);

/// Every revoked token refused by every service within its bound (see
/// [`REVOCATION_BOUND`]), and by all of them still at the end. (The
/// tokens are never printed: only how many, and how soon.)
pub(crate) async fn revocations_held(
    revocations: &[Revocation],
    channels: &BTreeMap<String, tonic::transport::Channel>,
    windows: &[(Instant, Instant)],
    begun: Instant,
    checks: &mut Checks,
) {
    let mut times: Vec<Duration> = revocations.iter().filter_map(|r| r.refused_after.as_ref().map(|(t, _)| *t)).collect();
    times.sort();
    let late: Vec<String> = revocations
        .iter()
        .filter(|r| r.refused_after.as_ref().is_none_or(|(t, _)| *t > REVOCATION_BOUND + faulted(windows, r.revoked, r.revoked + *t)))
        .map(|r| {
            let at = r.revoked.duration_since(begun).as_secs_f64();
            match &r.refused_after {
                Some((t, last)) => format!("revoked at {at:.1} s, {last} refused it {:.1} s later", t.as_secs_f64()),
                None => format!("revoked at {at:.1} s, never refused everywhere"),
            }
        })
        .collect();
    let (median, slowest) = (times.get(times.len() / 2).copied().unwrap_or_default(), times.last().copied().unwrap_or_default());
    checks.check(
        !revocations.is_empty() && late.is_empty(),
        format!(
            "every revoked token was refused by every service within {REVOCATION_BOUND:?} of its revocation, plus the time faults lasted in between: {} revoked, median {median:?}, slowest {slowest:?}; late {late:?}",
            revocations.len()
        ),
    );
    let mut accepted = 0;
    for revocation in revocations {
        accepted += usize::from(!refused_everywhere(channels, &revocation.token).await);
    }
    checks.check(
        accepted == 0,
        format!("every revoked token is refused everywhere after the run: {accepted} of {} accepted somewhere", revocations.len()),
    );
}

/// How long after its expiry a lease's role may still be there: the
/// broker's look for due leases (every 500 ms), the drop, and the
/// sampling (200 ms); plus twice the time faults lasted in between (the
/// retries' backoff doubles from 1 s).
const LEASE_BOUND: Duration = Duration::from_secs(2);

/// No leased role outlived its lease past [`LEASE_BOUND`]; `seen` is when
/// each role was last seen, `left` whether any was still there when the
/// run stopped waiting.
pub(crate) fn leases_ended(
    leased: &[Leased],
    seen: &BTreeMap<String, Instant>,
    left: bool,
    windows: &[(Instant, Instant)],
    checks: &mut Checks,
) {
    let mut overstays: Vec<Duration> = Vec::new();
    let mut late = Vec::new();
    for lease in leased {
        // Every role lives for its lease's 4 s at least, and is sampled
        // every 200 ms: one never seen means the sampling failed.
        let Some(last) = seen.get(&lease.role) else {
            late.push(format!("{} never seen", lease.role));
            continue;
        };
        let overstay = last.saturating_duration_since(lease.expires);
        let allowed = LEASE_BOUND + 2 * faulted(windows, lease.expires, *last);
        if overstay > allowed {
            late.push(format!("{} {:.1} s past its expiry ({:.1} s allowed)", lease.role, overstay.as_secs_f64(), allowed.as_secs_f64()));
        }
        overstays.push(overstay);
    }
    overstays.sort();
    let slowest = overstays.last().copied().unwrap_or_default();
    checks.check(
        !leased.is_empty() && !left && late.is_empty(),
        format!(
            "no leased PostgreSQL role outlived its lease by more than {LEASE_BOUND:?}, plus twice the time faults lasted in between: {} leases, {} of their roles seen, slowest drop {slowest:?} after expiry, {}; late {late:?}",
            leased.len(),
            overstays.len(),
            if left { "some still there at the end" } else { "none left" }
        ),
    );
}
