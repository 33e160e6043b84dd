"""The SASL login probe reads what a broker (or anything listening on its port) answers: whatever the
bytes, it names a refusal it understood or returns None and leaves the client to try, never crashes."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from events.kafka_security import KafkaSecurity, sasl_login

SECURITY = KafkaSecurity(protocol="SASL_SSL", username="aims", password=SecretStr("the-password"))


def _answering(respond: Callable[[socket.socket], None]) -> str | None:
    """`sasl_login` against a peer on a socket pair that answers with `respond`, then closes."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)

    def peer() -> None:
        try:
            respond(theirs)
        except OSError:
            pass
        finally:
            theirs.close()

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    try:
        return sasl_login(ours, SECURITY)
    finally:
        ours.close()
        thread.join(5)


def _read_request(sock: socket.socket) -> int:
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    request = sock.recv(size, socket.MSG_WAITALL)
    return int(struct.unpack_from(">i", request, 4)[0])  # the correlation id


def _frame(correlation: int, body: bytes) -> bytes:
    return struct.pack(">ii", 4 + len(body), correlation) + body


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_for_an_answer_give_none_or_a_named_setting(garbage: bytes) -> None:
    def respond(sock: socket.socket) -> None:
        _read_request(sock)
        sock.sendall(garbage)

    result = _answering(respond)
    assert result is None or "KAFKA_SASL_" in result


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.integers(-(2**15), 2**15 - 1))
def test_any_handshake_body_gives_none_or_a_named_setting(body: bytes, error: int) -> None:
    def respond(sock: socket.socket) -> None:
        correlation = _read_request(sock)
        sock.sendall(_frame(correlation, struct.pack(">h", error) + body))

    result = _answering(respond)
    assert result is None or "KAFKA_SASL_" in result


def test_a_refused_mechanism_names_what_the_broker_offers() -> None:
    def respond(sock: socket.socket) -> None:
        correlation = _read_request(sock)
        offered = b"PLAIN"
        sock.sendall(_frame(correlation, struct.pack(">hih", 33, 1, len(offered)) + offered))

    result = _answering(respond)
    assert result is not None and "do not offer SCRAM-SHA-512 (they offer PLAIN)" in result
    assert "KAFKA_SASL_MECHANISM" in result


def test_a_refused_login_names_the_user_and_never_the_password() -> None:
    def respond(sock: socket.socket) -> None:
        correlation = _read_request(sock)
        mechanism = b"SCRAM-SHA-512"
        sock.sendall(_frame(correlation, struct.pack(">hih", 0, 1, len(mechanism)) + mechanism))
        correlation = _read_request(sock)
        message = b"Authentication failed"
        sock.sendall(
            _frame(correlation, struct.pack(">hh", 58, len(message)) + message + struct.pack(">i", 0))
        )

    result = _answering(respond)
    assert result is not None and "refused user 'aims'" in result and "KAFKA_SASL_PASSWORD" in result
    assert "the-password" not in result


def test_a_peer_that_closes_at_once_is_left_to_the_client() -> None:
    assert _answering(lambda sock: None) is None
