//! paved-cost-scheduler
