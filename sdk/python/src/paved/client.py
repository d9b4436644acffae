"""Connecting to Paved: the endpoint and token (from the arguments, the
environment or the CLI's stored login), TLS, retries on `UNAVAILABLE` with
backoff, a typed stub per service whose errors are `PavedError`s, and the
common flows (deploy and follow the rollout, tokens, secrets, the audit log).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from paved.audit.v1 import audit_pb2, audit_pb2_grpc
from paved.cost_scheduler.v1 import cost_scheduler_pb2_grpc
from paved.canary_analyzer.v1 import canary_analyzer_pb2_grpc
from paved.errors import PavedError, Unavailable, from_rpc_error
from paved.provisioner.v1 import provisioner_pb2, provisioner_pb2_grpc, spec_pb2
from paved.secrets_broker.v1 import secrets_broker_pb2, secrets_broker_pb2_grpc

DEFAULT_ENDPOINT = "127.0.0.1:7400"

# gRPC's own retries, for the calls that are safe to repeat: those that
# only read, and those that carry a request id the server deduplicates on.
# A call refused with UNAVAILABLE may still have been acted on (a connection
# lost after the server committed), so writes without a request id are not
# retried: issuing a token or a credential twice is not harmless.
_READS = ("Get", "List", "Query", "Explain", "Plan", "Introspect", "Watch")
_DEDUPLICATED = {("paved.provisioner.v1.ProvisionerService", "ApplyWorkload"), ("paved.provisioner.v1.ProvisionerService", "OpenPreview")}


def _retried_methods() -> List[dict]:
    from paved.audit.v1 import audit_pb2 as a
    from paved.canary_analyzer.v1 import canary_analyzer_pb2 as c
    from paved.cost_scheduler.v1 import cost_scheduler_pb2 as k

    names = []
    for module in (a, c, k, provisioner_pb2, secrets_broker_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.name.startswith(_READS) or (service.full_name, method.name) in _DEDUPLICATED:
                    names.append({"service": service.full_name, "method": method.name})
    return names


_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": _retried_methods(),
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)

_ENDED = {
    provisioner_pb2.ROLLOUT_STATE_PROMOTED,
    provisioner_pb2.ROLLOUT_STATE_ROLLED_BACK,
    provisioner_pb2.ROLLOUT_STATE_ABORTED,
    provisioner_pb2.ROLLOUT_STATE_SUPERSEDED,
}


def stored_token(endpoint: str) -> str:
    """The token the `paved` CLI stored for `endpoint` (`paved login`, or
    `paved up` on this machine); empty when there is none."""
    env = lambda name: os.environ.get(name) or None  # noqa: E731
    base = env("PAVED_CONFIG_DIR")
    if base is None:
        xdg, home = env("XDG_CONFIG_HOME"), env("HOME")
        base = os.path.join(xdg, "paved") if xdg else os.path.join(home, ".config", "paved") if home else None
    if base is None:
        return ""
    try:
        stored = json.loads(pathlib.Path(base, "credentials.json").read_text())
    except FileNotFoundError:
        return ""
    return stored.get(endpoint, "") if isinstance(stored, dict) else ""


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Puts `authorization: Bearer <token>` on every call (plain or TLS)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def _with_token(self, details: Any) -> Any:
        metadata = list(details.metadata or []) + [("authorization", f"Bearer {self._token}")]
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):  # type: ignore[no-untyped-def]
        return continuation(self._with_token(details), requests)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base: Any, metadata: list) -> None:
        self.method, self.timeout, self.credentials = base.method, base.timeout, base.credentials
        self.wait_for_ready, self.compression, self.metadata = base.wait_for_ready, base.compression, metadata


class _Service:
    """A generated stub whose calls raise `PavedError`; unary calls have a
    deadline (`timeout` seconds), streams none unless given."""

    def __init__(self, stub: Any, timeout: float) -> None:
        self._stub, self._timeout = stub, timeout

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)
        streaming = isinstance(method, grpc.UnaryStreamMultiCallable)
        unary = isinstance(method, grpc.UnaryUnaryMultiCallable)

        def call(request: Any, **kwargs: Any) -> Any:
            # Streams (a watch, an upload) run as long as they need.
            if unary:
                kwargs.setdefault("timeout", self._timeout)
            try:
                answer = method(request, **kwargs)
            except grpc.RpcError as e:
                raise from_rpc_error(e) from None
            return _stream(answer) if streaming else answer

        return call


def _stream(responses: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from responses
    except grpc.RpcError as e:
        raise from_rpc_error(e) from None


@dataclass
class Deployment:
    """What `Client.deploy` did: the apply's answer and, when the apply
    changed something, the rollout as it ended."""

    applied: provisioner_pb2.ApplyWorkloadResponse
    rollout: Optional[provisioner_pb2.Rollout]

    @property
    def promoted(self) -> bool:
        """True when the new revision took all traffic (or nothing changed)."""
        return self.rollout is None or self.rollout.state == provisioner_pb2.ROLLOUT_STATE_PROMOTED

    @property
    def state(self) -> str:
        if self.rollout is None:
            return "unchanged"
        return provisioner_pb2.RolloutState.Name(self.rollout.state).removeprefix("ROLLOUT_STATE_").lower()


class Client:
    """A connection to Paved and a stub per service:
    `provisioner`, `secrets_broker`, `canary_analyzer`, `cost_scheduler`, `audit`.

    The endpoint is `endpoint`, else `PAVED_ENDPOINT`, else 127.0.0.1:7400;
    `https://` uses TLS (with `root_certificates`, or `PAVED_CA_BUNDLE`'s
    file, and for mTLS `certificate_chain` and `private_key`). The token is
    `token`, else `PAVED_TOKEN`, else the CLI's stored login for the endpoint.

    TLS: grpcio checks the server's host name and nothing else. A platform
    service's certificate names its SPIFFE id and its service name
    (`provisioner`, `secrets-broker`, …): give that as `server_name` when
    the endpoint's host differs (`https://127.0.0.1:7401` under compose).
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        token: Optional[str] = None,
        *,
        root_certificates: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        server_name: Optional[str] = None,
        timeout: float = 30.0,
    ) -> None:
        endpoint = endpoint or os.environ.get("PAVED_ENDPOINT") or DEFAULT_ENDPOINT
        self.endpoint = endpoint
        token = token if token is not None else os.environ.get("PAVED_TOKEN") or stored_token(endpoint)
        options = [("grpc.enable_retries", 1), ("grpc.service_config", _SERVICE_CONFIG)]
        target = endpoint.split("://", 1)[-1]
        if endpoint.startswith("https://"):
            if root_certificates is None and os.environ.get("PAVED_CA_BUNDLE"):
                root_certificates = pathlib.Path(os.environ["PAVED_CA_BUNDLE"]).read_bytes()
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self._channel = channel
        if token:
            channel = grpc.intercept_channel(channel, _Bearer(token))
        self.provisioner = _Service(provisioner_pb2_grpc.ProvisionerServiceStub(channel), timeout)
        self.secrets_broker = _Service(secrets_broker_pb2_grpc.SecretsBrokerServiceStub(channel), timeout)
        self.canary_analyzer = _Service(canary_analyzer_pb2_grpc.CanaryAnalyzerServiceStub(channel), timeout)
        self.cost_scheduler = _Service(cost_scheduler_pb2_grpc.CostSchedulerServiceStub(channel), timeout)
        self.audit = _Service(audit_pb2_grpc.AuditServiceStub(channel), timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # Workloads

    def deploy(
        self,
        spec: Union[str, spec_pb2.WorkloadSpec],
        environment: str,
        *,
        follow: bool = True,
        on_change: Optional[Callable[[provisioner_pb2.Rollout], None]] = None,
    ) -> Deployment:
        """Applies a spec (the text of a paved.yaml, or a `WorkloadSpec`
        built in code) to `environment` and, with `follow`, watches its
        rollout to its end, calling `on_change` with each change. A rollback
        is a result (`promoted` is False), not an exception: the platform
        did what it should."""
        request = provisioner_pb2.ApplyWorkloadRequest(environment=environment, request_id=str(uuid.uuid4()))
        if isinstance(spec, str):
            request.spec_yaml = spec
        else:
            request.spec.CopyFrom(spec)
        applied = self.provisioner.ApplyWorkload(request)
        if not applied.changed or not applied.HasField("rollout"):
            return Deployment(applied, None)
        if not follow:
            return Deployment(applied, applied.rollout)
        return Deployment(applied, self.follow_rollout(applied.rollout.id, on_change))

    def follow_rollout(self, rollout_id: str, on_change: Optional[Callable[[provisioner_pb2.Rollout], None]] = None) -> provisioner_pb2.Rollout:
        """Watches a rollout until it has ended; returns it as it ended. A
        watch cut short (the platform restarting) is taken up again."""
        wait = 0.1
        while True:
            try:
                for change in self.provisioner.WatchRollout(provisioner_pb2.WatchRolloutRequest(id=rollout_id)):
                    if on_change is not None:
                        on_change(change.rollout)
                    if change.rollout.state in _ENDED:
                        return change.rollout
            except PavedError as e:
                if e.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    raise
            # The watch ended before the rollout did: read where it stands.
            try:
                rollout = self.provisioner.GetRollout(provisioner_pb2.GetRolloutRequest(id=rollout_id)).rollout
                if rollout.state in _ENDED:
                    return rollout
            except Unavailable:
                pass
            time.sleep(wait)
            wait = min(wait * 2, 2.0)

    # Tokens

    def issue_token(
        self,
        subject: str,
        scopes: Sequence[str] = (),
        *,
        role: str = "",
        environment: str = "",
        workloads: str = "",
        ttl: Optional[datetime.timedelta] = None,
        audience: str = "",
    ) -> secrets_broker_pb2.IssueTokenResponse:
        """A token for `subject` with `scopes` (or a `role`); `ttl` default 15 min."""
        request = secrets_broker_pb2.IssueTokenRequest(
            subject=subject, scopes=list(scopes), role=role, environment=environment, workloads=workloads, audience=audience
        )
        if ttl is not None:
            request.ttl.CopyFrom(_duration(ttl))
        return self.secrets_broker.IssueToken(request)

    def revoke_token(self, token_id: str) -> None:
        self.secrets_broker.RevokeToken(secrets_broker_pb2.RevokeTokenRequest(token_id=token_id))

    # Secrets

    def get_secret(self, path: str, version: int = 0) -> secrets_broker_pb2.Secret:
        """A secret's value at `version` (0: the latest)."""
        return self.secrets_broker.GetSecret(secrets_broker_pb2.GetSecretRequest(path=path, version=version)).secret

    def watch_secret(self, path: str) -> Iterator[secrets_broker_pb2.Secret]:
        """The secret now, then each new version as it is written."""
        for change in self.secrets_broker.WatchSecret(secrets_broker_pb2.WatchSecretRequest(path=path)):
            yield change.secret

    # The audit log

    def query_audit(
        self,
        *,
        workload: str = "",
        environment: str = "",
        actor: str = "",
        since: Optional[datetime.datetime] = None,
    ) -> List[AuditEntry]:
        """Every entry of a workload's chain (or an actor's), oldest first,
        all pages read. The server proves each against its checkpoint
        (`audit.QueryLog` gives the proofs, for a client that checks them)."""
        entries: List[AuditEntry] = []
        token = ""
        while True:
            request = audit_pb2.QueryLogRequest(workload=workload, environment=environment, actor=actor, page_size=1000, page_token=token)
            if since is not None:
                request.since.CopyFrom(_timestamp(since))
            page = self.audit.QueryLog(request)
            entries.extend(AuditEntry(p.index, audit_pb2.LogEntry.FromString(p.entry)) for p in page.entries)
            token = page.next_page_token
            if not token:
                return entries


@dataclass
class AuditEntry:
    """An entry of the audit log: its index and what it holds."""

    index: int
    entry: audit_pb2.LogEntry

    @property
    def type(self) -> str:
        """The event's type, e.g. `paved.provisioner.v1.rollout.transitioned`."""
        return self.entry.event.type


def _duration(d: datetime.timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(d)
    return out


def _timestamp(t: datetime.datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


__all__ = ["AuditEntry", "Client", "Deployment", "PavedError", "stored_token", "DEFAULT_ENDPOINT"]
