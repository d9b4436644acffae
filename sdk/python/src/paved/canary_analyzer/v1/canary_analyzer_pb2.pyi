import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_CONTINUE: _ClassVar[Verdict]
    VERDICT_PASS: _ClassVar[Verdict]
    VERDICT_FAIL: _ClassVar[Verdict]
    VERDICT_INCONCLUSIVE: _ClassVar[Verdict]
VERDICT_UNSPECIFIED: Verdict
VERDICT_CONTINUE: Verdict
VERDICT_PASS: Verdict
VERDICT_FAIL: Verdict
VERDICT_INCONCLUSIVE: Verdict

class Observation(_message.Message):
    __slots__ = ("revision_id", "workload", "environment", "state", "message", "observe_time")
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_TIME_FIELD_NUMBER: _ClassVar[int]
    revision_id: str
    workload: str
    environment: str
    state: str
    message: str
    observe_time: _timestamp_pb2.Timestamp
    def __init__(self, revision_id: _Optional[str] = ..., workload: _Optional[str] = ..., environment: _Optional[str] = ..., state: _Optional[str] = ..., message: _Optional[str] = ..., observe_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListObservationsRequest(_message.Message):
    __slots__ = ("revision_id", "page_size", "page_token")
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revision_id: str
    page_size: int
    page_token: str
    def __init__(self, revision_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListObservationsResponse(_message.Message):
    __slots__ = ("observations", "next_page_token")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[Observation]
    next_page_token: str
    def __init__(self, observations: _Optional[_Iterable[_Union[Observation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RequestCounts(_message.Message):
    __slots__ = ("requests", "errors", "latency")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    requests: int
    errors: int
    latency: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, requests: _Optional[int] = ..., errors: _Optional[int] = ..., latency: _Optional[_Iterable[int]] = ...) -> None: ...

class JudgeLookRequest(_message.Message):
    __slots__ = ("rollout_id", "environment", "workload", "canary_revision_id", "baseline_revision_id", "look", "step", "weight", "baseline_weight", "start_time", "end_time", "step_start_time", "interval_over", "extensions", "canary", "baseline", "spec_yaml", "spec_path", "baseline_instance")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    CANARY_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    LOOK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_START_TIME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_OVER_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_PATH_FIELD_NUMBER: _ClassVar[int]
    BASELINE_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    environment: str
    workload: str
    canary_revision_id: str
    baseline_revision_id: str
    look: int
    step: int
    weight: int
    baseline_weight: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    step_start_time: _timestamp_pb2.Timestamp
    interval_over: bool
    extensions: int
    canary: RequestCounts
    baseline: RequestCounts
    spec_yaml: str
    spec_path: str
    baseline_instance: str
    def __init__(self, rollout_id: _Optional[str] = ..., environment: _Optional[str] = ..., workload: _Optional[str] = ..., canary_revision_id: _Optional[str] = ..., baseline_revision_id: _Optional[str] = ..., look: _Optional[int] = ..., step: _Optional[int] = ..., weight: _Optional[int] = ..., baseline_weight: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interval_over: _Optional[bool] = ..., extensions: _Optional[int] = ..., canary: _Optional[_Union[RequestCounts, _Mapping]] = ..., baseline: _Optional[_Union[RequestCounts, _Mapping]] = ..., spec_yaml: _Optional[str] = ..., spec_path: _Optional[str] = ..., baseline_instance: _Optional[str] = ...) -> None: ...

class JudgeLookResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    def __init__(self, decision: _Optional[_Union[Decision, _Mapping]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("rollout_id", "look", "step", "weight", "start_time", "end_time", "interval_over", "verdict", "reason", "canary_requests", "baseline_requests", "checks", "detectable_ratio")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LOOK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_OVER_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANARY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    DETECTABLE_RATIO_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    look: int
    step: int
    weight: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    interval_over: bool
    verdict: Verdict
    reason: str
    canary_requests: int
    baseline_requests: int
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    detectable_ratio: float
    def __init__(self, rollout_id: _Optional[str] = ..., look: _Optional[int] = ..., step: _Optional[int] = ..., weight: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., interval_over: _Optional[bool] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ..., canary_requests: _Optional[int] = ..., baseline_requests: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., detectable_ratio: _Optional[float] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("metric", "judge", "outcome", "canary_value", "baseline_value", "lower", "upper", "statistic", "threshold", "effect", "tolerated", "detectable", "message")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CANARY_VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    TOLERATED_FIELD_NUMBER: _ClassVar[int]
    DETECTABLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    judge: str
    outcome: str
    canary_value: float
    baseline_value: float
    lower: float
    upper: float
    statistic: float
    threshold: float
    effect: float
    tolerated: float
    detectable: float
    message: str
    def __init__(self, metric: _Optional[str] = ..., judge: _Optional[str] = ..., outcome: _Optional[str] = ..., canary_value: _Optional[float] = ..., baseline_value: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., statistic: _Optional[float] = ..., threshold: _Optional[float] = ..., effect: _Optional[float] = ..., tolerated: _Optional[float] = ..., detectable: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class ExplainRolloutRequest(_message.Message):
    __slots__ = ("rollout_id",)
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    def __init__(self, rollout_id: _Optional[str] = ...) -> None: ...

class ExplainRolloutResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class ReplayRolloutRequest(_message.Message):
    __slots__ = ("rollout_id", "spec_yaml", "spec_path")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    SPEC_PATH_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    spec_yaml: str
    spec_path: str
    def __init__(self, rollout_id: _Optional[str] = ..., spec_yaml: _Optional[str] = ..., spec_path: _Optional[str] = ...) -> None: ...

class ReplayRolloutResponse(_message.Message):
    __slots__ = ("decisions", "first_failure")
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    first_failure: int
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., first_failure: _Optional[int] = ...) -> None: ...
