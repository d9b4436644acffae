from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class BrokerActed(_message.Message):
    __slots__ = ("action", "actor", "target", "scopes", "reason", "for_subject")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FOR_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    action: str
    actor: str
    target: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    for_subject: str
    def __init__(self, action: _Optional[str] = ..., actor: _Optional[str] = ..., target: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., for_subject: _Optional[str] = ...) -> None: ...
