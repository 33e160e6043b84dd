"""The dashboard after a flow run: rebuilt when the run changed the register, linked from an artifact,
at most once per interval, and never the cause of a failed run."""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import pytest

import flows.dashboard.hook as hook
from flows.runtime import Runtime
from schemas.dashboard import Dashboard
from schemas.settings import load_settings
from tests.flows.dashboard.seeding import seed_dashboard
from tests.resources import example_policy, migrated_register


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    state = tmp_path / "state"
    register = migrated_register(state)
    published: list[tuple[Dashboard, Path, str]] = []
    monkeypatch.setattr(hook, "publish", lambda board, path, flow: published.append((board, path, flow)))
    monkeypatch.setattr(hook, "prefect_api", lambda runtime: (None, None))
    rt = Runtime(settings=load_settings(state_dir=state), register=register, load_policy=example_policy)
    rt.published = published  # type: ignore[attr-defined]
    return rt


def change(rt: Runtime) -> None:
    seed_dashboard(rt.register, random.Random(1))


def test_a_run_that_changed_the_register_rebuilds_and_links_the_page(runtime: Runtime) -> None:
    before = hook.register_head(runtime)
    change(runtime)
    path = hook.after_run(runtime, before, "handle-incident")
    assert path == runtime.settings.state_path / "dashboard.html" and path.is_file()
    [(board, linked, flow)] = runtime.published  # type: ignore[attr-defined]
    assert linked == path and flow == "handle-incident"
    assert board.counts.open_approvals > 0 and f"<b>{board.counts.open_approvals}</b>" in path.read_text()
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".dashboard")] == []


def test_a_run_that_wrote_nothing_rebuilds_nothing(runtime: Runtime) -> None:
    change(runtime)
    before = hook.register_head(runtime)
    assert hook.after_run(runtime, before, "chase-approvals") is None
    assert not (runtime.settings.state_path / "dashboard.html").exists()


def test_a_page_younger_than_the_interval_is_left_until_the_next_change(runtime: Runtime) -> None:
    path = runtime.settings.state_path / "dashboard.html"
    before = hook.register_head(runtime)
    change(runtime)
    assert hook.after_run(runtime, before, "a") == path
    assert hook.after_run(runtime, None, "b", interval=60) is None
    old = time.time() - 61
    os.utime(path, (old, old))
    assert hook.after_run(runtime, None, "c", interval=60) == path
    assert [flow for _, _, flow in runtime.published] == ["a", "c"]  # type: ignore[attr-defined]


def test_a_dashboard_problem_is_logged_and_never_raised(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hook, "write", broken)
    change(runtime)
    with caplog.at_level(logging.WARNING, logger=hook.__name__):
        assert hook.after_run(runtime, None, "check-data-quality") is None
    assert "dashboard: not rebuilt after check-data-quality: OSError" in caplog.text
    assert "No space left on device" in caplog.text


def test_a_failed_run_rebuilds_the_page_though_it_wrote_nothing(runtime: Runtime) -> None:
    change(runtime)
    before = hook.register_head(runtime)
    path = hook.after_run(runtime, before, "reassess-risk", failed=True)
    assert path is not None and path.is_file()
