//! paved-canary-analyzer
