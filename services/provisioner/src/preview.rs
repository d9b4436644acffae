//! Preview environments: `pr-<n>`, opened from a base spec with a time to
//! live, and destroyed — processes, proxies and records — when closed or
//! when they expire. The event log keeps what they were.

use crate::{Applied, ApplyError, Provisioner, lock, store};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1 as pb;
use sea_orm::{
    ConnectionTrait, DbErr, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use std::time::Duration;

/// How long a preview lives unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(48 * 3600);
/// The longest a preview may live.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub pr: u32,
    pub environment: String,
    pub expire_time_ms: i64,
    pub create_time_ms: i64,
    pub workloads: Vec<String>,
}

pub fn environment(pr: u32) -> String {
    format!("pr-{pr}")
}

fn a(name: &str) -> Alias {
    Alias::new(name)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Provisioner {
    /// Records (or extends) preview `pr` and applies the spec to `pr-<pr>`.
    pub async fn open_preview(
        &self,
        pr: u32,
        ttl: Duration,
        spec_yaml: &str,
        spec_path: &str,
        request_id: &str,
    ) -> Result<(Preview, Applied), ApplyError> {
        let env = environment(pr);
        let expire = now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        // The spec is checked (and the gate asked) before anything is recorded.
        let applied = {
            let spec = paved_spec::parse(spec_yaml, if spec_path.is_empty() { "paved.yaml" } else { spec_path })?;
            let decision = self.decide(&env, &spec).await?;
            if !decision.allowed() {
                return Err(ApplyError::Denied(decision));
            }
            let txn = self.db().begin().await?;
            let upsert = Query::insert()
                .into_table(a("previews"))
                .columns(["environment", "pr", "expire_time_ms", "create_time_ms"].map(a))
                .values_panic([env.clone().into(), i64::from(pr).into(), expire.into(), now_ms().into()])
                .on_conflict(OnConflict::column(a("environment")).update_column(a("expire_time_ms")).to_owned())
                .to_owned();
            txn.execute(&upsert).await?;
            let payload = Payload::PreviewOpened(pb::PreviewOpened { environment: env.clone(), pr: pr as i32, expire_time_ms: expire });
            store::emit(&txn, "paved.provisioner.v1.preview.opened", &env, "", payload).await?;
            txn.commit().await?;
            self.apply(&env, spec_yaml, spec_path, request_id).await?
        };
        let preview = self.preview(pr).await?.ok_or_else(|| DbErr::RecordNotFound(env.clone()))?;
        Ok((preview, applied))
    }

    pub async fn preview(&self, pr: u32) -> Result<Option<Preview>, DbErr> {
        Ok(self.previews().await?.into_iter().find(|p| p.pr == pr))
    }

    pub async fn previews(&self) -> Result<Vec<Preview>, DbErr> {
        let query = Query::select()
            .columns(["environment", "pr", "expire_time_ms", "create_time_ms"].map(a))
            .from(a("previews"))
            .order_by(a("pr"), Order::Asc)
            .to_owned();
        let mut out = Vec::new();
        for row in self.db().query_all(&query).await? {
            let environment: String = row.try_get("", "environment")?;
            let pr: i32 = row.try_get("", "pr")?;
            let workloads = store::list_workloads(self.db(), &environment, 1000, 0).await?.into_iter().map(|w| w.name).collect();
            out.push(Preview {
                pr: u32::try_from(pr).map_err(|_| DbErr::Type(format!("preview number {pr}")))?,
                environment,
                expire_time_ms: row.try_get("", "expire_time_ms")?,
                create_time_ms: row.try_get("", "create_time_ms")?,
                workloads,
            });
        }
        Ok(out)
    }

    /// Destroys preview `pr`: its records go in one transaction (with the
    /// `preview.closed` event), then its rollouts' drivers end, its
    /// processes stop and its proxies close. Returns the workloads destroyed;
    /// None when there was no such preview.
    pub async fn close_preview(&self, pr: u32, reason: &str) -> Result<Option<Vec<String>>, DbErr> {
        let env = environment(pr);
        let _apply = self.inner.apply_lock.lock().await;
        let txn = self.db().begin().await?;
        let known = txn
            .query_one(
                &Query::select().column(a("pr")).from(a("previews")).and_where(Expr::col(a("environment")).eq(env.clone())).to_owned(),
            )
            .await?
            .is_some();
        let workloads = store::list_workloads(&txn, &env, 10_000, 0).await?;
        if !known && workloads.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = workloads.iter().map(|w| w.id()).collect();
        let rollouts: Vec<String> = {
            let mut all = Vec::new();
            for id in &ids {
                all.extend(store::list_rollouts(&txn, id, 10_000, 0).await?.into_iter().map(|r| r.id));
            }
            all
        };
        let revisions: Vec<String> =
            store::active_revisions(&txn, None).await?.into_iter().filter(|r| ids.contains(&r.workload_id)).map(|r| r.id).collect();
        for table in ["rollouts", "revisions"] {
            txn.execute(&Query::delete().from_table(a(table)).and_where(Expr::col(a("workload_id")).is_in(ids.clone())).to_owned()).await?;
        }
        txn.execute(&Query::delete().from_table(a("workloads")).and_where(Expr::col(a("id")).is_in(ids.clone())).to_owned()).await?;
        txn.execute(&Query::delete().from_table(a("previews")).and_where(Expr::col(a("environment")).eq(env.clone())).to_owned()).await?;
        let names: Vec<String> = workloads.iter().map(|w| w.name.clone()).collect();
        let payload = Payload::PreviewClosed(pb::PreviewClosed {
            environment: env.clone(),
            pr: pr as i32,
            workloads: names.clone(),
            reason: reason.into(),
        });
        store::emit(&txn, "paved.provisioner.v1.preview.closed", &env, "", payload).await?;
        txn.commit().await?;
        self.inner.relay.wake();
        for w in &workloads {
            self.changed(&w.id());
        }
        // A driver may be between reading its rollout and starting a
        // process: wait (bounded) until each has seen its rollout is gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while rollouts.iter().any(|r| lock(&self.inner.drivers).contains(r)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // With each revision, the baseline a rollout may run of it.
        for revision in revisions.iter().flat_map(|r| [r.clone(), crate::baseline_key(r)]) {
            self.inner.runtime.stop(&revision).await;
            lock(&self.inner.backends).remove(&revision);
        }
        let proxies: Vec<crate::proxy::Proxy> = {
            let mut all = lock(&self.inner.proxies);
            ids.iter().filter_map(|id| all.remove(id)).collect()
        };
        for proxy in proxies {
            proxy.shut().await;
        }
        tracing::info!(environment = %env, workloads = ?names, %reason, "preview closed");
        Ok(Some(names))
    }

    /// Closes the previews whose time to live has passed.
    pub(crate) async fn expire_previews(&self) -> Result<(), DbErr> {
        let now = now_ms();
        for preview in self.previews().await?.into_iter().filter(|p| p.expire_time_ms <= now) {
            self.close_preview(preview.pr, "expired").await?;
        }
        Ok(())
    }
}
