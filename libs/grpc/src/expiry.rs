//! `paved_certificate_expiry_timestamp_seconds{identity}`: when the
//! certificate this process presents over mTLS expires. Set at each
//! renewal, so renewals that keep failing show as an expiry coming closer
//! (the alert rule `PavedCertificateExpiring`).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
};
use std::sync::LazyLock;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    /// The SPIFFE id the certificate is for.
    identity: String,
}

static EXPIRY: LazyLock<Family<Labels, Gauge>> = LazyLock::new(|| {
    let family = Family::<Labels, Gauge>::default();
    paved_telemetry::register(
        "certificate_expiry_timestamp_seconds",
        "When the certificate this process presents expires, by SPIFFE id",
        family.clone(),
    );
    family
});

/// `identity` now presents a certificate expiring at `expire_ms`.
pub(crate) fn certificate_held(identity: &str, expire_ms: i64) {
    EXPIRY.get_or_create(&Labels { identity: identity.to_string() }).set(expire_ms.div_euclid(1000));
}
