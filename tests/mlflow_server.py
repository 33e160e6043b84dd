"""A real MLflow tracking server for the tests, in its own virtual environment, on loopback.

Not a test module. MLflow 3.17 pins pyarrow below 26 (ours is 26) and brings 45 packages the project
does not use (Flask, gunicorn, scikit-learn, matplotlib, docker…), so it is installed apart:

    python3.11 -m venv .venv-mlflow && .venv-mlflow/bin/pip install mlflow==3.17.2

(or `AIMS_TEST_MLFLOW_PYTHON` names the interpreter of one). The server sends webhooks only from a
database backend store, so it runs on SQLite; and to a loopback http:// URL only with
MLFLOW_WEBHOOK_ALLOWED_SCHEMES and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS set, as here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from infra.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
MLFLOW_VERSION = "3.17.2"
CLIENT = Path(__file__).parent / "mlflow_client.py"


def mlflow_python() -> Path | None:
    """MLflow's interpreter, or None when it is not installed (the tests that need it say so)."""
    given = os.environ.get("AIMS_TEST_MLFLOW_PYTHON")
    python = Path(given) if given else REPO / ".venv-mlflow" / "bin" / "python"
    return python if python.exists() else None


class MlflowServer:
    def __init__(self, python: Path, state: Path) -> None:
        self.python = python
        self.state = state
        self.url = ""
        self.process: ManagedProcess | None = None

    def start(self) -> str:
        self.state.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(self.state)),
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        }
        self.process = ManagedProcess(
            "mlflow-server",
            [
                str(self.python.parent / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.state / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.state / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            self.state / "mlflow-server.log",
            env,
        )
        self.process.start(cwd=self.state)
        wait_until(
            lambda: httpx.get(f"{self.url}/health", timeout=2).status_code == 200,
            180,
            "mlflow server",
            self.process,
        )
        return self.url

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self, *args: str) -> dict[str, Any]:
        """`tests/mlflow_client.py ARGS` against this server, with MLflow's interpreter; what it printed."""
        done = subprocess.run(
            [str(self.python), str(CLIENT), self.url, *args],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.state,
            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(self.state))},
        )
        assert done.returncode == 0, f"mlflow client {args[0]} failed:\n{done.stderr[-3000:]}"
        made: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return made
