"""The client factory: the cluster's security reaches every client, and a security failure says
which setting to fix. Checked without a broker (tests/integration/test_kafka_security.py has one)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from events.kafka_clients import (
    KafkaConnection,
    KafkaSecurity,
    KafkaSecurityError,
    client_options,
    make_admin,
    make_consumer,
    make_producer,
)
from events.kafka_security import bootstrap_addresses, probe_tls
from schemas.settings import AimsSettings
from tests.tls import pem_server_files

PASSWORD = "never-shown-0123"


def sasl_ssl(cafile: Path | None = None, password: str = PASSWORD) -> KafkaSecurity:
    return KafkaSecurity(protocol="SASL_SSL", username="router", password=SecretStr(password), cafile=cafile)


def test_plaintext_is_the_default_and_carries_no_credentials() -> None:
    options = client_options(KafkaConnection("127.0.0.1:9092"), {"acks": "all"}, {})
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "acks": "all", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_reaches_the_client_and_an_override_cannot_drop_it(tmp_path: Path) -> None:
    ca, _, _ = pem_server_files(tmp_path)
    kafka = KafkaConnection("broker:9093", sasl_ssl(ca))
    options = client_options(kafka, {}, {"security_protocol": "PLAINTEXT", "client_id": "x"})
    assert options["security_protocol"] == "SASL_SSL" and options["client_id"] == "x"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("router", PASSWORD)
    # kafka-python logs its whole configuration at DEBUG: the password shows as stars there.
    assert PASSWORD not in repr(options) and PASSWORD not in f"{options}"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext) and context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED and len(context.get_ca_certs()) == 1


def test_the_settings_build_the_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9093,k2:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "gateway")
    (tmp_path / "pw").write_text(PASSWORD)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "pw"))
    kafka = KafkaConnection.from_settings(AimsSettings())
    options = client_options(kafka, {}, {})
    assert (
        options["bootstrap_servers"] == "k1:9093,k2:9093" and options["security_protocol"] == "SASL_PLAINTEXT"
    )
    assert (options["sasl_mechanism"], options["sasl_plain_password"]) == ("PLAIN", PASSWORD)
    assert "ssl_context" not in options


def test_secrets_are_not_in_what_gets_printed(tmp_path: Path) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        username="router",
        password=SecretStr(PASSWORD),
        key_password=SecretStr(PASSWORD),
    )
    shown = repr(KafkaConnection("k:9093", security)) + security.describe()
    assert PASSWORD not in shown and "router" in shown


def test_a_missing_ca_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(KafkaSecurityError, match="KAFKA_SSL_CAFILE="):
        make_producer(KafkaConnection("127.0.0.1:9", sasl_ssl(tmp_path / "absent.pem")))


def test_a_client_key_that_does_not_load_names_the_settings(tmp_path: Path) -> None:
    ca, cert, _ = pem_server_files(tmp_path)
    security = KafkaSecurity(protocol="SSL", cafile=ca, certfile=cert, keyfile=ca)  # not a key
    with pytest.raises(KafkaSecurityError, match=r"KAFKA_SSL_CERTFILE=.*KAFKA_SSL_KEYFILE="):
        make_consumer(KafkaConnection("127.0.0.1:9", security), None)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS listener on loopback with a certificate of its own CA: (port, that CA's file)."""
    ca, cert, key = pem_server_files(tmp_path / "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused our certificate: what the tests want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], ca
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_broker_certificate_from_another_ca_fails_at_once_naming_the_ca_setting(
    tls_server: tuple[int, Path], tmp_path: Path
) -> None:
    port, _ = tls_server
    other_ca, _, _ = pem_server_files(tmp_path / "other")
    with pytest.raises(KafkaSecurityError) as caught:
        make_admin(KafkaConnection(f"127.0.0.1:{port}", sasl_ssl(other_ca)))
    message = str(caught.value)
    assert "not trusted" in message and f"KAFKA_SSL_CAFILE={other_ca}" in message
    assert PASSWORD not in message


def test_the_system_trust_store_does_not_trust_a_private_ca_either(tls_server: tuple[int, Path]) -> None:
    port, _ = tls_server
    with pytest.raises(KafkaSecurityError, match=r"system trust store.*set KAFKA_SSL_CAFILE"):
        make_producer(KafkaConnection(f"127.0.0.1:{port}", sasl_ssl(None)))


def test_the_right_ca_passes_the_handshake(tls_server: tuple[int, Path]) -> None:
    port, ca = tls_server
    security = sasl_ssl(ca)
    probe_tls(f"127.0.0.1:{port}", security, security.ssl_context())  # raises if refused


def test_a_plaintext_listener_spoken_to_in_tls_names_the_protocol_setting() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_in_plaintext() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"\x00\x00\x00\x08not tls!")

    thread = threading.Thread(target=answer_in_plaintext, daemon=True)
    thread.start()
    security = KafkaSecurity(protocol="SSL")
    try:
        with pytest.raises(KafkaSecurityError, match="KAFKA_SECURITY_PROTOCOL"):
            probe_tls(f"127.0.0.1:{listener.getsockname()[1]}", security, security.ssl_context())
    finally:
        thread.join(5)
        listener.close()


def test_a_refused_password_names_the_settings_and_never_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kafka.errors import SaslAuthenticationFailedError

    def refusing(**options: Any) -> None:
        raise SaslAuthenticationFailedError("SaslAuthenticationFailedError: Authentication failed")

    monkeypatch.setattr("kafka.KafkaProducer", refusing)
    with pytest.raises(KafkaSecurityError) as caught:
        make_producer(
            KafkaConnection(
                "127.0.0.1:9", KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "router", SecretStr(PASSWORD))
            )
        )
    message = str(caught.value)
    assert "refused user 'router'" in message and "KAFKA_SASL_PASSWORD" in message
    assert PASSWORD not in message


def test_other_failures_stay_as_kafka_raised_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka.errors import KafkaTimeoutError

    def unreachable(**options: Any) -> None:
        raise KafkaTimeoutError("Unable to bootstrap")

    monkeypatch.setattr("kafka.KafkaConsumer", unreachable)
    with pytest.raises(KafkaTimeoutError):
        make_consumer(KafkaConnection("127.0.0.1:9"), "g")


def test_bootstrap_addresses_are_parsed_as_kafka_writes_them() -> None:
    assert bootstrap_addresses("a:9093, b , [::1]:9094,") == [("a", 9093), ("b", 9092), ("::1", 9094)]


def test_a_plaintext_client_that_cannot_bootstrap_from_a_tls_listener_is_told_the_protocol(
    tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka.errors import KafkaTimeoutError

    def cannot_bootstrap(**options: Any) -> None:
        raise KafkaTimeoutError("Unable to bootstrap")  # what kafka-python says after its timeout

    monkeypatch.setattr("kafka.KafkaAdminClient", cannot_bootstrap)
    port, _ = tls_server
    with pytest.raises(KafkaSecurityError, match="speak TLS, not PLAINTEXT: set KAFKA_SECURITY_PROTOCOL"):
        make_admin(KafkaConnection(f"127.0.0.1:{port}"))
    # Nobody listening is not a security problem: the timeout stays what it was.
    closed = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    with pytest.raises(KafkaTimeoutError):
        make_admin(KafkaConnection(address))
