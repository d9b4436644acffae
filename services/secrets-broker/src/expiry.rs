//! What the broker holds that ages, as gauges for the alert rules: when the
//! current certificate authority expires, and how old the token signing key
//! was when it last signed. Both rotate by themselves (the CA every 30 days
//! of a 365-day life, the key every 24 h of use); these show when they stop.

use prometheus_client::metrics::gauge::Gauge;
use std::sync::LazyLock;

static AUTHORITY: LazyLock<Gauge> = LazyLock::new(|| {
    let gauge = Gauge::default();
    paved_telemetry::register(
        "certificate_authority_expiry_timestamp_seconds",
        "When the certificate authority that signs now expires",
        gauge.clone(),
    );
    gauge
});

static SIGNING_KEY: LazyLock<Gauge> = LazyLock::new(|| {
    let gauge = Gauge::default();
    paved_telemetry::register(
        "token_signing_key_age_seconds",
        "Age of the token signing key when it last signed (a key past 24 h is rotated at its next use)",
        gauge.clone(),
    );
    gauge
});

/// The CA that signs now expires at `expire_ms`.
pub(crate) fn authority(expire_ms: i64) {
    AUTHORITY.set(expire_ms.div_euclid(1000));
}

/// The key made at `created_ms` signs at `now_ms`.
pub(crate) fn signing_key(created_ms: i64, now_ms: i64) {
    SIGNING_KEY.set((now_ms - created_ms).max(0) / 1000);
}
