"""The local broker's SASL_SSL set-up, checked without starting Java."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.kafka_broker import KafkaBroker
from infra.kafka_tls import CLIENT_USER, ensure_local_tls, stored_client_security, with_local_security
from schemas.settings import AimsSettings, environment_values


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secrets_are_private_and_kept_across_set_ups(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path)
    for secret in (tls.keystore, tls.password_file("broker"), tls.password_file(CLIENT_USER)):
        assert mode(secret) == 0o600, secret
    assert mode(tls.folder) == 0o700
    password = tls.secret(CLIENT_USER)
    assert ensure_local_tls(tmp_path).secret(CLIENT_USER) == password, "the SCRAM users are in the storage"


def test_processes_get_the_password_by_file_never_in_their_environment(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path)
    env = tls.client_env()
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["KAFKA_SSL_CAFILE"] == str(tls.cafile)
    assert tls.secret(CLIENT_USER) not in "".join(env.values())
    # What a process of the stack reads from that environment: the password, from its file.
    read = AimsSettings.model_validate(environment_values(AimsSettings, env))
    assert read.kafka_sasl_password is not None
    assert read.kafka_sasl_password.get_secret_value() == tls.secret(CLIENT_USER)


def test_the_cli_beside_a_sasl_ssl_stack_uses_its_broker_security(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Beside the stack means no cluster of one's own (the session stack exports its broker's address).
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "AIMS_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(variable, raising=False)
    ensure_local_tls(tmp_path / "kafka")
    stored = stored_client_security(tmp_path / "kafka")
    assert stored is not None and stored.username == CLIENT_USER
    beside = with_local_security(AimsSettings(state_dir=tmp_path))
    assert beside.kafka_security_protocol == "SASL_SSL" and beside.kafka_sasl_username == CLIENT_USER
    # A cluster of its own: the local broker's security is not the settings' business.
    elsewhere = with_local_security(AimsSettings(state_dir=tmp_path, kafka_bootstrap_servers="k:9093"))
    assert elsewhere.kafka_security_protocol == "PLAINTEXT"


@pytest.mark.parametrize("security", ["plaintext", "sasl_ssl"])
def test_the_broker_listens_as_asked_and_keeps_its_config_private(tmp_path: Path, security: str) -> None:
    broker = KafkaBroker(tmp_path, security=security)  # type: ignore[arg-type]
    broker.home.mkdir(parents=True)
    node = broker.nodes[0]
    node.port, node.controller_port = 9001, 9002
    if security == "sasl_ssl":
        broker.tls = ensure_local_tls(broker.home)
    config = broker._write_config(node)
    lines = config.read_text().splitlines()
    listener = "SASL_SSL" if security == "sasl_ssl" else "PLAINTEXT"
    assert f"advertised.listeners={listener}://127.0.0.1:9001" in lines
    assert f"inter.broker.listener.name={listener}" in lines
    assert mode(config) == 0o600
    if security == "sasl_ssl":
        assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
        assert broker.connection.security.protocol == "SASL_SSL"
        assert not any(line.startswith("PLAINTEXT") or "PLAINTEXT://" in line for line in lines)
    else:
        assert broker.connection.security.protocol == "PLAINTEXT"


def test_the_stacks_processes_reach_its_broker_not_the_environments_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.stack import LocalStack

    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "another-clusters-password")
    monkeypatch.setenv("aims_kafka_ssl_cafile", "/etc/other-ca.pem")  # read case-insensitively
    monkeypatch.setenv("KAFKA_SSL_CERTFILE_FILE", "/nonsense")
    stack = LocalStack(AimsSettings(state_dir=tmp_path))
    stack.broker = KafkaBroker(tmp_path, security="sasl_ssl")
    stack.broker.nodes[0].port = 9001
    stack.broker.tls = ensure_local_tls(stack.broker.home)
    stack.bootstrap = stack.broker.bootstrap
    env = stack.child_env()
    assert "another-clusters-password" not in env.values() and "/etc/other-ca.pem" not in env.values()
    assert "KAFKA_SSL_CERTFILE_FILE" not in env
    read = AimsSettings.model_validate(environment_values(AimsSettings, env))
    assert read.kafka_bootstrap_servers == "127.0.0.1:9001" and read.kafka_sasl_username == CLIENT_USER
    assert read.kafka_ssl_cafile == stack.broker.tls.cafile
    assert stack.kafka.security == stack.broker.connection.security
