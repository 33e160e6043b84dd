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
