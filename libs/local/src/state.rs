//! A revision's state as the runtime sees it, and how it folds from the
//! states of the revision's instances (one process per replica).

use std::net::SocketAddr;

/// A revision's state as the runtime sees it (a revision it has not been
/// asked to start has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Starting,
    Healthy,
    Unhealthy,
    Failed,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) state: State,
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) message: String,
}

impl Instance {
    pub(crate) fn starting() -> Self {
        Self { state: State::Starting, addr: None, message: String::new() }
    }
    pub(crate) fn failed(message: String) -> Self {
        Self { state: State::Failed, addr: None, message }
    }
}

/// The revision's state from its instances'.
pub(crate) fn fold(instances: &[Instance]) -> (State, String, Vec<SocketAddr>) {
    let backends: Vec<SocketAddr> = instances.iter().filter(|i| i.state == State::Healthy).filter_map(|i| i.addr).collect();
    let message = instances.iter().find(|i| !i.message.is_empty()).map(|i| i.message.clone()).unwrap_or_default();
    let state = if instances.iter().any(|i| i.state == State::Failed) {
        State::Failed
    } else if instances.iter().all(|i| i.state == State::Healthy) {
        State::Healthy
    } else if instances.iter().any(|i| i.state == State::Unhealthy) {
        State::Unhealthy
    } else {
        State::Starting
    };
    (state, message, backends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: State) -> Instance {
        Instance { state, addr: Some(SocketAddr::from(([127, 0, 0, 1], 1))), message: String::new() }
    }

    #[test]
    fn folds_instance_states() {
        assert_eq!(fold(&[instance(State::Healthy), instance(State::Healthy)]).0, State::Healthy);
        assert_eq!(fold(&[instance(State::Healthy), instance(State::Starting)]).0, State::Starting);
        assert_eq!(fold(&[instance(State::Healthy), instance(State::Unhealthy)]).0, State::Unhealthy);
        assert_eq!(fold(&[instance(State::Healthy), instance(State::Failed)]).0, State::Failed);
        assert_eq!(fold(&[instance(State::Healthy), instance(State::Starting)]).2.len(), 1);
    }
}
