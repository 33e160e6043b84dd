"""The AIMS register: the system of record, behind `Register.unit_of_work(actor)`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import SecretStr

    from connectors.register.store import Register
    from schemas.settings import AimsSettings


def audit_key(settings: AimsSettings) -> SecretStr | None:
    """The audit log's key: AIMS_AUDIT_KEY(_FILE), else the key the local stack made in the state
    folder. Read without opening the register (an evidence bundle is verified offline with it)."""
    from connectors.register.keys import stored_audit_key

    return settings.audit_key or stored_audit_key(settings.state_path)


def open_register(settings: AimsSettings, migrate: bool = True) -> Register:
    """The register the settings name, its schema brought up to date unless `migrate` is False."""
    from connectors.register.legacy import import_legacy_evidence
    from connectors.register.store import Register

    url = settings.database_url.get_secret_value() if settings.database_url else None
    # AIMS_AUDIT_KEY(_FILE), else the key the local stack made in the state folder: every process
    # beside the stack (CLI, demo, flows) chains the audit log with the same key.
    key = audit_key(settings)
    register = Register.for_state(settings.state_path, url, key)
    if migrate:
        register.ensure_schema()
        import_legacy_evidence(register, settings.state_path)
    return register
