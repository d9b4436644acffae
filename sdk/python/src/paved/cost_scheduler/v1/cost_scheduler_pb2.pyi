import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_SOURCE_UNSPECIFIED: _ClassVar[UsageSource]
    USAGE_SOURCE_SAMPLES: _ClassVar[UsageSource]
    USAGE_SOURCE_PROMETHEUS: _ClassVar[UsageSource]

class CostGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COST_GROUPING_UNSPECIFIED: _ClassVar[CostGrouping]
    COST_GROUPING_TEAM: _ClassVar[CostGrouping]
    COST_GROUPING_ENVIRONMENT: _ClassVar[CostGrouping]
    COST_GROUPING_WORKLOAD: _ClassVar[CostGrouping]
USAGE_SOURCE_UNSPECIFIED: UsageSource
USAGE_SOURCE_SAMPLES: UsageSource
USAGE_SOURCE_PROMETHEUS: UsageSource
COST_GROUPING_UNSPECIFIED: CostGrouping
COST_GROUPING_TEAM: CostGrouping
COST_GROUPING_ENVIRONMENT: CostGrouping
COST_GROUPING_WORKLOAD: CostGrouping

class GetResourceRecommendationRequest(_message.Message):
    __slots__ = ("environment", "workload", "percentile", "headroom", "start_time", "source")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    environment: str
    workload: str
    percentile: float
    headroom: float
    start_time: _timestamp_pb2.Timestamp
    source: UsageSource
    def __init__(self, environment: _Optional[str] = ..., workload: _Optional[str] = ..., percentile: _Optional[float] = ..., headroom: _Optional[float] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[_Union[UsageSource, str]] = ...) -> None: ...

class GetResourceRecommendationResponse(_message.Message):
    __slots__ = ("recommendation",)
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    recommendation: ResourceRecommendation
    def __init__(self, recommendation: _Optional[_Union[ResourceRecommendation, _Mapping]] = ...) -> None: ...

class ResourceRecommendation(_message.Message):
    __slots__ = ("revision_id", "samples", "start_time", "end_time", "percentile", "headroom", "used_cpu_cores", "used_memory_bytes", "memory_peak_bytes", "cpu_request_cores", "memory_request_bytes", "cpu_limit_cores", "memory_limit_bytes", "current_cpu_request_cores", "current_memory_request_bytes", "replicas", "monthly_saving", "currency", "source", "cpu_query", "memory_query", "step_seconds", "step")
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    USED_CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    USED_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PEAK_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_REQUEST_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_LIMIT_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CPU_REQUEST_CORES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_MEMORY_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_SAVING_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CPU_QUERY_FIELD_NUMBER: _ClassVar[int]
    MEMORY_QUERY_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    revision_id: str
    samples: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    percentile: float
    headroom: float
    used_cpu_cores: float
    used_memory_bytes: float
    memory_peak_bytes: float
    cpu_request_cores: float
    memory_request_bytes: float
    cpu_limit_cores: float
    memory_limit_bytes: float
    current_cpu_request_cores: float
    current_memory_request_bytes: float
    replicas: int
    monthly_saving: float
    currency: str
    source: UsageSource
    cpu_query: str
    memory_query: str
    step_seconds: int
    step: _duration_pb2.Duration
    def __init__(self, revision_id: _Optional[str] = ..., samples: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., percentile: _Optional[float] = ..., headroom: _Optional[float] = ..., used_cpu_cores: _Optional[float] = ..., used_memory_bytes: _Optional[float] = ..., memory_peak_bytes: _Optional[float] = ..., cpu_request_cores: _Optional[float] = ..., memory_request_bytes: _Optional[float] = ..., cpu_limit_cores: _Optional[float] = ..., memory_limit_bytes: _Optional[float] = ..., current_cpu_request_cores: _Optional[float] = ..., current_memory_request_bytes: _Optional[float] = ..., replicas: _Optional[int] = ..., monthly_saving: _Optional[float] = ..., currency: _Optional[str] = ..., source: _Optional[_Union[UsageSource, str]] = ..., cpu_query: _Optional[str] = ..., memory_query: _Optional[str] = ..., step_seconds: _Optional[int] = ..., step: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetCostForecastRequest(_message.Message):
    __slots__ = ("environment", "spec_yaml")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    environment: str
    spec_yaml: str
    def __init__(self, environment: _Optional[str] = ..., spec_yaml: _Optional[str] = ...) -> None: ...

class GetCostForecastResponse(_message.Message):
    __slots__ = ("forecast",)
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    forecast: CostForecast
    def __init__(self, forecast: _Optional[_Union[CostForecast, _Mapping]] = ...) -> None: ...

class CostForecast(_message.Message):
    __slots__ = ("currency", "current_monthly", "monthly", "awake_share", "team", "budget_monthly", "team_monthly")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CURRENT_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_FIELD_NUMBER: _ClassVar[int]
    AWAKE_SHARE_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    TEAM_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    currency: str
    current_monthly: float
    monthly: float
    awake_share: float
    team: str
    budget_monthly: float
    team_monthly: float
    def __init__(self, currency: _Optional[str] = ..., current_monthly: _Optional[float] = ..., monthly: _Optional[float] = ..., awake_share: _Optional[float] = ..., team: _Optional[str] = ..., budget_monthly: _Optional[float] = ..., team_monthly: _Optional[float] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("team", "environment", "monthly", "forecast_monthly", "forecast_ratio")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_RATIO_FIELD_NUMBER: _ClassVar[int]
    team: str
    environment: str
    monthly: float
    forecast_monthly: float
    forecast_ratio: float
    def __init__(self, team: _Optional[str] = ..., environment: _Optional[str] = ..., monthly: _Optional[float] = ..., forecast_monthly: _Optional[float] = ..., forecast_ratio: _Optional[float] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ("team", "environment", "monthly")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_FIELD_NUMBER: _ClassVar[int]
    team: str
    environment: str
    monthly: float
    def __init__(self, team: _Optional[str] = ..., environment: _Optional[str] = ..., monthly: _Optional[float] = ...) -> None: ...

class SetBudgetResponse(_message.Message):
    __slots__ = ("budget",)
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class ListBudgetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBudgetsResponse(_message.Message):
    __slots__ = ("budgets", "currency", "next_page_token")
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    budgets: _containers.RepeatedCompositeFieldContainer[Budget]
    currency: str
    next_page_token: str
    def __init__(self, budgets: _Optional[_Iterable[_Union[Budget, _Mapping]]] = ..., currency: _Optional[str] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BudgetCrossed(_message.Message):
    __slots__ = ("team", "environment", "threshold_percent", "forecast_monthly", "budget_monthly", "currency")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MONTHLY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    team: str
    environment: str
    threshold_percent: int
    forecast_monthly: float
    budget_monthly: float
    currency: str
    def __init__(self, team: _Optional[str] = ..., environment: _Optional[str] = ..., threshold_percent: _Optional[int] = ..., forecast_monthly: _Optional[float] = ..., budget_monthly: _Optional[float] = ..., currency: _Optional[str] = ...) -> None: ...

class GetCostReportRequest(_message.Message):
    __slots__ = ("group_by", "start_time", "end_time")
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    group_by: CostGrouping
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, group_by: _Optional[_Union[CostGrouping, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCostReportResponse(_message.Message):
    __slots__ = ("lines", "total", "currency", "start_time", "end_time")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[CostLine]
    total: CostLine
    currency: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, lines: _Optional[_Iterable[_Union[CostLine, _Mapping]]] = ..., total: _Optional[_Union[CostLine, _Mapping]] = ..., currency: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CostLine(_message.Message):
    __slots__ = ("team", "environment", "workload", "replica_hours", "requested_cost", "used_cost", "cpu_core_hours", "memory_gib_hours", "slept_hours", "savings", "samples")
    TEAM_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REPLICA_HOURS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_COST_FIELD_NUMBER: _ClassVar[int]
    USED_COST_FIELD_NUMBER: _ClassVar[int]
    CPU_CORE_HOURS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_HOURS_FIELD_NUMBER: _ClassVar[int]
    SLEPT_HOURS_FIELD_NUMBER: _ClassVar[int]
    SAVINGS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    team: str
    environment: str
    workload: str
    replica_hours: float
    requested_cost: float
    used_cost: float
    cpu_core_hours: float
    memory_gib_hours: float
    slept_hours: float
    savings: float
    samples: int
    def __init__(self, team: _Optional[str] = ..., environment: _Optional[str] = ..., workload: _Optional[str] = ..., replica_hours: _Optional[float] = ..., requested_cost: _Optional[float] = ..., used_cost: _Optional[float] = ..., cpu_core_hours: _Optional[float] = ..., memory_gib_hours: _Optional[float] = ..., slept_hours: _Optional[float] = ..., savings: _Optional[float] = ..., samples: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("workload", "environment", "running_seconds", "running_since")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_SINCE_FIELD_NUMBER: _ClassVar[int]
    workload: str
    environment: str
    running_seconds: float
    running_since: _timestamp_pb2.Timestamp
    def __init__(self, workload: _Optional[str] = ..., environment: _Optional[str] = ..., running_seconds: _Optional[float] = ..., running_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUsageRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsageResponse(_message.Message):
    __slots__ = ("usage", "next_page_token")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    usage: _containers.RepeatedCompositeFieldContainer[Usage]
    next_page_token: str
    def __init__(self, usage: _Optional[_Iterable[_Union[Usage, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
