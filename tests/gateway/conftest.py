"""The gateway test client: the app in-process on the shared register, with recording chat and tracker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.register.store import Register
from schemas.policy import Policy
from tests.gateway.desk import SLACK_IDS, Gateway, RecordingChat, RecordingTracker, open_gateway


@pytest.fixture
def gateway(register: Register, policy: Policy) -> Iterator[Gateway]:
    """What a module's `register` holds (each module seeds its own), behind a signed HTTP client."""
    with open_gateway(register, policy, RecordingChat(dict(SLACK_IDS)), RecordingTracker()) as gw:
        yield gw
