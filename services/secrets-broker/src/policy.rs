//! Least privilege, compiled and then checked against use: each workload's
//! policy as compiled from its spec (recorded with each bootstrap token),
//! and how often its identity used each grant (counted from the read and
//! lease events as they are committed), so that grants never used are reported
//! and can leave the spec.

use crate::{
    act::Act,
    binding::Binding,
    identities::spiffe_id,
    schema::{GrantUses, Policies},
};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query},
};
use std::collections::BTreeMap;

/// A workload's policy as last compiled, each grant with its uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub spiffe_id: String,
    pub environment: String,
    pub workload: String,
    /// The revision whose bootstrap token compiled it.
    pub revision_id: String,
    pub compile_time_ms: i64,
    pub grants: Vec<GrantUse>,
}

/// One grant of a policy and how its identity used it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantUse {
    pub scope: String,
    /// 0: never used, a candidate to leave the spec.
    pub use_count: u64,
    pub first_use_ms: Option<i64>,
    pub last_use_ms: Option<i64>,
}

/// Records `binding`'s scopes as its workload's policy, replacing the
/// one compiled for an earlier revision.
pub async fn compiled(db: &impl ConnectionTrait, binding: &Binding, now_ms: i64) -> Result<(), DbErr> {
    let columns = [Policies::Environment, Policies::Workload, Policies::RevisionId, Policies::Scopes, Policies::CompileTimeMs];
    let upsert = Query::insert()
        .into_table(Policies::Table)
        .columns(columns)
        .values_panic([
            binding.environment.clone().into(),
            binding.workload.clone().into(),
            binding.revision_id.clone().into(),
            serde_json::to_string(&binding.scopes()).unwrap_or_default().into(),
            now_ms.into(),
        ])
        .on_conflict(
            OnConflict::columns([Policies::Environment, Policies::Workload])
                .update_columns([Policies::RevisionId, Policies::Scopes, Policies::CompileTimeMs])
                .to_owned(),
        )
        .to_owned();
    db.execute(&upsert).await.map(drop)
}

/// Grants used, by subject and scope, with how often.
pub type Uses<'a> = BTreeMap<(&'a str, String), i64>;

/// The grants used by the reads, credential leases and certificates among `acts`
/// (workload identities only: people's tokens hold wildcards, not a
/// compiled policy).
pub fn uses(acts: &[Act]) -> Uses<'_> {
    let mut uses = Uses::new();
    for act in acts.iter().filter(|a| a.actor.starts_with("spiffe://")) {
        let scope = match act.action.as_str() {
            // The target of a read is `<path>#<version>`.
            "secret.read" => format!("secrets:read:{}", act.target.rsplit_once('#').map_or(act.target.as_str(), |(path, _)| path)),
            // A lease is `database/<name>/<id>`.
            "lease.issued" => match act.target.split('/').collect::<Vec<_>>()[..] {
                ["database", name, _] => format!("database:creds:{name}"),
                _ => continue,
            },
            // A certificate's target is its SPIFFE id.
            "certificate.issued" => match act.target.strip_prefix(paved_grpc::tls::TRUST_DOMAIN).and_then(|t| t.strip_prefix('/')) {
                Some(path) => format!("certs:issue:{path}"),
                None => continue,
            },
            _ => continue,
        };
        *uses.entry((act.actor.as_str(), scope)).or_default() += 1;
    }
    uses
}

/// Adds `uses` to the counts.
pub async fn note_uses(db: &impl ConnectionTrait, uses: Uses<'_>, now_ms: i64) -> Result<(), DbErr> {
    if uses.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert()
        .into_table(GrantUses::Table)
        .columns([GrantUses::Subject, GrantUses::Scope, GrantUses::UseCount, GrantUses::FirstUseMs, GrantUses::LastUseMs])
        .to_owned();
    for ((subject, scope), count) in uses {
        insert.values_panic([subject.into(), scope.into(), count.into(), now_ms.into(), now_ms.into()]);
    }
    let count = GrantUses::UseCount;
    // `excluded` is the row the insert proposed, not a table of ours.
    let added = Expr::col((GrantUses::Table, count)).add(Expr::col((Alias::new("excluded"), count)));
    insert.on_conflict(
        OnConflict::columns([GrantUses::Subject, GrantUses::Scope]).value(count, added).update_column(GrantUses::LastUseMs).to_owned(),
    );
    db.execute(&insert).await.map(drop)
}

/// The policy of one workload, if one was ever compiled.
pub async fn get(db: &impl ConnectionTrait, environment: &str, workload: &str) -> Result<Option<Policy>, DbErr> {
    let query = select()
        .and_where(Expr::col(Policies::Environment).eq(environment))
        .and_where(Expr::col(Policies::Workload).eq(workload))
        .to_owned();
    Ok(with_uses(db, db.query_all(&query).await?).await?.pop())
}

/// A page of policies (of one environment, unless empty), by environment
/// and workload; `unused_only` keeps those holding a grant never used.
/// Returns the policies and how many rows the page read (for paging).
pub async fn list(
    db: &impl ConnectionTrait,
    environment: &str,
    unused_only: bool,
    size: u64,
    offset: u64,
) -> Result<(Vec<Policy>, usize), DbErr> {
    let mut query = select();
    if !environment.is_empty() {
        query.and_where(Expr::col(Policies::Environment).eq(environment));
    }
    query.order_by(Policies::Environment, Order::Asc).order_by(Policies::Workload, Order::Asc).limit(size).offset(offset);
    let rows = db.query_all(&query).await?;
    let read = rows.len();
    let mut policies = with_uses(db, rows).await?;
    if unused_only {
        policies.retain(|p| p.grants.iter().any(|g| g.use_count == 0));
    }
    Ok((policies, read))
}

fn select() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .columns([Policies::Environment, Policies::Workload, Policies::RevisionId, Policies::Scopes, Policies::CompileTimeMs])
        .from(Policies::Table)
        .to_owned()
}

/// The policies of `rows`, each grant with the uses of its identity.
async fn with_uses(db: &impl ConnectionTrait, rows: Vec<sea_orm::QueryResult>) -> Result<Vec<Policy>, DbErr> {
    let mut policies = Vec::with_capacity(rows.len());
    for row in rows {
        let (environment, workload): (String, String) = (row.try_get("", "environment")?, row.try_get("", "workload")?);
        let scopes: String = row.try_get("", "scopes")?;
        let scopes: Vec<String> = serde_json::from_str(&scopes).map_err(|e| DbErr::Custom(format!("scopes of a policy: {e}")))?;
        policies.push(Policy {
            spiffe_id: spiffe_id(&environment, &workload),
            environment,
            workload,
            revision_id: row.try_get("", "revision_id")?,
            compile_time_ms: row.try_get("", "compile_time_ms")?,
            grants: scopes.into_iter().map(|scope| GrantUse { scope, ..Default::default() }).collect(),
        });
    }
    if policies.is_empty() {
        return Ok(policies);
    }
    let query = Query::select()
        .columns([GrantUses::Subject, GrantUses::Scope, GrantUses::UseCount, GrantUses::FirstUseMs, GrantUses::LastUseMs])
        .from(GrantUses::Table)
        .and_where(Expr::col(GrantUses::Subject).is_in(policies.iter().map(|p| p.spiffe_id.clone())))
        .to_owned();
    let mut uses = BTreeMap::new();
    for row in db.query_all(&query).await? {
        let key: (String, String) = (row.try_get("", "subject")?, row.try_get("", "scope")?);
        let (count, first, last): (i64, i64, i64) =
            (row.try_get("", "use_count")?, row.try_get("", "first_use_ms")?, row.try_get("", "last_use_ms")?);
        uses.insert(key, (count, first, last));
    }
    for policy in &mut policies {
        for grant in &mut policy.grants {
            if let Some((count, first, last)) = uses.get(&(policy.spiffe_id.clone(), grant.scope.clone())) {
                grant.use_count = u64::try_from(*count).unwrap_or_default();
                grant.first_use_ms = Some(*first);
                grant.last_use_ms = Some(*last);
            }
        }
    }
    Ok(policies)
}
