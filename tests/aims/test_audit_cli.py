"""`aims audit verify` on a keyed log: the key from the state folder, anchors given by hand."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sqlalchemy import text

from connectors.register import open_register
from connectors.register.keys import audit_key_path, ensure_key
from schemas import records as r
from schemas.settings import AimsSettings
from tests.aims.runner import aims_process as aims
from tests.records import sample


def keyed_state(tmp_path: Path) -> tuple[int, str]:
    """A register written with the key `aims up` made in the state folder; its head."""
    ensure_key(audit_key_path(tmp_path))
    assert stat.S_IMODE(audit_key_path(tmp_path).stat().st_mode) == 0o600
    register = open_register(AimsSettings(state_dir=tmp_path, audit_key=None))
    assert register.audit_key is not None  # found in the state folder
    with register.unit_of_work("cli:ana") as uow:
        uow.systems.add(sample(r.AISystem))
        uow.systems.update("credit-scoring", owner="model-risk")
    head = register.audit_head()
    register.close()
    assert head is not None and head.keyed_from == 1
    return head.seq, head.hash


def test_a_keyed_log_verifies_against_a_review_packs_anchor(tmp_path: Path) -> None:
    seq, digest = keyed_state(tmp_path)
    ok = aims(tmp_path, "audit", "verify", "--no-anchors", "--anchor", f"{seq}:{digest}")
    assert ok.returncode == 0, ok.stderr
    assert "keyed from entry 1" in ok.stdout and "1 matched" in ok.stdout
    wrong = aims(tmp_path, "audit", "verify", "--no-anchors", "--anchor", f"{seq}:{'0' * 64}", "--json")
    report = json.loads(wrong.stdout)
    assert (
        wrong.returncode == 1 and report["problem"]["kind"] == "rewritten" and report["problem"]["seq"] == 1
    )
    bad = aims(tmp_path, "audit", "verify", "--anchor", "nope")
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


def test_without_the_key_a_keyed_log_is_not_called_intact(tmp_path: Path) -> None:
    keyed_state(tmp_path)
    audit_key_path(tmp_path).unlink()
    out = aims(tmp_path, "audit", "verify")
    assert out.returncode == 1 and "unkeyed" in out.stderr and "AIMS_AUDIT_KEY" in out.stderr
    # And nothing the key is not given to can write to it.
    register = open_register(AimsSettings(state_dir=tmp_path))
    with register.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar()
    refused = aims(tmp_path, "parties", "add", "--party", "p", "--need", "n", "--by", "ana@northwind.example")
    assert refused.returncode != 0 and "AIMS_AUDIT_KEY" in refused.stderr
    with register.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == before
