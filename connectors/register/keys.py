"""Keys and secrets kept in the state folder as files readable by their owner only (mode 0600).

The local stack makes them when the settings name none: the events' signing key and the audit log's
key. They live here, below infra/, because opening the register needs the audit key too.
"""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from pydantic import SecretStr

from schemas.settings import MIN_SIGNING_KEY_CHARS

AUDIT_KEY_FILE = "audit.key"


def audit_key_path(state_dir: Path) -> Path:
    return state_dir / AUDIT_KEY_FILE


def stored_audit_key(state_dir: Path) -> SecretStr | None:
    """The audit key `aims up` keeps in the state folder, if it made one (AIMS_AUDIT_KEY wins)."""
    return stored_key(audit_key_path(state_dir))


def read_secret(path: Path) -> str | None:
    """The secret kept in `path`, stripped; None if there is none to read."""
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def write_secret(path: Path, value: str) -> None:
    """Write `value` to `path`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    # O_EXCL with mode 0600: the secret is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    tmp.replace(path)


def stored_key(path: Path) -> SecretStr | None:
    text = read_secret(path)
    return SecretStr(text) if text is not None and len(text) >= MIN_SIGNING_KEY_CHARS else None


def ensure_key(path: Path) -> SecretStr:
    """The key in `path`, made on first use: random, readable by its owner only."""
    found = stored_key(path)
    if found is None:
        write_secret(path, secrets.token_hex(32))
        found = stored_key(path)
    assert found is not None
    return found
