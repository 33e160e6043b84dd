"""The spare flow-run process: it exits cleanly when not needed and refuses a malformed job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.warm_engine import WarmJob


def run_spare(stdin: str, state: Path) -> subprocess.CompletedProcess[str]:
    # Its own state folder: a spare opens the register while it warms up.
    env = {**os.environ, "AIMS_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "infra.warm_engine"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_spare_whose_pipe_closes_unused_exits_zero_having_opened_the_register(tmp_path: Path) -> None:
    assert run_spare("", tmp_path).returncode == 0
    assert (tmp_path / "register.sqlite").is_file()


def test_a_spare_refuses_a_malformed_job_with_a_clear_error(tmp_path: Path) -> None:
    result = run_spare('{"flow_run_id": "not-a-uuid", "flow_name": "x"}\n', tmp_path)
    assert result.returncode != 0
    assert "flow_run_id" in result.stderr


@pytest.mark.parametrize(
    "raw",
    [
        {"flow_name": "onboard-model"},
        {"flow_run_id": "0b7f1d4e-8c1f-4a52-9d6c-2f3b8a1e9c70", "flow_name": "x", "extra": 1},
        {"flow_run_id": "0b7f1d4e-8c1f-4a52-9d6c-2f3b8a1e9c70", "flow_name": "x", "env": {"A": 1}},
    ],
)
def test_job_contract(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WarmJob.model_validate(raw)


class _Writes:
    """An unbuffered stdout that keeps every write apart, as the worker's shared log receives them."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_report_line_reaches_the_shared_log_in_one_write_with_its_newline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every flow-run process writes into the worker's one log: a newline written apart lets another
    # process's line in between, glued to this one (seen in the worker's integration test).
    from infra.warm_engine import RUN_LINE, report

    out = _Writes()
    monkeypatch.setattr(sys, "stdout", out)
    report(RUN_LINE, flow_run_id="r-1")
    [line] = out.writes
    assert line.startswith(f"{RUN_LINE} {{") and line.endswith("}\n")
