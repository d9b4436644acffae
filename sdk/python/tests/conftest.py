"""The SDK's tests run against a live platform: `PAVED_ENDPOINT` and a
token with every scope in `PAVED_TOKEN` (integration-tests/tests/it/sdk.rs
starts `paved up` and sets both). Without them every test fails, loudly."""

import os
from dataclasses import dataclass, field

import pytest

import paved


@dataclass(frozen=True)
class Live:
    endpoint: str
    # Never in a test report: a failing assertion prints its fixtures.
    token: str = field(repr=False)


@pytest.fixture(scope="session")
def live() -> Live:
    missing = [name for name in ("PAVED_ENDPOINT", "PAVED_TOKEN") if not os.environ.get(name)]
    if missing:
        pytest.fail(f"no live platform: set {' and '.join(missing)} (cargo xtask test does)")
    return Live(os.environ["PAVED_ENDPOINT"], os.environ["PAVED_TOKEN"])


@pytest.fixture()
def client(live: Live):
    with paved.Client(live.endpoint, live.token) as c:
        yield c
