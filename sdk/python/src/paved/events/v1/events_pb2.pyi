import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from paved.canary_analyzer.v1 import events_pb2 as _events_pb2
from paved.cost_scheduler.v1 import cost_scheduler_pb2 as _cost_scheduler_pb2
from paved.provisioner.v1 import events_pb2 as _events_pb2_1
from paved.secrets_broker.v1 import events_pb2 as _events_pb2_1_1
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("id", "source", "type", "subject", "time", "traceparent", "tracestate", "workload_registered", "revision_deployed", "revision_state_changed", "rollout_transitioned", "workload_rolled_back", "policy_decided", "preview_opened", "preview_closed", "workload_powered", "workload_deleted", "canary_judged", "broker_acted", "budget_crossed", "access_denied")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    REVISION_DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    REVISION_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_TRANSITIONED_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    POLICY_DECIDED_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_OPENED_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_CLOSED_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_POWERED_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_DELETED_FIELD_NUMBER: _ClassVar[int]
    CANARY_JUDGED_FIELD_NUMBER: _ClassVar[int]
    BROKER_ACTED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CROSSED_FIELD_NUMBER: _ClassVar[int]
    ACCESS_DENIED_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    type: str
    subject: str
    time: _timestamp_pb2.Timestamp
    traceparent: str
    tracestate: str
    workload_registered: _events_pb2_1.WorkloadRegistered
    revision_deployed: _events_pb2_1.RevisionDeployed
    revision_state_changed: _events_pb2_1.RevisionStateChanged
    rollout_transitioned: _events_pb2_1.RolloutTransitioned
    workload_rolled_back: _events_pb2_1.WorkloadRolledBack
    policy_decided: _events_pb2_1.PolicyDecided
    preview_opened: _events_pb2_1.PreviewOpened
    preview_closed: _events_pb2_1.PreviewClosed
    workload_powered: _events_pb2_1.WorkloadPowered
    workload_deleted: _events_pb2_1.WorkloadDeleted
    canary_judged: _events_pb2.CanaryJudged
    broker_acted: _events_pb2_1_1.BrokerActed
    budget_crossed: _cost_scheduler_pb2.BudgetCrossed
    access_denied: AccessDenied
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., type: _Optional[str] = ..., subject: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., workload_registered: _Optional[_Union[_events_pb2_1.WorkloadRegistered, _Mapping]] = ..., revision_deployed: _Optional[_Union[_events_pb2_1.RevisionDeployed, _Mapping]] = ..., revision_state_changed: _Optional[_Union[_events_pb2_1.RevisionStateChanged, _Mapping]] = ..., rollout_transitioned: _Optional[_Union[_events_pb2_1.RolloutTransitioned, _Mapping]] = ..., workload_rolled_back: _Optional[_Union[_events_pb2_1.WorkloadRolledBack, _Mapping]] = ..., policy_decided: _Optional[_Union[_events_pb2_1.PolicyDecided, _Mapping]] = ..., preview_opened: _Optional[_Union[_events_pb2_1.PreviewOpened, _Mapping]] = ..., preview_closed: _Optional[_Union[_events_pb2_1.PreviewClosed, _Mapping]] = ..., workload_powered: _Optional[_Union[_events_pb2_1.WorkloadPowered, _Mapping]] = ..., workload_deleted: _Optional[_Union[_events_pb2_1.WorkloadDeleted, _Mapping]] = ..., canary_judged: _Optional[_Union[_events_pb2.CanaryJudged, _Mapping]] = ..., broker_acted: _Optional[_Union[_events_pb2_1_1.BrokerActed, _Mapping]] = ..., budget_crossed: _Optional[_Union[_cost_scheduler_pb2.BudgetCrossed, _Mapping]] = ..., access_denied: _Optional[_Union[AccessDenied, _Mapping]] = ...) -> None: ...

class AccessDenied(_message.Message):
    __slots__ = ("service", "method", "subject", "reason", "message")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    service: str
    method: str
    subject: str
    reason: str
    message: str
    def __init__(self, service: _Optional[str] = ..., method: _Optional[str] = ..., subject: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
