"""The SDK as a user meets it, against a live `paved up`: the README's
example, a rollout followed to promotion and to rollback, errors with their
details, tokens, secrets and the audit log."""

import datetime
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

import paved
from google.protobuf import duration_pb2

from paved.provisioner.v1 import provisioner_pb2, spec_pb2
from paved.secrets_broker.v1 import secrets_broker_pb2

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def spec(version: str, error_rate: str = "0") -> str:
    return (
        "name: web\nteam: demo\ncommand: [hello]\nhealth:\n  period: 200ms\n  timeout: 200ms\n"
        "rollout:\n  steps: [50, 100]\n  interval: 2s\n  max_error_rate: 0.05\n"
        f"env:\n  HELLO_VERSION: {version}\n  HELLO_ERROR_RATE: \"{error_rate}\"\n"
    )


class Load:
    """Clients calling the workload all the time: the analyzer judges traffic."""

    def __init__(self, endpoint: str, clients: int = 4) -> None:
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(endpoint,), daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, endpoint: str) -> None:
        while not self.stop.is_set():
            try:
                urllib.request.urlopen(f"http://{endpoint}/", timeout=2).read()
            except (urllib.error.URLError, OSError):
                time.sleep(0.01)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_the_readme_example_runs_as_written(live) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    env = {**os.environ, "PAVED_ENDPOINT": live.endpoint, "PAVED_TOKEN": live.token}
    out = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "greeter: promoted" in out.stdout, out.stdout
    assert re.search(r"serving at 127\.0\.0\.1:\d+", out.stdout), out.stdout


def test_a_rollout_followed_to_promotion_and_to_rollback(client: paved.Client) -> None:
    first = client.deploy(spec("v1"), "dev")
    assert first.promoted and first.state == "promoted", first.rollout
    workload = client.provisioner.GetWorkload(provisioner_pb2.GetWorkloadRequest(environment="dev", name="web")).workload
    load = Load(workload.endpoint)
    try:
        weights = []
        second = client.deploy(spec("v2"), "dev", on_change=lambda r: weights.append(r.weight))
        assert second.state == "promoted", second.rollout
        assert 50 in weights and weights[-1] == 100, weights
        # Half its answers are 500s: rolled back at its first step.
        third = client.deploy(spec("v3", "0.5"), "dev")
        assert not third.promoted and third.state == "rolled_back", third.rollout
        assert "errors" in third.rollout.message, third.rollout.message
    finally:
        load.close()
    # Applying the running spec again changes nothing.
    assert client.deploy(spec("v2"), "dev").state == "unchanged"


def test_a_spec_built_in_code_deploys_and_is_refused_at_its_field(client: paved.Client) -> None:
    coded = spec_pb2.WorkloadSpec(name="coded", command=["hello"], env={"HELLO_VERSION": "coded"}, replicas=2)
    done = client.deploy(coded, "dev")
    assert done.promoted, done.rollout
    assert "replicas: 2" in done.applied.revision.spec_yaml, done.applied.revision.spec_yaml
    # The YAML a person writes for it is the same spec.
    assert client.deploy("name: coded\ncommand: [hello]\nreplicas: 2\nenv: {HELLO_VERSION: coded}\n", "dev").state == "unchanged"
    bad = spec_pb2.WorkloadSpec()
    bad.CopyFrom(coded)
    bad.health.period.CopyFrom(duration_pb2.Duration(seconds=1))
    bad.health.timeout.CopyFrom(duration_pb2.Duration(seconds=2))
    with pytest.raises(paved.InvalidArgument) as refused:
        client.deploy(bad, "dev")
    assert (refused.value.reason, refused.value.fields) == ("INVALID_SPEC", ["spec.health.timeout"]), refused.value


def test_errors_carry_their_code_reason_and_fields(live, client: paved.Client) -> None:
    with pytest.raises(paved.InvalidArgument) as bad:
        client.deploy("name: Bad\ncommand: [hello]\n", "dev")
    # As the README says.
    assert (bad.value.reason, bad.value.fields, bad.value.domain) == ("INVALID_SPEC", ["spec_yaml.name"], "paved.dev"), bad.value
    assert "paved.yaml:1:7" in bad.value.field_violations[0].description, bad.value

    with paved.Client(live.endpoint, "pvt1.not-a-token") as stranger:
        with pytest.raises(paved.Unauthenticated) as refused:
            stranger.provisioner.ListWorkloads(provisioner_pb2.ListWorkloadsRequest())
    assert refused.value.reason, refused.value

    viewer = client.issue_token("sdk-viewer", ["read:provisioner"], ttl=datetime.timedelta(minutes=5))
    with paved.Client(live.endpoint, viewer.token) as reader:
        assert reader.provisioner.ListWorkloads(provisioner_pb2.ListWorkloadsRequest()) is not None
        with pytest.raises(paved.PermissionDenied) as denied:
            reader.deploy(spec("v9"), "dev")
    assert (denied.value.reason, denied.value.metadata.get("scope")) == ("MISSING_SCOPE", "write:provisioner"), denied.value


def test_tokens_are_issued_and_revoked(live, client: paved.Client) -> None:
    issued = client.issue_token("sdk-revoked", ["read:provisioner"], ttl=datetime.timedelta(minutes=5))
    with paved.Client(live.endpoint, issued.token) as holder:
        holder.provisioner.ListWorkloads(provisioner_pb2.ListWorkloadsRequest())
        client.revoke_token(issued.info.token_id)
        deadline = time.monotonic() + 5
        while True:
            try:
                holder.provisioner.ListWorkloads(provisioner_pb2.ListWorkloadsRequest())
            except paved.Unauthenticated as e:
                assert "revoked" in str(e), e
                break
            assert time.monotonic() < deadline, "a revoked token is refused within seconds"
            time.sleep(0.1)


def test_secrets_are_read_and_watched(client: paved.Client) -> None:
    client.secrets_broker.PutSecret(secrets_broker_pb2.PutSecretRequest(path="dev/web/api-key", value=b"one"))
    assert client.get_secret("dev/web/api-key").value == b"one"
    changes = client.watch_secret("dev/web/api-key")
    assert next(changes).value == b"one"
    client.secrets_broker.PutSecret(secrets_broker_pb2.PutSecretRequest(path="dev/web/api-key", value=b"two"))
    assert next(changes).value == b"two"
    with pytest.raises(paved.NotFound):
        client.get_secret("dev/web/nothing-here")


def test_the_audit_log_holds_what_was_done(client: paved.Client) -> None:
    client.deploy(spec("v1").replace("name: web", "name: audited"), "dev")
    deadline = time.monotonic() + 30
    while True:
        types = [e.type for e in client.query_audit(workload="audited", environment="dev")]
        if any(t.endswith("rollout.transitioned") for t in types):
            break
        assert time.monotonic() < deadline, types
        time.sleep(0.5)
    assert types[0].endswith("workload.registered"), types
