"""Caps on what the gateway takes in, applied before routing and so before any signature work.

An unsigned 400 MB POST once got its 401 only after the whole body was in memory: a signature can
only be checked on the whole body, so the body's size has to be capped first. This ASGI middleware
wraps the whole app:

- **Requests in flight**: at most `max_in_flight` at once (reading, handled, or answering in the
  background); the next is answered 503 with `Retry-After` at once rather than queued, so a flood costs
  at most `max_in_flight × max_body` bytes of bodies. Jira retries a 503 that carries Retry-After.
- **Body size**: a `Content-Length` over `max_body` is answered 413 without reading a byte; a body
  without one (chunked) is read up to `max_body` and answered 413 the moment it goes over.
- **Body time**: a body that has not arrived within `body_timeout` seconds is answered 408, so slow
  senders cannot hold the slots above.

The body is read here, whole and bounded, and handed to the app as one message: the routes' own
`await request.body()` then never reads from the socket. Answers given here close the connection
(`Connection: close`): the rest of the body is never read, and uvicorn would otherwise read it to
keep the connection alive.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    """The client disconnected before its body was in: nobody is left to answer."""


class Limits:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: App, *, max_body: int, max_in_flight: int, body_timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.max_in_flight = max_in_flight
        self.body_timeout = body_timeout
        # One event loop runs every request, and nothing awaits between the check and the count.
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await _refuse(send, 503, "the gateway is busy; try again", retry_after=1)
            return
        self.in_flight += 1
        try:
            await self._bounded(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is None:
            await _refuse(send, 400, "Content-Length is not a number")
            return
        if declared > self.max_body:
            await _refuse(send, 413, f"the body is over {self.max_body} bytes")
            return
        try:
            with anyio.fail_after(self.body_timeout):
                body = await self._read(receive)
        except _TooLarge:
            await _refuse(send, 413, f"the body is over {self.max_body} bytes")
            return
        except TimeoutError:
            await _refuse(send, 408, f"the body did not arrive within {self.body_timeout:g} s")
            return
        except _Gone:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    """The declared length (0 when none is declared: the streamed cap applies), None if malformed."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return 0


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the connection's own messages (a disconnect, say)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, error: str, retry_after: float | None = None) -> None:
    content = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(math.ceil(retry_after)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
