"""Which crashed runs a worker runs again (infra.unresponsive), the automation that crashes them, and
the settings that pace both."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from infra.unresponsive import (
    HEARD_WITHIN,
    MAX_RUNS,
    Contact,
    Crash,
    automation,
    crash_message,
    silent,
    to_run_again,
    why,
)
from schemas.settings import AimsSettings

NOW = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
BEAT = 30.0
SILENT = Crash(
    run_id=uuid4(), crashed=True, since=NOW - timedelta(seconds=90), message=crash_message(120), run_count=1
)


def test_a_run_crashed_for_its_silence_and_quiet_since_runs_again() -> None:
    assert to_run_again(SILENT, NOW, BEAT, heard_since=False)


@pytest.mark.parametrize(
    ("change", "heard", "because"),
    [
        ({"message": "Flow run infrastructure exited with non-zero status code 1."}, False, "another cause"),
        ({"crashed": False}, False, "it is not Crashed (any more)"),
        ({"since": NOW - timedelta(seconds=44)}, False, "a live run may not have beaten since"),
        ({"since": None}, False, "no state time to judge by"),
        ({"run_count": MAX_RUNS}, False, "it crashed its process every time: left to a person"),
        ({}, True, "a heartbeat came after: it lives, its server had lost it for a while"),
    ],
)
def test_a_run_that_may_live_or_keeps_crashing_is_left_alone(
    change: dict[str, object], heard: bool, because: str
) -> None:
    assert not to_run_again(replace(SILENT, **change), NOW, BEAT, heard_since=heard), because


def test_the_reason_names_the_worker_and_the_count() -> None:
    text = why(SILENT, "w-live")
    assert "'w-live'" in text and f"its run 2 of at most {MAX_RUNS}" in text and "No heartbeat" in text


def test_the_automation_crashes_a_run_of_the_application_silent_after_a_heartbeat_unless_it_ended() -> None:
    made = automation(120).model_dump(mode="json")
    trigger = made["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == 120.0
    assert trigger["after"] == ["prefect.flow-run.heartbeat"]
    assert trigger["for_each"] == ["prefect.resource.id"]
    # Only the application's runs: other teams' runs on the same server beat at Prefect's own pace.
    assert trigger["match_related"] == {
        "prefect.resource.role": "tag",
        "prefect.resource.id": "prefect.tag.aims",
    }
    # A request-approval run suspends for days waiting for people: its silence is no death.
    for ended in ("heartbeat", "Completed", "Failed", "Cancelled", "Crashed", "Suspended", "Paused"):
        assert f"prefect.flow-run.{ended}" in trigger["expect"], ended
    [action] = made["actions"]
    assert action["type"] == "change-flow-run-state" and action["state"] == "CRASHED"
    assert action["message"].startswith("No heartbeat")


@pytest.mark.parametrize(
    ("heard", "marked", "because"),
    [
        (NOW - timedelta(seconds=120 + HEARD_WITHIN + 1), True, "silent past the wait and the event's way"),
        (NOW - timedelta(seconds=120 + HEARD_WITHIN), False, "its heartbeat may still be on its way"),
        (NOW - timedelta(seconds=30), False, "it beats"),
        (None, False, "it never beat: its process may send none, as the automation judges too"),
    ],
)
def test_a_worker_marks_a_running_run_the_automation_forgot_only_once_it_is_as_silent(
    heard: datetime | None, marked: bool, because: str
) -> None:
    assert silent(heard, NOW, after=120) is marked, because


def test_a_worker_judges_silence_only_a_heartbeat_and_more_after_it_last_failed_to_reach_prefect() -> None:
    contact = Contact(wait=BEAT + HEARD_WITHIN, since=1000.0)
    assert not contact.long_enough(1000.0 + BEAT), "just started: heartbeats may not have come yet"
    assert contact.long_enough(1000.0 + BEAT + HEARD_WITHIN)
    contact.lost(2000.0)  # Prefect was away: what live runs sent meanwhile never arrived
    assert not contact.long_enough(2030.0) and contact.long_enough(2045.0)


def test_a_worker_marks_with_the_message_that_runs_it_again() -> None:
    text = crash_message(120, "worker 'w-live'")
    assert to_run_again(replace(SILENT, message=text), NOW, BEAT, heard_since=False)
    assert text.endswith("marked by worker 'w-live'")


@pytest.mark.parametrize(
    ("values", "fix"),
    [
        ({"flow_heartbeat_seconds": 10}, "AIMS_FLOW_HEARTBEAT_SECONDS to 0 or 30 or more"),
        ({"flow_heartbeat_seconds": 60, "flow_unresponsive_after_seconds": 90}, "two heartbeats"),
    ],
)
def test_heartbeats_prefect_cannot_send_or_a_silence_shorter_than_two_are_refused(
    values: dict[str, float], fix: str
) -> None:
    with pytest.raises(ValidationError, match=fix):
        AimsSettings(**values)


def test_heartbeats_can_be_turned_off() -> None:
    assert (
        AimsSettings(flow_heartbeat_seconds=0, flow_unresponsive_after_seconds=60).flow_heartbeat_seconds == 0
    )


def test_every_deployment_tags_its_runs_for_the_automation() -> None:
    from infra.deployments import deployments
    from infra.unresponsive import RUN_TAG

    assert all(RUN_TAG in d.tags for d in deployments())
