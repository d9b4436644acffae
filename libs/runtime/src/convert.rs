//! Between the wire's messages and `paved-local`'s types.

use crate::pb;
use paved_grpc::status::invalid_argument;
use paved_local::{Proxy, Route, Traffic};
use tonic::Status;

/// A route as the wire carries it.
pub fn route_to(route: &Route) -> pb::Route {
    pb::Route { revision: route.revision.clone(), weight: route.weight, addrs: route.addrs.iter().map(ToString::to_string).collect() }
}

/// A route off the wire; an address that is not `ip:port` is INVALID_ROUTE.
pub fn route_from(route: pb::Route) -> Result<Route, Status> {
    let addrs = route
        .addrs
        .iter()
        .map(|a| {
            a.parse().map_err(|_| {
                let message = format!("route to {}: {a:?} is not ip:port", route.revision);
                invalid_argument("INVALID_ROUTE", message.clone(), [("routes.addrs".to_string(), message)])
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Route { revision: route.revision, weight: route.weight, addrs })
}

pub(crate) fn state_of(workload_id: &str, proxy: &Proxy) -> pb::ProxyState {
    pb::ProxyState {
        workload_id: workload_id.to_string(),
        addr: proxy.addr.to_string(),
        routes: proxy.routes().iter().map(route_to).collect(),
        asleep: proxy.is_asleep(),
        wake_asked: proxy.wake_asked(),
        last_request_ms: proxy.last_request_ms().unwrap_or(0),
    }
}

pub(crate) fn traffic_to(revision: String, traffic: Traffic) -> pb::RevisionTraffic {
    pb::RevisionTraffic { revision, classes: traffic.classes.to_vec(), latency: traffic.latency }
}

/// A revision's traffic as the host counted it; a message with the wrong
/// number of classes is the host's bug, read as no traffic.
pub fn traffic_from(t: pb::RevisionTraffic) -> (String, Traffic) {
    let traffic = match <[u64; 5]>::try_from(t.classes.as_slice()) {
        Ok(classes) => Traffic { classes, latency: t.latency },
        Err(_) => Traffic::default(),
    };
    (t.revision, traffic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_traffic_survive_the_wire() {
        let route = Route { revision: "r1".into(), weight: 30, addrs: vec!["127.0.0.1:8080".parse().expect("addr")] };
        assert_eq!(route_from(route_to(&route)).expect("a route"), route);
        let bad = pb::Route { revision: "r1".into(), weight: 1, addrs: vec!["nowhere".into()] };
        assert_eq!(route_from(bad).expect_err("not an address").code(), tonic::Code::InvalidArgument);
        let mut traffic = Traffic::default();
        traffic.classes[1] = 7;
        traffic.latency[3] = 7;
        assert_eq!(traffic_from(traffic_to("r1".into(), traffic.clone())), ("r1".to_string(), traffic));
    }
}
