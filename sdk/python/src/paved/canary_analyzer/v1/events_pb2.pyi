from paved.canary_analyzer.v1 import canary_analyzer_pb2 as _canary_analyzer_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CanaryJudged(_message.Message):
    __slots__ = ("rollout_id", "environment", "workload", "canary_revision_id", "baseline_revision_id", "look", "step", "weight", "verdict", "reason", "canary_requests", "baseline_requests")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    CANARY_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    BASELINE_REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    LOOK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CANARY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    environment: str
    workload: str
    canary_revision_id: str
    baseline_revision_id: str
    look: int
    step: int
    weight: int
    verdict: _canary_analyzer_pb2.Verdict
    reason: str
    canary_requests: int
    baseline_requests: int
    def __init__(self, rollout_id: _Optional[str] = ..., environment: _Optional[str] = ..., workload: _Optional[str] = ..., canary_revision_id: _Optional[str] = ..., baseline_revision_id: _Optional[str] = ..., look: _Optional[int] = ..., step: _Optional[int] = ..., weight: _Optional[int] = ..., verdict: _Optional[_Union[_canary_analyzer_pb2.Verdict, str]] = ..., reason: _Optional[str] = ..., canary_requests: _Optional[int] = ..., baseline_requests: _Optional[int] = ...) -> None: ...
