# The default deploy policy. `deny` blocks a deploy with its message; `warn`
# lets it pass with its message. Input (built by the provisioner):
#   environment  the target environment, e.g. "dev", "prod", "pr-42"
#   workload     the rendered spec: name, team, run ({command} or
#                {artifact}), env, replicas, resources, security, secrets
#   artifact     null, or {digest, attestations: {sbom, vulnerabilities,
#                coverage}}, each attestation with `verified` (its Ed25519
#                signature checked against a trusted key)
#   cost         null (no cost scheduler), {error} (it did not answer), or
#                what the spec costs a month by request: {currency,
#                current_monthly, monthly, awake_share, team,
#                budget_monthly (0: no budget), team_monthly (the team's
#                month in this environment with the spec deployed)}
package paved.deploy

# Where hygiene findings block; elsewhere (dev, previews) they warn.
strict_environments := {"staging", "prod"}

strict if input.environment in strict_environments

hygiene contains "the artifact is not pinned by digest: deploy `artifact: sha256:<digest>` (from `paved artifact push`), not a command" if {
	not input.workload.run.artifact
}

hygiene contains "the artifact is not pinned by digest: `artifact` must be a sha256 digest" if {
	artifact := input.workload.run.artifact
	not startswith(artifact, "sha256:")
}

hygiene contains msg if {
	some kind in ["requests", "limits"]
	some resource in ["cpu", "memory"]
	not input.workload.resources[kind][resource]
	msg := sprintf("resources.%s.%s is not set", [kind, resource])
}

# Cost is attributed by team: a workload that names none would be cost
# nobody owns.
hygiene contains "team is not set: name the team that pays for the workload (`team: <name>`)" if {
	not input.workload.team
}

deny contains msg if {
	strict
	some msg in hygiene
}

warn contains msg if {
	not strict
	some msg in hygiene
}

deny contains "the workload runs as root: set security.run_as_root to false" if {
	input.workload.security.run_as_root == true
}

deny contains "privileged execution is not allowed: set security.privileged to false" if {
	input.workload.security.privileged == true
}

secret_like(key) if regex.match(`password|passwd|secret|token|api_?key|private_?key|credential`, lower(key))

# A reference anywhere in the value: the runtime resolves each one at launch.
secret_ref(value) if regex.match(`\$\{secret:[^}]*\}`, value)

deny contains msg if {
	some key, value in input.workload.env
	secret_like(key)
	not secret_ref(value)
	msg := sprintf("env %s looks like a secret but holds a literal value: declare it under `secrets` and use ${secret:<name>}", [key])
}

deny contains msg if {
	some key, value in input.workload.env
	some ref in regex.find_n(`\$\{secret:[^}]*\}`, value, -1)
	name := trim_suffix(trim_prefix(ref, "${secret:"), "}")
	not name in {s | some s in input.workload.secrets}
	msg := sprintf("env %s refers to secret %s, which is not declared under `secrets`", [key, name])
}

deny contains "prod requires a signed SBOM attestation of the artifact" if {
	input.environment == "prod"
	not input.artifact.attestations.sbom.verified
}

deny contains "prod requires a signed vulnerability report of the artifact" if {
	input.environment == "prod"
	not input.artifact.attestations.vulnerabilities.verified
}

deny contains msg if {
	input.environment == "prod"
	some finding in input.artifact.attestations.vulnerabilities.findings
	finding.cvss >= 7.0
	msg := sprintf("prod forbids known vulnerabilities with CVSS >= 7.0: %s has %v", [finding.id, finding.cvss])
}

deny contains msg if {
	ratio := input.artifact.attestations.coverage.ratio
	ratio < 0.8
	msg := sprintf("test coverage %v%% is below 80%%", [round(ratio * 1000) / 10])
}

money(x) := round(x * 100) / 100

# Over budget, a team may still deploy what costs no more than what runs:
# a change that saves is never what blocks it.
deny contains msg if {
	budget := input.cost.budget_monthly
	budget > 0
	input.cost.team_monthly > budget
	input.cost.monthly > input.cost.current_monthly
	msg := sprintf(
		"team %s would run %v %s a month in %s, over its budget of %v (this workload: %v, was %v): lower its requests, replicas or schedule, or raise the budget (`paved cost budget set`)",
		[input.cost.team, money(input.cost.team_monthly), input.cost.currency, input.environment, money(budget), money(input.cost.monthly), money(input.cost.current_monthly)],
	)
}

warn contains msg if {
	msg := sprintf("budgets were not checked: %s", [input.cost.error])
}
