"""A real Prefect server on SQLite in the state folder, or an existing one (`PREFECT_API_URL`).

With an auth string (`user:password`) the server refuses every API request without it (401; only
GET /health and /ready stay open), so that nobody who merely reaches its port can read runs or
resume a waiting approval. The string travels in environment variables only, never in a command
line (which any local user can list) nor in stack.json.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from pydantic import SecretStr

from infra.processes import ManagedProcess, free_port, port_is_free, wait_until

log = logging.getLogger("aims.prefect")


def prefect_client_env(
    state_dir: Path, api_url: str, worker_poll_seconds: float = 0.5, auth: SecretStr | None = None
) -> dict[str, str]:
    """Environment every process of the stack needs to talk to the same Prefect API (and its flow-run
    processes, which inherit it): the Prefect SDK and `AimsSettings` both read PREFECT_API_AUTH_STRING."""
    home = state_dir / "prefect"
    env = {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        # The default is 10 s; accepted runs should start within about 2 s.
        "PREFECT_WORKER_QUERY_SECONDS": str(worker_poll_seconds),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLI_COLORS": "false",
        "AIMS_STATE_DIR": str(state_dir),
    }
    if auth is not None:
        env["PREFECT_API_AUTH_STRING"] = auth.get_secret_value()
    return env


def prefect_executable() -> str:
    return str(Path(sys.executable).with_name("prefect"))


class PrefectServer:
    def __init__(
        self,
        state_dir: Path,
        database_url: str | None = None,
        port: int | None = None,
        auth: SecretStr | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.auth = auth
        self.home = state_dir / "prefect"
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
        self.port = port or 0
        self.process: ManagedProcess | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180, cancel: threading.Event | None = None) -> str:
        """Start the server and wait until healthy; `cancel` ends the wait early (stack stopping)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = dict(os.environ)
        env.update(prefect_client_env(self.state_dir, self.api_url, auth=self.auth))
        # Not inherited: a server started without an auth string runs without one.
        env.pop("PREFECT_SERVER_API_AUTH_STRING", None)
        if self.auth is not None:
            env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth.get_secret_value()
        env.update(
            {
                "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
                "PREFECT_UI_API_URL": self.api_url,
            }
        )
        self.process = ManagedProcess(
            "prefect-server",
            [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            self.home / "server.log",
            env,
        )
        self.process.start()
        waited = wait_until(self.healthy, timeout, "Prefect server", self.process, cancel)
        log.info("Prefect server ready at %s after %.1fs", self.ui_url, waited)
        return self.api_url

    def healthy(self) -> bool:
        import httpx

        return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200

    def restart(self, timeout: float = 180, cancel: threading.Event | None = None) -> str:
        """Stop the server if it runs, start it again on the same port, or a new one if that is taken.

        Its database is in the state folder: deployments, runs and their states survive.
        """
        self.stop()
        if self.port and not port_is_free(self.port):
            log.warning("port %d is taken by another process; the Prefect server moves", self.port)
            self.port = 0
        return self.start(timeout, cancel)

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None:
            self.process.stop(timeout)
