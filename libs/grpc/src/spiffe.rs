//! SPIFFE ids of the platform: one trust domain, `spiffe://paved`; a
//! workload is `spiffe://paved/<environment>/<workload>`, a platform
//! service `spiffe://paved/platform/<service>`.

/// The trust domain: every identity is under it.
pub const TRUST_DOMAIN: &str = "spiffe://paved";
/// The environment of the platform's own services: their identities are
/// `spiffe://paved/platform/<service>`, and no workload has one there.
pub const PLATFORM_ENVIRONMENT: &str = "platform";
/// Every platform service's SPIFFE id starts so; what a client accepts
/// when it cannot know which service answers (the CLI at an endpoint).
pub const PLATFORM_PREFIX: &str = "spiffe://paved/platform/";
/// The platform's services, each `spiffe://paved/platform/<name>`.
pub const PLATFORM_SERVICES: [&str; 5] = paved_proto::SERVICES;

/// The SPIFFE id of a workload: `spiffe://paved/<environment>/<workload>`.
pub fn workload_id(environment: &str, workload: &str) -> String {
    format!("{TRUST_DOMAIN}/{environment}/{workload}")
}

/// The (environment, workload) of a workload's SPIFFE id; None for a
/// platform service's, or for anything else (each part must be a DNS
/// label, so that neither can carry more than a name).
pub fn workload_of(id: &str) -> Option<(&str, &str)> {
    let (environment, workload) = id.strip_prefix(TRUST_DOMAIN)?.strip_prefix('/')?.split_once('/')?;
    let named = paved_proto::is_name(environment) && paved_proto::is_name(workload);
    (environment != PLATFORM_ENVIRONMENT && named).then_some((environment, workload))
}

/// The SPIFFE id of a platform service: `spiffe://paved/platform/<service>`.
pub fn platform_id(service: &str) -> String {
    workload_id(PLATFORM_ENVIRONMENT, service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_id_names_its_environment_and_workload_and_nothing_else_does() {
        assert_eq!(workload_of("spiffe://paved/dev/shop"), Some(("dev", "shop")));
        assert_eq!(workload_of("spiffe://paved/pr-12/shop-2"), Some(("pr-12", "shop-2")));
        for id in [
            "spiffe://paved/platform/provisioner",
            "spiffe://paved/dev/shop/extra",
            "spiffe://paved/dev/Shop",
            "spiffe://paved/dev/",
            "spiffe://paved//shop",
            "spiffe://other/dev/shop",
            "spiffe://paveddev/shop",
            "root",
        ] {
            assert_eq!(workload_of(id), None, "{id}");
        }
    }
}
