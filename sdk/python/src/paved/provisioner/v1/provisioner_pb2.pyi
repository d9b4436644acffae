import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paved.cost_scheduler.v1 import cost_scheduler_pb2 as _cost_scheduler_pb2
from paved.provisioner.v1 import spec_pb2 as _spec_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STAGE_UNSPECIFIED: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_VALIDATE: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_POLICY: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_IDENTITY: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_START: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_STEP: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_PROMOTE: _ClassVar[RolloutStage]
    ROLLOUT_STAGE_DONE: _ClassVar[RolloutStage]

class RolloutState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STATE_UNSPECIFIED: _ClassVar[RolloutState]
    ROLLOUT_STATE_RUNNING: _ClassVar[RolloutState]
    ROLLOUT_STATE_PAUSED: _ClassVar[RolloutState]
    ROLLOUT_STATE_PROMOTED: _ClassVar[RolloutState]
    ROLLOUT_STATE_ROLLED_BACK: _ClassVar[RolloutState]
    ROLLOUT_STATE_ABORTED: _ClassVar[RolloutState]
    ROLLOUT_STATE_SUPERSEDED: _ClassVar[RolloutState]

class RevisionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVISION_STATE_UNSPECIFIED: _ClassVar[RevisionState]
    REVISION_STATE_PENDING: _ClassVar[RevisionState]
    REVISION_STATE_STARTING: _ClassVar[RevisionState]
    REVISION_STATE_HEALTHY: _ClassVar[RevisionState]
    REVISION_STATE_UNHEALTHY: _ClassVar[RevisionState]
    REVISION_STATE_FAILED: _ClassVar[RevisionState]
    REVISION_STATE_STOPPED: _ClassVar[RevisionState]

class PowerReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POWER_REASON_UNSPECIFIED: _ClassVar[PowerReason]
    POWER_REASON_SCHEDULE: _ClassVar[PowerReason]
    POWER_REASON_IDLE: _ClassVar[PowerReason]
    POWER_REASON_REQUEST: _ClassVar[PowerReason]
    POWER_REASON_PERSON: _ClassVar[PowerReason]

class PlanAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_ACTION_UNSPECIFIED: _ClassVar[PlanAction]
    PLAN_ACTION_NONE: _ClassVar[PlanAction]
    PLAN_ACTION_CREATE: _ClassVar[PlanAction]
    PLAN_ACTION_UPDATE: _ClassVar[PlanAction]
ROLLOUT_STAGE_UNSPECIFIED: RolloutStage
ROLLOUT_STAGE_VALIDATE: RolloutStage
ROLLOUT_STAGE_POLICY: RolloutStage
ROLLOUT_STAGE_IDENTITY: RolloutStage
ROLLOUT_STAGE_START: RolloutStage
ROLLOUT_STAGE_STEP: RolloutStage
ROLLOUT_STAGE_PROMOTE: RolloutStage
ROLLOUT_STAGE_DONE: RolloutStage
ROLLOUT_STATE_UNSPECIFIED: RolloutState
ROLLOUT_STATE_RUNNING: RolloutState
ROLLOUT_STATE_PAUSED: RolloutState
ROLLOUT_STATE_PROMOTED: RolloutState
ROLLOUT_STATE_ROLLED_BACK: RolloutState
ROLLOUT_STATE_ABORTED: RolloutState
ROLLOUT_STATE_SUPERSEDED: RolloutState
REVISION_STATE_UNSPECIFIED: RevisionState
REVISION_STATE_PENDING: RevisionState
REVISION_STATE_STARTING: RevisionState
REVISION_STATE_HEALTHY: RevisionState
REVISION_STATE_UNHEALTHY: RevisionState
REVISION_STATE_FAILED: RevisionState
REVISION_STATE_STOPPED: RevisionState
POWER_REASON_UNSPECIFIED: PowerReason
POWER_REASON_SCHEDULE: PowerReason
POWER_REASON_IDLE: PowerReason
POWER_REASON_REQUEST: PowerReason
POWER_REASON_PERSON: PowerReason
PLAN_ACTION_UNSPECIFIED: PlanAction
PLAN_ACTION_NONE: PlanAction
PLAN_ACTION_CREATE: PlanAction
PLAN_ACTION_UPDATE: PlanAction

class Rollout(_message.Message):
    __slots__ = ("id", "workload", "environment", "revision_id", "stable_revision_id", "stage", "state", "step", "weight", "steps", "message", "step_start_time", "create_time", "update_time", "history")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    STABLE_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_START_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    workload: str
    environment: str
    revision_id: str
    stable_revision_id: str
    stage: RolloutStage
    state: RolloutState
    step: int
    weight: int
    steps: _containers.RepeatedScalarFieldContainer[int]
    message: str
    step_start_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    history: _containers.RepeatedCompositeFieldContainer[RolloutTransition]
    def __init__(self, id: _Optional[str] = ..., workload: _Optional[str] = ..., environment: _Optional[str] = ..., revision_id: _Optional[str] = ..., stable_revision_id: _Optional[str] = ..., stage: _Optional[_Union[RolloutStage, str]] = ..., state: _Optional[_Union[RolloutState, str]] = ..., step: _Optional[int] = ..., weight: _Optional[int] = ..., steps: _Optional[_Iterable[int]] = ..., message: _Optional[str] = ..., step_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., history: _Optional[_Iterable[_Union[RolloutTransition, _Mapping]]] = ...) -> None: ...

class RolloutTransition(_message.Message):
    __slots__ = ("time", "stage", "state", "weight", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    stage: RolloutStage
    state: RolloutState
    weight: int
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage: _Optional[_Union[RolloutStage, str]] = ..., state: _Optional[_Union[RolloutState, str]] = ..., weight: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Workload(_message.Message):
    __slots__ = ("name", "environment", "current_revision", "state", "endpoint", "create_time", "stable_revision", "standby_revision", "rollout_id", "sleeping", "wake_time", "last_request_time", "sleep_reason", "hold_until")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STABLE_REVISION_FIELD_NUMBER: _ClassVar[int]
    STANDBY_REVISION_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SLEEPING_FIELD_NUMBER: _ClassVar[int]
    WAKE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    SLEEP_REASON_FIELD_NUMBER: _ClassVar[int]
    HOLD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    current_revision: str
    state: RevisionState
    endpoint: str
    create_time: _timestamp_pb2.Timestamp
    stable_revision: str
    standby_revision: str
    rollout_id: str
    sleeping: bool
    wake_time: _timestamp_pb2.Timestamp
    last_request_time: _timestamp_pb2.Timestamp
    sleep_reason: str
    hold_until: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., current_revision: _Optional[str] = ..., state: _Optional[_Union[RevisionState, str]] = ..., endpoint: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stable_revision: _Optional[str] = ..., standby_revision: _Optional[str] = ..., rollout_id: _Optional[str] = ..., sleeping: _Optional[bool] = ..., wake_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sleep_reason: _Optional[str] = ..., hold_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Revision(_message.Message):
    __slots__ = ("id", "workload", "environment", "number", "state", "message", "spec_yaml", "spec_digest", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    workload: str
    environment: str
    number: int
    state: RevisionState
    message: str
    spec_yaml: str
    spec_digest: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., workload: _Optional[str] = ..., environment: _Optional[str] = ..., number: _Optional[int] = ..., state: _Optional[_Union[RevisionState, str]] = ..., message: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., spec_digest: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApplyWorkloadRequest(_message.Message):
    __slots__ = ("environment", "spec_yaml", "spec_path", "request_id", "spec")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_PATH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    environment: str
    spec_yaml: str
    spec_path: str
    request_id: str
    spec: _spec_pb2.WorkloadSpec
    def __init__(self, environment: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., spec_path: _Optional[str] = ..., request_id: _Optional[str] = ..., spec: _Optional[_Union[_spec_pb2.WorkloadSpec, _Mapping]] = ...) -> None: ...

class ApplyWorkloadResponse(_message.Message):
    __slots__ = ("workload", "revision", "changed", "rollout", "policy_warnings")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    POLICY_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    revision: Revision
    changed: bool
    rollout: Rollout
    policy_warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ..., revision: _Optional[_Union[Revision, _Mapping]] = ..., changed: _Optional[bool] = ..., rollout: _Optional[_Union[Rollout, _Mapping]] = ..., policy_warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetWorkloadRequest(_message.Message):
    __slots__ = ("environment", "name")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    environment: str
    name: str
    def __init__(self, environment: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetWorkloadResponse(_message.Message):
    __slots__ = ("workload",)
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ...) -> None: ...

class ListWorkloadsRequest(_message.Message):
    __slots__ = ("environment", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkloadsResponse(_message.Message):
    __slots__ = ("workloads", "next_page_token")
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedCompositeFieldContainer[Workload]
    next_page_token: str
    def __init__(self, workloads: _Optional[_Iterable[_Union[Workload, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRevisionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetRevisionResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: Revision
    def __init__(self, revision: _Optional[_Union[Revision, _Mapping]] = ...) -> None: ...

class ListRevisionsRequest(_message.Message):
    __slots__ = ("environment", "workload", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRevisionsResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[Revision]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[Revision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("environment", "workload", "page_size", "page_token")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    page_size: int
    page_token: str
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "next_page_token")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    next_page_token: str
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class PauseRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class PauseRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class ResumeRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class AbortRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AbortRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class PromoteRolloutRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class PromoteRolloutResponse(_message.Message):
    __slots__ = ("rollout",)
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ...) -> None: ...

class RollbackWorkloadRequest(_message.Message):
    __slots__ = ("environment", "workload")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ...) -> None: ...

class DeleteWorkloadRequest(_message.Message):
    __slots__ = ("environment", "workload")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ...) -> None: ...

class DeleteWorkloadResponse(_message.Message):
    __slots__ = ("workload", "revisions")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    revisions: int
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ..., revisions: _Optional[int] = ...) -> None: ...

class RollbackWorkloadResponse(_message.Message):
    __slots__ = ("workload", "revision_id")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    revision_id: str
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ..., revision_id: _Optional[str] = ...) -> None: ...

class SleepWorkloadRequest(_message.Message):
    __slots__ = ("environment", "workload", "reason", "note", "hold_seconds", "hold")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    reason: PowerReason
    note: str
    hold_seconds: int
    hold: _duration_pb2.Duration
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., reason: _Optional[_Union[PowerReason, str]] = ..., note: _Optional[str] = ..., hold_seconds: _Optional[int] = ..., hold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SleepWorkloadResponse(_message.Message):
    __slots__ = ("workload", "changed")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    changed: bool
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class WakeWorkloadRequest(_message.Message):
    __slots__ = ("environment", "workload", "reason", "note", "hold_seconds", "hold")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    reason: PowerReason
    note: str
    hold_seconds: int
    hold: _duration_pb2.Duration
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., reason: _Optional[_Union[PowerReason, str]] = ..., note: _Optional[str] = ..., hold_seconds: _Optional[int] = ..., hold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WakeWorkloadResponse(_message.Message):
    __slots__ = ("workload", "changed")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    workload: Workload
    changed: bool
    def __init__(self, workload: _Optional[_Union[Workload, _Mapping]] = ..., changed: _Optional[bool] = ...) -> None: ...

class ListInstanceUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInstanceUsageResponse(_message.Message):
    __slots__ = ("instances", "read_time")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[InstanceUsage]
    read_time: _timestamp_pb2.Timestamp
    def __init__(self, instances: _Optional[_Iterable[_Union[InstanceUsage, _Mapping]]] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InstanceUsage(_message.Message):
    __slots__ = ("environment", "workload", "revision_id", "instance", "baseline", "process", "cpu_seconds", "memory_bytes", "memory_peak_bytes")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PEAK_BYTES_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    revision_id: str
    instance: int
    baseline: bool
    process: str
    cpu_seconds: float
    memory_bytes: int
    memory_peak_bytes: int
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., revision_id: _Optional[str] = ..., instance: _Optional[int] = ..., baseline: _Optional[bool] = ..., process: _Optional[str] = ..., cpu_seconds: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., memory_peak_bytes: _Optional[int] = ...) -> None: ...

class GetTrafficMetricsRequest(_message.Message):
    __slots__ = ("environment", "workload")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ...) -> None: ...

class GetTrafficMetricsResponse(_message.Message):
    __slots__ = ("revisions",)
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[RevisionTraffic]
    def __init__(self, revisions: _Optional[_Iterable[_Union[RevisionTraffic, _Mapping]]] = ...) -> None: ...

class RevisionTraffic(_message.Message):
    __slots__ = ("revision_id", "weight", "requests", "latency", "p50_seconds", "p99_seconds")
    class RequestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P99_SECONDS_FIELD_NUMBER: _ClassVar[int]
    revision_id: str
    weight: int
    requests: _containers.ScalarMap[str, int]
    latency: _containers.RepeatedCompositeFieldContainer[LatencyBucket]
    p50_seconds: float
    p99_seconds: float
    def __init__(self, revision_id: _Optional[str] = ..., weight: _Optional[int] = ..., requests: _Optional[_Mapping[str, int]] = ..., latency: _Optional[_Iterable[_Union[LatencyBucket, _Mapping]]] = ..., p50_seconds: _Optional[float] = ..., p99_seconds: _Optional[float] = ...) -> None: ...

class LatencyBucket(_message.Message):
    __slots__ = ("upper_bound_seconds", "count")
    UPPER_BOUND_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    upper_bound_seconds: float
    count: int
    def __init__(self, upper_bound_seconds: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class PlanWorkloadRequest(_message.Message):
    __slots__ = ("environment", "spec_yaml", "spec_path", "spec")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_PATH_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    environment: str
    spec_yaml: str
    spec_path: str
    spec: _spec_pb2.WorkloadSpec
    def __init__(self, environment: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., spec_path: _Optional[str] = ..., spec: _Optional[_Union[_spec_pb2.WorkloadSpec, _Mapping]] = ...) -> None: ...

class PlanWorkloadResponse(_message.Message):
    __slots__ = ("action", "current_revision", "changes", "drift", "policy_denials", "policy_warnings", "policy_bundle_digest", "reason", "cost", "cost_error")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    POLICY_DENIALS_FIELD_NUMBER: _ClassVar[int]
    POLICY_WARNINGS_FIELD_NUMBER: _ClassVar[int]
    POLICY_BUNDLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_ERROR_FIELD_NUMBER: _ClassVar[int]
    action: PlanAction
    current_revision: str
    changes: _containers.RepeatedCompositeFieldContainer[SpecFieldChange]
    drift: _containers.RepeatedScalarFieldContainer[str]
    policy_denials: _containers.RepeatedScalarFieldContainer[str]
    policy_warnings: _containers.RepeatedScalarFieldContainer[str]
    policy_bundle_digest: str
    reason: str
    cost: _cost_scheduler_pb2.CostForecast
    cost_error: str
    def __init__(self, action: _Optional[_Union[PlanAction, str]] = ..., current_revision: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[SpecFieldChange, _Mapping]]] = ..., drift: _Optional[_Iterable[str]] = ..., policy_denials: _Optional[_Iterable[str]] = ..., policy_warnings: _Optional[_Iterable[str]] = ..., policy_bundle_digest: _Optional[str] = ..., reason: _Optional[str] = ..., cost: _Optional[_Union[_cost_scheduler_pb2.CostForecast, _Mapping]] = ..., cost_error: _Optional[str] = ...) -> None: ...

class SpecFieldChange(_message.Message):
    __slots__ = ("path", "before", "after")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    path: str
    before: str
    after: str
    def __init__(self, path: _Optional[str] = ..., before: _Optional[str] = ..., after: _Optional[str] = ...) -> None: ...

class PushArtifactRequest(_message.Message):
    __slots__ = ("expected_digest", "chunk")
    EXPECTED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    expected_digest: str
    chunk: bytes
    def __init__(self, expected_digest: _Optional[str] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class PushArtifactResponse(_message.Message):
    __slots__ = ("digest", "size", "existed")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size: int
    existed: bool
    def __init__(self, digest: _Optional[str] = ..., size: _Optional[int] = ..., existed: _Optional[bool] = ...) -> None: ...

class GetArtifactRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class GetArtifactResponse(_message.Message):
    __slots__ = ("artifact",)
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("digest", "size", "create_time", "attestations")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size: int
    create_time: _timestamp_pb2.Timestamp
    attestations: _containers.RepeatedCompositeFieldContainer[Attestation]
    def __init__(self, digest: _Optional[str] = ..., size: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attestations: _Optional[_Iterable[_Union[Attestation, _Mapping]]] = ...) -> None: ...

class Attestation(_message.Message):
    __slots__ = ("kind", "payload_json", "signature", "public_key", "signer", "create_time")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    kind: str
    payload_json: str
    signature: str
    public_key: str
    signer: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[str] = ..., payload_json: _Optional[str] = ..., signature: _Optional[str] = ..., public_key: _Optional[str] = ..., signer: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AttachAttestationRequest(_message.Message):
    __slots__ = ("digest", "kind", "payload_json", "signature", "public_key")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    digest: str
    kind: str
    payload_json: str
    signature: str
    public_key: str
    def __init__(self, digest: _Optional[str] = ..., kind: _Optional[str] = ..., payload_json: _Optional[str] = ..., signature: _Optional[str] = ..., public_key: _Optional[str] = ...) -> None: ...

class AttachAttestationResponse(_message.Message):
    __slots__ = ("attestation",)
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    attestation: Attestation
    def __init__(self, attestation: _Optional[_Union[Attestation, _Mapping]] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("pr", "environment", "expire_time", "create_time", "workloads")
    PR_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    pr: int
    environment: str
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    workloads: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pr: _Optional[int] = ..., environment: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workloads: _Optional[_Iterable[str]] = ...) -> None: ...

class OpenPreviewRequest(_message.Message):
    __slots__ = ("pr", "ttl_seconds", "spec_yaml", "spec_path", "request_id", "ttl", "spec")
    PR_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_PATH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    pr: int
    ttl_seconds: int
    spec_yaml: str
    spec_path: str
    request_id: str
    ttl: _duration_pb2.Duration
    spec: _spec_pb2.WorkloadSpec
    def __init__(self, pr: _Optional[int] = ..., ttl_seconds: _Optional[int] = ..., spec_yaml: _Optional[str] = ..., spec_path: _Optional[str] = ..., request_id: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., spec: _Optional[_Union[_spec_pb2.WorkloadSpec, _Mapping]] = ...) -> None: ...

class OpenPreviewResponse(_message.Message):
    __slots__ = ("preview", "applied")
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    preview: Preview
    applied: ApplyWorkloadResponse
    def __init__(self, preview: _Optional[_Union[Preview, _Mapping]] = ..., applied: _Optional[_Union[ApplyWorkloadResponse, _Mapping]] = ...) -> None: ...

class ClosePreviewRequest(_message.Message):
    __slots__ = ("pr",)
    PR_FIELD_NUMBER: _ClassVar[int]
    pr: int
    def __init__(self, pr: _Optional[int] = ...) -> None: ...

class ClosePreviewResponse(_message.Message):
    __slots__ = ("workloads",)
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workloads: _Optional[_Iterable[str]] = ...) -> None: ...

class ListPreviewsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPreviewsResponse(_message.Message):
    __slots__ = ("previews",)
    PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    previews: _containers.RepeatedCompositeFieldContainer[Preview]
    def __init__(self, previews: _Optional[_Iterable[_Union[Preview, _Mapping]]] = ...) -> None: ...
