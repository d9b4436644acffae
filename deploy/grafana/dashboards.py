"""Paved's Grafana dashboards, written with Grafana's Foundation SDK.

The SDK's builders are generated from Grafana's own dashboard schema, so a
dashboard built here has only fields, types and enum values that schema
knows. `python dashboards.py` writes `dashboards/<uid>.json`; with `--check`
it writes nothing and fails when a file differs from what it would write, or
when a file in `dashboards/` does not survive a round trip through the SDK's
dashboard model unchanged (a hand-made field the schema does not know).

Queries use `$environment` and `$workload` (a workload's name); the
workloads' proxy and verdict series label workloads `<environment>/<name>`.
Every panel query is run against a live platform by the integration test
`prometheus::rollouts_judged_on_a_prometheus_metric`.
"""

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    Dashboard as DashboardModel,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="prometheus")
OUT = Path(__file__).resolve().parent / "dashboards"
# One proxied workload, as its proxy and verdict series name it.
WORKLOAD = 'workload="$environment/$workload"'
# The same workload as the per-workload call, entry and event counts label
# it: its environment and name apart.
SELECTED = 'environment="$environment",workload="$workload"'


def query(expr, legend, ref="A"):
    return prometheus.Dataquery().ref_id(ref).expr(expr).legend_format(legend).datasource(PROMETHEUS)


def series(title, unit, *queries, description=None, span=12):
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(span).height(8)
    for ref, (expr, legend) in zip("ABCDEFGH", queries):
        panel = panel.with_target(query(expr, legend, ref))
    return panel.description(description) if description else panel


def figure(title, unit, expr, legend, span=6):
    return stat.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(span).height(4).with_target(query(expr, legend))


def bars(title, unit, expr, legend, span=12):
    return bargauge.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(span).height(8).with_target(query(expr, legend))


def dashboard(uid, title, description, time_from="now-1h"):
    """A dashboard with the two variables every one has: the environment,
    and the workload in it (from the provisioner's per-replica series,
    which every running workload has)."""
    environment = (
        QueryVariable("environment")
        .label("Environment")
        .datasource(PROMETHEUS)
        .query("label_values(paved_instance_memory_bytes, environment)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    workload = (
        QueryVariable("workload")
        .label("Workload")
        .datasource(PROMETHEUS)
        .query('label_values(paved_instance_memory_bytes{environment="$environment"}, workload)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["paved"])
        .time(time_from, "now")
        .refresh("30s")
        .with_variable(environment)
        .with_variable(workload)
    )


def rate_by(labels, metric, selector="", window="5m"):
    matchers = f"{{{selector}}}" if selector else ""
    return f"sum by ({labels}) (rate({metric}{matchers}[{window}]))"


def error_ratio(metric, labels, bad, selector):
    """Bad over all, 0 (not absent) while nothing is bad."""
    total = rate_by(labels, metric, selector)
    bad_rate = rate_by(labels, metric, f"{selector},{bad}" if selector else bad)
    return f"({bad_rate} or {total} * 0) / {total}"


# The gRPC series name a service by its full protobuf name; the refusals,
# by its audience.
GRPC_SERVICE = {
    "provisioner": "paved.provisioner.v1.ProvisionerService",
    "secrets-broker": "paved.secrets_broker.v1.SecretsBrokerService",
    "canary-analyzer": "paved.canary_analyzer.v1.CanaryAnalyzerService",
    "cost-scheduler": "paved.cost_scheduler.v1.CostSchedulerService",
    "audit": "paved.audit.v1.AuditService",
}


def grpc_panels(service):
    selector = f'service="{GRPC_SERVICE[service]}"'
    return [
        series("Requests per second by method and code", "reqps",
               (rate_by("method, code", "paved_grpc_server_requests_total", selector), "{{method}} {{code}}")),
        series("Error ratio (codes other than OK)", "percentunit",
               (error_ratio("paved_grpc_server_requests_total", "method", 'code!="0"', selector), "{{method}}")),
        series("p99 latency by method", "s",
               ("histogram_quantile(0.99, " + rate_by("le, method", "paved_grpc_server_request_duration_seconds_bucket", selector) + ")",
                "{{method}}")),
        series("Calls refused by reason", "reqps",
               (rate_by("reason", "paved_auth_denials_total", f'service="{service}"'), "{{reason}}")),
    ]


def workload_panels():
    """One workload's traffic through its proxy, by revision."""
    requests = "paved_proxy_requests_total"
    return [
        series("Requests per second by revision (canary, stable, baseline)", "reqps",
               (rate_by("revision", requests, WORKLOAD, "1m"), "{{revision}}")),
        series("5xx ratio by revision", "percentunit",
               (error_ratio(requests, "revision", 'class="5xx"', WORKLOAD), "{{revision}}")),
        series("p99 latency by revision", "s",
               ("histogram_quantile(0.99, " + rate_by("revision, le", "paved_proxy_request_duration_seconds_bucket", WORKLOAD, "1m") + ")",
                "{{revision}}")),
        series("Canary judgements by verdict", "short",
               (f'sum by (verdict) (increase(paved_canary_judgements_total{{{WORKLOAD}}}[5m]))', "{{verdict}}")),
    ]


def with_rows(board, *rows):
    ids = iter(range(1, 1000))
    for title, panels in rows:
        board = board.with_row(Row(title).id(next(ids)))
        for panel in panels:
            board = board.with_panel(panel.id(next(ids)))
    return board


def overview():
    services = "paved_grpc_server_requests_total"
    return with_rows(
        dashboard("paved-overview", "Paved — platform overview",
                  "Every platform service's traffic, errors and latency, the event stream's health, "
                  "and the chosen workload's traffic. Alerts on the same series: deploy/prometheus/rules."),
        ("Platform services", [
            series("Requests per second by service", "reqps", (rate_by("service", services), "{{service}}")),
            series("Error ratio by service (codes other than OK)", "percentunit",
                   (error_ratio(services, "service", 'code!="0"', ""), "{{service}}")),
            series("p99 latency by service", "s",
                   ("histogram_quantile(0.99, " + rate_by("le, service", "paved_grpc_server_request_duration_seconds_bucket") + ")",
                    "{{service}}")),
            series("Calls refused by service and reason", "reqps",
                   (rate_by("service, reason", "paved_auth_denials_total"), "{{service}} {{reason}}")),
        ]),
        ("Event stream and audit log", [
            figure("Dead letters (1h)", "short", "sum(increase(paved_stream_dead_letters_total[1h]))", "dead letters"),
            figure("Worst consumer lag", "s", "max(paved_stream_consumer_lag_seconds)", "lag"),
            figure("Entries not yet checkpointed", "short",
                   "sum(paved_audit_log_size) - sum(paved_audit_log_checkpoint_size)", "uncovered"),
            figure("Highest budget use", "percentunit", "max(paved_cost_budget_ratio)", "budget"),
        ]),
        ("Workload $environment/$workload", workload_panels()),
    )


def rollouts():
    usage = 'environment="$environment",workload="$workload"'
    return with_rows(
        dashboard("paved-rollouts", "Paved — provisioner and rollouts",
                  "A workload's rollouts as its proxy sees them (each revision's traffic, errors and latency, "
                  "the analyzer's verdicts), its replicas' use, and the provisioner's API."),
        ("Rollouts of $environment/$workload", workload_panels()),
        ("Replicas of $environment/$workload", [
            series("CPU by replica (cores)", "short",
                   (f"sum by (revision, replica) (rate(paved_instance_cpu_seconds_total{{{usage}}}[1m]))", "{{revision}} #{{replica}}")),
            series("Memory by replica", "bytes",
                   (f"sum by (revision, replica) (paved_instance_memory_bytes{{{usage}}})", "{{revision}} #{{replica}}")),
        ]),
        ("Provisioner API", grpc_panels("provisioner")),
    )


def secrets_broker():
    return with_rows(
        dashboard("paved-secrets-broker", "Paved — secrets broker",
                  "The broker's API: token issues and checks, secret reads and watches, credential leases; "
                  "and what it refused, by reason."),
        ("Secrets broker API", grpc_panels("secrets-broker")),
        ("Refusals everywhere", [
            series("Token refusals by reason, every service", "reqps",
                   (rate_by("reason", "paved_auth_denials_total", 'reason=~"TOKEN_.*"'), "{{reason}}"),
                   description="A spike is what the TokenRefusalsSpiking alert watches."),
        ]),
        ("The selected workload", [
            series("Calls by its identity, by method and code", "reqps",
                   (rate_by("method, code", "paved_grpc_server_workload_requests_total",
                            f'service="{GRPC_SERVICE["secrets-broker"]}",{SELECTED}'), "{{method}} {{code}}"),
                   description="What the workload asked the broker with its own identity "
                               "(spiffe://paved/<environment>/<workload>): secret reads, leases, certificates."),
        ]),
    )


def canary():
    verdicts = "paved_canary_judgements_total"
    return with_rows(
        dashboard("paved-canary", "Paved — canary verdicts",
                  "What the canary analyzer judged: verdicts by workload, the chosen workload's looks, "
                  "and the analyzer's API."),
        ("Verdicts", [
            series("Verdicts per minute by workload and verdict", "short",
                   (f"sum by (workload, verdict) (increase({verdicts}[1m]))", "{{workload}} {{verdict}}")),
            bars("Failed looks by workload (24h)", "short",
                 f'sum by (workload) (increase({verdicts}{{verdict="fail"}}[24h]))', "{{workload}}"),
        ]),
        ("Workload $environment/$workload", workload_panels()),
        ("Canary analyzer API", grpc_panels("canary-analyzer")),
    )


def cost():
    scope = 'environment="$environment"'
    one = 'environment="$environment",workload="$workload"'
    return with_rows(
        dashboard("paved-cost", "Paved — cost by team",
                  "Cost by team, environment and workload from the cost scheduler's paved_cost_* gauges "
                  "(this month to date, in the price sheet's currency; the unit shown assumes USD). "
                  "The same figures as `paved cost report --by workload`.", time_from="now-7d"),
        ("Teams", [
            series("Cost by team, by request (month to date)", "currencyUSD",
                   ("sum by (team) (paved_cost_requested)", "{{team}}")),
            series("Cost by team, by use (month to date)", "currencyUSD", ("sum by (team) (paved_cost_used)", "{{team}}")),
            series("Saved by sleeping, by team (month to date)", "currencyUSD",
                   ("sum by (team) (paved_cost_savings)", "{{team}}")),
            series("Replica-hours by team (month to date)", "h", ("sum by (team) (paved_cost_replica_hours)", "{{team}}")),
            series("Forecast month by team and environment (by request, at what runs now)", "currencyUSD",
                   ("paved_cost_forecast_monthly", "{{team}} in {{environment}}")),
            series("Cost by environment, by request (month to date)", "currencyUSD",
                   ("sum by (environment) (paved_cost_requested)", "{{environment}}")),
        ]),
        ("Environment $environment", [
            bars("Most costly workloads, by request (month to date)", "currencyUSD",
                 f"topk(10, paved_cost_requested{{{scope}}})", "{{environment}}/{{workload}} ({{team}})"),
            series("Hours asleep by workload (month to date)", "h",
                   (f"paved_cost_slept_hours{{{scope}}}", "{{environment}}/{{workload}}")),
        ]),
        ("Workload $environment/$workload", [
            series("By request and by use (month to date)", "currencyUSD",
                   (f"sum(paved_cost_requested{{{one}}})", "by request"), (f"sum(paved_cost_used{{{one}}})", "by use")),
        ]),
    )


def audit():
    return with_rows(
        dashboard("paved-audit", "Paved — audit log",
                  "The tamper-evident log: its size, what the latest signed checkpoint covers and how old it is, "
                  "append and read latency, and the audit service's API."),
        ("Log and checkpoints", [
            series("Entries in the log", "short", ("sum(paved_audit_log_size)", "entries")),
            series("Entries not yet in a signed checkpoint", "short",
                   ("sum(paved_audit_log_size) - sum(paved_audit_log_checkpoint_size)", "uncovered")),
            series("Age of the latest checkpoint", "s", ("time() - max(paved_audit_log_checkpoint_timestamp_seconds)", "age")),
            series("Append latency p99 (one batch)", "s",
                   ("histogram_quantile(0.99, sum by (le) (rate(paved_audit_log_append_duration_seconds_bucket[5m])))", "p99")),
            series("Read latency p99 by operation", "s",
                   ("histogram_quantile(0.99, sum by (le, operation) (rate(paved_audit_log_read_duration_seconds_bucket[5m])))",
                    "{{operation}}")),
        ]),
        ("Audit API", grpc_panels("audit")),
        ("The selected workload", [
            series("Entries about it (1h)", "short",
                   (f"sum(increase(paved_audit_log_workload_entries_total{{{SELECTED}}}[1h]))", "entries"),
                   description="Entries appended that concern the workload: its deploys, rollouts and states, "
                               "and what its identity did or was issued at the broker."),
        ]),
    )


def stream():
    return with_rows(
        dashboard("paved-stream", "Paved — event stream",
                  "The shared event stream as each consumer group sees it: events handled, handler failures "
                  "(each retried), dead letters, and the lag from publish to handling."),
        ("Consumer groups", [
            series("Events handled per second by stream and group", "ops",
                   (rate_by("stream, group", "paved_stream_handled_total"), "{{stream}} → {{group}}")),
            series("Handler failures per second (each is retried)", "ops",
                   (rate_by("stream, group", "paved_stream_handler_failures_total"), "{{stream}} → {{group}}")),
            series("Dead letters (1h)", "short",
                   ("sum by (stream, group) (increase(paved_stream_dead_letters_total[1h]))", "{{stream}} → {{group}}")),
            series("Consumer lag (publish to handling)", "s",
                   ("max by (stream, group) (paved_stream_consumer_lag_seconds)", "{{stream}} → {{group}}")),
        ]),
        ("The selected workload", [
            series("Events about it handled, by stream and group", "ops",
                   (rate_by("stream, group", "paved_stream_workload_events_total", SELECTED), "{{stream}} → {{group}}")),
        ]),
    )


BOARDS = [overview, rollouts, secrets_broker, canary, cost, audit, stream]


def render(board):
    model = board.build()
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def round_trips(text):
    """A file the schema's model reads back and writes out unchanged has
    nothing the schema does not know."""
    data = json.loads(text)
    again = json.loads(json.dumps(DashboardModel.from_json(data), cls=JSONEncoder))
    return data == again


def main(check):
    wanted = {f"{b.__name__}": b for b in BOARDS}
    failures = []
    written = {}
    for board in wanted.values():
        model = board().build()
        written[f"{model.uid}.json"] = render(board())
    for name, text in written.items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != text:
                failures.append(f"{path}: differs from what dashboards.py writes; run python deploy/grafana/dashboards.py")
        else:
            path.write_text(text)
    for path in sorted(OUT.glob("*.json")):
        if path.name not in written:
            failures.append(f"{path}: not made by dashboards.py")
        elif not round_trips(path.read_text()):
            failures.append(f"{path}: has fields Grafana's dashboard schema does not know")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
