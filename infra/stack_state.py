"""The files in the state folder through which the stack's processes and commands find each other.

`stack.json` says where a running stack is, so that `aims emit`, `aims status` and `aims down` find
it without any environment variables; the supervisor (infra.stack) keeps it current.
`event-signing.key` is the key the stack's processes and the CLI beside it sign the system's own
events with, when AIMS_EVENT_SIGNING_KEY does not name one (made by `aims up`, mode 0600);
`prefect-api.auth` the `user:password` of the local Prefect server, when PREFECT_API_AUTH_STRING
does not name one (the same way).

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

import json
import os
import re
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import SecretStr

from connectors.register.keys import audit_key_path, ensure_key, read_secret, stored_key, write_secret

# What `aims restart` can name, in start order.
COMPONENTS: tuple[str, ...] = ("kafka", "prefect-server", "worker", "router", "gateway")
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


def control_dir(state_dir: Path) -> Path:
    return state_dir / CONTROL_DIR


def _result_path(state_dir: Path, request_id: str) -> Path:
    if not _REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"not a restart request id: {request_id!r}")
    return control_dir(state_dir) / f"restart-{request_id}.result.json"


def request_restart(state_dir: Path, component: str) -> str:
    """Ask the supervisor of the stack in `state_dir` to restart `component`; returns the request id."""
    component = parse_component(component)
    request_id = uuid.uuid4().hex
    folder = control_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: the supervisor never reads a half-written request.
    tmp = folder / f".restart-{request_id}.tmp"
    tmp.write_text(json.dumps({"component": component}))
    tmp.replace(folder / f"restart-{request_id}.json")
    return request_id


def withdraw_restart(state_dir: Path, request_id: str) -> None:
    """Take back a request not yet picked up (the asking command gave up waiting)."""
    (control_dir(state_dir) / f"restart-{request_id}.json").unlink(missing_ok=True)


def pending_restart_requests(state_dir: Path) -> list[tuple[str, Path]]:
    """(request id, file) of the waiting requests, oldest first; files of any other name are ignored."""
    found: list[tuple[float, str, Path]] = []
    for path in control_dir(state_dir).glob("restart-*.json"):
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


# -- secrets made in the state folder when the settings name none: keys, the Prefect login ----------

SIGNING_KEY_FILE = "event-signing.key"
PREFECT_AUTH_FILE = "prefect-api.auth"
PREFECT_AUTH_USER = "aims"


def signing_key_path(state_dir: Path) -> Path:
    return state_dir / SIGNING_KEY_FILE


def stored_signing_key(state_dir: Path) -> SecretStr | None:
    """The key `aims up` keeps in the state folder, if it made one (AIMS_EVENT_SIGNING_KEY wins)."""
    return stored_key(signing_key_path(state_dir))


def ensure_signing_key(state_dir: Path) -> SecretStr:
    """The state folder's key, made on first use: random, readable by its owner only.

    Kept across `aims down`, so that events signed before a restart (in the topic, or in the outbox)
    still verify, and so that the CLI run beside the stack signs with the same key.
    """
    return ensure_key(signing_key_path(state_dir))


def ensure_audit_key(state_dir: Path) -> SecretStr:
    """The state folder's audit key, made on first use like the signing key.

    Kept across `aims down`: the log's keyed entries verify only with it. Beside the register file
    on a laptop, which protects against edits through the database (a PostgreSQL register, a copied
    file) rather than against someone who owns the machine: production sets AIMS_AUDIT_KEY(_FILE).
    """
    return ensure_key(audit_key_path(state_dir))


def prefect_auth_path(state_dir: Path) -> Path:
    return state_dir / PREFECT_AUTH_FILE


def stored_prefect_auth(state_dir: Path) -> SecretStr | None:
    """The local Prefect server's `user:password`, if `aims up` made one (PREFECT_API_AUTH_STRING wins)."""
    text = read_secret(prefect_auth_path(state_dir))
    return SecretStr(text) if text is not None and ":" in text else None


def ensure_prefect_auth(state_dir: Path) -> SecretStr:
    """The state folder's Prefect API credentials, made on first use: `aims:<64 random hex>`, 0600.

    Kept across `aims down`, so that a Prefect UI login and the CLI beside the stack keep working.
    """
    found = stored_prefect_auth(state_dir)
    if found is None:
        write_secret(prefect_auth_path(state_dir), f"{PREFECT_AUTH_USER}:{secrets.token_hex(32)}")
        found = stored_prefect_auth(state_dir)
    assert found is not None
    return found
