"""The local stack: broker, Prefect server, worker, router and gateway, started and stopped in order.

`stack.json` in the state folder says where a running stack is, so that `aims emit`, `aims status`
and `aims down` find it without any environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.prefect_server import PrefectServer, prefect_client_env
from infra.processes import ManagedProcess, wait_until
from schemas.settings import AimsSettings

log = logging.getLogger("aims.stack")
Progress = Callable[[str], None]


@dataclass
class StackInfo:
    bootstrap: str
    prefect_api_url: str
    prefect_ui_url: str
    supervisor_pid: int
    started_at: float
    pids: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / "stack.json"

    def save(self, state_dir: Path) -> None:
        tmp = self.path(state_dir).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.path(state_dir))

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo | None:
        try:
            info = cls(**json.loads(cls.path(state_dir).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None
        try:
            os.kill(info.supervisor_pid, 0)
        except ProcessLookupError:
            return None  # left behind by a stack that died
        return info


def aims_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aims", *args]


class LocalStack:
    def __init__(self, settings: AimsSettings) -> None:
        self.settings = settings
        self.state = settings.state_path
        self.broker: KafkaBroker | None = None
        self.server: PrefectServer | None = None
        self.children: dict[str, ManagedProcess] = {}
        self.bootstrap = ""
        self.api_url = ""
        self.ui_url = ""
        self._stopped = threading.Event()

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(prefect_client_env(self.state, self.api_url, self.settings.worker_poll_seconds))
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        return env

    def start(self, progress: Progress = print) -> StackInfo:
        self.state.mkdir(parents=True, exist_ok=True)
        if StackInfo.load(self.state) is not None:
            raise RuntimeError(f"a stack is already running from {self.state}; stop it with `aims down`")
        if self.settings.kafka_bootstrap_servers:
            self.bootstrap = self.settings.kafka_bootstrap_servers
            progress(f"Kafka: using the existing cluster at {self.bootstrap}")
        else:
            progress("Kafka: starting a local KRaft broker…")
            self.broker = KafkaBroker(self.state, self.settings.kafka_home)
            self.bootstrap = self.broker.start()
            progress(f"Kafka: broker ready at {self.bootstrap}")
        created = ensure_topics(self.bootstrap, topic_specs(self.settings))
        progress(f"Kafka: topics ready ({', '.join(created) or 'already there'})")
        if self.settings.prefect_api_url:
            self.api_url = self.settings.prefect_api_url
            self.ui_url = self.api_url.removesuffix("/api")
            progress(f"Prefect: using the existing API at {self.api_url}")
        else:
            progress("Prefect: starting a local server on SQLite…")
            self.server = PrefectServer(self.state)
            self.api_url = self.server.start()
            self.ui_url = self.server.ui_url
            progress(f"Prefect: server ready, UI at {self.ui_url}")
        logs = self.state / "logs"
        self._spawn("worker", aims_command("worker"), logs / "worker.log")
        progress("Prefect: waiting for the deployments and the worker's flow-run processes…")
        wait_until(self._deployments_served, 120, "worker", self.children["worker"])
        progress("Prefect: deployments served, worker ready")
        self._spawn("router", aims_command("router"), logs / "router.log")
        wait_until(self._router_ready, 90, "router", self.children["router"])
        progress("Router: consuming")
        self._spawn("gateway", aims_command("gateway"), logs / "gateway.log")
        wait_until(self._gateway_ready, 60, "gateway", self.children["gateway"])
        progress(f"Gateway: Slack and Jira decisions at {self.gateway_url()}")
        info = StackInfo(
            bootstrap=self.bootstrap,
            prefect_api_url=self.api_url,
            prefect_ui_url=self.ui_url,
            supervisor_pid=os.getpid(),
            started_at=time.time(),
            pids=self.pids(),
        )
        info.save(self.state)
        return info

    def pids(self) -> dict[str, int]:
        procs = dict(self.children)
        if self.broker and self.broker.process:
            procs["kafka"] = self.broker.process
        if self.server and self.server.process:
            procs["prefect-server"] = self.server.process
        return {name: p.pid for name, p in procs.items() if p.pid is not None}

    def _spawn(self, name: str, command: list[str], log_path: Path) -> None:
        proc = ManagedProcess(name, command, log_path, self.child_env())
        proc.start()
        self.children[name] = proc

    def _deployments_served(self) -> bool:
        from connectors.prefect_api import PrefectApi
        from infra.deployments import served, worker_ready

        if not worker_ready(self.state, self.children["worker"].pid):
            return False
        api = PrefectApi(self.api_url)
        try:
            return served(api)
        finally:
            api.close()

    def _router_ready(self) -> bool:
        return any(
            json.loads(p.read_text()).get("assigned") for p in (self.state / "routers").glob("router-*.json")
        )

    def gateway_url(self) -> str:
        from events.gateway import status_path

        status = json.loads(status_path(self.state).read_text())
        return f"http://{status['host']}:{status['port']}"

    def _gateway_ready(self) -> bool:
        import httpx

        try:
            return httpx.get(self.gateway_url() + "/healthz", timeout=2).status_code == 200
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False

    def supervise(self, progress: Progress = print, check_every: float = 2.0) -> None:
        """Keep the children running until `stop()`: a crashed router or worker is restarted."""
        restarts: dict[str, int] = {}
        while not self._stopped.wait(check_every):
            for name, proc in list(self.children.items()):
                if proc.alive():
                    continue
                restarts[name] = restarts.get(name, 0) + 1
                code = proc.proc.returncode if proc.proc else "?"
                progress(f"{name} exited ({code}); restart #{restarts[name]}, log: {proc.log_path}")
                proc.start()

    def stop(self, progress: Progress = print) -> None:
        """Router first (it commits and leaves the group), then the worker, Prefect, Kafka."""
        self._stopped.set()
        for name in ("gateway", "router", "worker"):
            proc = self.children.get(name)
            if proc is not None:
                progress(f"stopping {name}…")
                proc.stop(timeout=30)
        if self.server is not None:
            progress("stopping the Prefect server…")
            self.server.stop()
        if self.broker is not None:
            progress("stopping the Kafka broker…")
            self.broker.stop()
        info = StackInfo.load(self.state)
        if info is not None and info.supervisor_pid == os.getpid():
            StackInfo.path(self.state).unlink(missing_ok=True)
        progress("stack stopped")
