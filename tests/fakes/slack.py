"""A local HTTP fake of the Slack Web API, Slack's response_url endpoint and (optionally) Socket Mode.

Why a real server: the code under test talks to Slack through `slack_sdk.WebClient` (its urllib transport,
its retry handlers, its `SlackApiError`), so the fake is reached over HTTP exactly as slack.com is, never by
patching the client. Shapes and error codes follow `../shared/specs/CONTRACTS.md` (Slack section) and the
official OpenAPI spec: HTTP 200 with `{"ok": false, "error": ...}` for logical errors, 429 + `Retry-After`
for rate limits, HTML bodies for 5xx.

Usage::

    with SlackFake() as fake:
        uid = fake.add_user("ana@example.com")
        client = WebClient(token=fake.bot_token, base_url=fake.base_url)
        client.chat_postMessage(channel="#approvals", text="hi")
        assert fake.posted("approvals")[0]["text"] == "hi"

Every call, failed ones included, is in `calls`; a failed call (injected or logical) changes nothing else.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from .slack_signing import (
    DEFAULT_API_APP_ID,
    DEFAULT_BOT_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    block_actions_payload,
)

if TYPE_CHECKING:
    from websockets.sync.server import Server, ServerConnection

__all__ = ["ResponsePost", "SlackCall", "SlackFake"]

JSONDict = dict[str, Any]

MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
MAX_MPIM_USERS = 8
RESPONSE_URL_MAX_USES = 5
BOT_USER_ID = "U0AIMSBOT1"
BOT_NAME = "aims-bot"

_CONVERSATION_ID = re.compile(r"[CDG][A-Z0-9]{8,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{8,}")
_CHANNEL_NAME = re.compile(r"[\w\-]{1,80}")
_SERVER_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head><body><h1>{status} {reason}</h1>"
    "<p>Slack is having trouble right now.</p></body></html>"
)


class SlackCall(NamedTuple):
    """One Web API request as received: method name, merged query/body params, request headers."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]


class ResponsePost(NamedTuple):
    """One accepted POST to a response_url, with the message it was bound to (if any)."""

    url: str
    body: JSONDict
    headers: dict[str, str]
    channel: str | None
    message_ts: str | None


class _ApiError(Exception):
    """A logical Slack error: answered as HTTP 200 `{"ok": false, "error": code, **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> JSONDict:
        return {"ok": False, "error": self.error, **self.extra}


def _invalid_arguments(*messages: str) -> _ApiError:
    return _ApiError("invalid_arguments", response_metadata={"messages": list(messages)})


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    error: str


@dataclass
class _User:
    id: str
    email: str
    name: str
    real_name: str
    deleted: bool
    is_bot: bool = False


@dataclass
class _Channel:
    id: str
    name: str | None
    created: int
    is_im: bool = False
    is_mpim: bool = False
    user: str | None = None
    members: tuple[str, ...] = ()
    archived: bool = False
    bot_is_member: bool = True


@dataclass
class _ResponseUrl:
    url: str
    channel: str | None
    message_ts: str | None
    uses: int = 0
    expired: bool = False


@dataclass
class _Content:
    """The text/blocks/attachments of a post or update; None means "not given"."""

    text: str | None
    blocks: list[JSONDict] | None
    attachments: list[JSONDict] | None

    def is_empty(self) -> bool:
        return not self.text and not self.blocks and not self.attachments


@dataclass
class _SocketState:
    server: Server
    thread: threading.Thread
    port: int
    tickets: set[str] = field(default_factory=set)
    connections: list[ServerConnection] = field(default_factory=list)
    handler_threads: list[threading.Thread] = field(default_factory=list)


def _scalar_text(params: Mapping[str, Any], key: str) -> str | None:
    """A string param as Slack reads it: JSON scalars are coerced, objects/arrays refused."""
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise _invalid_arguments(f"[ERROR] expected a string for field `{key}`")


def _flag(params: Mapping[str, Any], key: str) -> bool:
    """Slack booleans: JSON true, or "1"/"true" in forms (slack_sdk sends 1/0)."""
    value = params.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in {"1", "true", "yes"}


def _json_array(params: Mapping[str, Any], key: str, error: str) -> list[Any] | None:
    """A JSON array param that may come as a real array (JSON body) or a JSON-encoded string (form)."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise _ApiError(
                error, response_metadata={"messages": [f"[ERROR] `{key}` is not valid JSON"]}
            ) from None
    if not isinstance(value, list):
        raise _ApiError(error, response_metadata={"messages": [f"[ERROR] `{key}` must be an array"]})
    return value


def _validate_blocks(blocks: list[Any]) -> list[JSONDict]:
    """Block Kit's outer rules: ≤50 objects, each with a string `type`, block_ids strings and unique."""
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            problems.append(f"[ERROR] expected object [json-pointer:/blocks/{index}]")
            continue
        if not isinstance(block.get("type"), str) or not block["type"]:
            problems.append(f"[ERROR] missing required field: type [json-pointer:/blocks/{index}]")
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                problems.append(f"[ERROR] invalid block_id [json-pointer:/blocks/{index}/block_id]")
            elif block_id in seen:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:/blocks/{index}/block_id]")
            else:
                seen.add(block_id)
    if problems:
        raise _ApiError("invalid_blocks", errors=problems, response_metadata={"messages": problems})
    return blocks


def _read_content(params: Mapping[str, Any]) -> _Content:
    """text/blocks/attachments with Slack's checks (msg_too_long, invalid_blocks, too_many_attachments)."""
    text = _scalar_text(params, "text")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise _ApiError("msg_too_long")
    raw_blocks = _json_array(params, "blocks", "invalid_blocks")
    blocks = _validate_blocks(raw_blocks) if raw_blocks is not None else None
    attachments = _json_array(params, "attachments", "invalid_attachments")
    if attachments is not None:
        if len(attachments) > MAX_ATTACHMENTS:
            raise _ApiError("too_many_attachments")
        if not all(isinstance(a, dict) for a in attachments):
            raise _ApiError("invalid_attachments")
    return _Content(text=text, blocks=blocks, attachments=attachments)


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise _ApiError("invalid_form_data")
    params: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        params[name] = payload.decode("utf-8") if part.get_filename() is None else payload
    return params


def _parse_params(query: str, body: bytes, content_type: str | None) -> tuple[dict[str, Any], bool]:
    """Query params merged with the body's, and whether a `token` field there may authenticate.

    Slack takes a token from query/form fields but, for JSON bodies, only from the Authorization header.
    """
    try:
        params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True, errors="strict"))
    except ValueError:
        raise _ApiError("invalid_charset") from None
    token_in_body = True
    if not body:
        return params, token_in_body
    if content_type is None:
        raise _ApiError("missing_post_type")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise _ApiError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise _ApiError("json_not_object")
        params.update(parsed)
        token_in_body = False
    elif mime == "application/x-www-form-urlencoded":
        try:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
        except ValueError:
            raise _ApiError("invalid_charset") from None
    elif mime == "multipart/form-data":
        try:
            params.update(_parse_multipart(content_type, body))
        except _ApiError:
            raise
        except (ValueError, LookupError, UnicodeError):
            raise _ApiError("invalid_form_data") from None
    else:
        raise _ApiError("invalid_post_type")
    return params, token_in_body


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Bursts of concurrent clients must not overflow the default backlog of 5 (a dropped SYN costs 1 s).
    request_queue_size = 128

    def __init__(self, fake: SlackFake, host: str) -> None:
        self.fake = fake
        super().__init__((host, 0), _SlackRequestHandler)


class _SlackRequestHandler(BaseHTTPRequestHandler):
    """Routes `/api/<method>` (and `/<method>`) to the fake's Web API, `/actions/...` to response_urls."""

    server: _FakeHTTPServer
    protocol_version = "HTTP/1.1"
    # Keep-alive clients (httpx) would otherwise wait on Nagle + delayed ACK between header and body writes.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server_version = "SlackFake/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on `calls`, not on stderr."""

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(400, b"Bad Request", "text/plain")
            return
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, body: bytes) -> None:
        fake = self.server.fake
        path = urlsplit(self.path)
        try:
            if path.path.startswith("/actions/"):
                status, text = fake._handle_response_url(
                    self.command, path.path, body, dict(self.headers.items())
                )
                self._send(status, text.encode("utf-8"), "text/html; charset=utf-8")
                return
            method = path.path.removeprefix("/api/").strip("/")
            status, payload, headers = fake._handle_api(
                method, path.query, body, self.headers.get("Content-Type"), dict(self.headers.items())
            )
        except Exception:  # noqa: BLE001 - a fake must answer like Slack, and keep the trace for the test
            fake._record_error(traceback.format_exc())
            status, payload, headers = 200, {"ok": False, "error": "fatal_error"}, {}
        if isinstance(payload, str):
            self._send(status, payload.encode("utf-8"), "text/html; charset=utf-8", headers)
        else:
            self._send(
                status, json.dumps(payload).encode("utf-8"), "application/json; charset=utf-8", headers
            )

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Slack-Req-Id", secrets.token_hex(16))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class SlackFake:
    """The fake Slack workspace: users, channels, messages, and the HTTP servers that expose them.

    `bot_token` authenticates Web API calls; `app_token` (xapp-…) only `apps.connections.open`.
    With `auto_channels`, posting to an unknown channel *name* creates it (ids are never invented).
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        *,
        auto_channels: bool = True,
        app_token: str = "xapp-1-A0AIMSAPP1-1-test-app-token",
        team_id: str = DEFAULT_TEAM_ID,
        team_name: str = "AIMS Test",
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        host: str = "127.0.0.1",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.auto_channels = auto_channels
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = BOT_USER_ID
        self.bot_id = DEFAULT_BOT_ID
        self.app_id = DEFAULT_API_APP_ID
        self._host = host
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: _FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: _SocketState | None = None
        self._stopping = threading.Event()
        self._counter = 0
        self._last_ts_us = 0
        self._users: dict[str, _User] = {}
        self._users_by_email: dict[str, str] = {}
        self._channels: dict[str, _Channel] = {}
        self._channel_names: dict[str, str] = {}
        self._ims: dict[str, str] = {}
        self._mpims: dict[tuple[str, ...], str] = {}
        self._messages: list[JSONDict] = []
        self._calls: list[SlackCall] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._socket_acks: dict[str, JSONDict] = {}
        self._socket_received: list[str] = []
        self._errors: list[str] = []
        self._handlers: dict[str, Callable[[dict[str, Any]], JSONDict]] = {
            "auth.test": self._auth_test,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "apps.connections.open": self._apps_connections_open,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SlackFake:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _FakeHTTPServer(self, self._host)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close Socket Mode connections, then the HTTP server; safe to call twice."""
        self._stopping.set()
        socket_state, self._socket = self._socket, None
        if socket_state is not None:
            # Each session thread sees `_stopping` within 0.2 s and returns; websockets then closes it.
            socket_state.server.shutdown()
            socket_state.thread.join(timeout=5)
            for thread in socket_state.handler_threads:
                thread.join(timeout=5)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SlackFake:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SlackFake is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What `WebClient(base_url=...)` takes: http://127.0.0.1:PORT/api/ (`/<method>` works too)."""
        return f"{self.url}/api/"

    # ------------------------------------------------------------------ workspace set-up

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}0{self._counter:08d}"

    def add_user(
        self, email: str, name: str | None = None, deleted: bool = False, *, real_name: str | None = None
    ) -> str:
        """Register a workspace member findable by `users.lookupByEmail`; returns its "U…" id."""
        key = email.strip().lower()
        with self._lock:
            if key in self._users_by_email:
                raise ValueError(f"a user with email {email!r} already exists")
            handle = name or key.split("@", 1)[0]
            user = _User(
                id=self._next_id("U"),
                email=email.strip(),
                name=handle,
                real_name=real_name or handle.replace(".", " ").replace("_", " ").title(),
                deleted=deleted,
            )
            self._users[user.id] = user
            self._users_by_email[key] = user.id
            return user.id

    def add_channel(self, name: str, *, archived: bool = False, bot_is_member: bool = True) -> str:
        """Create a public channel (or return the existing one's id); `archived`/`bot_is_member=False`
        make posts fail with is_archived / not_in_channel."""
        clean = name.removeprefix("#")
        if not self._valid_channel_name(clean):
            raise ValueError(f"invalid Slack channel name {name!r}")
        with self._lock:
            if clean in self._channel_names:
                channel = self._channels[self._channel_names[clean]]
                channel.archived, channel.bot_is_member = archived, bot_is_member
                return channel.id
            return self._create_channel(clean, archived=archived, bot_is_member=bot_is_member).id

    def dm_channel(self, user_id: str) -> str | None:
        """The bot's DM ("D…") with `user_id`, if one was opened."""
        with self._lock:
            return self._ims.get(user_id)

    @staticmethod
    def _valid_channel_name(name: str) -> bool:
        return bool(_CHANNEL_NAME.fullmatch(name)) and name == name.lower()

    def _create_channel(self, name: str, *, archived: bool = False, bot_is_member: bool = True) -> _Channel:
        channel = _Channel(
            id=self._next_id("C"),
            name=name,
            created=int(time.time()),
            archived=archived,
            bot_is_member=bot_is_member,
        )
        self._channels[channel.id] = channel
        self._channel_names[name] = channel.id
        return channel

    def _open_im(self, user_id: str) -> tuple[_Channel, bool]:
        """The IM with `user_id`, and whether it already existed."""
        existing = self._ims.get(user_id)
        if existing is not None:
            return self._channels[existing], True
        channel = _Channel(
            id=self._next_id("D"), name=None, created=int(time.time()), is_im=True, user=user_id
        )
        self._channels[channel.id] = channel
        self._ims[user_id] = channel.id
        return channel, False

    # ------------------------------------------------------------------ state for assertions

    @property
    def messages(self) -> list[JSONDict]:
        """Every message in post order (copies): channel, channel_name, ts, text, blocks, attachments,
        thread_ts, user, bot_id, deleted, via ("chat.postMessage"/"response_url"), edited ({user, ts} or
        None), edited_via ("chat.update"/"response_url"), updates (previous versions, oldest first)."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def message(self, channel: str, ts: str) -> JSONDict:
        """The message at (`channel` id/name/#name/user id, `ts`); KeyError if there is none."""
        with self._lock:
            channel_id = self._lookup_channel_id(channel)
            for message in self._messages:
                if message["channel"] == channel_id and message["ts"] == ts:
                    return copy.deepcopy(message)
        raise KeyError(f"no message {ts} in {channel}")

    def posted(self, channel: str) -> list[JSONDict]:
        """Messages in a channel given by id, name, "#name", or a user id (meaning the DM with them)."""
        with self._lock:
            channel_id = self._lookup_channel_id(channel)
            return [copy.deepcopy(m) for m in self._messages if m["channel"] == channel_id]

    def _lookup_channel_id(self, ref: str) -> str | None:
        if ref in self._channels:
            return ref
        if ref in self._ims:
            return self._ims[ref]
        return self._channel_names.get(ref.removeprefix("#"))

    @property
    def calls(self) -> list[SlackCall]:
        """Every Web API request received, failed ones included, in order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [call for call in self._calls if call.method == method]

    @property
    def response_posts(self) -> list[ResponsePost]:
        """Accepted POSTs to response_urls (refused ones are not recorded)."""
        with self._lock:
            return list(self._response_posts)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (answered as `fatal_error`); tests should expect []."""
        with self._lock:
            return list(self._errors)

    def _record_error(self, trace: str) -> None:
        with self._lock:
            self._errors.append(trace)

    def reset(self) -> None:
        """Forget messages, calls, response posts, pending failures and acks; keep users and channels."""
        with self._lock:
            self._messages.clear()
            self._calls.clear()
            self._failures.clear()
            self._response_posts.clear()
            self._socket_acks.clear()
            self._socket_received.clear()
            self._errors.clear()

    def wait_for_posts(self, channel: str, count: int = 1, timeout: float = 5.0) -> list[JSONDict]:
        """Block until `channel` holds at least `count` messages (for code that posts from another thread)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.posted(channel)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{channel}: {len(self.posted(channel))} messages after {timeout}s")
                self._changed.wait(remaining)
            return self.posted(channel)

    def wait_for_response_posts(self, count: int = 1, timeout: float = 5.0) -> list[ResponsePost]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._response_posts) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._response_posts)} response_url posts after {timeout}s")
                self._changed.wait(remaining)
            return list(self._response_posts)

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self, method: str, status: int = 429, times: int = 1, retry_after: int = 1, error: str = "ratelimited"
    ) -> None:
        """Answer the next `times` calls of `method` with HTTP `status` and change nothing.

        429 → `Retry-After: <retry_after>` + `{"ok":false,"error":"ratelimited"}`; 5xx → an HTML page;
        200 → `{"ok":false,"error":<error>}` (e.g. "is_archived"); other codes → that JSON error body.
        """
        with self._lock:
            queue = self._failures.setdefault(method, deque())
            for _ in range(times):
                queue.append(
                    _Failure(status=status, retry_after=retry_after if status == 429 else None, error=error)
                )

    def _take_failure(self, method: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(method)
            return queue.popleft() if queue else None

    @staticmethod
    def _failure_response(failure: _Failure) -> tuple[int, JSONDict | str, dict[str, str]]:
        if failure.status >= 500:
            reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
                failure.status, "Server Error"
            )
            return failure.status, _SERVER_ERROR_PAGE.format(status=failure.status, reason=reason), {}
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        return failure.status, {"ok": False, "error": failure.error}, headers

    # ------------------------------------------------------------------ Web API

    def _handle_api(
        self, method: str, query: str, body: bytes, content_type: str | None, headers: dict[str, str]
    ) -> tuple[int, JSONDict | str, dict[str, str]]:
        parse_error: _ApiError | None = None
        try:
            params, token_in_body = _parse_params(query, body, content_type)
        except _ApiError as error:
            params, token_in_body, parse_error = {}, False, error
        with self._lock:
            self._calls.append(SlackCall(method, copy.deepcopy(params), headers))
        failure = self._take_failure(method)
        if failure is not None:
            return self._failure_response(failure)
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        try:
            if parse_error is not None:
                raise parse_error
            self._authenticate(method, headers, params if token_in_body else {})
            with self._lock:
                result = handler(params)
                self._changed.notify_all()
        except _ApiError as error:
            return 200, error.body(), {}
        return 200, result, {}

    def _authenticate(self, method: str, headers: Mapping[str, str], params: Mapping[str, Any]) -> None:
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        token: str | None = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
            if token is None:
                raise _ApiError("invalid_auth")
        elif isinstance(params.get("token"), str) and params["token"]:
            token = params["token"]
        if not token:
            raise _ApiError("not_authed")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token == wanted:
            return
        if token in {self.app_token, self.bot_token}:
            raise _ApiError("not_allowed_token_type")
        raise _ApiError("invalid_auth")

    def _auth_test(self, params: dict[str, Any]) -> JSONDict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _user_object(self, user: _User) -> JSONDict:
        first, _, last = user.real_name.partition(" ")
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "color": "9f69e7",
            "real_name": user.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "real_name": user.real_name,
                "real_name_normalized": user.real_name,
                "display_name": user.name,
                "display_name_normalized": user.name,
                "first_name": first,
                "last_name": last,
                "email": user.email,
                "team": self.team_id,
                "status_text": "",
                "status_emoji": "",
                "avatar_hash": "g000000000000",
            },
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }

    def _users_lookup_by_email(self, params: dict[str, Any]) -> JSONDict:
        email = _scalar_text(params, "email")
        if not email:
            raise _invalid_arguments("[ERROR] missing required field: email")
        user_id = self._users_by_email.get(email.strip().lower())
        if user_id is None:
            raise _ApiError("users_not_found")
        return {"ok": True, "user": self._user_object(self._users[user_id])}

    def _conversations_open(self, params: dict[str, Any]) -> JSONDict:
        return_im = _flag(params, "return_im")
        channel_ref = _scalar_text(params, "channel")
        raw_users = params.get("users")
        if isinstance(raw_users, list):
            user_ids = [str(u).strip() for u in raw_users if str(u).strip()]
        else:
            user_ids = [u.strip() for u in (_scalar_text(params, "users") or "").split(",") if u.strip()]
        if channel_ref and not user_ids:
            channel = self._channels.get(channel_ref)
            if channel is None:
                raise _ApiError("channel_not_found")
            if not (channel.is_im or channel.is_mpim):
                raise _ApiError("method_not_supported_for_channel_type")
            return self._open_result(channel, True, return_im)
        if not user_ids:
            raise _ApiError("users_list_not_supplied")
        if len(user_ids) > MAX_MPIM_USERS:
            raise _ApiError("too_many_users")
        for user_id in user_ids:
            user = self._users.get(user_id)
            if user is None:
                raise _ApiError("user_not_found")
            if user.deleted:
                raise _ApiError("user_disabled")
        if len(set(user_ids)) == 1:
            channel, existed = self._open_im(user_ids[0])
        else:
            key = tuple(sorted(set(user_ids)))
            existed = key in self._mpims
            if not existed:
                mpim = _Channel(
                    id=self._next_id("G"),
                    name="mpdm-" + "--".join(self._users[u].name for u in key) + "-1",
                    created=int(time.time()),
                    is_mpim=True,
                    members=key,
                )
                self._channels[mpim.id] = mpim
                self._mpims[key] = mpim.id
            channel = self._channels[self._mpims[key]]
        return self._open_result(channel, existed, return_im)

    def _open_result(self, channel: _Channel, already_open: bool, return_im: bool) -> JSONDict:
        body: JSONDict = {"ok": True}
        if already_open:
            body.update(no_op=True, already_open=True)
        if return_im and channel.is_im:
            user = self._users.get(channel.user or "")
            body["channel"] = {
                "id": channel.id,
                "created": channel.created,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.user,
                "is_user_deleted": bool(user and user.deleted),
                "priority": 0,
                "last_read": "0000000000.000000",
                "latest": None,
                "unread_count": 0,
                "unread_count_display": 0,
                "is_open": True,
            }
        else:
            body["channel"] = {"id": channel.id}
        return body

    def _resolve_post_channel(self, ref: str) -> tuple[_Channel, bool]:
        """Where chat.postMessage posts: an id, a name (created with auto_channels), or a user's DM.

        Returns the channel and whether it would have to be created (done only once the post is valid).
        """
        ref = ref.strip()
        if ref.startswith("#"):
            name = ref[1:]
        elif _CONVERSATION_ID.fullmatch(ref):
            channel = self._channels.get(ref)
            if channel is None:
                raise _ApiError("channel_not_found")
            return channel, False
        elif _USER_ID.fullmatch(ref):
            user = self._users.get(ref)
            if user is None or user.deleted:
                raise _ApiError("channel_not_found")
            existing = self._ims.get(ref)
            if existing is not None:
                return self._channels[existing], False
            return _Channel(id="", name=None, created=0, is_im=True, user=ref), True
        else:
            name = ref
        existing_id = self._channel_names.get(name)
        if existing_id is not None:
            return self._channels[existing_id], False
        if self.auto_channels and self._valid_channel_name(name):
            return _Channel(id="", name=name, created=0), True
        raise _ApiError("channel_not_found")

    def _next_ts(self) -> str:
        """Unique, strictly increasing message timestamps shaped like "1503435956.000247"."""
        with self._lock:
            now_us = time.time_ns() // 1000
            self._last_ts_us = max(now_us, self._last_ts_us + 1)
            seconds, micros = divmod(self._last_ts_us, 1_000_000)
            return f"{seconds}.{micros:06d}"

    def _message_view(self, message: JSONDict) -> JSONDict:
        """A stored message as the API returns it inside `message`."""
        view: JSONDict = {
            "user": message["user"],
            "type": "message",
            "ts": message["ts"],
            "bot_id": message["bot_id"],
            "app_id": self.app_id,
            "text": message["text"],
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": BOT_NAME,
                "deleted": False,
                "team_id": self.team_id,
            },
        }
        if message["blocks"]:
            view["blocks"] = copy.deepcopy(message["blocks"])
        if message["attachments"]:
            view["attachments"] = copy.deepcopy(message["attachments"])
        if message["thread_ts"]:
            view["thread_ts"] = message["thread_ts"]
        if message["edited"]:
            view["edited"] = dict(message["edited"])
        return view

    def _store_message(
        self, channel: _Channel, content: _Content, thread_ts: str | None, via: str
    ) -> JSONDict:
        message: JSONDict = {
            "channel": channel.id,
            "channel_name": channel.name,
            "ts": self._next_ts(),
            "text": content.text or "",
            "blocks": copy.deepcopy(content.blocks) if content.blocks else None,
            "attachments": copy.deepcopy(content.attachments) if content.attachments else None,
            "thread_ts": thread_ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "deleted": False,
            "via": via,
            "edited": None,
            "edited_via": None,
            "updates": [],
        }
        self._messages.append(message)
        return message

    def _chat_post_message(self, params: dict[str, Any]) -> JSONDict:
        channel_ref = _scalar_text(params, "channel")
        if not channel_ref:
            raise _ApiError("channel_not_found")
        channel, to_create = self._resolve_post_channel(channel_ref)
        if channel.archived:
            raise _ApiError("is_archived")
        if not channel.bot_is_member:
            raise _ApiError("not_in_channel")
        content = _read_content(params)
        if content.is_empty():
            raise _ApiError("no_text")
        thread_ts = _scalar_text(params, "thread_ts") or None
        if to_create:
            channel = (
                self._open_im(channel.user)[0] if channel.user else self._create_channel(channel.name or "")
            )
        message = self._store_message(channel, content, thread_ts, via="chat.postMessage")
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "message": self._message_view(message),
        }

    def _find_message(self, channel_id: str, ts: str) -> JSONDict | None:
        for message in self._messages:
            if message["channel"] == channel_id and message["ts"] == ts and not message["deleted"]:
                return message
        return None

    def _apply_update(self, message: JSONDict, content: _Content, via: str) -> None:
        """Replace what was given, keep what was not (Slack's chat.update rule); history in `updates`."""
        previous = {
            k: copy.deepcopy(message[k]) for k in ("text", "blocks", "attachments", "edited", "edited_via")
        }
        message["updates"].append(previous)
        if content.text is not None:
            message["text"] = content.text
        if content.blocks is not None:
            message["blocks"] = copy.deepcopy(content.blocks) or None
        if content.attachments is not None:
            message["attachments"] = copy.deepcopy(content.attachments) or None
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        message["edited_via"] = via

    def _chat_update(self, params: dict[str, Any]) -> JSONDict:
        channel_id = _scalar_text(params, "channel")
        if not channel_id or channel_id not in self._channels:
            raise _ApiError("channel_not_found")
        ts = _scalar_text(params, "ts")
        message = self._find_message(channel_id, ts) if ts else None
        if message is None:
            raise _ApiError("message_not_found")
        if message["user"] != self.bot_user_id:
            raise _ApiError("cant_update_message")
        content = _read_content(params)
        if content.is_empty():
            raise _ApiError("no_text")
        self._apply_update(message, content, via="chat.update")
        return {
            "ok": True,
            "channel": channel_id,
            "ts": message["ts"],
            "text": message["text"],
            "message": self._message_view(message),
        }

    # ------------------------------------------------------------------ response_url

    def new_response_url(self, channel: str | None = None, message_ts: str | None = None) -> str:
        """A fresh response_url (5 uses, like Slack's). Bound to (channel, message_ts), its
        `replace_original`/`delete_original`/`response_type: in_channel` posts act on that message/channel."""
        with self._lock:
            channel_id = self._lookup_channel_id(channel) if channel else None
            if channel and channel_id is None:
                raise KeyError(f"unknown channel {channel}")
            self._counter += 1
            url = f"{self.url}/actions/{self.team_id}/{self._counter}/{secrets.token_urlsafe(18)}"
            self._response_urls[urlsplit(url).path] = _ResponseUrl(url, channel_id, message_ts)
            return url

    def expire_response_url(self, url: str) -> None:
        """Make `url` answer as a response_url past its 30 minutes does."""
        with self._lock:
            self._response_urls[urlsplit(url).path].expired = True

    def _handle_response_url(
        self, verb: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str]:
        with self._lock:
            entry = self._response_urls.get(path)
            if entry is None:
                return 404, "no_service"
            if verb != "POST":
                return 405, "invalid_method"
            if entry.expired:
                return 404, "expired_url"
            if entry.uses >= RESPONSE_URL_MAX_USES:
                return 404, "used_url"
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                return 400, "invalid_payload"
            if not isinstance(payload, dict):
                return 400, "invalid_payload"
            try:
                content = _read_content(payload)
            except _ApiError as error:
                return 400, error.error
            delete = _flag(payload, "delete_original")
            if not delete and content.is_empty():
                return 400, "no_text"
            self._apply_response(entry, payload, content, delete)
            entry.uses += 1
            self._response_posts.append(
                ResponsePost(entry.url, copy.deepcopy(payload), headers, entry.channel, entry.message_ts)
            )
            self._changed.notify_all()
            return 200, "ok"

    def _apply_response(
        self, entry: _ResponseUrl, payload: JSONDict, content: _Content, delete: bool
    ) -> None:
        """What Slack does to the bound message: replace it, delete it, or post in_channel next to it."""
        if entry.channel is None:
            return
        original = self._find_message(entry.channel, entry.message_ts) if entry.message_ts else None
        if delete:
            if original is not None:
                original["deleted"] = True
            return
        if _flag(payload, "replace_original") and original is not None:
            self._apply_update(original, content, via="response_url")
        elif payload.get("response_type") == "in_channel":
            thread_ts = _scalar_text(payload, "thread_ts") or None
            self._store_message(self._channels[entry.channel], content, thread_ts, via="response_url")

    # ------------------------------------------------------------------ interactions

    def block_actions(
        self,
        channel: str,
        ts: str,
        *,
        user_id: str,
        action_id: str,
        value: str,
        reason: str | None = None,
        trigger_id: str | None = None,
    ) -> JSONDict:
        """A block_actions payload for `user_id` clicking `action_id` on a posted message, with a
        response_url bound to that message (sign it with `slack_signing.signed_interaction_request`)."""
        message = self.message(channel, ts)
        with self._lock:
            user = self._users[user_id]
            channel_name = self._channels[message["channel"]].name
        return block_actions_payload(
            user_id=user.id,
            user_name=user.name,
            team_id=self.team_id,
            channel_id=message["channel"],
            channel_name=channel_name,
            message_ts=ts,
            message_text=message["text"],
            action_id=action_id,
            value=value,
            reason=reason,
            response_url=self.new_response_url(message["channel"], ts),
            trigger_id=trigger_id,
            blocks=message["blocks"],
            api_app_id=self.app_id,
            bot_id=self.bot_id,
            bot_user_id=self.bot_user_id,
            team_domain=self.team_domain,
        )

    # ------------------------------------------------------------------ Socket Mode

    def _apps_connections_open(self, params: dict[str, Any]) -> JSONDict:
        state = self._ensure_socket_server()
        ticket = uuid.uuid4().hex
        state.tickets.add(ticket)
        return {
            "ok": True,
            "url": f"ws://{self._host}:{state.port}/link/?ticket={ticket}&app_id={self.app_id}",
        }

    def _ensure_socket_server(self) -> _SocketState:
        """Start the WebSocket server on first use (most tests never need it)."""
        from websockets.http11 import Request, Response
        from websockets.sync.server import serve

        if self._socket is not None:
            return self._socket

        def check_ticket(connection: ServerConnection, request: Request) -> Response | None:
            """Only URLs handed out by apps.connections.open may connect, as with Slack's tickets."""
            target = urlsplit(request.path)
            if (
                target.path.rstrip("/") != "/link"
                or dict(parse_qsl(target.query)).get("ticket") not in state.tickets
            ):
                return connection.respond(401, "invalid ticket\n")
            return None

        server = serve(
            self._socket_session,
            self._host,
            0,
            compression=None,
            process_request=check_ticket,
            close_timeout=1,
        )
        thread = threading.Thread(target=server.serve_forever, name="slack-fake-socket", daemon=True)
        state = _SocketState(server=server, thread=thread, port=int(server.socket.getsockname()[1]))
        self._socket = state
        thread.start()
        return state

    def _socket_session(self, connection: ServerConnection) -> None:
        """One Socket Mode connection: say hello, then record every frame the app sends (acks)."""
        from websockets.exceptions import ConnectionClosed

        state = self._socket
        if state is None:
            return
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        with self._lock:
            state.handler_threads.append(threading.current_thread())
        try:
            connection.send(json.dumps(hello))
            with self._changed:
                state.connections.append(connection)
                self._changed.notify_all()
            while not self._stopping.is_set():
                try:
                    raw = connection.recv(timeout=0.2)
                except TimeoutError:
                    continue
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                self._record_socket_frame(text)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if connection in state.connections:
                    state.connections.remove(connection)
                self._changed.notify_all()

    def _record_socket_frame(self, text: str) -> None:
        with self._changed:
            self._socket_received.append(text)
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            if isinstance(frame, dict) and isinstance(frame.get("envelope_id"), str):
                self._socket_acks[frame["envelope_id"]] = frame
            self._changed.notify_all()

    @property
    def socket_acks(self) -> dict[str, JSONDict]:
        """Acks received over Socket Mode: envelope_id → the ack JSON (with `payload` if one was sent)."""
        with self._lock:
            return copy.deepcopy(self._socket_acks)

    def socket_wait_connected(self, timeout: float = 5.0) -> None:
        """Block until an app's Socket Mode connection has received its hello."""
        self._socket_connection(timeout)

    def _socket_connection(self, timeout: float) -> ServerConnection:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._socket is None or not self._socket.connections:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no Socket Mode connection")
                self._changed.wait(remaining)
            return self._socket.connections[-1]

    def socket_send(
        self,
        envelope_type: str,
        payload: JSONDict,
        *,
        accepts_response_payload: bool = False,
        timeout: float = 5.0,
    ) -> str:
        """Push an envelope to the newest Socket Mode connection; returns its envelope_id."""
        connection = self._socket_connection(timeout)
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
        }
        connection.send(json.dumps(envelope))
        return envelope_id

    def socket_send_interactive(self, payload: JSONDict, *, timeout: float = 5.0) -> str:
        """Push an `interactive` envelope (e.g. a block_actions payload), as Slack does in Socket Mode."""
        accepts = payload.get("type") in {"view_submission", "block_suggestion"}
        return self.socket_send("interactive", payload, accepts_response_payload=accepts, timeout=timeout)

    def socket_wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JSONDict:
        """Block until the app acks `envelope_id`; returns the ack."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while envelope_id not in self._socket_acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no ack for envelope {envelope_id}")
                self._changed.wait(remaining)
            return copy.deepcopy(self._socket_acks[envelope_id])

    def socket_close(self, code: int = 1000, reason: str = "") -> None:
        """Close every Socket Mode connection from Slack's side with a close frame.

        Calling this before `SocketModeClient.close()` spares the client's 3 s blocking receive timeout.
        """
        with self._lock:
            connections = list(self._socket.connections) if self._socket else []
        for connection in connections:
            connection.close(code, reason)

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's `disconnect` message to every connection (the app should reconnect)."""
        with self._lock:
            connections = list(self._socket.connections) if self._socket else []
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}})
        for connection in connections:
            connection.send(message)
