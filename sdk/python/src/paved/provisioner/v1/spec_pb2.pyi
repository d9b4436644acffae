import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MetricKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_KIND_UNSPECIFIED: _ClassVar[MetricKind]
    METRIC_KIND_ERROR_RATE: _ClassVar[MetricKind]
    METRIC_KIND_LATENCY: _ClassVar[MetricKind]
    METRIC_KIND_PROMETHEUS: _ClassVar[MetricKind]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_INCREASE: _ClassVar[Direction]
    DIRECTION_DECREASE: _ClassVar[Direction]
    DIRECTION_EITHER: _ClassVar[Direction]

class Judge(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JUDGE_UNSPECIFIED: _ClassVar[Judge]
    JUDGE_SEQUENTIAL: _ClassVar[Judge]
    JUDGE_KAYENTA: _ClassVar[Judge]
    JUDGE_SLO: _ClassVar[Judge]
METRIC_KIND_UNSPECIFIED: MetricKind
METRIC_KIND_ERROR_RATE: MetricKind
METRIC_KIND_LATENCY: MetricKind
METRIC_KIND_PROMETHEUS: MetricKind
DIRECTION_UNSPECIFIED: Direction
DIRECTION_INCREASE: Direction
DIRECTION_DECREASE: Direction
DIRECTION_EITHER: Direction
JUDGE_UNSPECIFIED: Judge
JUDGE_SEQUENTIAL: Judge
JUDGE_KAYENTA: Judge
JUDGE_SLO: Judge

class WorkloadSpec(_message.Message):
    __slots__ = ("name", "team", "command", "artifact", "port", "health", "env", "replicas", "resources", "security", "secrets", "databases", "certificate", "rollout", "analysis", "schedule", "secret_files", "on_rotation")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SECURITY_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    DATABASES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    SECRET_FILES_FIELD_NUMBER: _ClassVar[int]
    ON_ROTATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    team: str
    command: _containers.RepeatedScalarFieldContainer[str]
    artifact: str
    port: int
    health: HealthCheck
    env: _containers.ScalarMap[str, str]
    replicas: int
    resources: Resources
    security: Security
    secrets: _containers.RepeatedScalarFieldContainer[str]
    databases: _containers.RepeatedScalarFieldContainer[str]
    certificate: bool
    rollout: RolloutPolicy
    analysis: Analysis
    schedule: Schedule
    secret_files: _containers.RepeatedScalarFieldContainer[str]
    on_rotation: str
    def __init__(self, name: _Optional[str] = ..., team: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., artifact: _Optional[str] = ..., port: _Optional[int] = ..., health: _Optional[_Union[HealthCheck, _Mapping]] = ..., env: _Optional[_Mapping[str, str]] = ..., replicas: _Optional[int] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., security: _Optional[_Union[Security, _Mapping]] = ..., secrets: _Optional[_Iterable[str]] = ..., databases: _Optional[_Iterable[str]] = ..., certificate: _Optional[bool] = ..., rollout: _Optional[_Union[RolloutPolicy, _Mapping]] = ..., analysis: _Optional[_Union[Analysis, _Mapping]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., secret_files: _Optional[_Iterable[str]] = ..., on_rotation: _Optional[str] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("path", "period", "timeout", "failure_threshold", "startup_timeout")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STARTUP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    path: str
    period: _duration_pb2.Duration
    timeout: _duration_pb2.Duration
    failure_threshold: int
    startup_timeout: _duration_pb2.Duration
    def __init__(self, path: _Optional[str] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., failure_threshold: _Optional[int] = ..., startup_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("requests", "limits")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    requests: Quantities
    limits: Quantities
    def __init__(self, requests: _Optional[_Union[Quantities, _Mapping]] = ..., limits: _Optional[_Union[Quantities, _Mapping]] = ...) -> None: ...

class Quantities(_message.Message):
    __slots__ = ("cpu", "memory")
    CPU_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    cpu: str
    memory: str
    def __init__(self, cpu: _Optional[str] = ..., memory: _Optional[str] = ...) -> None: ...

class Security(_message.Message):
    __slots__ = ("run_as_root", "privileged")
    RUN_AS_ROOT_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    run_as_root: bool
    privileged: bool
    def __init__(self, run_as_root: _Optional[bool] = ..., privileged: _Optional[bool] = ...) -> None: ...

class RolloutPolicy(_message.Message):
    __slots__ = ("steps", "interval", "max_error_rate", "max_p99_latency")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_P99_LATENCY_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[int]
    interval: _duration_pb2.Duration
    max_error_rate: float
    max_p99_latency: _duration_pb2.Duration
    def __init__(self, steps: _Optional[_Iterable[int]] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_error_rate: _Optional[float] = ..., max_p99_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Analysis(_message.Message):
    __slots__ = ("alpha", "pass_score", "marginal_score", "max_extensions", "require_traffic", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Metric
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Metric, _Mapping]] = ...) -> None: ...
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    PASS_SCORE_FIELD_NUMBER: _ClassVar[int]
    MARGINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    alpha: float
    pass_score: int
    marginal_score: int
    max_extensions: int
    require_traffic: bool
    metrics: _containers.MessageMap[str, Metric]
    def __init__(self, alpha: _Optional[float] = ..., pass_score: _Optional[int] = ..., marginal_score: _Optional[int] = ..., max_extensions: _Optional[int] = ..., require_traffic: _Optional[bool] = ..., metrics: _Optional[_Mapping[str, Metric]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("kind", "quantile", "query", "direction", "slo_value", "slo_latency", "max_change", "critical", "weight", "min_samples", "judges", "group", "nan_remove", "nan_value")
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANTILE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SLO_VALUE_FIELD_NUMBER: _ClassVar[int]
    SLO_LATENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_CHANGE_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    JUDGES_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NAN_REMOVE_FIELD_NUMBER: _ClassVar[int]
    NAN_VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: MetricKind
    quantile: float
    query: str
    direction: Direction
    slo_value: float
    slo_latency: _duration_pb2.Duration
    max_change: float
    critical: bool
    weight: int
    min_samples: int
    judges: _containers.RepeatedScalarFieldContainer[Judge]
    group: str
    nan_remove: bool
    nan_value: float
    def __init__(self, kind: _Optional[_Union[MetricKind, str]] = ..., quantile: _Optional[float] = ..., query: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., slo_value: _Optional[float] = ..., slo_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_change: _Optional[float] = ..., critical: _Optional[bool] = ..., weight: _Optional[int] = ..., min_samples: _Optional[int] = ..., judges: _Optional[_Iterable[_Union[Judge, str]]] = ..., group: _Optional[str] = ..., nan_remove: _Optional[bool] = ..., nan_value: _Optional[float] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("uptime", "downtime", "exclude", "idle_after")
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    IDLE_AFTER_FIELD_NUMBER: _ClassVar[int]
    uptime: _containers.RepeatedScalarFieldContainer[str]
    downtime: _containers.RepeatedScalarFieldContainer[str]
    exclude: _containers.RepeatedScalarFieldContainer[str]
    idle_after: _duration_pb2.Duration
    def __init__(self, uptime: _Optional[_Iterable[str]] = ..., downtime: _Optional[_Iterable[str]] = ..., exclude: _Optional[_Iterable[str]] = ..., idle_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
