//! paved-integration-tests
