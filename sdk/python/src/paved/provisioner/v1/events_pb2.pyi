import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paved.provisioner.v1 import provisioner_pb2 as _provisioner_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkloadRegistered(_message.Message):
    __slots__ = ("workload", "environment")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class WorkloadDeleted(_message.Message):
    __slots__ = ("workload", "environment", "revisions", "actor")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    revisions: int
    actor: str
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., revisions: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class RevisionDeployed(_message.Message):
    __slots__ = ("workload", "environment", "revision_id", "number", "spec_digest")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SPEC_DIGEST_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    revision_id: str
    number: int
    spec_digest: str
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., revision_id: _Optional[str] = ..., number: _Optional[int] = ..., spec_digest: _Optional[str] = ...) -> None: ...

class RevisionStateChanged(_message.Message):
    __slots__ = ("workload", "environment", "revision_id", "to", "message", "from_state")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    revision_id: str
    to: _provisioner_pb2.RevisionState
    message: str
    from_state: _provisioner_pb2.RevisionState
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., revision_id: _Optional[str] = ..., to: _Optional[_Union[_provisioner_pb2.RevisionState, str]] = ..., message: _Optional[str] = ..., from_state: _Optional[_Union[_provisioner_pb2.RevisionState, str]] = ..., **kwargs) -> None: ...

class RolloutTransitioned(_message.Message):
    __slots__ = ("rollout_id", "workload", "environment", "revision_id", "stage", "state", "weight", "message")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    workload: str
    environment: str
    revision_id: str
    stage: _provisioner_pb2.RolloutStage
    state: _provisioner_pb2.RolloutState
    weight: int
    message: str
    def __init__(self, rollout_id: _Optional[str] = ..., workload: _Optional[str] = ..., environment: _Optional[str] = ..., revision_id: _Optional[str] = ..., stage: _Optional[_Union[_provisioner_pb2.RolloutStage, str]] = ..., state: _Optional[_Union[_provisioner_pb2.RolloutState, str]] = ..., weight: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class WorkloadRolledBack(_message.Message):
    __slots__ = ("workload", "environment", "from_revision_id", "to_revision_id", "reason")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    FROM_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    from_revision_id: str
    to_revision_id: str
    reason: str
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., from_revision_id: _Optional[str] = ..., to_revision_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PolicyDecided(_message.Message):
    __slots__ = ("rollout_id", "workload", "environment", "revision_id", "bundle_digest", "allowed", "denials", "warnings", "artifact_digest", "attestations")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIALS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    workload: str
    environment: str
    revision_id: str
    bundle_digest: str
    allowed: bool
    denials: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    artifact_digest: str
    attestations: _containers.RepeatedCompositeFieldContainer[AttestationSeen]
    def __init__(self, rollout_id: _Optional[str] = ..., workload: _Optional[str] = ..., environment: _Optional[str] = ..., revision_id: _Optional[str] = ..., bundle_digest: _Optional[str] = ..., allowed: _Optional[bool] = ..., denials: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., artifact_digest: _Optional[str] = ..., attestations: _Optional[_Iterable[_Union[AttestationSeen, _Mapping]]] = ...) -> None: ...

class AttestationSeen(_message.Message):
    __slots__ = ("kind", "signer", "verified", "payload_digest")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    kind: str
    signer: str
    verified: bool
    payload_digest: str
    def __init__(self, kind: _Optional[str] = ..., signer: _Optional[str] = ..., verified: _Optional[bool] = ..., payload_digest: _Optional[str] = ...) -> None: ...

class PreviewOpened(_message.Message):
    __slots__ = ("environment", "pr", "expire_time_ms", "expire_time")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PR_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pr: int
    expire_time_ms: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, environment: _Optional[str] = ..., pr: _Optional[int] = ..., expire_time_ms: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewClosed(_message.Message):
    __slots__ = ("environment", "pr", "workloads", "reason")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PR_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    environment: str
    pr: int
    workloads: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, environment: _Optional[str] = ..., pr: _Optional[int] = ..., workloads: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkloadPowered(_message.Message):
    __slots__ = ("workload", "environment", "awake", "reason", "actor", "revision_id", "note", "hold_until_ms", "hold_until")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    AWAKE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    HOLD_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    HOLD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    awake: bool
    reason: _provisioner_pb2.PowerReason
    actor: str
    revision_id: str
    note: str
    hold_until_ms: int
    hold_until: _timestamp_pb2.Timestamp
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., awake: _Optional[bool] = ..., reason: _Optional[_Union[_provisioner_pb2.PowerReason, str]] = ..., actor: _Optional[str] = ..., revision_id: _Optional[str] = ..., note: _Optional[str] = ..., hold_until_ms: _Optional[int] = ..., hold_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
