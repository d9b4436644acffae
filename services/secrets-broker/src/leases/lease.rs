//! A lease: what the broker handed out and takes back (today a database
//! role), with who holds it, the token that asked, and its revocation's
//! progress.

/// A lease (times in Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `database/<name>/<id>`.
    pub lease_id: String,
    /// The configured database it is on, and its role there.
    pub database: String,
    pub role: String,
    pub subject: String,
    pub token_id: String,
    pub issue_time_ms: i64,
    pub expire_time_ms: i64,
    /// Renewals go no further.
    pub max_expire_time_ms: i64,
    pub revoke_time_ms: Option<i64>,
    pub revoke_attempts: u32,
    /// Why the last revocation failed ("" if none did).
    pub last_error: String,
}

impl Lease {
    /// Neither revoked nor past its expiry at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.revoke_time_ms.is_none() && self.expire_time_ms > now
    }
}
