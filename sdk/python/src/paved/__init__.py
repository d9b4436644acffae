"""The Python client of Paved.

    import paved

    with paved.Client() as client:          # PAVED_ENDPOINT, PAVED_TOKEN or the CLI's login
        done = client.deploy(open("paved.yaml").read(), "dev")
        print(done.state)                   # promoted, rolled_back, ...

The generated stubs and messages are under `paved.<service>.v1`
(e.g. `paved.provisioner.v1.provisioner_pb2`); errors are `paved.PavedError`
and its subclasses, with the reason and the bad fields decoded.
"""

from paved.client import DEFAULT_ENDPOINT, AuditEntry, Client, Deployment, stored_token
from paved.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PavedError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "DEFAULT_ENDPOINT",
    "AlreadyExists",
    "AuditEntry",
    "Client",
    "DeadlineExceeded",
    "Deployment",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PavedError",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "stored_token",
]
