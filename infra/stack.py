"""The local stack: broker, Prefect server, worker, router and gateway, started and stopped in order.

`stack.json` in the state folder says where a running stack is, so that `aims emit`, `aims status`
and `aims down` find it without any environment variables. The supervisor (the `aims up` process)
keeps it current: after a restart it names the processes running now and their addresses.

Supervision (`LocalStack.supervise`): every component that dies is started again, a broker or a
Prefect server on its old port, so that every client keeps its address. If a port was taken by
someone else meanwhile, the component moves, `stack.json` is rewritten and the worker, router and
gateway (which have the addresses in their environment) are restarted with the new ones. A component
that keeps dying waits longer before each new start (`Backoff`) instead of looping.

The state folder's files (`stack.json`, restart requests) are in infra.stack_state; finding and
stopping the processes started from a state folder is in infra.stack_processes. Their public names
are importable from here too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from pydantic import SecretStr

from events.kafka_clients import KafkaConnection
from events.kafka_security import without_kafka_security
from events.topics import ensure_topics, prepare_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.postgres import PostgresServer
from infra.prefect_server import PrefectServer, prefect_client_env
from infra.processes import Cancelled, ManagedProcess, wait_until
from infra.stack_processes import (
    STOP_ORDER,
    Backoff,
    Progress,
    StackProcess,
    aims_command,
    aims_subcommand,
    announced_processes,
    is_component_process,
    stop_processes,
)
from infra.stack_state import (
    COMPONENTS,
    CONTROL_DIR,
    MAX_REQUEST_BYTES,
    RestartResult,
    StackInfo,
    control_dir,
    ensure_audit_key,
    ensure_prefect_auth,
    ensure_signing_key,
    parse_component,
    parse_restart_request,
    pending_restart_requests,
    prefect_auth_path,
    request_restart,
    take_restart_result,
    withdraw_restart,
    write_restart_result,
)
from schemas.settings import AimsSettings

__all__ = [
    "COMPONENTS",
    "CONTROL_DIR",
    "DEPENDENTS",
    "MAX_REQUEST_BYTES",
    "READY_TIMEOUT",
    "STOP_ORDER",
    "Backoff",
    "LocalStack",
    "NotManaged",
    "Progress",
    "RestartResult",
    "StackInfo",
    "StackProcess",
    "aims_command",
    "aims_subcommand",
    "announced_processes",
    "is_component_process",
    "parse_component",
    "parse_restart_request",
    "pending_restart_requests",
    "request_restart",
    "stop_processes",
    "take_restart_result",
    "withdraw_restart",
    "write_restart_result",
]

log = logging.getLogger("aims.stack")

# The processes that get the broker's and the Prefect API's address in their environment.
DEPENDENTS: tuple[str, ...] = ("worker", "router", "gateway")
READY_TIMEOUT: dict[str, float] = {
    "kafka": 120,
    "prefect-server": 180,
    "worker": 120,
    "router": 90,
    "gateway": 60,
}


class NotManaged(RuntimeError):
    """The component is not run by this stack (an existing cluster or Prefect API is used)."""


class LocalStack:
    def __init__(self, settings: AimsSettings) -> None:
        self.settings = settings
        self.state = settings.state_path
        self.broker: KafkaBroker | None = None
        self.server: PrefectServer | None = None
        # The Prefect server's own PostgreSQL, when this stack starts one (AIMS_PREFECT_DATABASE=postgres).
        self.postgres: PostgresServer | None = None
        self.children: dict[str, ManagedProcess] = {}
        self.bootstrap = ""
        self.api_url = ""
        self.ui_url = ""
        self.info: StackInfo | None = None
        self._stopped = threading.Event()
        # Held while a component is restarted: `stop()` waits for the restart (whose waits end early
        # once stopping) instead of stopping a process half-started.
        self._lock = threading.Lock()
        # Per supervised process: a component, or one node of a local Kafka cluster (`kafka-2`).
        self._backoff: dict[str, Backoff] = {name: Backoff() for name in COMPONENTS}
        self._restarts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)
        self._due: dict[str, float] = {}  # dead components: when they may start again

    def prefect_auth(self) -> SecretStr | None:
        """The Prefect API's `user:password`: the settings', else, for the server this stack runs, the
        state folder's. An existing API gets only what the settings name: the local server's
        credentials are never sent elsewhere."""
        if self.settings.prefect_api_auth_string is not None:
            return self.settings.prefect_api_auth_string
        if self.settings.prefect_api_url:
            return None
        return ensure_prefect_auth(self.state)

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            prefect_client_env(
                self.state, self.api_url, self.settings.worker_poll_seconds, auth=self.prefect_auth()
            )
        )
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        if self.broker is not None:
            # The local broker's own user and CA, not whatever cluster the environment names.
            env = without_kafka_security(env)
            env.update(self.broker.client_env())
            # With the address set, a process would take the topics for an existing cluster's (one
            # copy): the copies this stack made them with, for any topic a process creates.
            env["AIMS_REPLICATION_FACTOR"] = str(self.settings.topic_replication)
            env["AIMS_MIN_INSYNC_REPLICAS"] = str(self.settings.topic_min_insync)
        # Every process of the stack signs (flows, gateway, the router's relay) and verifies (the
        # router) the system's own events with one key: the settings', else the state folder's.
        key = self.settings.event_signing_key or ensure_signing_key(self.state)
        env["AIMS_EVENT_SIGNING_KEY"] = key.get_secret_value()
        # Likewise the audit log's key: every process that writes the register chains with it.
        audit_key = self.settings.audit_key or ensure_audit_key(self.state)
        env["AIMS_AUDIT_KEY"] = audit_key.get_secret_value()
        return env

    @property
    def kafka(self) -> KafkaConnection:
        """How this stack's clients reach its broker, or the settings' cluster, with its security."""
        if self.broker is not None:
            return self.broker.connection
        return KafkaConnection.from_settings(self.settings, self.bootstrap)

    def start(self, progress: Progress = print) -> StackInfo:
        self.state.mkdir(parents=True, exist_ok=True)
        if StackInfo.load(self.state) is not None:
            raise RuntimeError(f"a stack is already running from {self.state}; stop it with `aims down`")
        # Requests and answers a previous stack left: nobody waits for them any more.
        for leftover in control_dir(self.state).glob("*restart-*"):
            leftover.unlink(missing_ok=True)
        if self.settings.kafka_bootstrap_servers:
            self.bootstrap = self.settings.kafka_bootstrap_servers
            progress(f"Kafka: using the existing cluster at {self.bootstrap}")
        else:
            nodes = self.settings.kafka_local_brokers
            what = "broker" if nodes == 1 else f"cluster of {nodes} nodes"
            progress(f"Kafka: starting a local KRaft {what}…")
            self.broker = KafkaBroker(
                self.state, self.settings.kafka_home, security=self.settings.kafka_local_security, nodes=nodes
            )
            self.bootstrap = self.broker.start()
            for name, _ in self._kafka_processes():
                self._backoff_of(name).started(time.monotonic())
            security = self.broker.connection.security.describe()
            progress(f"Kafka: {what} ready at {self.bootstrap} ({security})")
        # The broker this stack runs has its topics made here; an existing cluster's may be managed
        # elsewhere (AIMS_KAFKA_CREATE_TOPICS=false: then only checked).
        create = self.broker is not None or self.settings.kafka_create_topics
        created = prepare_topics(self.kafka, topic_specs(self.settings), create=create)
        copies = f"{self.settings.topic_replication} copies, {self.settings.topic_min_insync} in sync"
        progress(f"Kafka: topics ready ({', '.join(created) or 'already there'}; {copies})")
        if self.settings.prefect_api_url:
            self.api_url = self.settings.prefect_api_url
            self.ui_url = self.api_url.removesuffix("/api")
            progress(f"Prefect: using the existing API at {self.api_url}")
        else:
            database_url = self._prefect_database(progress)
            self.server = PrefectServer(self.state, database_url=database_url, auth=self.prefect_auth())
            self.api_url = self.server.start()
            self.ui_url = self.server.ui_url
            self._backoff["prefect-server"].started(time.monotonic())
            progress(f"Prefect: server ready, UI at {self.ui_url}")
            if self.settings.prefect_api_auth_string is None:
                # Where the login is, never the login itself: this line goes to logs/stack.log.
                progress(f"Prefect: API and UI require the login in {prefect_auth_path(self.state)}")
        logs = self.state / "logs"
        self._spawn("worker", aims_command("worker"), logs / "worker.log")
        progress("Prefect: waiting for the deployments and the worker's flow-run processes…")
        wait_until(self._deployments_served, READY_TIMEOUT["worker"], "worker", self.children["worker"])
        progress("Prefect: deployments served, worker ready")
        self._spawn("router", aims_command("router"), logs / "router.log")
        self._wait_ready("router")
        progress("Router: consuming")
        self._spawn("gateway", aims_command("gateway"), logs / "gateway.log")
        self._wait_ready("gateway")
        progress(f"Gateway: Slack and Jira decisions at {self.gateway_url()}")
        self.info = StackInfo(
            bootstrap=self.bootstrap,
            prefect_api_url=self.api_url,
            prefect_ui_url=self.ui_url,
            supervisor_pid=os.getpid(),
            started_at=time.time(),
            pids=self.pids(),
        )
        self.info.save(self.state)
        return self.info

    def _prefect_database(self, progress: Progress) -> str | None:
        """The Prefect server's database URL: the settings' PostgreSQL, one started in the state folder,
        or None for SQLite there. See the README's "Prefect on PostgreSQL" for when to choose which."""
        if self.settings.prefect_database_url is not None:
            progress("Prefect: starting a local server on the PostgreSQL of AIMS_PREFECT_DATABASE_URL…")
            return self.settings.prefect_database_url.get_secret_value()
        if self.settings.prefect_database == "postgres":
            progress("Prefect: starting PostgreSQL for its server…")
            # Durable (fsync on): the runs and deployments are the user's, unlike the tests' servers.
            self.postgres = PostgresServer(self.state, "prefect", database="prefect", fsync=True)
            self.postgres.start()
            progress(f"Prefect: PostgreSQL ready on 127.0.0.1:{self.postgres.port}; starting the server…")
            return self.postgres.url()
        progress("Prefect: starting a local server on SQLite…")
        return None

    def process(self, name: str) -> ManagedProcess | None:
        """The process of `name` now (a restart replaces the broker's and the server's): a component,
        or one node of a local Kafka cluster (`kafka-2`); `kafka` is a cluster's first node."""
        if name == "kafka" and self.broker is not None:
            return self.broker.nodes[0].process
        if name.startswith("kafka"):
            return dict(self._kafka_processes()).get(name)
        if name == "prefect-server":
            return self.server.process if self.server else None
        return self.children.get(name)

    def _kafka_processes(self) -> list[tuple[str, ManagedProcess]]:
        """The local Kafka's processes by the name each is supervised under: `kafka` for one node,
        `kafka-<id>` for each node of a cluster (one restarts while the others serve)."""
        if self.broker is None:
            return []
        single = len(self.broker.nodes) == 1
        return [
            ("kafka" if single else f"kafka-{node.node_id}", node.process)
            for node in self.broker.nodes
            if node.process is not None
        ]

    def supervised(self) -> list[tuple[str, ManagedProcess]]:
        """Every process this stack runs itself, in start order, with the name it is restarted by."""
        found: list[tuple[str, ManagedProcess]] = []
        for name in COMPONENTS:
            if name == "kafka":
                found += self._kafka_processes()
            elif (proc := self.process(name)) is not None:
                found.append((name, proc))
        return found

    def components(self) -> list[str]:
        """The components this stack runs itself, in start order."""
        return [name for name in COMPONENTS if self.process(name) is not None]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.supervised() if p.pid is not None}

    def _backoff_of(self, name: str) -> Backoff:
        self._restarts.setdefault(name, 0)
        return self._backoff.setdefault(name, Backoff())

    def _spawn(self, name: str, command: list[str], log_path: Path) -> None:
        proc = ManagedProcess(name, command, log_path, self.child_env())
        proc.start()
        self.children[name] = proc
        self._backoff[name].started(time.monotonic())

    def _deployments_served(self) -> bool:
        from connectors.prefect_api import PrefectApi
        from infra.deployments import served

        if not self._ready("worker"):
            return False
        api = PrefectApi(self.api_url, auth=self.prefect_auth())
        try:
            return served(api)
        finally:
            api.close()

    def _ready(self, name: str) -> bool:
        """Whether the child `name` that runs now is ready: its own status file says so."""
        from infra.deployments import worker_ready

        pid = self.children[name].pid
        if name == "worker":
            return worker_ready(self.state, pid)
        if name == "router":
            # Its heartbeat, once it has joined the group and holds partitions.
            for path in (self.state / "routers").glob("router-*.json"):
                with contextlib.suppress(OSError, ValueError):
                    beat = json.loads(path.read_text())
                    if beat.get("pid") == pid and beat.get("assigned"):
                        return True
            return False
        return self._gateway_ready(pid)

    def _wait_ready(self, name: str) -> float:
        proc = self.children[name]
        return wait_until(lambda: self._ready(name), READY_TIMEOUT[name], name, proc, self._stopped)

    def gateway_url(self) -> str:
        from gateway.status_file import status_path

        status = json.loads(status_path(self.state).read_text())
        return f"http://{status['host']}:{status['port']}"

    def _gateway_ready(self, pid: int | None = None) -> bool:
        import httpx

        from gateway.status_file import status_path

        try:
            # The status file a gateway killed earlier left names its pid and old port: wait for ours.
            if pid is not None and json.loads(status_path(self.state).read_text()).get("pid") != pid:
                return False
            return httpx.get(self.gateway_url() + "/healthz", timeout=2).status_code == 200
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False

    # -- supervision ------------------------------------------------------------------------------

    def supervise(self, progress: Progress = print, check_every: float = 1.0) -> None:
        """Keep every component running until `stop()`, and serve `aims restart` requests.

        See the module's docstring for what a restart does.
        """
        while not self._stopped.wait(check_every):
            try:
                self.supervise_once(progress)
            except Exception as exc:
                # An unforeseen failure must not end supervision silently: logged with its traceback.
                log.exception("supervision pass failed")
                progress(f"supervisor: a pass failed ({exc!r}); trying again")

    def supervise_once(self, progress: Progress = print) -> None:
        """One pass: answer the restart requests, then restart the components that died and are due."""
        self._serve_requests(progress)
        for name, proc in self.supervised():
            if self._stopped.is_set():
                return
            if proc.alive():
                self._due.pop(name, None)
                continue
            if name not in self._due:
                delay = self._backoff_of(name).died(time.monotonic())
                self._restarts[name] += 1
                code = proc.proc.returncode if proc.proc else "?"
                when = f" in {delay:.0f}s (it keeps dying)" if delay else ""
                progress(
                    f"{name} exited ({code}); restart #{self._restarts[name]}{when}, log: {proc.log_path}"
                )
                self._due[name] = time.monotonic() + delay
            if time.monotonic() >= self._due[name]:
                del self._due[name]
                self.restart(name, progress)

    def _serve_requests(self, progress: Progress) -> None:
        for request_id, path in pending_restart_requests(self.state):
            try:
                with path.open("rb") as request:
                    raw = request.read(MAX_REQUEST_BYTES + 1)
            except FileNotFoundError:
                continue  # withdrawn
            path.unlink(missing_ok=True)
            try:
                component = parse_restart_request(raw)
            except ValueError as exc:
                progress(f"restart request {request_id} refused: {exc}")
                result = RestartResult(False, f"refused: {exc}")
            else:
                progress(f"{component}: restart asked for (`aims restart`)")
                self._due.pop(component, None)  # asked for now: no backoff wait
                result = self.restart(component, progress)
            write_restart_result(self.state, request_id, result)

    def restart(self, name: str, progress: Progress = print) -> RestartResult:
        """Restart component `name` and wait until it is ready again; never raises for a failed start."""
        from kafka.errors import KafkaError

        with self._lock:
            if self._stopped.is_set():
                return RestartResult(False, f"{name}: not restarted, the stack is stopping")
            try:
                if name == "kafka":
                    message = self._restart_broker(progress)
                elif name.startswith("kafka-"):
                    message = self._restart_node(int(name.removeprefix("kafka-")), progress)
                elif name == "prefect-server":
                    message = self._restart_server(progress)
                else:
                    message = self._restart_child(name, progress)
            except NotManaged as exc:
                return RestartResult(False, str(exc))
            except Cancelled:
                return RestartResult(False, f"{name}: restart abandoned, the stack is stopping")
            except (RuntimeError, TimeoutError, OSError, KafkaError) as exc:
                # Started but not ready: it died (the next pass restarts it, with backoff) or is slow.
                message = f"{name}: not ready after the restart: {exc}"
                progress(message)
                return RestartResult(False, message)
            finally:
                self._save_info()
        progress(message)
        return RestartResult(True, message)

    def _restart_broker(self, progress: Progress) -> str:
        if self.broker is None:
            raise NotManaged(f"kafka is not run by this stack: it uses the cluster at {self.bootstrap}")
        if len(self.broker.nodes) > 1:
            # A cluster restarts node by node, so it serves throughout: a rolling restart.
            return "; ".join(self._restart_node(node.node_id, progress) for node in self.broker.nodes)
        before = self.bootstrap
        progress(f"kafka: starting the broker again (log: {self.broker.nodes[0].log_path})…")
        self._backoff_of("kafka").started(time.monotonic())
        self.bootstrap = self.broker.restart(READY_TIMEOUT["kafka"], cancel=self._stopped)
        # Topics live in the data folder and survive; this matters only if that folder was lost.
        ensure_topics(self.kafka, topic_specs(self.settings))
        if self.bootstrap != before:
            self._moved(f"the broker moved from {before} to {self.bootstrap}", progress)
        proc = self.process("kafka")
        return f"kafka: ready at {self.bootstrap} (pid {proc.pid if proc else '?'})"

    def _restart_node(self, node_id: int, progress: Progress) -> str:
        """One node of the local cluster again, on its own ports; the others serve meanwhile."""
        if self.broker is None or not 1 <= node_id <= len(self.broker.nodes):
            raise NotManaged(f"kafka-{node_id} is not a node of this stack's cluster")
        node = self.broker.node(node_id)
        progress(f"kafka-{node_id}: starting the node again (log: {node.log_path})…")
        self._backoff_of(f"kafka-{node_id}").started(time.monotonic())
        address = self.broker.restart_node(node_id, READY_TIMEOUT["kafka"], cancel=self._stopped)
        return f"kafka-{node_id}: ready at {address} (pid {node.process.pid if node.process else '?'})"

    def _restart_server(self, progress: Progress) -> str:
        if self.server is None:
            raise NotManaged(f"prefect-server is not run by this stack: it uses the API at {self.api_url}")
        before = self.api_url
        progress(f"prefect-server: starting the server again (log: {self.server.home / 'server.log'})…")
        self._backoff["prefect-server"].started(time.monotonic())
        self.api_url = self.server.restart(READY_TIMEOUT["prefect-server"], cancel=self._stopped)
        self.ui_url = self.server.ui_url
        if self.api_url != before:
            self._moved(f"the Prefect server moved from {before} to {self.api_url}", progress)
        pid = self.server.process.pid if self.server.process else "?"
        return f"prefect-server: ready at {self.ui_url} (pid {pid})"

    def _moved(self, what: str, progress: Progress) -> None:
        """An address changed: publish it, and restart the processes that had the old one."""
        progress(f"{what}; restarting {', '.join(DEPENDENTS)} with the new address")
        self._save_info()
        for name in DEPENDENTS:
            if name in self.children:
                progress(self._restart_child(name, progress))

    def _restart_child(self, name: str, progress: Progress) -> str:
        proc = self.children[name]
        progress(f"{name}: starting again (log: {proc.log_path})…")
        proc.stop(timeout=30)  # nothing to do if it died
        proc.env = self.child_env()  # the addresses of now, which may not be those it started with
        proc.start()
        self._backoff_of(name).started(time.monotonic())
        self._save_info()  # its pid, even before it is ready
        self._wait_ready(name)
        return f"{name}: ready (pid {proc.pid})"

    def _save_info(self) -> None:
        """Keep stack.json current: the addresses and the pids running now."""
        if self.info is None:
            return  # not started (yet): nothing published
        self.info = replace(
            self.info,
            bootstrap=self.bootstrap,
            prefect_api_url=self.api_url,
            prefect_ui_url=self.ui_url,
            pids=self.pids(),
        )
        self.info.save(self.state)

    def stop(self, progress: Progress = print) -> None:
        """Stop everything started from the state folder, in `STOP_ORDER`.

        The gateway first (it produces decisions to Kafka), then the routers (they commit and leave
        the group), the workers, Prefect, Kafka. Routers, workers and gateways started by hand in
        this state folder (`aims router` to scale out) stop along with our own children.
        """
        self._stopped.set()
        with self._lock:
            own = {p.pid for p in self.children.values() if p.pid is not None}
            others = [p for p in announced_processes(self.state) if p.pid not in own]
            for name in ("gateway", "router", "worker"):
                stop_processes([p for p in others if p.component == name], progress)
                proc = self.children.get(name)
                if proc is not None:
                    progress(f"stopping {name}…")
                    proc.stop(timeout=30)
            if self.server is not None:
                progress("stopping the Prefect server…")
                self.server.stop()
            if self.postgres is not None:
                progress("stopping the Prefect server's PostgreSQL…")
                self.postgres.stop()
            if self.broker is not None:
                progress("stopping Kafka…")
                self.broker.stop()
            info = StackInfo.load(self.state)
            if info is not None and info.supervisor_pid == os.getpid():
                StackInfo.path(self.state).unlink(missing_ok=True)
        progress("stack stopped")
