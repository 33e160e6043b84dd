"""The audit key: from AIMS_AUDIT_KEY, else AIMS_AUDIT_KEY_FILE; long enough; never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.settings import AimsSettings


def test_the_key_comes_from_the_variable_else_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIMS_AUDIT_KEY", raising=False)
    secret = tmp_path / "audit.key"
    secret.write_text("f" * 40 + "\n")
    monkeypatch.setenv("AIMS_AUDIT_KEY_FILE", str(secret))
    key = AimsSettings().audit_key
    assert key is not None and key.get_secret_value() == "f" * 40
    monkeypatch.setenv("AIMS_AUDIT_KEY", "v" * 40)
    key = AimsSettings().audit_key
    assert key is not None and key.get_secret_value() == "v" * 40


def test_a_short_or_unreadable_key_is_refused_without_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIMS_AUDIT_KEY_FILE", raising=False)
    monkeypatch.setenv("AIMS_AUDIT_KEY", "short-secret")
    with pytest.raises(ValidationError, match="audit_key") as info:
        AimsSettings()
    assert "short-secret" not in str(info.value)
    monkeypatch.delenv("AIMS_AUDIT_KEY")
    monkeypatch.setenv("AIMS_AUDIT_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(ValidationError, match="cannot read"):
        AimsSettings()


def test_the_key_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMS_AUDIT_KEY", "k" * 40)
    settings = AimsSettings()
    assert "k" * 40 not in repr(settings) and "k" * 40 not in settings.model_dump_json()
