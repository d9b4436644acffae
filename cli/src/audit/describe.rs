//! An entry of the log as a person reads it: when, what kind, who, and
//! what happened, one line.

use paved_proto::{audit::v1::LogEntry, events::v1::envelope::Payload};
use serde_json::json;

fn short_type(kind: &str) -> &str {
    // `paved.provisioner.v1.revision.deployed` → `revision.deployed`.
    kind.splitn(4, '.').nth(3).unwrap_or(kind)
}

/// What happened, in a line.
pub fn what(entry: &LogEntry) -> String {
    let Some(payload) = entry.event.as_ref().and_then(|e| e.payload.as_ref()) else {
        return String::new();
    };
    match payload {
        Payload::WorkloadRegistered(_) => "registered".into(),
        Payload::RevisionDeployed(r) => format!("revision {} ({}), spec {}", r.number, r.revision_id, r.spec_digest),
        Payload::RevisionStateChanged(r) => {
            // Entries appended before `from_state` existed hold only `from`.
            #[allow(deprecated)]
            let from = if r.from_state != 0 { r.from_state() } else { r.from() };
            format!("revision {}: {:?} → {:?} {}", r.revision_id, from, r.to(), r.message)
        }
        Payload::RolloutTransitioned(r) => format!("{:?} {:?} at {}%: {}", r.stage(), r.state(), r.weight, r.message),
        Payload::WorkloadRolledBack(r) => format!("rolled back {} → {}: {}", r.from_revision_id, r.to_revision_id, r.reason),
        Payload::PolicyDecided(p) => {
            let artifact =
                if p.artifact_digest.is_empty() { "no artifact by digest".to_string() } else { format!("artifact {}", p.artifact_digest) };
            let attestations: Vec<String> = p
                .attestations
                .iter()
                .map(|a| format!("{} by {}{}", a.kind, a.signer, if a.verified { "" } else { " (NOT verified)" }))
                .collect();
            format!(
                "{} by policy bundle {}; {artifact}{}{}",
                if p.allowed { "allowed" } else { "denied" },
                p.bundle_digest,
                if attestations.is_empty() { String::new() } else { format!("; attested: {}", attestations.join(", ")) },
                if p.denials.is_empty() { String::new() } else { format!("; denials: {}", p.denials.join("; ")) },
            )
        }
        Payload::WorkloadPowered(p) => {
            let by = if p.actor.is_empty() { String::new() } else { format!(" by {}", p.actor) };
            let note = if p.note.is_empty() { String::new() } else { format!(": {}", p.note) };
            let reason = paved_proto::provisioner::v1::PowerReason::try_from(p.reason).unwrap_or_default().as_str_name();
            let reason = reason.trim_start_matches("POWER_REASON_").to_lowercase();
            format!("{} ({reason}{by}){note}", if p.awake { "woke" } else { "went to sleep" })
        }
        Payload::PreviewOpened(p) => format!("preview for PR {}", p.pr),
        Payload::PreviewClosed(p) => format!("preview for PR {} {}", p.pr, p.reason),
        Payload::WorkloadDeleted(d) => format!("{} in {} deleted by {} ({} revisions)", d.workload, d.environment, d.actor, d.revisions),
        Payload::CanaryJudged(c) => {
            format!(
                "look {} at {}%: {:?} {} ({} canary, {} baseline requests)",
                c.look,
                c.weight,
                c.verdict(),
                c.reason,
                c.canary_requests,
                c.baseline_requests
            )
        }
        Payload::BrokerActed(b) => {
            let mut line = format!("{} {}", b.action, b.target);
            if !b.for_subject.is_empty() {
                line += &format!(" for {}", b.for_subject);
            }
            if !b.scopes.is_empty() {
                line += &format!(" [{}]", b.scopes.join(" "));
            }
            if !b.reason.is_empty() {
                line += &format!(": {}", b.reason);
            }
            line
        }
        Payload::AccessDenied(d) => format!("{} refused {}: {}", d.service, d.method, d.reason),
        Payload::BudgetCrossed(b) => format!(
            "team {} in {}: {}% of its budget ({:.2} of {:.2} {} a month)",
            b.team, b.environment, b.threshold_percent, b.forecast_monthly, b.budget_monthly, b.currency
        ),
    }
}

/// A table row: index, appended, type, actor, what.
pub fn row(index: u64, entry: &LogEntry) -> Vec<String> {
    let kind = entry.event.as_ref().map_or("", |e| short_type(&e.r#type)).to_string();
    let actor = if entry.actor.is_empty() { "-".to_string() } else { entry.actor.clone() };
    vec![index.to_string(), crate::output::time(entry.append_time.as_ref()), kind, actor, what(entry)]
}

/// The same as JSON, for scripts.
pub fn json(index: u64, entry: &LogEntry) -> serde_json::Value {
    let event = entry.event.clone().unwrap_or_default();
    json!({
        "index": index,
        "event_id": event.id,
        "type": event.r#type,
        "subject": event.subject,
        "workload": entry.workload,
        "actor": entry.actor,
        "append_time": entry.append_time.map(|t| paved_proto::millis_from_timestamp(&t)),
        "what": what(entry),
    })
}
