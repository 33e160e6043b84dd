"""What a register command loads and prints: no alembic, no pydantic-settings, rich only at a terminal.

Start-up time itself is measured by `bench/cli_startup.py` (`make bench-cli`), never asserted here;
these tests pin the imports that made `aims systems` slow, which do not depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.register import open_register
from schemas.records import AISystem
from schemas.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIMS_", "KAFKA_", "PREFECT_"))}
    clean["AIMS_STATE_DIR"] = str(tmp_path / "state")
    clean["AIMS_POLICY_FILE"] = str(ROOT / "policy" / "aims-policy.yaml")
    clean["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    register = open_register(load_settings(state_dir=tmp_path / "state"))
    with register.unit_of_work("test:cli-startup") as uow:
        uow.systems.add(AISystem(name="credit-scoring [eu]", owner="ana@example.com", intended_use="loans"))
    register.close()
    return clean


def test_a_register_command_imports_neither_alembic_nor_pydantic_settings_nor_rich(
    env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import json, sys\n"
        "from aims.cli import main\n"
        "rc = main(['systems'])\n"
        "print('@@' + json.dumps({'rc': rc, 'loaded': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "@@" in proc.stdout, proc.stderr
    report = json.loads(proc.stdout.rsplit("@@", 1)[1])
    assert report["rc"] == 0
    assert "credit-scoring [eu]" in proc.stdout  # plain table: stdout is a pipe here
    assert not {"alembic", "pydantic_settings", "rich", "prefect", "kafka"} & set(report["loaded"])


def test_a_person_at_a_terminal_gets_a_drawn_table(env: dict[str, str], tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aims", "systems"],
            env={**env, "COLUMNS": "200", "TERM": "xterm"},
            cwd=tmp_path,
            stdout=follower,
            stderr=subprocess.PIPE,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closes when the command exits
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "credit-scoring [eu]" in shown  # a cell is text, never rich markup
    assert "┃" in shown or "│" in shown  # drawn by rich, not the plain columns
