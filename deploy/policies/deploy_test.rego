# Unit tests of deploy.rego: `paved policy test deploy/policies`.
package paved.deploy_test

import data.paved.deploy

good := {
	"environment": "prod",
	"workload": {
		"name": "web",
		"team": "shop",
		"run": {"artifact": "sha256:3f0a"},
		"env": {"DB_PASSWORD": "${secret:db}", "MODE": "fast"},
		"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
		"security": {"run_as_root": false, "privileged": false},
		"secrets": ["db"],
	},
	"artifact": {
		"digest": "sha256:3f0a",
		"attestations": {
			"sbom": {"verified": true},
			"vulnerabilities": {"verified": true, "findings": [{"id": "CVE-2026-1", "cvss": 5.3}]},
			"coverage": {"verified": true, "ratio": 0.91},
		},
	},
}

# good, with the workload's top-level fields in `changes` replaced (not merged).
with_workload(changes) := object.union(object.remove(good, {"workload"}), {"workload": workload}) if {
	replaced := {k | some k, _ in changes}
	workload := object.union(object.remove(good.workload, replaced), changes)
}

denied(input_doc, fragment) if {
	denials := deploy.deny with input as input_doc
	some msg in denials
	contains(msg, fragment)
}

warned(input_doc, fragment) if {
	warnings := deploy.warn with input as input_doc
	some msg in warnings
	contains(msg, fragment)
}

test_a_good_prod_deploy_passes_clean if {
	count(deploy.deny) == 0 with input as good
	count(deploy.warn) == 0 with input as good
}

test_a_command_is_not_pinned_and_blocks_prod if {
	denied(with_workload({"run": {"command": ["hello"]}}), "not pinned by digest")
}

test_a_command_only_warns_in_dev if {
	doc := object.union(with_workload({"run": {"command": ["hello"]}}), {"environment": "dev"})
	warned(doc, "not pinned by digest")
	not denied(doc, "not pinned")
}

test_missing_limits_block_staging if {
	doc := object.union(with_workload({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}), {"environment": "staging"})
	denied(doc, "resources.limits.cpu is not set")
	denied(doc, "resources.limits.memory is not set")
}

test_no_team_blocks_prod_and_warns_in_dev if {
	doc := json.remove(good, ["workload/team"])
	denied(doc, "team is not set")
	warned(object.union(doc, {"environment": "dev"}), "team is not set")
	not denied(object.union(doc, {"environment": "dev"}), "team is not set")
}

test_root_is_denied_everywhere if {
	denied(object.union(with_workload({"security": {"run_as_root": true}}), {"environment": "dev"}), "runs as root")
}

test_privileged_is_denied if {
	denied(with_workload({"security": {"privileged": true}}), "privileged execution")
}

test_a_literal_secret_is_denied if {
	denied(with_workload({"env": {"API_TOKEN": "hunter2"}}), "env API_TOKEN looks like a secret")
}

test_an_undeclared_secret_reference_is_denied if {
	denied(with_workload({"env": {"DB_PASSWORD": "${secret:other}"}}), "refers to secret other, which is not declared")
	denied(with_workload({"env": {"DSN": "postgres://app:${secret:other}@db"}}), "refers to secret other, which is not declared")
}

test_a_reference_inside_a_value_is_no_literal_secret if {
	count(deploy.deny) == 0 with input as with_workload({"env": {"DB_PASSWORD": "prefix-${secret:db}"}})
	denied(with_workload({"env": {"DB_PASSWORD": "prefix-${secret:}"}}), "refers to secret , which is not declared")
}

test_prod_without_a_signed_sbom_is_denied if {
	doc := object.union(good, {"artifact": {"attestations": {"sbom": {"verified": false}}}})
	denied(doc, "signed SBOM")
}

test_prod_without_an_artifact_is_denied if {
	denied(object.union(good, {"artifact": null}), "signed SBOM")
}

test_a_critical_vulnerability_blocks_prod if {
	findings := [{"id": "CVE-2026-9", "cvss": 9.8}]
	doc := object.union(good, {"artifact": {"attestations": {"vulnerabilities": {"findings": findings}}}})
	denied(doc, "CVE-2026-9 has 9.8")
}

test_a_critical_vulnerability_does_not_block_dev if {
	findings := [{"id": "CVE-2026-9", "cvss": 9.8}]
	doc := object.union(good, {"environment": "dev", "artifact": {"attestations": {"vulnerabilities": {"findings": findings}}}})
	count(deploy.deny) == 0 with input as doc
}

test_low_coverage_is_denied_when_reported if {
	doc := object.union(good, {"artifact": {"attestations": {"coverage": {"ratio": 0.5}}}})
	denied(doc, "test coverage 50% is below 80%")
}

cost(team_monthly, budget) := {
	"currency": "USD", "current_monthly": 10, "monthly": 25.5, "awake_share": 1,
	"team": "shop", "budget_monthly": budget, "team_monthly": team_monthly,
}

test_a_deploy_over_the_team_budget_is_denied if {
	denied(object.union(good, {"cost": cost(210.123, 200)}), "team shop would run 210.12 USD a month in prod, over its budget of 200")
}

test_a_deploy_within_the_budget_or_without_one_passes if {
	count(deploy.deny) == 0 with input as object.union(good, {"cost": cost(199.99, 200)})
	count(deploy.deny) == 0 with input as object.union(good, {"cost": cost(5000, 0)})
	count(deploy.warn) == 0 with input as object.union(good, {"cost": cost(5000, 0)})
}

test_a_change_that_saves_passes_over_budget if {
	saving := object.union(cost(210, 200), {"current_monthly": 40, "monthly": 25.5})
	count(deploy.deny) == 0 with input as object.union(good, {"cost": saving})
}

test_an_unanswered_forecast_warns_and_does_not_block if {
	doc := object.union(good, {"cost": {"error": "the cost scheduler did not answer within 2 s"}})
	warned(doc, "budgets were not checked: the cost scheduler did not answer")
	count(deploy.deny) == 0 with input as doc
}
