"""How clients authenticate to the brokers and encrypt what they send, and what to fix when they can't.

kafka-python retries a failed TLS handshake until its bootstrap timeout (30 s) and then says only
"Unable to bootstrap"; a refused SASL password is raised, but as a bare error code. The client factory
(events/kafka_clients.py) therefore builds the TLS context itself (a bad CA or key file fails at once),
tries one TLS handshake before building a TLS client (an untrusted certificate fails at once), and
raises `KafkaSecurityError` with the setting to fix.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from schemas.settings import FILE_SUFFIX, AimsSettings, KafkaSaslMechanism, KafkaSecurityProtocol, env_names

# The pre-flight handshake's limit: a broker that does not answer at all is not a security problem,
# and is left to the client's own retries.
PROBE_TIMEOUT_S = 5.0
SASL_SETTINGS = "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"


class MaskedSecret(str):
    """A secret handed to kafka-python: the string itself, but `repr` (which kafka-python uses when it
    logs its whole configuration at DEBUG, e.g. "Starting KafkaAdminClient with configuration")
    shows stars."""

    def __repr__(self) -> str:
        return "'**********'"


class KafkaSecurityError(RuntimeError):
    """The brokers refused this client's credentials, or it did not trust theirs. Names the setting."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The security settings of every client (schemas/settings.py: KAFKA_SECURITY_PROTOCOL and on)."""

    protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: SecretStr | None = field(default=None, repr=False)
    check_hostname: bool = True

    @classmethod
    def from_settings(cls, settings: AimsSettings) -> KafkaSecurity:
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
            key_password=settings.kafka_ssl_key_password,
            check_hostname=settings.kafka_ssl_check_hostname,
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def describe(self) -> str:
        """What a person needs to recognise this security by; never a secret."""
        parts: list[str] = [self.protocol]
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} as {self.username}")
        if self.uses_tls:
            parts.append(f"CA {self.cafile or 'from the system trust store'}")
        return ", ".join(parts)

    def client_options(self) -> dict[str, Any]:
        """kafka-python's keyword arguments for this security. They hold secrets: never log them."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            if self.username is None or self.password is None:
                raise KafkaSecurityError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs {SASL_SETTINGS}")
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": MaskedSecret(self.password.get_secret_value()),
            }
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """kafka-python's own recipe (kafka.net.transport), built once so a bad file fails here."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.check_hostname
        try:
            if self.cafile is not None:
                context.load_verify_locations(str(self.cafile))
            else:
                context.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(
                f"KAFKA_SSL_CAFILE={self.cafile}: not a readable PEM CA file ({exc})"
            ) from None
        if self.certfile is not None:
            try:
                context.load_cert_chain(
                    certfile=str(self.certfile),
                    keyfile=str(self.keyfile) if self.keyfile else None,
                    password=self.key_password.get_secret_value() if self.key_password else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise KafkaSecurityError(
                    f"KAFKA_SSL_CERTFILE={self.certfile} with KAFKA_SSL_KEYFILE={self.keyfile}: cannot "
                    f"load the client certificate and key ({exc}); check them and KAFKA_SSL_KEY_PASSWORD"
                ) from None
        return context


def probe_tls(
    bootstrap: str, security: KafkaSecurity, context: ssl.SSLContext, timeout: float = PROBE_TIMEOUT_S
) -> None:
    """One TLS handshake with the first bootstrap server that answers; raise if it is a security failure.

    A server that does not answer is left to the client's retries (a broker restarting is not an
    error). With SASL, one login follows over that connection (`sasl_login`): kafka-python 3.0.12
    loses the broker's refusal on a TLS connection and retries a wrong password until its bootstrap
    timeout, as if the broker were away.
    """
    for host, port, raw in _answering(bootstrap, timeout):
        try:
            with raw, context.wrap_socket(raw, server_hostname=host.rstrip(".")) as tls:
                if security.uses_sasl:
                    problem = sasl_login(tls, security)
                    if problem is not None:
                        raise KafkaSecurityError(f"Kafka at {host}:{port}: {problem}")
                return
        except ssl.SSLCertVerificationError as exc:
            raise KafkaSecurityError(f"Kafka at {host}:{port}: {untrusted(exc, security)}") from None
        except ssl.SSLError as exc:
            raise KafkaSecurityError(
                f"Kafka at {host}:{port}: the TLS handshake failed ({exc.reason or exc}): does this listener "
                f"speak {security.protocol}? Check KAFKA_SECURITY_PROTOCOL and KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        except OSError:
            continue  # closed mid-handshake: the client's retries will tell


# -- one SASL login, as a client's first requests (Kafka protocol: SaslHandshake v1, SaslAuthenticate v0) --

_SASL_HANDSHAKE, _SASL_AUTHENTICATE = 17, 36
_UNSUPPORTED_SASL_MECHANISM, _SASL_AUTHENTICATION_FAILED = 33, 58
_MAX_RESPONSE_BYTES = 64 * 1024  # SASL answers are a few hundred bytes; more is not a broker talking


def sasl_login(sock: socket.socket, security: KafkaSecurity) -> str | None:
    """Log in once on a connected (and TLS-wrapped) socket: what to fix if the broker refuses, else None.

    Anything other than a clear refusal (a broker that closes, answers oddly or slowly) returns None:
    the real client then tries, and reports it in its own words.
    """
    from kafka.net.sasl.scram import ScramClient

    assert security.username is not None and security.password is not None  # settings require both
    mechanism = security.sasl_mechanism
    try:
        error, offered = _handshake(sock, mechanism)
        if error == _UNSUPPORTED_SASL_MECHANISM:
            return (
                f"the brokers do not offer {mechanism} (they offer {', '.join(offered) or 'none'}): "
                "check KAFKA_SASL_MECHANISM"
            )
        if error:
            return None
        password = security.password.get_secret_value()
        if mechanism == "PLAIN":
            error = _authenticate(sock, 2, b"\0" + security.username.encode() + b"\0" + password.encode())[0]
        else:
            scram = ScramClient(security.username, password, mechanism)
            error, server_first = _authenticate(sock, 2, scram.first_message())
            if not error:
                scram.process_server_first_message(server_first)
                error = _authenticate(sock, 3, scram.final_message())[0]
    except (OSError, ValueError, KeyError, struct.error):
        return None
    if error == _SASL_AUTHENTICATION_FAILED:
        return (
            f"the brokers refused user {security.username!r} with {mechanism}: check {SASL_SETTINGS} "
            "and KAFKA_SASL_MECHANISM"
        )
    return None


def _handshake(sock: socket.socket, mechanism: str) -> tuple[int, list[str]]:
    body = _call(sock, _SASL_HANDSHAKE, 1, 1, _string(mechanism))
    (error, count), at = struct.unpack_from(">hi", body), 6
    offered = []
    for _ in range(min(count, 16)):
        (length,) = struct.unpack_from(">h", body, at)
        offered.append(body[at + 2 : at + 2 + length].decode("utf-8", "replace"))
        at += 2 + length
    return error, offered


def _authenticate(sock: socket.socket, correlation: int, auth: bytes) -> tuple[int, bytes]:
    body = _call(sock, _SASL_AUTHENTICATE, 0, correlation, struct.pack(">i", len(auth)) + auth)
    (error, message_length), at = struct.unpack_from(">hh", body), 4
    at += max(message_length, 0)  # the broker's message: the caller words its own
    (length,) = struct.unpack_from(">i", body, at)
    return error, body[at + 4 : at + 4 + max(length, 0)]


def _call(sock: socket.socket, api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    # Request header v1 (api key, version, correlation id, client id); the response header is v0.
    request = struct.pack(">hhi", api_key, version, correlation) + _string("aims-login-probe") + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    (size,) = struct.unpack(">i", _read(sock, 4))
    if not 4 <= size <= _MAX_RESPONSE_BYTES:
        raise ValueError(f"not a Kafka response of {size} bytes")
    response = _read(sock, size)
    if struct.unpack_from(">i", response)[0] != correlation:
        raise ValueError("the response answers another request")
    return response[4:]


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def speaks_tls(bootstrap: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the first bootstrap server that answers completes a TLS handshake (trusted or not).

    Asked only after a plaintext client could not bootstrap: a TLS listener then explains why.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only "is this TLS?": nothing is sent over it
    for host, _, raw in _answering(bootstrap, timeout):
        try:
            with raw, context.wrap_socket(raw, server_hostname=host.rstrip(".")):
                return True
        except OSError:
            return False
    return False


def _answering(bootstrap: str, timeout: float) -> Iterator[tuple[str, int, socket.socket]]:
    """Each bootstrap server that accepts a connection, in order, with that connection (the caller
    closes it); a server that does not answer is skipped, left to the client's own retries."""
    for host, port in bootstrap_addresses(bootstrap):
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
        except OSError:
            continue
        yield host, port, raw


def untrusted(exc: ssl.SSLCertVerificationError, security: KafkaSecurity) -> str:
    reason = str(exc.verify_message or exc.reason or exc)
    if "hostname" in reason.lower() or "ip address" in reason.lower():
        return (
            f"the broker's certificate does not name the address connected to ({reason}): list the "
            "brokers in KAFKA_BOOTSTRAP_SERVERS by a name their certificates carry"
        )
    trust = f"KAFKA_SSL_CAFILE={security.cafile}" if security.cafile else "the system trust store"
    return (
        f"the broker's certificate is not trusted ({reason}) by {trust}: set KAFKA_SSL_CAFILE to the "
        "CA that signed the brokers' certificates"
    )


def refused(exc: BaseException, security: KafkaSecurity) -> str | None:
    """The setting to fix when kafka-python raised a security failure; None for any other failure."""
    from kafka.errors import SaslAuthenticationFailedError, UnsupportedSaslMechanismError

    if isinstance(exc, SaslAuthenticationFailedError):
        return (
            f"the brokers refused user {security.username!r} with {security.sasl_mechanism}: check "
            f"{SASL_SETTINGS} and KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the brokers do not offer {security.sasl_mechanism} ({exc}): check KAFKA_SASL_MECHANISM"
    return None


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """`host:port,[v6]:port` as (host, port) pairs; a missing port is Kafka's 9092."""
    addresses = []
    for item in (part.strip() for part in bootstrap.split(",")):
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        addresses.append((host, int(port) if port.isdigit() else 9092))
    return addresses


def kafka_security_variables() -> list[str]:
    """Every variable the Kafka client security is read from (KAFKA_… and AIMS_KAFKA_…, and *_FILE)."""
    names = [
        variable
        for name, field in AimsSettings.model_fields.items()
        if name.startswith(("kafka_security", "kafka_sasl", "kafka_ssl"))
        for variable in env_names(name, field)
    ]
    return names + [name + FILE_SUFFIX for name in names]


def without_kafka_security(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without any Kafka client security: for processes that talk to a local broker of their own,
    not to whatever cluster the environment names. Settings read variables case-insensitively: so is
    the clean-up."""
    dropped = {variable.upper() for variable in kafka_security_variables()}
    return {key: value for key, value in env.items() if key.upper() not in dropped}
