"""Running the `aims` command in tests: in process with captured output, or as a subprocess.

Not a test module: the incident, review, register and SoA command tests share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from aims.cli import main
from tests.resources import EXAMPLE_POLICY


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


Aims = Callable[..., Run]


def isolate(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only this state folder and the example policy: nothing from the caller's environment."""
    for name in list(os.environ):
        if name.startswith(("AIMS_", "KAFKA_", "PREFECT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIMS_STATE_DIR", str(state))
    monkeypatch.setenv("AIMS_POLICY_FILE", str(EXAMPLE_POLICY))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return Run(code, out, err)


def aims_process(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m aims …` in a process of its own, on the register of `state`."""
    env = {**os.environ, "AIMS_STATE_DIR": str(state)}
    env.pop("AIMS_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "aims", *args], capture_output=True, text=True, env=env, timeout=120
    )
