"""The gateway's caps hold before any signature work: body size, body time and requests in flight.

An unsigned 400 MB POST to /jira/webhook once got its 401 only after the whole body was in memory
(the gateway went from 48 MB to 829 MB). These tests send such bodies over a real socket to the app
under uvicorn, made piece by piece so the test holds one 64 KiB piece at a time, and read the
process's RSS (the server runs in this process). No test here asserts how long anything took.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.register.store import Register
from gateway.answers import Outcome, ignored
from gateway.app import create_app
from gateway.desk import DecisionDesk
from gateway.payloads import JiraWebhook
from schemas.policy import Policy
from schemas.settings import AimsSettings
from tests.gateway.desk import JIRA_SECRET, SLACK_SECRET, TOPIC, jira_hook
from tests.gateway.served import PeakRss, exchange, served, zeros
from tests.people import AISHA

ATTACK = 400 * 1024 * 1024
MEMORY_BUDGET = 50 * 1024 * 1024
CAP = 1024 * 1024  # the setting's default


def settings(**limits: Any) -> AimsSettings:
    return AimsSettings(slack_signing_secret=SLACK_SECRET, jira_webhook_secret=JIRA_SECRET, **limits)  # type: ignore[arg-type]


class HeldDesk(DecisionDesk):
    """A desk whose Jira handling waits until released, so requests pile up in the gateway."""

    def __init__(self, register: Register, policy: Policy) -> None:
        super().__init__(register, lambda: policy, TOPIC, lambda _: None, None, None)
        self.inside = threading.Semaphore(0)
        self.release = threading.Event()

    def jira(self, hook: JiraWebhook) -> Outcome:
        self.inside.release()
        self.release.wait(60)
        return ignored("held for the test")


@pytest.fixture
def desk(sqlite_register: Register, policy: Policy) -> Iterator[HeldDesk]:
    held = HeldDesk(sqlite_register, policy)
    yield held
    held.release.set()


def signed(hook: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(hook).encode()
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature": signature, "Content-Type": "application/json"}


def attack(port: int, *, chunked: bool) -> tuple[Any, int]:
    """The unsigned 400 MB POST; gives up (failing the test) once the server grew past the budget."""
    peak = PeakRss().start()
    headers = {"Content-Type": "application/json"}
    if not chunked:
        headers["Content-Length"] = str(ATTACK)
    try:
        answer = exchange(
            port,
            "/jira/webhook",
            headers,
            zeros(ATTACK),
            chunked=chunked,
            give_up=lambda: peak.growth() > MEMORY_BUDGET,
        )
    finally:
        growth = peak.stop()
    return answer, growth


# -- body size -------------------------------------------------------------------------------------


def test_an_unsigned_400_mb_body_declared_in_content_length_is_413_and_never_read(desk: HeldDesk) -> None:
    with served(create_app(settings(), desk, time.time), settings()) as port:
        answer, growth = attack(port, chunked=False)
    assert growth < MEMORY_BUDGET, f"the server grew by {growth / 2**20:.0f} MiB"
    assert answer.status == 413, answer.received[:300]
    assert answer.sent_body < ATTACK
    assert "connection: close" in answer.head.lower()


def test_an_unsigned_400_mb_chunked_body_is_cut_off_at_the_cap_with_413(desk: HeldDesk) -> None:
    with served(create_app(settings(), desk, time.time), settings()) as port:
        answer, growth = attack(port, chunked=True)
    assert growth < MEMORY_BUDGET, f"the server grew by {growth / 2**20:.0f} MiB"
    assert answer.status == 413, answer.received[:300]
    # Read up to the cap (and what the sockets' buffers hold), not to the end.
    assert answer.sent_body < ATTACK


def test_a_signed_hook_up_to_the_cap_is_read_and_one_byte_more_is_413(desk: HeldDesk) -> None:
    cap = 4096
    app_settings = settings(gateway_max_body_bytes=cap)
    desk.release.set()  # this test wants answers, not a queue
    hook = jira_hook(AISHA, "Approved")
    body, headers = signed(hook)
    hook["padding"] = " " * (cap - len(body) - len(', "padding": ""'))
    body, headers = signed(hook)
    assert len(body) == cap
    with TestClient(create_app(app_settings, desk, time.time)) as http:
        assert http.post("/jira/webhook", content=body, headers=headers).json() == {
            "ignored": "held for the test"
        }
        body, headers = signed({**hook, "padding": hook["padding"] + " "})
        assert len(body) == cap + 1
        answer = http.post("/jira/webhook", content=body, headers=headers)
        assert answer.status_code == 413 and "1 MiB" not in answer.text and str(cap) in answer.text
        assert http.post("/jira/webhook", content=b"{}", headers={"Content-Length": "x"}).status_code == 400


def test_a_body_that_stops_coming_is_408_not_a_slot_held_forever(desk: HeldDesk) -> None:
    app_settings = settings(gateway_body_timeout=0.2)
    with served(create_app(app_settings, desk, time.time), app_settings) as port:
        # 10 of the 100 bytes announced, then silence: the answer comes without the rest.
        answer = exchange(port, "/jira/webhook", {"Content-Length": "100"}, [b"{" * 10], chunked=False)
    assert answer.status == 408, answer.received[:300]


# -- requests in flight ------------------------------------------------------------------------------


def test_requests_beyond_the_cap_get_503_at_once_while_the_others_are_held(desk: HeldDesk) -> None:
    app_settings = settings(gateway_max_concurrent_requests=2)
    results: list[int | None] = []

    def post(body: bytes, headers: dict[str, str]) -> None:
        results.append(exchange(port, "/jira/webhook", headers, [body], chunked=False, wait=60).status)

    with served(create_app(app_settings, desk, time.time), app_settings) as port:
        held = []
        for n in range(2):
            body, headers = signed(jira_hook(AISHA, "Approved", changelog=str(n)))
            thread = threading.Thread(target=post, args=(body, {**headers, "Content-Length": str(len(body))}))
            thread.start()
            held.append(thread)
        for _ in held:
            assert desk.inside.acquire(timeout=30), "the first requests did not reach the desk"
        # Both slots are taken and stay taken until released: a third is refused, not queued
        # (were it queued, its answer would only come after the release below, past `wait`).
        body, headers = signed(jira_hook(AISHA, "Approved", changelog="2"))
        busy = exchange(
            port,
            "/jira/webhook",
            {**headers, "Content-Length": str(len(body))},
            [body],
            chunked=False,
            wait=15,
        )
        unsigned = exchange(port, "/jira/webhook", {"Content-Length": "2"}, [b"{}"], chunked=False, wait=15)
        desk.release.set()
        for thread in held:
            thread.join(30)
    assert busy.status == 503, busy.received[:300]
    assert "retry-after:" in busy.head.lower()
    assert unsigned.status == 503
    assert results == [200, 200]
