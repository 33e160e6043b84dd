"""Fixtures of the approval integration tests: a router on the default events topic and the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import SessionStack


@pytest.fixture(scope="module")
def router(stack: SessionStack) -> Iterator[Any]:
    with stack.default_topic_router("approvals") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(stack: SessionStack) -> Iterator[str]:
    with stack.gateway("gateway") as url:
        yield url
