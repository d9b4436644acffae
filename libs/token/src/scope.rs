//! Scopes — what a token may do — and every rule over them, stated once:
//! which scopes exist ([`Scope::is_valid`]), what one grants
//! ([`Scope::allows`]), what a holder may hand on ([`Scope::within`]), what
//! a role is ([`role_scopes`]), what a method needs ([`method_scope`]) and
//! which audiences a token may have ([`AUDIENCES`]).

/// The audience of tokens valid at every service.
pub const PLATFORM_AUDIENCE: &str = "paved";

/// Every audience a token may have: the platform, or one service.
pub const AUDIENCES: [&str; 6] = {
    let s = paved_proto::SERVICES;
    [PLATFORM_AUDIENCE, s[0], s[1], s[2], s[3], s[4]]
};

/// Method name prefixes of calls that only read.
pub const READ_PREFIXES: [&str; 7] = ["Get", "List", "Watch", "Explain", "Plan", "Replay", "Query"];

/// One scope, such as `read:audit`, `deploy:dev/shop-*` or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a>(pub &'a str);

impl Scope<'_> {
    /// Printable, at most 256 characters, `*` only at its end and only
    /// after `:`, `/` or `-` (or alone): `secrets:read:dev/shop/*` and
    /// `deploy:dev/shop-*` are prefixes a reader can see;
    /// `secrets:read:dev/shop*` would also cover `dev/shopping`.
    pub fn is_valid(self) -> bool {
        let scope = self.0;
        let body = scope.strip_suffix('*').unwrap_or(scope);
        let wildcard_after_separator = body.len() == scope.len() || body.is_empty() || body.ends_with([':', '/', '-']);
        !scope.is_empty()
            && scope.len() <= 256
            && scope.chars().all(|c| c.is_ascii_graphic())
            && !body.contains('*')
            && wildcard_after_separator
    }

    /// Whether this scope grants `wanted`: the same scope, or a wildcard
    /// whose prefix `wanted` starts with. A wildcard is granted only by a
    /// wildcard that covers it (`read:*` grants `read:*`, `read:audit` does
    /// not).
    pub fn allows(self, wanted: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => wanted.starts_with(prefix),
            None => self.0 == wanted,
        }
    }

    /// Whether a holder of `held` may hand this scope on: one of `held`
    /// grants it. A token hands on only what its holder has.
    pub fn within(self, held: &[String]) -> bool {
        held.iter().any(|h| Scope(h).allows(self.0))
    }
}

/// The scopes a role grants: `admin` everything, `viewer` every read,
/// `deployer` every read, the provisioner's writes and the deploy scope of
/// `workloads` (a name or a `-*` prefix; all when empty) in `environment`.
/// `Err((field, why))` for an unknown role or a deployer without an
/// environment.
pub fn role_scopes(role: &str, environment: &str, workloads: &str) -> Result<Vec<String>, (String, String)> {
    let workloads = if workloads.is_empty() { "*" } else { workloads };
    match role {
        "admin" => Ok(vec!["*".into()]),
        "viewer" => Ok(vec!["read:*".into()]),
        "deployer" if environment.is_empty() => Err(("environment".to_string(), format!("role {role} is per environment: name one"))),
        "deployer" => Ok(vec!["read:*".into(), "write:provisioner".into(), format!("deploy:{environment}/{workloads}")]),
        other => Err(("role".into(), format!("unknown role {other:?}: admin, viewer or deployer"))),
    }
}

/// The scope a method needs at the auth layer: `read:<service>` for one
/// that only reads ([`READ_PREFIXES`]), `write:<service>` for any other,
/// with the service's short name (`paved.canary_analyzer.v1.…` →
/// `canary-analyzer`); `None` for anything that is not a Paved method.
/// Returns `(scope, service)`.
pub fn method_scope(path: &str) -> Option<(String, String)> {
    let (service, method) = path.strip_prefix("/paved.")?.split_once('/')?;
    let short = service.split('.').next()?.replace('_', "-");
    let access = if READ_PREFIXES.iter().any(|p| method.starts_with(p)) { "read" } else { "write" };
    Some((format!("{access}:{short}"), short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_what_is_held() {
        let held = ["read:*".to_string(), "deploy:dev/*".to_string(), "write:provisioner".to_string()];
        for ok in ["read:audit", "read:*", "deploy:dev/shop-*"] {
            assert!(Scope(ok).within(&held), "{ok}");
        }
        for refused in ["deploy:prod/shop", "write:*", "*"] {
            assert!(!Scope(refused).within(&held), "{refused}");
        }
        assert!(Scope("*").within(&["*".to_string()]));
        assert!(Scope("secrets:read:dev/*").allows("secrets:read:dev/shop/key"));
        assert!(!Scope("secrets:read:dev/shop").allows("secrets:read:dev/shopping"));
    }

    #[test]
    fn wildcards_follow_a_separator() {
        for ok in ["*", "read:*", "secrets:read:dev/shop/*", "deploy:dev/shop-*", "secrets:read:dev/shop/db"] {
            assert!(Scope(ok).is_valid(), "{ok}");
        }
        for bad in ["secrets:read:dev/shop*", "re*", "a*b", "", "deploy:dev/*/x"] {
            assert!(!Scope(bad).is_valid(), "{bad}");
        }
    }

    #[test]
    fn roles() {
        assert_eq!(role_scopes("deployer", "dev", "shop-*").expect("deployer"), ["read:*", "write:provisioner", "deploy:dev/shop-*"]);
        assert!(role_scopes("deployer", "", "").is_err());
        assert!(role_scopes("owner", "dev", "").is_err());
        assert_eq!(role_scopes("admin", "", "").expect("admin"), ["*"]);
    }

    #[test]
    fn scopes_of_methods() {
        let scope = |p: &str| method_scope(p).map(|(s, _)| s);
        assert_eq!(scope("/paved.provisioner.v1.ProvisionerService/ApplyWorkload").as_deref(), Some("write:provisioner"));
        assert_eq!(scope("/paved.canary_analyzer.v1.CanaryAnalyzerService/ExplainRollout").as_deref(), Some("read:canary-analyzer"));
        assert_eq!(scope("/paved.audit.v1.AuditService/ListEntries").as_deref(), Some("read:audit"));
        assert_eq!(scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(scope("/healthz"), None);
    }

    #[test]
    fn audiences_are_the_platform_and_each_service() {
        assert_eq!(AUDIENCES[0], "paved");
        assert!(AUDIENCES.contains(&"secrets-broker") && AUDIENCES.contains(&"audit"));
    }
}
