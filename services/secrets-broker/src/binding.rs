//! What a revision of a workload declares it needs — secrets, databases, a
//! certificate for its own SPIFFE id — and the scopes that grants. A
//! bootstrap token is bound to it and the workload's policy is compiled
//! from it: least privilege from the spec, not written by hand.

/// What a bootstrap token is bound to.
#[derive(Debug, Clone)]
pub struct Binding {
    pub environment: String,
    pub workload: String,
    pub revision_id: String,
    pub artifact_digest: String,
    /// Declared secret names.
    pub secrets: Vec<String>,
    /// Declared database names (dynamic credentials).
    pub databases: Vec<String>,
    /// Whether it may enrol a certificate for its own SPIFFE id.
    pub certificate: bool,
}

impl Binding {
    /// The identity's scopes: one read grant per declared secret, one
    /// credentials grant per declared database, and a certificate for its
    /// own SPIFFE id only if asked for.
    pub fn scopes(&self) -> Vec<String> {
        let (env, workload) = (&self.environment, &self.workload);
        let secrets = self.secrets.iter().map(|name| format!("secrets:read:{env}/{workload}/{name}"));
        let databases = self.databases.iter().map(|name| format!("database:creds:{name}"));
        let certificate = self.certificate.then(|| format!("certs:issue:{env}/{workload}"));
        secrets.chain(databases).chain(certificate).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_is_compiled_from_declared_secrets() {
        let binding = super::Binding {
            environment: "dev".into(),
            workload: "shop".into(),
            revision_id: "r1".into(),
            artifact_digest: String::new(),
            secrets: vec!["db-password".into(), "api-key".into()],
            databases: vec!["orders".into()],
            certificate: false,
        };
        assert_eq!(binding.scopes(), ["secrets:read:dev/shop/db-password", "secrets:read:dev/shop/api-key", "database:creds:orders"]);
        let binding = super::Binding { secrets: Vec::new(), databases: Vec::new(), certificate: true, ..binding };
        assert_eq!(binding.scopes(), ["certs:issue:dev/shop"], "a certificate for its own SPIFFE id, no other");
    }
}
