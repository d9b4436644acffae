//! paved-audit
