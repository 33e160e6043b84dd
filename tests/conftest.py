"""The test session's real stack: a Kafka broker, a Prefect server and the worker.

Started once, on first use by an integration test, in a state folder of its own under `.aims/`.
Each test gets its own topics and consumer group, so tests do not see each other's events.
Nothing here imports Prefect at module level: the SDK must see the session's PREFECT_API_URL first.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SessionStack

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> Iterator[SessionStack]:
    state = REPO / ".aims" / "test-sessions" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    session = SessionStack(state, libs_dir=REPO / ".aims" / "kafka" / "libs")
    try:
        session.start()
        yield session
    finally:
        session.stop()
    if not os.environ.get("AIMS_KEEP_TEST_STATE"):
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def topics(stack: SessionStack, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Unique topic names and consumer group for one test, created with 4 partitions."""
    tag = f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}".replace("[", "-").replace("]", "")
    names = {
        "AIMS_EVENTS_TOPIC": f"events.{tag}",
        "AIMS_DEAD_LETTER_TOPIC": f"dlq.{tag}",
        "AIMS_CONSUMER_GROUP": f"router.{tag}",
    }
    stack.create_topics(names)
    yield names
