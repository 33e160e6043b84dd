"""When `aims demo` exits 0: every run it followed is done (aims.demo.all_done)."""

from __future__ import annotations

import pytest

from aims.demo import all_done
from connectors.prefect_api import FlowRunView


def run(state: str) -> FlowRunView:
    return FlowRunView("id", "name", "flow", state, "key", {}, "2026-12-06T00:00:00Z", None)


def test_completed_runs_and_a_change_superseded_and_recorded_are_done() -> None:
    # The demo publishes two versions of its dataset: the first is stood down and recorded.
    assert all_done([run("Completed"), run("Superseded, recorded")], expected=2)


@pytest.mark.parametrize("state", ["Superseded", "Failed", "Crashed", "Cancelled", "Running"])
def test_a_run_not_done_or_failed_is_not(state: str) -> None:
    assert not all_done([run("Completed"), run(state)], expected=2)


def test_a_missing_run_is_not_done() -> None:
    assert not all_done([run("Completed")], expected=2)
