//! paved-secrets-broker
