//! Preview environments: `pr-<n>`, opened from a base spec with a time to
//! live, and destroyed — processes, proxies and records — when closed or
//! when they expire. The event log keeps what they were.

use crate::{
    apply::{Applied, Applier, ApplyError, Submitted},
    model::now_ms,
    policy::Gate,
    records::Records,
    removal::{self, Removal},
    schema, store,
};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1 as pb;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query},
};
use std::{sync::Arc, time::Duration};

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

/// The `previews` columns, in the order `open` writes and `previews` reads
/// them. (`schema::Previews` stays qualified here: `Previews` is this
/// module's handle.)
const PREVIEW_COLUMNS: [schema::Previews; 4] =
    [schema::Previews::Environment, schema::Previews::Pr, schema::Previews::ExpireTimeMs, schema::Previews::CreateTimeMs];

pub fn environment(pr: u32) -> String {
    format!("pr-{pr}")
}

pub(crate) struct Previews {
    records: Arc<Records>,
    applier: Arc<Applier>,
    gate: Arc<Gate>,
    removal: Arc<Removal>,
}

impl Previews {
    pub(crate) fn new(records: Arc<Records>, applier: Arc<Applier>, gate: Arc<Gate>, removal: Arc<Removal>) -> Self {
        Self { records, applier, gate, removal }
    }

    fn db(&self) -> &DatabaseConnection {
        self.records.db()
    }

    /// Records (or extends) preview `pr` and applies the spec to `pr-<pr>`.
    pub(crate) async fn open(
        &self,
        pr: u32,
        ttl: Duration,
        submitted: Submitted<'_>,
        request_id: &str,
    ) -> Result<(Preview, Applied), ApplyError> {
        let env = environment(pr);
        let expire = now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        // The spec is checked (and the gate asked) before anything is recorded.
        let applied = {
            let spec = submitted.spec.as_ref().map_err(|e| ApplyError::Spec(e.clone()))?;
            let decision = self.gate.decide(&env, spec, submitted.yaml).await?;
            if !decision.allowed() {
                return Err(ApplyError::Denied(decision));
            }
            let txn = self.db().begin().await?;
            let upsert = Query::insert()
                .into_table(schema::Previews::Table)
                .columns(PREVIEW_COLUMNS)
                .values_panic([env.clone().into(), i64::from(pr).into(), expire.into(), now_ms().into()])
                .on_conflict(OnConflict::column(schema::Previews::Environment).update_column(schema::Previews::ExpireTimeMs).to_owned())
                .to_owned();
            txn.execute(&upsert).await?;
            #[allow(deprecated)] // set for consumers built before `expire_time`
            let payload = Payload::PreviewOpened(pb::PreviewOpened {
                environment: env.clone(),
                pr: pr as i32,
                expire_time_ms: expire,
                expire_time: Some(paved_proto::timestamp_from_millis(expire)),
            });
            store::emit(&txn, "paved.provisioner.v1.preview.opened", &env, "", payload).await?;
            txn.commit().await?;
            self.applier.apply(&env, submitted, request_id).await?
        };
        let preview = self.preview(pr).await?.ok_or_else(|| DbErr::RecordNotFound(env.clone()))?;
        Ok((preview, applied))
    }

    pub(crate) async fn preview(&self, pr: u32) -> Result<Option<Preview>, DbErr> {
        Ok(self.previews().await?.into_iter().find(|p| p.pr == pr))
    }

    pub(crate) async fn previews(&self) -> Result<Vec<Preview>, DbErr> {
        let query =
            Query::select().columns(PREVIEW_COLUMNS).from(schema::Previews::Table).order_by(schema::Previews::Pr, Order::Asc).to_owned();
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
    /// `preview.closed` event), then its proxies close, its rollouts'
    /// drivers end and its processes stop (see [`removal`]). Returns the workloads destroyed;
    /// None when there was no such preview.
    pub(crate) async fn close(&self, pr: u32, reason: &str) -> Result<Option<Vec<String>>, DbErr> {
        let env = environment(pr);
        let apply = self.records.apply_lock().await;
        let txn = self.db().begin().await?;
        let known = txn
            .query_one(
                &Query::select()
                    .column(schema::Previews::Pr)
                    .from(schema::Previews::Table)
                    .and_where(Expr::col(schema::Previews::Environment).eq(env.clone()))
                    .to_owned(),
            )
            .await?
            .is_some();
        let workloads = store::list_workloads(&txn, &env, 10_000, 0).await?;
        if !known && workloads.is_empty() {
            return Ok(None);
        }
        let doomed = removal::delete_records(&txn, &workloads).await?;
        txn.execute(
            &Query::delete()
                .from_table(schema::Previews::Table)
                .and_where(Expr::col(schema::Previews::Environment).eq(env.clone()))
                .to_owned(),
        )
        .await?;
        let names: Vec<String> = workloads.iter().map(|w| w.name.clone()).collect();
        let payload = Payload::PreviewClosed(pb::PreviewClosed {
            environment: env.clone(),
            pr: pr as i32,
            workloads: names.clone(),
            reason: reason.into(),
        });
        store::emit(&txn, "paved.provisioner.v1.preview.closed", &env, "", payload).await?;
        txn.commit().await?;
        self.removal.close(&doomed).await;
        drop(apply);
        self.removal.stop(doomed).await;
        tracing::info!(environment = %env, workloads = ?names, %reason, "preview closed");
        Ok(Some(names))
    }

    /// Closes the previews whose time to live has passed.
    pub(crate) async fn expire(&self) -> Result<(), DbErr> {
        let now = now_ms();
        for preview in self.previews().await?.into_iter().filter(|p| p.expire_time_ms <= now) {
            self.close(preview.pr, "expired").await?;
        }
        Ok(())
    }
}
