"""Settings read from the environment: every variable through `AimsSettings`, keyword arguments first."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from schemas.settings import AimsSettings, environment_values, load_settings


def test_prefixed_variables_set_fields_case_insensitively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_EVENTS_PARTITIONS", "7")
    monkeypatch.setenv("aims_events_topic", "lower.case")
    settings = AimsSettings()
    assert settings.events_partitions == 7
    assert settings.events_topic == "lower.case"


def test_aliases_are_read_in_order_and_keyword_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "first:9092")
    monkeypatch.setenv("AIMS_KAFKA_BOOTSTRAP_SERVERS", "second:9092")
    monkeypatch.setenv("AIMS_STATE_DIR", "/from/env")
    assert AimsSettings().kafka_bootstrap_servers == "first:9092"
    overridden = load_settings(kafka_bootstrap_servers="kw:9092", state_dir=Path("/kw"))
    assert overridden.kafka_bootstrap_servers == "kw:9092"
    assert overridden.state_dir == Path("/kw")


def test_an_invalid_variable_names_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_WARM_GX_PROCESSES", "33")
    with pytest.raises(ValidationError) as caught:
        AimsSettings()
    assert caught.value.errors()[0]["loc"] == ("warm_gx_processes",)


def test_the_variables_read_outside_settings_before_are_settings_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_WARM_GX_PROCESSES", "0")
    monkeypatch.setenv("AIMS_DQ_PASSWORD", "s3cr/t")
    monkeypatch.setenv("AIMS_PG_BIN", "/opt/pg/bin")
    settings = AimsSettings()
    assert settings.warm_gx_processes == 0
    assert settings.dq_password == SecretStr("s3cr/t")
    assert "s3cr/t" not in repr(settings) and "s3cr/t" not in str(settings.model_dump())
    assert settings.pg_bin == Path("/opt/pg/bin")


def test_defaults_hold_without_variables() -> None:
    assert environment_values(AimsSettings, {}) == {}
    settings = AimsSettings.model_validate({})
    assert settings.warm_gx_processes == 1 and settings.dq_password is None and settings.pg_bin is None


def test_unknown_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_NO_SUCH_SETTING", "x")
    assert not hasattr(AimsSettings(), "no_such_setting")


# -- Kafka client security (issue 20, point 1) ---------------------------------------------------


def test_kafka_security_is_read_under_kafkas_names_then_the_prefixed_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AIMS_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("AIMS_KAFKA_SASL_PASSWORD", "pw-from-env")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("KAFKA_SSL_CHECK_HOSTNAME", "false")
    settings = AimsSettings()
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "PLAIN"
    assert settings.kafka_sasl_username == "router"
    assert settings.kafka_sasl_password == SecretStr("pw-from-env")
    assert settings.kafka_ssl_cafile == tmp_path / "ca.pem" and settings.kafka_ssl_check_hostname is False
    assert "pw-from-env" not in repr(settings) and "pw-from-env" not in str(settings.model_dump())


def test_the_default_is_plaintext_without_credentials() -> None:
    settings = AimsSettings.model_validate({})
    assert settings.kafka_security_protocol == "PLAINTEXT" and settings.kafka_sasl_password is None
    assert settings.kafka_local_security == "plaintext"


def test_a_password_file_is_read_when_the_password_is_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-mounted-file\n")  # as container platforms write them: with a line break
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    monkeypatch.setenv("AIMS_KAFKA_SASL_PASSWORD_FILE", str(secret))
    assert AimsSettings().kafka_sasl_password == SecretStr("from-a-mounted-file")
    # The variable itself wins over the file.
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-the-variable")
    assert AimsSettings().kafka_sasl_password == SecretStr("from-the-variable")


def test_every_secret_takes_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The variables themselves win over their files: unset here (the session stack sets the token).
    for variable in ("AIMS_SLACK_BOT_TOKEN", "AIMS_EVENTS_TOPIC"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "token").write_text("xoxb-from-file")
    monkeypatch.setenv("AIMS_SLACK_BOT_TOKEN_FILE", str(tmp_path / "token"))
    assert AimsSettings().slack_bot_token == SecretStr("xoxb-from-file")
    # Files are for secrets only: a plain setting is never read from one.
    monkeypatch.setenv("AIMS_EVENTS_TOPIC_FILE", str(tmp_path / "token"))
    assert AimsSettings().events_topic == "aims.events"


def test_a_missing_password_file_names_its_variable_not_a_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValidationError) as caught:
        AimsSettings()
    error = caught.value.errors()[0]
    assert error["loc"] == ("kafka_sasl_password",)
    assert f"KAFKA_SASL_PASSWORD_FILE={tmp_path / 'absent'}" in error["msg"]


def test_sasl_without_a_user_and_password_is_refused_when_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "router")
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD"):
        AimsSettings()


def test_a_client_certificate_needs_its_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(tmp_path / "client.pem"))
    with pytest.raises(ValidationError, match="KAFKA_SSL_KEYFILE"):
        AimsSettings()


def test_an_unknown_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValidationError) as caught:
        AimsSettings()
    assert caught.value.errors()[0]["loc"] == ("kafka_security_protocol",)
