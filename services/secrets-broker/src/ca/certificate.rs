//! What the CA hands out and keeps track of: certificates issued (the leaf
//! as PEM; its key stays with the caller), what a certificate renews from
//! (its enrolment), and the CAs a peer is to trust.

/// What a certificate renews from: the token that enrolled its line and,
/// unless enrolled for good, until when renewals may go. Carried from each
/// certificate to the one renewing it.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The enrolling token's id: once it is revoked (also through an
    /// ancestor), renewals stop.
    pub token: String,
    /// None: renewable while the enrolment stands.
    pub renew_until_ms: Option<i64>,
}

/// A certificate issued: the leaf (PEM), its SPIFFE id, expiry and CA.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub spiffe_id: String,
    pub expire_time_ms: i64,
    pub authority_id: String,
}

/// One CA of the trust bundle (times in Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    pub id: String,
    /// When it signs from.
    pub create_time_ms: i64,
    pub expire_time_ms: i64,
    pub retire_time_ms: Option<i64>,
}

/// What to trust: the CAs (current first), and their certificates as PEM.
#[derive(Debug, Clone)]
pub struct TrustBundle {
    pub pem: String,
    pub authorities: Vec<CertificateAuthority>,
}
