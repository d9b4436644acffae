//! The event edge, both ways, and with `api` the only module that touches
//! generated types. Out: each [`Act`] becomes a `BrokerActed` envelope (the
//! stream's protobuf contract) on the outbox, in the transaction that did
//! it, and the grants it shows used are counted there too. In: the
//! provisioner's `WorkloadRegistered` becomes an identity.

use crate::{act::Act, clock::now_ms, identities, policy};
use async_trait::async_trait;
use paved_proto::{events::v1::envelope::Payload, secrets_broker::v1::BrokerActed};
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

/// Records what the broker did, in the transaction that did it.
pub async fn record(txn: &DatabaseTransaction, act: Act) -> Result<(), DbErr> {
    record_all(txn, std::slice::from_ref(&act)).await
}

/// Records many acts in one statement, and the grants they used.
pub async fn record_all(txn: &DatabaseTransaction, acts: &[Act]) -> Result<(), DbErr> {
    let envelopes: Vec<_> = acts.iter().map(envelope).collect();
    paved_stream::outbox::enqueue_all(txn, &paved_stream::stream_name(identities::SOURCE), &envelopes).await?;
    // A grant used is counted with the event that says so, in a savepoint:
    // counting that fails loses a count, never the events (nor the reads
    // that wait on them).
    let uses = policy::uses(acts);
    if uses.is_empty() {
        return Ok(());
    }
    let savepoint = txn.begin().await?;
    match policy::note_uses(&savepoint, uses, now_ms()).await {
        Ok(()) => savepoint.commit().await,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count grant uses");
            savepoint.rollback().await
        }
    }
}

fn envelope(act: &Act) -> Envelope {
    // `token.issued` → `tokens/<id>`, `signing_key.rotated` → `signing-keys/<kid>`.
    let kind = act.action.split('.').next().unwrap_or("broker").replace('_', "-");
    let subject = format!("{kind}s/{}", act.target);
    let acted = BrokerActed {
        action: act.action.clone(),
        actor: act.actor.clone(),
        target: act.target.clone(),
        scopes: act.scopes.clone(),
        reason: act.reason.clone(),
        for_subject: act.for_subject.clone(),
    };
    paved_stream::event::envelope(
        identities::SOURCE,
        &format!("paved.secrets_broker.v1.{}", act.action),
        subject,
        Payload::BrokerActed(acted),
    )
}

/// Creates the identity of each registered workload, the consumer-group
/// handler of the provisioner's stream.
pub struct IdentityRecorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for IdentityRecorder {
    async fn handle(&self, _stream: &str, event: &Envelope) -> anyhow::Result<()> {
        let Some(Payload::WorkloadRegistered(registered)) = &event.payload else {
            return Ok(());
        };
        let created = event.time.as_ref().map_or_else(now_ms, paved_proto::millis_from_timestamp);
        identities::record(&self.db, &registered.environment, &registered.workload, created).await?;
        Ok(())
    }
}
