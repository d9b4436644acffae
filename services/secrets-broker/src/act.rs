//! What the broker did, as a fact: an action (`token.issued`,
//! `secret.read`), who did it, to what, with which scopes and why. Domain
//! code states these; `event` turns them into the stream's events and
//! `policy` counts the grants they show used, so neither the wire format
//! nor the counting leaks into the code that acts.

/// One thing the broker did (or refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Act {
    /// `<kind>.<verb>`: `token.issued`, `signing_key.rotated`; the kind
    /// names the event's subject (`tokens/<target>`).
    pub action: String,
    /// The subject that acted (`paved` for the broker itself).
    pub actor: String,
    /// What it acted on: a token id, `<path>#<version>`, a lease id.
    pub target: String,
    /// The scopes it handed out, if any.
    pub scopes: Vec<String>,
    pub reason: String,
    /// For whom, when not the actor: a token's subject. Kept apart from
    /// `reason` so that the audit log can commit to a person's name and
    /// later erase it.
    pub for_subject: String,
}

impl Act {
    pub fn new(action: &str, actor: &str, target: &str, scopes: &[String], reason: &str) -> Self {
        Self {
            action: action.to_string(),
            actor: actor.to_string(),
            target: target.to_string(),
            scopes: scopes.to_vec(),
            reason: reason.to_string(),
            for_subject: String::new(),
        }
    }

    pub fn for_subject(mut self, subject: &str) -> Self {
        self.for_subject = subject.to_string();
        self
    }
}
