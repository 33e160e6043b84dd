"""The session's real Prefect server requires its auth string, as the one `aims up` starts does.

Before issue 20 anyone who could reach the API could read every run and resume a waiting approval;
now a request without the string is refused, and the router, the worker, its flow-run processes, the
project's own client and `aims status` all send it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest

from connectors.prefect_api import PrefectApi
from tests.factories import model_event
from tests.routes import started_flow
from tests.support import REPO, SessionStack


def test_a_request_without_the_auth_string_is_refused(stack: SessionStack) -> None:
    url = stack.api_url
    user = stack.prefect_auth.get_secret_value().split(":", 1)[0]
    # The attack of the issue: resuming a waiting approval run. Refused before any run is looked up.
    resume = httpx.post(f"{url}/flow_runs/{uuid.uuid4()}/resume", json={"run_input": {}}, timeout=10)
    assert resume.status_code == 401
    for auth in (None, (user, "wrong-password"), ("someone", "")):
        answer = httpx.post(f"{url}/flow_runs/filter", json={"limit": 1}, auth=auth, timeout=10)
        assert answer.status_code == 401, auth
    # Health stays open for probes (it says nothing about runs).
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    # The project's own client, without the string, is refused as well; with it, it reads.
    bare = PrefectApi(url)
    try:
        with pytest.raises(httpx.HTTPStatusError, match="401"):
            bare.count_runs()
    finally:
        bare.close()
    api = stack.api()
    try:
        assert api.count_runs() >= 0
    finally:
        api.close()


def test_with_it_an_event_becomes_a_completed_run_that_the_cli_reads(
    stack: SessionStack, topics: dict[str, str]
) -> None:
    event = model_event(version=uuid.uuid4().hex[:8])  # the session register is shared: a version of its own
    publisher = stack.publisher(topics["AIMS_EVENTS_TOPIC"])
    # The router creates the run through the Prefect SDK, the worker's flow-run process runs it; both
    # authenticate with the string from their environment, and the project's client (wait_for_runs)
    # reads it back.
    with stack.router(topics):
        publisher.publish(event, mode="structured")
        (run,) = stack.wait_for_runs([event.dedup_key], states={"Completed"}, timeout=240)
    publisher.close()
    assert run.flow_name == started_flow(event.type) and run.state == "Completed"

    def status(env: dict[str, str]) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "aims", "status", "--json", "--timeout", "20"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        prefect: dict[str, object] = json.loads(done.stdout)["prefect"]
        return prefect

    env = stack.env(AIMS_STATE_DIR=str(stack.state))
    seen = status(env)
    # Read, not counted: the newest 200 runs may all be the scheduler's future runs of cron flows.
    assert seen["reachable"] is True and seen["runs_error"] is None and isinstance(seen["runs"], dict), seen
    # Without the string `aims status` still sees the server up, and says why it cannot read runs.
    env.pop("PREFECT_API_AUTH_STRING")
    refused = status(env)
    assert refused["runs"] is None and "PREFECT_API_AUTH_STRING" in str(refused["runs_error"]), refused
    assert stack.prefect_auth.get_secret_value() not in json.dumps(refused)
