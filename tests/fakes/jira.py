"""A local HTTP fake of Jira Cloud's REST API v2 that also plays Jira's webhook sender.

Why a real server: the code under test talks to Jira through pycontribs `jira` (`ResilientSession`, its
retry loop, its error parsing), so the fake must be reached over HTTP exactly as Jira Cloud is, never by
patching the client. The shapes follow `../shared/specs/CONTRACTS.md` (Jira section) and the Cloud
platform swagger.

Usage::

    with JiraFake() as fake:
        fake.add_user("bot@example.com", "AIMS Bot", "token")
        fake.add_project("GOV", "Governance")
        client = JIRA(server=fake.url, basic_auth=("bot@example.com", "token"), max_retries=0)

Webhooks are sent asynchronously, by one sender thread, after the transition's HTTP answer has been written.
That is how Jira itself behaves, and it cannot deadlock an application whose single-threaded webhook receiver
is the same thread that made the transition call. Tests therefore wait with `wait_deliveries(n, timeout)`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.client
import json
import queue
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API = "/rest/api/2"
ISSUE_NOT_FOUND = "Issue does not exist or you do not have permission to see it."
LEGACY_SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
NOT_AUTHENTICATED = "Client must be authenticated to access this resource."
CUSTOM_FIELD_ID = "customfield_10010"
CUSTOM_FIELD_NAME = "AIMS Correlation ID"
SIGNATURE_HEADER = "X-Hub-Signature"
RETRY_HEADER = "X-Atlassian-Webhook-Retry"
IDENTIFIER_HEADER = "X-Atlassian-Webhook-Identifier"
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

# Jira's three fixed status categories, keyed by their `key`.
STATUS_CATEGORIES: dict[str, dict[str, Any]] = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
ISSUE_TYPES: tuple[dict[str, str], ...] = (
    {"id": "10001", "name": "Task", "description": "A small, distinct piece of work."},
    {"id": "10002", "name": "Incident", "description": "An AI system incident to investigate."},
    {"id": "10003", "name": "Approval", "description": "A decision that needs a named approver."},
)
# Jira retries a webhook after these answers (and after any 5xx, a timeout or a connection error).
RETRYABLE_WEBHOOK_STATUSES = frozenset({408, 409, 425, 429})
# The fields a create screen of the fake's projects accepts; anything else is "not on the screen".
CREATABLE_FIELDS = frozenset({"project", "issuetype", "summary", "description", "labels", CUSTOM_FIELD_ID})


def _field(
    field_id: str, name: str, clause_names: list[str], schema: dict[str, Any], *, orderable: bool = True
) -> dict[str, Any]:
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "custom": field_id.startswith("customfield_"),
        "orderable": orderable,
        "navigable": True,
        "searchable": True,
        "clauseNames": clause_names,
        "schema": schema,
    }


FIELDS: tuple[dict[str, Any], ...] = (
    _field("summary", "Summary", ["summary"], {"type": "string", "system": "summary"}),
    _field("description", "Description", ["description"], {"type": "string", "system": "description"}),
    _field(
        "labels",
        "Labels",
        ["labels"],
        {"type": "array", "items": "string", "system": "labels"},
        orderable=True,
    ),
    _field("status", "Status", ["status"], {"type": "status", "system": "status"}, orderable=False),
    _field("issuetype", "Issue Type", ["issuetype", "type"], {"type": "issuetype", "system": "issuetype"}),
    _field("project", "Project", ["project"], {"type": "project", "system": "project"}),
    _field(
        "created",
        "Created",
        ["created", "createdDate"],
        {"type": "datetime", "system": "created"},
        orderable=False,
    ),
    _field(
        "updated",
        "Updated",
        ["updated", "updatedDate"],
        {"type": "datetime", "system": "updated"},
        orderable=False,
    ),
    _field("comment", "Comment", ["comment"], {"type": "comments-page", "system": "comment"}),
    _field(
        CUSTOM_FIELD_ID,
        CUSTOM_FIELD_NAME,
        ["cf[10010]", CUSTOM_FIELD_NAME],
        {
            "type": "string",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": 10010,
        },
    ),
)


def _timestamp(epoch: float) -> str:
    """Jira's own date-time format, e.g. 2025-01-17T12:34:00.000+0000."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}+0000"


# ----------------------------------------------------------------------------------------------------
# Public records


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered, for assertions on what the client really sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    json: Any
    user: str | None  # e-mail of the authenticated user, None when authentication failed
    status: int  # the status the fake answered with


@dataclass(frozen=True)
class Delivery:
    """One webhook POST attempt (first try, retry or redelivery) and how the receiver answered."""

    url: str
    body: bytes
    headers: dict[str, str]  # the headers the fake set (http.client adds Host and Content-Length)
    status: int | None  # None when the receiver could not be reached or timed out
    retry: int  # 0 for the first attempt, else the value of X-Atlassian-Webhook-Retry
    error: str | None = None

    @property
    def identifier(self) -> str:
        """The webhook identifier, the same for every retry of one event (what receivers deduplicate on)."""
        return self.headers[IDENTIFIER_HEADER]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Status:
    id: str
    name: str
    category: str  # a key of STATUS_CATEGORIES


@dataclass
class Transition:
    """A workflow transition; like Jira, one transition id can start from several statuses."""

    id: str
    name: str
    to_status: str
    from_statuses: list[str]


@dataclass
class Workflow:
    """The one workflow every project of the fake uses; tests may extend it."""

    statuses: dict[str, Status] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    initial_status: str = "To Do"

    @classmethod
    def default(cls) -> Workflow:
        workflow = cls()
        for name, status_id, category in (
            ("To Do", "10000", "new"),
            ("Approved", "10001", "done"),
            ("Rejected", "10002", "done"),
            ("In Progress", "3", "indeterminate"),
            ("Done", "10003", "done"),
        ):
            workflow.add_status(name, category, status_id)
        for from_status, name, to_status, transition_id in (
            ("To Do", "Start", "In Progress", "21"),
            ("To Do", "Approve", "Approved", "31"),
            ("To Do", "Reject", "Rejected", "41"),
            ("To Do", "Done", "Done", "51"),
            ("In Progress", "Approve", "Approved", "31"),
            ("In Progress", "Reject", "Rejected", "41"),
            ("In Progress", "Done", "Done", "51"),
            ("In Progress", "Reopen", "To Do", "11"),
            ("Approved", "Reopen", "To Do", "11"),
            ("Rejected", "Reopen", "To Do", "11"),
            ("Done", "Reopen", "To Do", "11"),
        ):
            workflow.add_transition(from_status, name, to_status, transition_id)
        return workflow

    def add_status(self, name: str, category: str = "indeterminate", status_id: str | None = None) -> str:
        """Add a status (category "new", "indeterminate" or "done") and return its id."""
        if category not in STATUS_CATEGORIES:
            raise ValueError(f"unknown status category {category!r}; use one of {sorted(STATUS_CATEGORIES)}")
        if name in self.statuses:
            raise ValueError(f"status {name!r} already exists")
        new_id = status_id or str(max([10000, *(int(s.id) for s in self.statuses.values())]) + 1)
        self.statuses[name] = Status(new_id, name, category)
        return new_id

    def add_transition(
        self, from_status: str, name: str, to_status: str, transition_id: str | None = None
    ) -> str:
        """Allow `name` from `from_status` to `to_status` and return the transition id.

        A transition with the same name and target is reused, so its id stays the same from every status.
        """
        for status in (from_status, to_status):
            if status not in self.statuses:
                raise ValueError(f"unknown status {status!r}; add it with add_status first")
        for transition in self.transitions:
            if (
                transition.name == name
                and transition.to_status == to_status
                and transition_id
                in (
                    None,
                    transition.id,
                )
            ):
                if from_status not in transition.from_statuses:
                    transition.from_statuses.append(from_status)
                return transition.id
        new_id = transition_id or str(max([0, *(int(t.id) for t in self.transitions)]) + 10)
        self.transitions.append(Transition(new_id, name, to_status, [from_status]))
        return new_id

    def available(self, status: str) -> list[Transition]:
        return [t for t in self.transitions if status in t.from_statuses]


# ----------------------------------------------------------------------------------------------------
# Internal state


@dataclass
class _User:
    account_id: str
    email: str
    display_name: str
    api_token: str
    active: bool = True


@dataclass
class _Project:
    id: str
    key: str
    name: str
    next_number: int = 1


@dataclass
class _Comment:
    id: str
    body: str
    author: str  # accountId
    created: float
    updated: float


@dataclass
class _Issue:
    id: str
    key: str
    project: str  # project key
    summary: str
    description: str | None
    labels: list[str]
    issuetype: str  # issue type id
    status: str  # status name
    reporter: str  # accountId
    created: float
    updated: float
    status_changed: float
    custom: dict[str, Any] = field(default_factory=dict)
    comments: list[_Comment] = field(default_factory=list)


@dataclass
class _Failure:
    method: str
    path_suffix: str
    status: int
    remaining: int
    retry_after: int | None


@dataclass
class _Reply:
    status: int
    body: Any = None  # None: no body at all (204)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Call:
    """One authenticated API call as a route sees it."""

    query: dict[str, list[str]]
    body: Any
    user: _User
    params: dict[str, str]
    after: list[Callable[[], None]]

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])


@dataclass
class _WebhookJob:
    url: str
    body: bytes
    headers: dict[str, str]
    first_retry: int
    attempts: int
    done: threading.Event | None = None
    results: list[Delivery] = field(default_factory=list)


class _ApiError(Exception):
    """Raised inside a route to answer with an Atlassian ErrorCollection."""

    def __init__(
        self,
        status: int,
        messages: list[str] | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, messages, errors)
        self.reply = _Reply(
            status, {"errorMessages": list(messages or []), "errors": dict(errors or {})}, dict(headers or {})
        )


def _bad_request(*messages: str) -> _ApiError:
    return _ApiError(400, list(messages))


# ----------------------------------------------------------------------------------------------------
# A small JQL subset: `field = v`, `field != v`, `field [NOT] IN (v, ...)` joined by AND, then ORDER BY.

_JQL_FIELDS = {"project": "project", "labels": "labels", "status": "status"}
_JQL_FIELDS.update(dict.fromkeys(("key", "issuekey", "issue", "id"), "key"))
_JQL_ORDER_FIELDS = {"key": "key", "issuekey": "key", "id": "key", "created": "created", "updated": "updated"}
_JQL_TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|!~|<=|>=|=|~|<|>)
      | (?P<punct>[(),])
      | (?P<word>[^\s=!~<>(),"']+)""",
    re.VERBOSE,
)
# Real Jira fields outside the subset: refused as unsupported rather than unknown, so the message is honest.
_JQL_REAL_FIELDS = frozenset(
    {
        "assignee", "reporter", "creator", "summary", "description", "text", "comment", "created",
        "createddate", "updated", "updateddate", "priority", "resolution", "resolved", "type", "issuetype",
        "sprint", "component", "fixversion", "affectedversion", "duedate", "due", "parent", "statuscategory",
        "watcher", "voter", "category", "environment",
    }
)  # fmt: skip
_ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$")


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, punct, word or end
    text: str
    pos: int


@dataclass(frozen=True)
class _Clause:
    field: str  # project, labels, key or status
    op: str  # =, !=, in, not in
    values: tuple[str, ...]


@dataclass(frozen=True)
class _Query:
    clauses: tuple[_Clause, ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def _jql_error(detail: str, pos: int) -> _ApiError:
    return _bad_request(f"Error in the JQL Query: {detail} (line 1, character {pos + 1})")


def _unsupported(what: str) -> _ApiError:
    return _bad_request(
        f"The Jira fake does not support {what} in JQL. It supports clauses `field = value`, `field != value`"
        " and `field [NOT] IN (v1, v2)` on project, labels, key and status, joined by AND,"
        " optionally followed by ORDER BY key|created|updated [ASC|DESC]."
    )


def _tokenize(jql: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        while pos < len(jql) and jql[pos].isspace():
            pos += 1
        if pos >= len(jql):
            tokens.append(_Token("end", "", pos))
            return tokens
        match = _JQL_TOKEN.match(jql, pos)
        if match is None:
            if jql[pos] in "\"'":
                raise _jql_error(f"The quoted string {jql[pos:]} has not been completed.", pos)
            raise _jql_error(f"The character '{jql[pos]}' is a reserved JQL character.", pos)
        kind = match.lastgroup or "word"
        text = match.group()
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text, pos))
        pos = match.end()


def _shown(token: _Token) -> str:
    return "the end of the query" if token.kind == "end" else f"'{token.text}'"


def _is_keyword(token: _Token, *words: str) -> bool:
    return token.kind == "word" and token.text.lower() in words


class _JqlParser:
    """Parses the supported subset; says plainly what it refuses instead of guessing."""

    def __init__(self, jql: str, known_fields: set[str]) -> None:
        self.tokens = _tokenize(jql)
        self.index = 0
        self.known_fields = known_fields | _JQL_REAL_FIELDS

    def _next(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def parse(self) -> _Query:
        clauses: list[_Clause] = []
        order: list[tuple[str, bool]] = []
        if self._peek().kind != "end" and not _is_keyword(self._peek(), "order"):
            clauses.append(self._clause())
            while self._peek().kind != "end" and not _is_keyword(self._peek(), "order"):
                token = self._next()
                if _is_keyword(token, "and"):
                    clauses.append(self._clause())
                elif _is_keyword(token, "or"):
                    raise _unsupported("OR")
                else:
                    raise _jql_error(f"Expecting either 'OR' or 'AND' but got {_shown(token)}.", token.pos)
        if _is_keyword(self._peek(), "order"):
            order = self._order_by()
        if not clauses:
            raise _bad_request(
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
            )
        return _Query(tuple(clauses), tuple(order))

    def _clause(self) -> _Clause:
        token = self._next()
        if token.kind == "punct" and token.text == "(":
            raise _unsupported("parentheses")
        if _is_keyword(token, "not"):
            raise _unsupported("NOT before a clause")
        if token.kind not in ("word", "string"):
            raise _jql_error(f"Expecting a field name but got {_shown(token)}.", token.pos)
        name = token.text.lower()
        if name not in _JQL_FIELDS:
            if name in self.known_fields:
                raise _unsupported(f"the field '{token.text}'")
            raise _bad_request(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        op_token = self._next()
        if op_token.kind == "op" and op_token.text in ("=", "!="):
            return _Clause(_JQL_FIELDS[name], op_token.text, (self._value(),))
        if _is_keyword(op_token, "in"):
            return _Clause(_JQL_FIELDS[name], "in", self._values())
        if _is_keyword(op_token, "not") and _is_keyword(self._peek(), "in"):
            self._next()
            return _Clause(_JQL_FIELDS[name], "not in", self._values())
        if op_token.kind == "op" or _is_keyword(op_token, "is", "was", "changed"):
            raise _unsupported(f"the operator '{op_token.text}'")
        raise _jql_error(f"Expecting operator but got {_shown(op_token)}.", op_token.pos)

    def _value(self) -> str:
        token = self._next()
        if token.kind == "string":
            return token.text
        if token.kind != "word" or _is_keyword(token, "and", "or", "order"):
            raise _jql_error(
                f"Expecting either a value, list or function but got {_shown(token)}.", token.pos
            )
        if self._peek().kind == "punct" and self._peek().text == "(":
            raise _unsupported(f"the function '{token.text}()'")
        if _is_keyword(token, "empty", "null"):
            raise _unsupported(f"'{token.text}'")
        return token.text

    def _values(self) -> tuple[str, ...]:
        opening = self._next()
        if opening.kind != "punct" or opening.text != "(":
            raise _jql_error(f"Expecting '(' but got {_shown(opening)}.", opening.pos)
        values = [self._value()]
        while True:
            token = self._next()
            if token.kind == "punct" and token.text == ")":
                return tuple(values)
            if token.kind == "punct" and token.text == ",":
                values.append(self._value())
                continue
            raise _jql_error(f"Expecting ')' or ',' but got {_shown(token)}.", token.pos)

    def _order_by(self) -> list[tuple[str, bool]]:
        self._next()
        by = self._next()
        if not _is_keyword(by, "by"):
            raise _jql_error(f"Expecting 'by' but got {_shown(by)}.", by.pos)
        order: list[tuple[str, bool]] = []
        while True:
            token = self._next()
            if token.kind not in ("word", "string"):
                raise _jql_error(f"Expecting a field name but got {_shown(token)}.", token.pos)
            if token.text.lower() not in _JQL_ORDER_FIELDS:
                raise _unsupported(f"ORDER BY '{token.text}'")
            descending = False
            if _is_keyword(self._peek(), "asc", "desc"):
                descending = self._next().text.lower() == "desc"
            order.append((_JQL_ORDER_FIELDS[token.text.lower()], descending))
            token = self._next()
            if token.kind == "end":
                return order
            if token.kind != "punct" or token.text != ",":
                raise _jql_error(f"Expecting ',' but got {_shown(token)}.", token.pos)


# ----------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: JiraFake) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # requests keeps connections alive, as against Jira
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes; without this, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's own `requests` log is the record."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_Reply(400, {"errorMessages": ["Malformed request body framing"], "errors": {}}))
            return
        reply, after = self.server.fake._dispatch(self.command, self.path, self.headers, raw)
        try:
            self._send(reply)
        finally:  # the change is made even if the client hung up, so its webhook must still go out
            for action in after:
                action()

    def _send(self, reply: _Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.body is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:  # a 204 carries neither a body nor a Content-Length
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("GET", rf"{API}/serverInfo", "_get_server_info"),
        ("GET", rf"{API}/myself", "_get_myself"),
        ("GET", r"/rest/auth/1/session", "_get_session"),
        ("GET", rf"{API}/field", "_get_fields"),
        ("GET", rf"{API}/issuetype", "_get_issue_types"),
        ("GET", rf"{API}/project/(?P<project>[^/]+)", "_get_project"),
        ("POST", rf"{API}/issue", "_create_issue"),
        ("GET", rf"{API}/issue/(?P<issue>[^/]+)", "_get_issue"),
        ("GET", rf"{API}/issue/(?P<issue>[^/]+)/transitions", "_get_transitions"),
        ("POST", rf"{API}/issue/(?P<issue>[^/]+)/transitions", "_do_transition"),
        ("GET", rf"{API}/issue/(?P<issue>[^/]+)/comment", "_get_comments"),
        ("POST", rf"{API}/issue/(?P<issue>[^/]+)/comment", "_add_comment"),
        ("GET", rf"{API}/issue/(?P<issue>[^/]+)/comment/(?P<comment>[^/]+)", "_get_comment"),
        ("GET", rf"{API}/search/jql", "_search"),
        ("POST", rf"{API}/search/jql", "_search"),
        ("GET", rf"{API}/search", "_legacy_search"),
        ("POST", rf"{API}/search", "_legacy_search"),
    )
)


# ----------------------------------------------------------------------------------------------------
# The fake


class JiraFake:
    """Jira Cloud (REST v2) on 127.0.0.1, plus Jira's webhook sender. See the module docstring.

    Set-up: `add_user`, `add_project`, `add_issue`, `add_status`/`add_transition` (or edit `workflow`),
    `set_webhook`, `fail_next`. Assertions: `issues`, `status(key)`, `comments(key)`, `requests`,
    `deliveries`/`wait_deliveries`, `redeliver`, and `errors` (bugs in the fake itself, answered with 500).
    """

    def __init__(self, *, webhook_retries: int = 2, webhook_retry_delay: float = 0.2) -> None:
        self.workflow = Workflow.default()
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = 5.0
        self.errors: list[str] = []  # tracebacks of bugs in the fake itself (answered with 500)
        self._lock = threading.RLock()
        self._users: dict[str, _User] = {}
        self._projects: dict[str, _Project] = {}
        self._issues: dict[str, _Issue] = {}
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._next_issue_id = 10000
        self._next_comment_id = 10000
        self._next_changelog_id = 10000
        self._webhook_url: str | None = None
        self._webhook_secret: str | None = None
        self._deliveries: list[Delivery] = []
        self._inflight = 0
        self._delivery_cond = threading.Condition()
        self._jobs: queue.Queue[_WebhookJob | None] = queue.Queue()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> JiraFake:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="jira-fake-http",
            daemon=True,
        )
        sender = threading.Thread(target=self._deliver_loop, name="jira-fake-webhooks", daemon=True)
        self._threads = [serve, sender]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with server.connections_lock:
            for connection in list(server.connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> JiraFake:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("JiraFake is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- set-up ----------------------------------------------------------------------------------------------

    def add_user(self, email: str, display_name: str, api_token: str, *, active: bool = True) -> str:
        """Register a user who authenticates with Basic `email:api_token`; returns the accountId."""
        # Stable per e-mail, so a test can predict it; shaped like Cloud's "712020:<uuid>" account ids.
        account_id = "712020:" + str(uuid.UUID(hashlib.sha256(email.lower().encode()).hexdigest()[:32]))
        with self._lock:
            self._users[email.lower()] = _User(account_id, email, display_name, api_token, active)
        return account_id

    def add_project(self, key: str, name: str | None = None) -> str:
        """Create a project (all projects share `workflow` and the Task/Incident/Approval issue types)."""
        with self._lock:
            if key.upper() in self._projects:
                raise ValueError(f"project {key!r} already exists")
            project_id = str(10000 + len(self._projects))
            self._projects[key.upper()] = _Project(project_id, key.upper(), name or key.upper())
            return project_id

    def add_status(self, name: str, category: str = "indeterminate") -> str:
        """Add a workflow status (category "new", "indeterminate" or "done"); returns its id."""
        with self._lock:
            return self.workflow.add_status(name, category)

    def add_transition(self, from_status: str, name: str, to_status: str) -> str:
        """Allow `name` from `from_status` to `to_status` for every project; returns the transition id."""
        with self._lock:
            return self.workflow.add_transition(from_status, name, to_status)

    def add_issue(
        self,
        project: str,
        summary: str,
        *,
        description: str | None = None,
        labels: list[str] | tuple[str, ...] = (),
        issuetype: str = "Task",
        status: str | None = None,
        reporter: str | None = None,
    ) -> str:
        """Seed an issue without going through HTTP (no request logged, no webhook); returns its key."""
        with self._lock:
            user = self._users[reporter.lower()] if reporter else next(iter(self._users.values()), None)
            issue = self._new_issue(
                self._projects[project.upper()],
                summary,
                description,
                list(labels),
                next(t["id"] for t in ISSUE_TYPES if t["name"] == issuetype),
                user.account_id if user else "",
                {},
            )
            if status is not None:
                if status not in self.workflow.statuses:
                    raise ValueError(f"unknown status {status!r}")
                issue.status = status
            return issue.key

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """POST `jira:issue_updated` to `url` after each transition, signed with `secret` when given."""
        with self._lock:
            self._webhook_url = url
            self._webhook_secret = secret

    def fail_next(
        self,
        method: str,
        path_suffix: str,
        status: int = 429,
        times: int = 1,
        retry_after: int | None = 1,
    ) -> None:
        """Answer the next `times` calls whose path ends with `path_suffix` with `status`; change nothing.

        Checked before authentication, like a gateway's rate limit. 429 and 503 carry `Retry-After` when
        `retry_after` is not None.
        """
        with self._lock:
            self._failures.append(_Failure(method.upper(), path_suffix, status, times, retry_after))

    # -- state for assertions --------------------------------------------------------------------------------

    @property
    def issues(self) -> dict[str, dict[str, Any]]:
        """Every issue by key, rendered as GET /issue/{key} would return it."""
        with self._lock:
            return {key: self._issue_json(issue) for key, issue in self._issues.items()}

    def comments(self, key: str) -> list[str]:
        """The bodies of the issue's comments, oldest first."""
        with self._lock:
            return [comment.body for comment in self._issues[key.upper()].comments]

    def status(self, key: str) -> str:
        """The name of the issue's current status."""
        with self._lock:
            return self._issues[key.upper()].status

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, in the order the answers were made."""
        with self._lock:
            return list(self._requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook attempt so far; use `wait_deliveries` to wait for the sender thread."""
        with self._delivery_cond:
            return list(self._deliveries)

    def wait_deliveries(self, n: int, timeout: float = 10.0) -> list[Delivery]:
        """Wait until at least `n` webhook attempts are recorded and no delivery or retry is pending."""
        with self._delivery_cond:
            if not self._delivery_cond.wait_for(
                lambda: len(self._deliveries) >= n and self._inflight == 0, timeout=timeout
            ):
                raise TimeoutError(
                    f"expected {n} webhook deliveries within {timeout}s; got {len(self._deliveries)}"
                    f" with {self._inflight} still pending"
                )
            return list(self._deliveries)

    def redeliver(self, index: int = -1, timeout: float = 10.0) -> Delivery:
        """Send a recorded delivery's body again, as Jira's retry does, and return the new attempt."""
        with self._delivery_cond:
            original = self._deliveries[index]
            retry = 1 + max(d.retry for d in self._deliveries if d.identifier == original.identifier)
            self._inflight += 1
        headers = {k: v for k, v in original.headers.items() if k != RETRY_HEADER}
        done = threading.Event()
        job = _WebhookJob(original.url, original.body, headers, retry, attempts=1, done=done)
        self._jobs.put(job)
        if not done.wait(timeout):
            raise TimeoutError(f"redelivery to {original.url} did not finish within {timeout}s")
        return job.results[0]

    # -- request dispatch ------------------------------------------------------------------------------------

    def _dispatch(
        self, method: str, target: str, headers: Message, raw: bytes
    ) -> tuple[_Reply, list[Callable[[], None]]]:
        """Answer one request; returns the reply and what to do once it has been written."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = parse_qs(split.query, keep_blank_values=True)
        user = self._authenticate(headers.get("Authorization"))
        body: Any = None
        body_error: str | None = None
        if raw:
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                body_error = f"Unexpected character in the JSON body: {exc}"
        after: list[Callable[[], None]] = []
        try:
            reply = self._respond(method, path, query, headers, raw, body, body_error, user, after)
        except _ApiError as exc:
            reply, after = exc.reply, []
        except Exception as exc:  # noqa: BLE001 - the fake must answer; the bug is kept in `errors`
            self.errors.append(traceback.format_exc())
            reply, after = (
                _Reply(500, {"errorMessages": [f"Bug in the Jira fake: {exc!r}"], "errors": {}}),
                [],
            )
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, query, body, user.email if user else None, reply.status)
            )
        return reply, after

    def _respond(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Message,
        raw: bytes,
        body: Any,
        body_error: str | None,
        user: _User | None,
        after: list[Callable[[], None]],
    ) -> _Reply:
        with self._lock:
            failure = next(
                (f for f in self._failures if f.method == method and path.endswith(f.path_suffix)), None
            )
            if failure is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
        if failure is not None:
            raise self._injected(failure)
        if path.startswith("/rest/") and user is None:
            raise _ApiError(
                401, [NOT_AUTHENTICATED], headers={"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
            )
        matches = [(m, name, match) for m, pattern, name in _ROUTES if (match := pattern.fullmatch(path))]
        if not matches:
            return _Reply(404, {"message": f"null for uri: {self.url}{path}", "status-code": 404})
        route = next(((name, match) for m, name, match in matches if m == method), None)
        if route is None:
            allowed = ", ".join(sorted({m for m, _, _ in matches}))
            return _Reply(
                405, {"errorMessages": [f"Method {method} not allowed"], "errors": {}}, {"Allow": allowed}
            )
        if method in ("POST", "PUT"):
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise _ApiError(
                    415, [f"Unsupported Media Type: {content_type or 'none'}; send application/json"]
                )
            if not raw:
                raise _bad_request("No content to map due to end-of-input")
            if body_error is not None:
                raise _bad_request(body_error)
        assert user is not None
        name, match = route
        call = _Call(query, body, user, {k: unquote(v) for k, v in match.groupdict().items()}, after)
        with self._lock:
            reply: _Reply = getattr(self, name)(call)
        return reply

    def _injected(self, failure: _Failure) -> _ApiError:
        headers: dict[str, str] = {}
        if failure.status in (429, 503) and failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        if failure.status == 429:
            headers.update({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})
            return _ApiError(429, ["Rate limit exceeded."], headers=headers)
        try:
            phrase = HTTPStatus(failure.status).phrase
        except ValueError:
            phrase = f"Injected failure {failure.status}"
        return _ApiError(failure.status, [phrase], headers=headers)

    def _authenticate(self, header: str | None) -> _User | None:
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            email, _, token = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        with self._lock:
            user = self._users.get(email.lower())
        if (
            user is None
            or not user.active
            or not hmac.compare_digest(user.api_token.encode(), token.encode())
        ):
            return None
        return user

    # -- rendering -------------------------------------------------------------------------------------------

    def _api(self, path: str) -> str:
        return f"{self.url}{API}/{path}"

    def _user_json(self, user: _User | None, *, email: bool = False) -> dict[str, Any]:
        if user is None:
            return {"accountId": "unknown", "displayName": "Former user", "active": False}
        body: dict[str, Any] = {
            "self": self._api(f"user?accountId={user.account_id}"),
            "accountId": user.account_id,
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": "Etc/UTC",
            "accountType": "atlassian",
        }
        if email:
            body["emailAddress"] = user.email
        return body

    def _user_by_account(self, account_id: str) -> _User | None:
        return next((u for u in self._users.values() if u.account_id == account_id), None)

    def _status_json(self, name: str) -> dict[str, Any]:
        status = self.workflow.statuses[name]
        category = STATUS_CATEGORIES[status.category]
        return {
            "self": self._api(f"status/{status.id}"),
            "description": "",
            "iconUrl": f"{self.url}/",
            "name": status.name,
            "untranslatedName": status.name,
            "id": status.id,
            "statusCategory": {"self": self._api(f"statuscategory/{category['id']}"), **category},
        }

    def _issue_type_json(self, type_id: str) -> dict[str, Any]:
        issue_type = next(t for t in ISSUE_TYPES if t["id"] == type_id)
        return {
            "self": self._api(f"issuetype/{type_id}"),
            "id": type_id,
            "description": issue_type["description"],
            "iconUrl": f"{self.url}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10318",
            "name": issue_type["name"],
            "untranslatedName": issue_type["name"],
            "subtask": False,
            "avatarId": 10318,
            "hierarchyLevel": 0,
        }

    def _project_json(self, project: _Project, *, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "self": self._api(f"project/{project.id}"),
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
        }
        if full:
            body = {
                "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
                **body,
                "description": "",
                "issueTypes": [self._issue_type_json(t["id"]) for t in ISSUE_TYPES],
                "assigneeType": "UNASSIGNED",
                "style": "classic",
                "isPrivate": False,
                "properties": {},
            }
        return body

    def _comment_json(self, issue: _Issue, comment: _Comment) -> dict[str, Any]:
        author = self._user_json(self._user_by_account(comment.author))
        return {
            "self": self._api(f"issue/{issue.id}/comment/{comment.id}"),
            "id": comment.id,
            "author": author,
            "body": comment.body,
            "updateAuthor": author,
            "created": _timestamp(comment.created),
            "updated": _timestamp(comment.updated),
            "jsdPublic": True,
        }

    def _comments_page(self, issue: _Issue) -> dict[str, Any]:
        comments = [self._comment_json(issue, c) for c in issue.comments]
        return {
            "comments": comments,
            "self": self._api(f"issue/{issue.id}/comment"),
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        }

    def _all_fields(self, issue: _Issue) -> dict[str, Any]:
        reporter = self._user_json(self._user_by_account(issue.reporter))
        return {
            "summary": issue.summary,
            "description": issue.description,
            "labels": list(issue.labels),
            "status": self._status_json(issue.status),
            "issuetype": self._issue_type_json(issue.issuetype),
            "project": self._project_json(self._projects[issue.project]),
            "created": _timestamp(issue.created),
            "updated": _timestamp(issue.updated),
            "statuscategorychangedate": _timestamp(issue.status_changed),
            "reporter": reporter,
            "creator": reporter,
            "comment": self._comments_page(issue),
            CUSTOM_FIELD_ID: issue.custom.get(CUSTOM_FIELD_ID),
        }

    def _issue_json(
        self, issue: _Issue, fields: list[str] | None = None, default: str = "*all"
    ) -> dict[str, Any]:
        """The issue with the fields that `fields` selects (GET issue: all by default; search/jql: ids)."""
        tokens = [t.strip() for value in (fields or []) for t in value.split(",") if t.strip()] or [default]
        everything = any(t in ("*all", "*navigable") for t in tokens)
        excluded = {t[1:] for t in tokens if t.startswith("-")}
        included = {t for t in tokens if not t.startswith(("-", "*"))}
        if not included and excluded:
            everything = True  # "-description" means every navigable field but the description
        if not everything and included <= {"id"}:
            return {"id": issue.id}  # search/jql's default: ids only
        selected = {
            name: value
            for name, value in self._all_fields(issue).items()
            if (everything or name in included) and name not in excluded
        }
        return {
            "expand": ISSUE_EXPAND,
            "id": issue.id,
            "self": self._api(f"issue/{issue.id}"),
            "key": issue.key,
            "fields": selected,
        }

    # -- issues ----------------------------------------------------------------------------------------------

    def _find_issue(self, key_or_id: str) -> _Issue:
        issue = self._issues.get(key_or_id.upper()) or next(
            (i for i in self._issues.values() if i.id == key_or_id), None
        )
        if issue is None:
            raise _ApiError(404, [ISSUE_NOT_FOUND])
        return issue

    def _new_issue(
        self,
        project: _Project,
        summary: str,
        description: str | None,
        labels: list[str],
        issuetype: str,
        reporter: str,
        custom: dict[str, Any],
    ) -> _Issue:
        now = time.time()
        issue = _Issue(
            id=str(self._next_issue_id),
            key=f"{project.key}-{project.next_number}",
            project=project.key,
            summary=summary,
            description=description,
            labels=labels,
            issuetype=issuetype,
            status=self.workflow.initial_status,
            reporter=reporter,
            created=now,
            updated=now,
            status_changed=now,
            custom=custom,
        )
        self._next_issue_id += 1
        project.next_number += 1
        self._issues[issue.key] = issue
        return issue

    def _create_issue(self, call: _Call) -> _Reply:
        body = call.body
        if not isinstance(body, dict):
            raise _bad_request("Can not deserialize the request body: expected a JSON object with 'fields'")
        unknown = sorted(set(body) - {"fields", "update", "properties", "historyMetadata"})
        if unknown:
            raise _bad_request(f'Unrecognized field "{unknown[0]}"')
        update = body.get("update", {})
        if not isinstance(update, dict):
            raise _bad_request("Can not deserialize 'update': expected a JSON object")
        if update:
            raise _bad_request("The Jira fake does not support 'update' operations on create; use 'fields'")
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise _bad_request("Can not deserialize 'fields': expected a JSON object")
        errors: dict[str, str] = {}
        for name in fields:
            if name not in CREATABLE_FIELDS:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
        project = self._project_ref(fields.get("project"), errors)
        issuetype = self._issue_type_ref(fields.get("issuetype"), errors)
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        description = fields.get("description")
        if description is not None and not isinstance(description, str):
            errors["description"] = "Operation value must be a string"
        labels = fields.get("labels", [])
        if labels is None:
            labels = []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            errors["labels"] = "Operation value must be an array of strings"
        else:
            for label in labels:
                if not label or any(c.isspace() for c in label):
                    errors["labels"] = f"The label '{label}' contains spaces which is invalid."
                elif len(label) > 255:
                    errors["labels"] = "The label must not exceed 255 characters."
        custom = fields.get(CUSTOM_FIELD_ID)
        if custom is not None and not isinstance(custom, str):
            errors[CUSTOM_FIELD_ID] = "Operation value must be a string"
        if errors:
            raise _ApiError(400, errors=errors)
        assert project is not None and issuetype is not None and isinstance(summary, str)
        issue = self._new_issue(
            project,
            summary,
            description,
            list(dict.fromkeys(labels)),
            issuetype,
            call.user.account_id,
            {CUSTOM_FIELD_ID: custom} if custom is not None else {},
        )
        return _Reply(201, {"id": issue.id, "key": issue.key, "self": self._api(f"issue/{issue.id}")})

    def _project_ref(self, ref: Any, errors: dict[str, str]) -> _Project | None:
        if ref is None:
            errors["project"] = "project is required"
            return None
        if isinstance(ref, dict):
            key, project_id = ref.get("key"), ref.get("id")
            for project in self._projects.values():
                if (isinstance(key, str) and key.upper() == project.key) or (
                    isinstance(project_id, str | int)
                    and not isinstance(project_id, bool)
                    and str(project_id) == project.id
                ):
                    return project
        errors["project"] = "valid project is required"
        return None

    def _issue_type_ref(self, ref: Any, errors: dict[str, str]) -> str | None:
        if ref is None:
            errors["issuetype"] = "issue type is required"
            return None
        if isinstance(ref, dict):
            name, type_id = ref.get("name"), ref.get("id")
            for issue_type in ISSUE_TYPES:
                if (isinstance(name, str) and name == issue_type["name"]) or (
                    isinstance(type_id, str | int)
                    and not isinstance(type_id, bool)
                    and str(type_id) == issue_type["id"]
                ):
                    return issue_type["id"]
        errors["issuetype"] = "valid issue type is required"
        return None

    # -- routes ----------------------------------------------------------------------------------------------

    def _get_server_info(self, call: _Call) -> _Reply:
        return _Reply(
            200,
            {
                "baseUrl": self.url,
                "displayUrl": self.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100289,
                "buildDate": "2025-09-01T00:00:00.000+0000",
                "serverTime": _timestamp(time.time()),
                "scmInfo": "0000000000000000000000000000000000000000",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            },
        )

    def _get_myself(self, call: _Call) -> _Reply:
        body = self._user_json(call.user, email=True)
        body.update(
            {
                "locale": "en_US",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
            }
        )
        return _Reply(200, body)

    def _get_session(self, call: _Call) -> _Reply:
        return _Reply(200, {"self": self._api("myself"), "name": call.user.email, "loginInfo": {}})

    def _get_fields(self, call: _Call) -> _Reply:
        return _Reply(200, json.loads(json.dumps(FIELDS)))

    def _get_issue_types(self, call: _Call) -> _Reply:
        return _Reply(200, [self._issue_type_json(t["id"]) for t in ISSUE_TYPES])

    def _get_project(self, call: _Call) -> _Reply:
        ref = call.params["project"]
        project = self._projects.get(ref.upper()) or next(
            (p for p in self._projects.values() if p.id == ref), None
        )
        if project is None:
            raise _ApiError(404, [f"No project could be found with key '{ref}'."])
        return _Reply(200, self._project_json(project, full=True))

    def _get_issue(self, call: _Call) -> _Reply:
        issue = self._find_issue(call.params["issue"])
        return _Reply(200, self._issue_json(issue, call.args("fields") or None))

    def _transition_json(self, transition: Transition) -> dict[str, Any]:
        return {
            "id": transition.id,
            "name": transition.name,
            "to": self._status_json(transition.to_status),
            "hasScreen": False,
            "isGlobal": False,
            "isInitial": False,
            "isAvailable": True,
            "isConditional": False,
            "isLooped": False,
        }

    def _get_transitions(self, call: _Call) -> _Reply:
        issue = self._find_issue(call.params["issue"])
        available = self.workflow.available(issue.status)
        wanted = call.arg("transitionId")
        if wanted is not None:
            available = [t for t in available if t.id == wanted]
        return _Reply(
            200, {"expand": "transitions", "transitions": [self._transition_json(t) for t in available]}
        )

    def _do_transition(self, call: _Call) -> _Reply:
        issue = self._find_issue(call.params["issue"])
        body = call.body
        if not isinstance(body, dict):
            raise _bad_request("Can not deserialize the request body: expected a JSON object")
        ref = body.get("transition")
        transition_id = ref.get("id") if isinstance(ref, dict) else None
        if isinstance(transition_id, bool) or not isinstance(transition_id, str | int):
            raise _bad_request("Missing 'transition' identifier")
        transition = next(
            (t for t in self.workflow.available(issue.status) if t.id == str(transition_id)), None
        )
        if transition is None:
            raise _bad_request(f"Transition id '{transition_id}' is not valid for this issue.")
        fields = body.get("fields", {})
        update = body.get("update", {})
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise _bad_request("Can not deserialize 'fields'/'update': expected JSON objects")
        errors = {
            name: f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            for name in [*fields, *(k for k in update if k != "comment")]
        }
        comment_body = self._transition_comment(update.get("comment"), errors)
        if errors:
            raise _ApiError(400, errors=errors)
        now = time.time()
        old_status = issue.status
        issue.status = transition.to_status
        issue.updated = issue.status_changed = now
        comment = None
        if comment_body is not None:
            comment = self._append_comment(issue, comment_body, call.user, now)
        self._queue_webhook(issue, old_status, comment, call.user, call.after)
        return _Reply(204)

    @staticmethod
    def _transition_comment(ops: Any, errors: dict[str, str]) -> str | None:
        if ops is None:
            return None
        add = (
            ops[0].get("add")
            if isinstance(ops, list) and len(ops) == 1 and isinstance(ops[0], dict)
            else None
        )
        text = add.get("body") if isinstance(add, dict) else None
        if not isinstance(text, str) or not text.strip():
            errors["comment"] = "Comment body can not be empty!"
            return None
        return text

    def _append_comment(self, issue: _Issue, text: str, user: _User, now: float) -> _Comment:
        comment = _Comment(str(self._next_comment_id), text, user.account_id, now, now)
        self._next_comment_id += 1
        issue.comments.append(comment)
        issue.updated = now
        return comment

    def _get_comments(self, call: _Call) -> _Reply:
        return _Reply(200, self._comments_page(self._find_issue(call.params["issue"])))

    def _get_comment(self, call: _Call) -> _Reply:
        issue = self._find_issue(call.params["issue"])
        comment = next((c for c in issue.comments if c.id == call.params["comment"]), None)
        if comment is None:
            raise _ApiError(404, [f"Can not find a comment for the id: {call.params['comment']}."])
        return _Reply(200, self._comment_json(issue, comment))

    def _add_comment(self, call: _Call) -> _Reply:
        issue = self._find_issue(call.params["issue"])
        body = call.body
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, errors={"comment": "Comment body can not be empty!"})
        comment = self._append_comment(issue, text, call.user, time.time())
        return _Reply(201, self._comment_json(issue, comment))

    # -- search ----------------------------------------------------------------------------------------------

    def _legacy_search(self, call: _Call) -> _Reply:
        return _Reply(410, {"errorMessages": [LEGACY_SEARCH_GONE], "errors": {}})

    def _search(self, call: _Call) -> _Reply:
        if isinstance(call.body, dict):  # POST
            body = call.body
            allowed = {
                "jql",
                "fields",
                "maxResults",
                "nextPageToken",
                "expand",
                "properties",
                "reconcileIssues",
                "fieldsByKeys",
                "failFast",
            }
            unknown = sorted(set(body) - allowed)
            if unknown:
                raise _bad_request(f'Unrecognized field "{unknown[0]}"')
            jql, fields, max_results, token = (
                body.get(k) for k in ("jql", "fields", "maxResults", "nextPageToken")
            )
            if fields is not None and (
                not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
            ):
                raise _bad_request("'fields' must be an array of strings")
        elif call.body is not None:
            raise _bad_request("Can not deserialize the request body: expected a JSON object")
        else:  # GET
            jql, fields, max_results, token = (
                call.arg("jql"),
                call.args("fields") or None,
                call.arg("maxResults"),
                call.arg("nextPageToken"),
            )
        if jql is not None and not isinstance(jql, str):
            raise _bad_request("'jql' must be a string")
        if token is not None and not isinstance(token, str):
            raise _bad_request("'nextPageToken' must be a string")
        limit = self._max_results(max_results)
        query = _JqlParser(jql or "", {n.lower() for f in FIELDS for n in f["clauseNames"]}).parse()
        matched = self._matching(query)
        matched.sort(key=lambda i: int(i.id))
        for name, descending in reversed(query.order):
            matched.sort(key=self._sort_key(name), reverse=descending)
        offset = self._page_offset(token, jql or "")
        page = matched[offset : offset + limit]
        result: dict[str, Any] = {"issues": [self._issue_json(issue, fields, "id") for issue in page]}
        if offset + limit < len(matched):
            cursor = json.dumps({"offset": offset + limit, "jql": jql or ""}).encode()
            result["nextPageToken"] = base64.urlsafe_b64encode(cursor).decode()
            result["isLast"] = False
        else:
            result["isLast"] = True
        return _Reply(200, result)

    @staticmethod
    def _max_results(value: Any) -> int:
        if value is None:
            return 50
        try:
            limit = int(value)
        except (TypeError, ValueError):
            raise _bad_request(f"The value '{value}' is not valid for maxResults") from None
        if isinstance(value, bool | float) or limit < 0:
            raise _bad_request(f"The value '{value}' is not valid for maxResults")
        return min(limit, 5000)

    @staticmethod
    def _page_offset(token: str | None, jql: str) -> int:
        if not token:
            return 0
        try:
            cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
            if cursor["jql"] == jql and isinstance(cursor["offset"], int) and cursor["offset"] >= 0:
                return int(cursor["offset"])
        except (binascii.Error, ValueError, TypeError, KeyError):
            pass
        raise _bad_request("The provided next page token is invalid or expired.")

    @staticmethod
    def _sort_key(name: str) -> Callable[[_Issue], Any]:
        if name == "key":
            return lambda i: (i.project, int(i.key.rsplit("-", 1)[1]))
        if name == "created":
            return lambda i: (i.created, int(i.id))
        return lambda i: (i.updated, int(i.id))

    def _matching(self, query: _Query) -> list[_Issue]:
        """The issues the query selects; every value is checked first, as Jira refuses unknown ones."""
        clauses = [(clause, self._resolve(clause)) for clause in query.clauses]
        return [issue for issue in self._issues.values() if all(self._hit(issue, c, v) for c, v in clauses)]

    @staticmethod
    def _hit(issue: _Issue, clause: _Clause, values: set[str]) -> bool:
        positive = clause.op in ("=", "in")
        if clause.field == "labels":
            hit = bool(values & set(issue.labels))
            # Like Jira, != and NOT IN never match an issue that has no labels at all.
            return hit if positive else bool(issue.labels) and not hit
        actual = {"project": issue.project, "status": issue.status, "key": issue.key}[clause.field]
        return (actual in values) == positive

    def _resolve(self, clause: _Clause) -> set[str]:
        """Turn the clause's values into project keys, status names, issue keys or labels, in Jira's words."""
        resolved: set[str] = set()
        for value in clause.values:
            if clause.field == "labels":
                resolved.add(value)
            elif clause.field == "project":
                found = {
                    p.key
                    for p in self._projects.values()
                    if value.upper() == p.key or value == p.id or value.lower() == p.name.lower()
                }
                if not found:
                    raise _bad_request(f"The value '{value}' does not exist for the field 'project'.")
                resolved |= found
            elif clause.field == "status":
                found = {
                    s.name for s in self.workflow.statuses.values() if value.lower() in (s.name.lower(), s.id)
                }
                if not found:
                    raise _bad_request(f"The value '{value}' does not exist for the field 'status'.")
                resolved |= found
            else:
                if not value.isdigit() and not _ISSUE_KEY.match(value):
                    raise _bad_request(f"The issue key '{value}' for field 'key' is invalid.")
                issue = self._issues.get(value.upper()) or next(
                    (i for i in self._issues.values() if i.id == value), None
                )
                if issue is None:
                    raise _bad_request(f"An issue with key '{value}' does not exist for field 'key'.")
                resolved.add(issue.key)
        return resolved

    # -- webhooks --------------------------------------------------------------------------------------------

    def _queue_webhook(
        self,
        issue: _Issue,
        old_status: str,
        comment: _Comment | None,
        user: _User,
        after: list[Callable[[], None]],
    ) -> None:
        """Build the `jira:issue_updated` event now; hand it to the sender once the HTTP answer is written."""
        if self._webhook_url is None:
            return
        old, new = self.workflow.statuses[old_status], self.workflow.statuses[issue.status]
        fields = self._all_fields(issue)
        del fields["comment"]
        payload: dict[str, Any] = {
            "timestamp": int(time.time() * 1000),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "user": self._user_json(user, email=True),
            "issue": {
                "id": issue.id,
                "self": self._api(f"issue/{issue.id}"),
                "key": issue.key,
                "fields": fields,
            },
            "changelog": {
                "id": str(self._next_changelog_id),
                "items": [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": old.id,
                        "fromString": old.name,
                        "to": new.id,
                        "toString": new.name,
                    }
                ],
            },
        }
        self._next_changelog_id += 1
        if comment is not None:
            payload["comment"] = self._comment_json(issue, comment)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Atlassian Webhook HTTP Client",
            IDENTIFIER_HEADER: str(uuid.uuid4()),
        }
        if self._webhook_secret is not None:
            digest = hmac.new(self._webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        job = _WebhookJob(self._webhook_url, body, headers, first_retry=0, attempts=1 + self.webhook_retries)
        with self._delivery_cond:
            self._inflight += 1  # counted now, so wait_deliveries cannot return before the job is sent
        after.append(lambda: self._jobs.put(job))

    def _deliver_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run_job(job)
            finally:
                with self._delivery_cond:
                    self._inflight -= 1
                    self._delivery_cond.notify_all()
                if job.done is not None:
                    job.done.set()

    def _run_job(self, job: _WebhookJob) -> None:
        for attempt in range(job.attempts):
            retry = job.first_retry + attempt
            headers = dict(job.headers)
            if retry > 0:
                headers[RETRY_HEADER] = str(retry)
            status, error = self._post(job.url, job.body, headers)
            delivery = Delivery(job.url, job.body, headers, status, retry, error)
            job.results.append(delivery)
            with self._delivery_cond:
                self._deliveries.append(delivery)
                self._delivery_cond.notify_all()
            retryable = status is None or status in RETRYABLE_WEBHOOK_STATUSES or status >= 500
            if not retryable or attempt + 1 >= job.attempts or self._stopping.wait(self.webhook_retry_delay):
                return

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        parts = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=self.webhook_timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
