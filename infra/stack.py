"""The local stack: broker, Prefect server, worker, router and gateway, started and stopped in order.

`stack.json` in the state folder says where a running stack is, so that `aims emit`, `aims status`
and `aims down` find it without any environment variables. The supervisor (the `aims up` process)
keeps it current: after a restart it names the processes running now and their addresses.

Supervision (`LocalStack.supervise`): every component that dies is started again, a broker or a
Prefect server on its old port, so that every client keeps its address. If a port was taken by
someone else meanwhile, the component moves, `stack.json` is rewritten and the worker, router and
gateway (which have the addresses in their environment) are restarted with the new ones. A component
that keeps dying waits longer before each new start (`Backoff`) instead of looping.

Restarting one component by hand (`aims restart COMPONENT`): the command drops a request file,
`<state>/control/restart-<32 hex>.json` holding `{"component": NAME}`, into the state folder; the
supervise loop picks it up within a second, checks NAME against the fixed list `COMPONENTS`, restarts
that component, waits until it is ready and answers in `<state>/control/restart-<id>.result.json`.
Nothing else in a request is read or acted on: a file can name a component, never a command or a
path. A file system folder rather than a socket or a signal: the supervisor already polls, it works
for the foreground and the detached stack alike, and only someone who can write the state folder
(who could equally stop the stack) can ask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from events.topics import ensure_topics, topic_specs
from infra.kafka_broker import KafkaBroker
from infra.prefect_server import PrefectServer, prefect_client_env
from infra.processes import Cancelled, ManagedProcess, process_args, stop_pids, wait_until
from schemas.settings import AimsSettings

log = logging.getLogger("aims.stack")
Progress = Callable[[str], None]

# What `aims restart` can name, in start order.
COMPONENTS: tuple[str, ...] = ("kafka", "prefect-server", "worker", "router", "gateway")
# The processes that get the broker's and the Prefect API's address in their environment.
DEPENDENTS: tuple[str, ...] = ("worker", "router", "gateway")
# Producers of Kafka events and decisions first, the servers they need last.
STOP_ORDER: tuple[str, ...] = ("gateway", "router", "worker", "prefect-server", "kafka")
READY_TIMEOUT: dict[str, float] = {
    "kafka": 120,
    "prefect-server": 180,
    "worker": 120,
    "router": 90,
    "gateway": 60,
}
CONTROL_DIR = "control"
MAX_REQUEST_BYTES = 1024
_REQUEST_NAME = re.compile(r"restart-([0-9a-f]{32})\.json")
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


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
    def read(cls, state_dir: Path) -> StackInfo | None:
        """The file as it is, even if the stack that wrote it is gone (`aims down` cleans up after it)."""
        try:
            return cls(**json.loads(cls.path(state_dir).read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None

    @classmethod
    def load(cls, state_dir: Path) -> StackInfo | None:
        """The running stack, or None if there is none (no file, or its supervisor died)."""
        info = cls.read(state_dir)
        if info is None:
            return None
        try:
            os.kill(info.supervisor_pid, 0)
        except ProcessLookupError:
            return None  # left behind by a stack that died
        return info


def aims_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aims", *args]


# -- restart requests (`aims restart`) -----------------------------------------------------------


@dataclass(frozen=True)
class RestartResult:
    ok: bool
    message: str


def parse_component(name: str) -> str:
    """`name` if the stack has a component of that name; ValueError saying which exist otherwise."""
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r}: one of {', '.join(COMPONENTS)}")
    return name


def parse_restart_request(raw: bytes) -> str:
    """The component a request file names. Anything but `{"component": NAME}` is refused."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise ValueError(f"a restart request is at most {MAX_REQUEST_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:  # also not UTF-8
        raise ValueError("a restart request is JSON") from None
    if not isinstance(data, dict) or set(data) != {"component"} or not isinstance(data["component"], str):
        raise ValueError('a restart request is {"component": NAME} and nothing else')
    return parse_component(data["component"])


def _control(state_dir: Path) -> Path:
    return state_dir / CONTROL_DIR


def _result_path(state_dir: Path, request_id: str) -> Path:
    if not _REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"not a restart request id: {request_id!r}")
    return _control(state_dir) / f"restart-{request_id}.result.json"


def request_restart(state_dir: Path, component: str) -> str:
    """Ask the supervisor of the stack in `state_dir` to restart `component`; returns the request id."""
    component = parse_component(component)
    request_id = uuid.uuid4().hex
    folder = _control(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: the supervisor never reads a half-written request.
    tmp = folder / f".restart-{request_id}.tmp"
    tmp.write_text(json.dumps({"component": component}))
    tmp.replace(folder / f"restart-{request_id}.json")
    return request_id


def withdraw_restart(state_dir: Path, request_id: str) -> None:
    """Take back a request not yet picked up (the asking command gave up waiting)."""
    (_control(state_dir) / f"restart-{request_id}.json").unlink(missing_ok=True)


def pending_restart_requests(state_dir: Path) -> list[tuple[str, Path]]:
    """(request id, file) of the waiting requests, oldest first; files of any other name are ignored."""
    found: list[tuple[float, str, Path]] = []
    for path in _control(state_dir).glob("restart-*.json"):
        match = _REQUEST_NAME.fullmatch(path.name)
        if match is None:
            continue
        try:
            found.append((path.stat().st_mtime, match.group(1), path))
        except FileNotFoundError:
            continue  # withdrawn meanwhile
    return [(request_id, path) for _, request_id, path in sorted(found)]


def write_restart_result(state_dir: Path, request_id: str, result: RestartResult) -> None:
    path = _result_path(state_dir, request_id)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(result)))
    tmp.replace(path)


def take_restart_result(state_dir: Path, request_id: str) -> RestartResult | None:
    """The supervisor's answer to a request, once there (the file is removed), else None."""
    path = _result_path(state_dir, request_id)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return RestartResult(ok=bool(data.get("ok")), message=str(data.get("message", "")))


# -- the processes started from a state folder ----------------------------------------------------


@dataclass(frozen=True)
class StackProcess:
    component: str
    pid: int
    source: Path  # the file that named it


_AIMS_MODULES = ("aims", "aims.cli", "aims.__main__")
_SUPERVISOR_COMMANDS = ("up", "demo")  # `aims demo` starts and supervises a stack too


def aims_subcommand(args: list[str]) -> str | None:
    """`router` for `python -m aims router …` or `…/bin/aims router …`; None if not an aims command."""
    # Only the first few arguments: the interpreter, perhaps an option of its own, then the module
    # or the script. "aims" further along is an argument of some other program.
    head = args[:5]
    for i, arg in enumerate(head):
        if arg == "-m" and i + 1 < len(args) and args[i + 1] in _AIMS_MODULES:
            return args[i + 2] if i + 2 < len(args) else None
        if Path(arg).name == "aims":
            return args[i + 1] if i + 1 < len(args) else None
    return None


def is_component_process(pid: int, component: str, state_dir: Path) -> bool:
    """True if `pid` runs `component` (or "supervisor") of a stack now, as its command line shows.

    Pids are recycled: a pid read from a file is signalled only if this holds, so a stale file never
    gets an unrelated process stopped.
    """
    args = process_args(pid)
    if not args:
        return False  # gone (or a zombie, which is gone too)
    if component == "kafka":
        return "kafka.Kafka" in args and str(state_dir / "kafka" / "server.properties") in args
    if component == "prefect-server":
        return any(
            Path(a).name == "prefect" and args[i + 1 : i + 3] == ["server", "start"]
            for i, a in enumerate(args)
        )
    command = aims_subcommand(args)
    if component == "supervisor":
        return command in _SUPERVISOR_COMMANDS
    return command == component


def _pid_field(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def announced_processes(state_dir: Path, pids: Mapping[str, int] | None = None) -> list[StackProcess]:
    """The processes started from `state_dir` that still run, in the order to stop them.

    Found in `pids` (stack.json's: the supervisor's children) and in the files processes write about
    themselves: `routers/router-*.json` (`pid`), `workers/<pid>.json` and the gateway's status file
    (`pid`), which covers routers, workers and gateways started by hand. Each is kept only if its
    pid still runs that component (`is_component_process`).
    """
    from gateway.app import status_path

    candidates: list[StackProcess] = []
    stack_file = StackInfo.path(state_dir)
    for component, pid in (pids or {}).items():
        if component in STOP_ORDER and isinstance(pid, int) and pid > 0:
            candidates.append(StackProcess(component, pid, stack_file))
    gateway = status_path(state_dir)
    if (gateway_pid := _pid_field(gateway)) is not None:
        candidates.append(StackProcess("gateway", gateway_pid, gateway))
    for path in sorted((state_dir / "routers").glob("router-*.json")):
        if (router_pid := _pid_field(path)) is not None:
            candidates.append(StackProcess("router", router_pid, path))
    for path in sorted((state_dir / "workers").glob("*.json")):
        if path.stem.isdigit():
            candidates.append(StackProcess("worker", int(path.stem), path))
    found: list[StackProcess] = []
    seen = {os.getpid()}  # never this process (`aims down` itself)
    for candidate in sorted(candidates, key=lambda c: STOP_ORDER.index(c.component)):
        if candidate.pid in seen:
            continue
        seen.add(candidate.pid)
        if is_component_process(candidate.pid, candidate.component, state_dir):
            found.append(candidate)
    return found


def stop_processes(found: Iterable[StackProcess], progress: Progress = print, timeout: float = 30) -> None:
    """Stop `found` in `STOP_ORDER`, each kind at once: SIGTERM, then SIGKILL after `timeout`."""
    found = list(found)
    for component in STOP_ORDER:
        pids = [p.pid for p in found if p.component == component]
        if not pids:
            continue
        progress(f"stopping {component} (pid {', '.join(map(str, pids))})…")
        stubborn = stop_pids(pids, timeout)
        if stubborn:
            progress(
                f"{component}: pid {', '.join(map(str, stubborn))} ignored SIGTERM for {timeout:.0f}s; killed"
            )


# -- supervision ----------------------------------------------------------------------------------


@dataclass
class Backoff:
    """When a component that died may be started again: at once, unless it keeps dying.

    A component that ran `stable_after` seconds before dying starts again at once; each further
    death within that time doubles the wait (from `base`, at most `cap` seconds).
    """

    base: float = 2.0
    cap: float = 60.0
    stable_after: float = 60.0
    failures: int = 0
    started_at: float = 0.0

    def started(self, now: float) -> None:
        self.started_at = now

    def died(self, now: float) -> float:
        """Record a death at `now`; returns the seconds to wait before the next start."""
        if now - self.started_at >= self.stable_after:
            self.failures = 0
        self.failures += 1
        if self.failures == 1:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (self.failures - 2)))


class NotManaged(RuntimeError):
    """The component is not run by this stack (an existing cluster or Prefect API is used)."""


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
        self.info: StackInfo | None = None
        self._stopped = threading.Event()
        # Held while a component is restarted: `stop()` waits for the restart (whose waits end early
        # once stopping) instead of stopping a process half-started.
        self._lock = threading.Lock()
        self._backoff: dict[str, Backoff] = {name: Backoff() for name in COMPONENTS}
        self._restarts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)
        self._due: dict[str, float] = {}  # dead components: when they may start again

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(prefect_client_env(self.state, self.api_url, self.settings.worker_poll_seconds))
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        return env

    def start(self, progress: Progress = print) -> StackInfo:
        self.state.mkdir(parents=True, exist_ok=True)
        if StackInfo.load(self.state) is not None:
            raise RuntimeError(f"a stack is already running from {self.state}; stop it with `aims down`")
        # Requests and answers a previous stack left: nobody waits for them any more.
        for leftover in _control(self.state).glob("*restart-*"):
            leftover.unlink(missing_ok=True)
        if self.settings.kafka_bootstrap_servers:
            self.bootstrap = self.settings.kafka_bootstrap_servers
            progress(f"Kafka: using the existing cluster at {self.bootstrap}")
        else:
            progress("Kafka: starting a local KRaft broker…")
            self.broker = KafkaBroker(self.state, self.settings.kafka_home)
            self.bootstrap = self.broker.start()
            self._backoff["kafka"].started(time.monotonic())
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
            self._backoff["prefect-server"].started(time.monotonic())
            progress(f"Prefect: server ready, UI at {self.ui_url}")
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

    def process(self, name: str) -> ManagedProcess | None:
        """The process of component `name` now (a restart replaces the broker's and the server's)."""
        if name == "kafka":
            return self.broker.process if self.broker else None
        if name == "prefect-server":
            return self.server.process if self.server else None
        return self.children.get(name)

    def components(self) -> list[str]:
        """The components this stack runs itself, in start order."""
        return [name for name in COMPONENTS if self.process(name) is not None]

    def pids(self) -> dict[str, int]:
        procs = {name: self.process(name) for name in COMPONENTS}
        return {name: p.pid for name, p in procs.items() if p is not None and p.pid is not None}

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
        api = PrefectApi(self.api_url)
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
        from gateway.app import status_path

        status = json.loads(status_path(self.state).read_text())
        return f"http://{status['host']}:{status['port']}"

    def _gateway_ready(self, pid: int | None = None) -> bool:
        import httpx

        from gateway.app import status_path

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
        for name in self.components():
            if self._stopped.is_set():
                return
            proc = self.process(name)
            if proc is None or proc.alive():
                self._due.pop(name, None)
                continue
            if name not in self._due:
                delay = self._backoff[name].died(time.monotonic())
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
        before = self.bootstrap
        progress(f"kafka: starting the broker again (log: {self.broker.home / 'broker.log'})…")
        self._backoff["kafka"].started(time.monotonic())
        self.bootstrap = self.broker.restart(READY_TIMEOUT["kafka"], cancel=self._stopped)
        # Topics live in the data folder and survive; this matters only if that folder was lost.
        ensure_topics(self.bootstrap, topic_specs(self.settings))
        if self.bootstrap != before:
            self._moved(f"the broker moved from {before} to {self.bootstrap}", progress)
        pid = self.broker.process.pid if self.broker.process else "?"
        return f"kafka: ready at {self.bootstrap} (pid {pid})"

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
        self._backoff[name].started(time.monotonic())
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
            if self.broker is not None:
                progress("stopping the Kafka broker…")
                self.broker.stop()
            info = StackInfo.load(self.state)
            if info is not None and info.supervisor_pid == os.getpid():
                StackInfo.path(self.state).unlink(missing_ok=True)
        progress("stack stopped")
