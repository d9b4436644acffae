"""Paved's errors as exceptions: the gRPC status code, the message, and the
rich details every Paved error carries decoded — `ErrorInfo` (reason, domain
`paved.dev`, metadata such as the error id of a cause logged on the server)
and `BadRequest` (the fields that were wrong and why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, e.g. `spec_yaml.replicas`."""

    field: str
    description: str


@dataclass(eq=False)
class PavedError(Exception):
    """A call Paved refused or could not answer."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Dict[str, str] = field(default_factory=dict)
    field_violations: List[FieldViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Pickled whole (process pools, copies), not as Exception's args.
        return (type(self), (self.code, self.message, self.reason, self.domain, self.metadata, self.field_violations))

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for v in self.field_violations:
            text += f"\n  {v.field}: {v.description}"
        return text

    @property
    def fields(self) -> List[str]:
        """The names of the bad fields."""
        return [v.field for v in self.field_violations]

    @property
    def error_id(self) -> Optional[str]:
        """Where the server logged the cause, for an operator to look up."""
        return self.metadata.get("error_id")


class InvalidArgument(PavedError):
    pass


class Unauthenticated(PavedError):
    pass


class PermissionDenied(PavedError):
    pass


class NotFound(PavedError):
    pass


class AlreadyExists(PavedError):
    pass


class FailedPrecondition(PavedError):
    pass


class ResourceExhausted(PavedError):
    pass


class Unavailable(PavedError):
    pass


class DeadlineExceeded(PavedError):
    pass


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def from_rpc_error(error: grpc.RpcError) -> PavedError:
    """The exception for a failed call, its details decoded."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    kind = _BY_CODE.get(code, PavedError)
    reason, domain, metadata, violations = "", "", {}, []
    try:
        status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    except ValueError:
        # Details that do not match the status: the code and message stand.
        status = None
    for detail in status.details if status is not None else []:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Unpack(bad):
            violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return kind(code, message or "", reason, domain, metadata, violations)
