"""The sealed archive: deterministic, verified offline with the audit key; one changed byte anywhere
fails the check, and a changed, missing or added file is named."""

from __future__ import annotations

import io
import os
import random
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.evidence_bundle.archive import (
    MANIFEST,
    SIGNATURE,
    BundleExists,
    archive_bytes,
    seal,
    verify,
    write_atomically,
)
from flows.evidence_bundle.gather import Scope
from tests.flows.evidence_bundle.seeding import bundle_of, seeded

KEY = b"the audit key of the register written with it"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    state = tmp_path_factory.mktemp("state")
    register = seeded(state, random.Random(5))
    bundle, _ = bundle_of(register, Scope(), now=NOW)
    register.close()
    yield seal(bundle, KEY)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_a_sealed_bundle_verifies_and_is_laid_out_the_same_every_time(tmp_path: Path, sealed: bytes) -> None:
    result = verify(sealed, KEY)
    assert result.ok, result.findings
    assert result.files == len(members(sealed)) - 2
    assert archive_bytes(members(sealed)) == sealed  # the canonical layout, rebuilt from the files
    state = tmp_path / "again"
    register = seeded(state, random.Random(5))
    try:
        again, _ = bundle_of(register, Scope(), now=NOW)
    finally:
        register.close()
    # Another register seeded alike: the same files in the same places (times of the seeding differ).
    assert sorted(members(seal(again, KEY))) == sorted(members(sealed))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.floats(0, 1, exclude_max=True), flip=st.integers(1, 255))
def test_one_changed_byte_anywhere_fails_the_check(sealed: bytes, position: float, flip: int) -> None:
    at = int(position * len(sealed))
    changed = bytearray(sealed)
    changed[at] ^= flip
    result = verify(bytes(changed), KEY)
    assert not result.ok, f"byte {at} changed and the bundle still verified"


def test_the_tail_of_the_archive_byte_by_byte(sealed: bytes) -> None:
    # The zip's central directory and end record: not file content, still covered.
    for at in range(len(sealed) - 1200, len(sealed)):
        changed = bytearray(sealed)
        changed[at] ^= 0x01
        assert not verify(bytes(changed), KEY).ok, at


def test_a_changed_missing_or_added_file_is_named(sealed: bytes) -> None:
    files = members(sealed)
    edited = {**files, "controls.json": files["controls.json"].replace(b'"', b"'", 1)}
    result = verify(archive_bytes(edited), KEY)
    assert [(f.path, f.kind) for f in result.findings] == [("controls.json", "changed")]
    without = {k: v for k, v in files.items() if k != "risks.json"}
    result = verify(archive_bytes(without), KEY)
    assert [(f.path, f.kind) for f in result.findings] == [("risks.json", "missing")]
    added = {**files, "notes.txt": b"planted"}
    result = verify(archive_bytes(added), KEY)
    assert [(f.path, f.kind) for f in result.findings] == [("notes.txt", "extra")]


def test_another_key_or_a_changed_manifest_is_not_trusted(sealed: bytes) -> None:
    other = verify(sealed, b"some other key, not the audit log's")
    assert [(f.path, f.kind) for f in other.findings] == [(MANIFEST, "unsigned")]
    files = members(sealed)
    # The manifest re-made to match a changed file, but not re-signed: the signature gives it away.
    forged = {**files, "index.html": b"<p>nothing to see</p>"}
    import hashlib
    import json

    manifest = json.loads(files[MANIFEST])
    manifest["files"]["index.html"] = {"sha256": hashlib.sha256(b"<p>nothing to see</p>").hexdigest()}
    forged[MANIFEST] = json.dumps(manifest).encode()
    result = verify(archive_bytes(forged), KEY)
    assert (MANIFEST, "unsigned") in [(f.path, f.kind) for f in result.findings]
    gone = {k: v for k, v in files.items() if k != SIGNATURE}
    assert [(f.path, f.kind) for f in verify(archive_bytes(gone), KEY).findings] == [(SIGNATURE, "missing")]
    assert [f.kind for f in verify(b"not a zip at all", KEY).findings] == ["unreadable"]


def test_written_whole_or_not_at_all_and_never_over_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "bundle.zip"
    write_atomically(b"first", out, force=False)
    with pytest.raises(BundleExists):
        write_atomically(b"second", out, force=False)
    assert out.read_bytes() == b"first"
    write_atomically(b"third", out, force=True)
    assert out.read_bytes() == b"third"

    def broken(_: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(b"fourth", tmp_path / "other.zip", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip"]


def test_a_byte_changed_inside_a_file_names_that_file(sealed: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(sealed)) as zf:
        infos = [i for i in zf.infolist() if i.file_size]
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        changed = bytearray(sealed)
        changed[start + info.file_size // 2] ^= 0x20
        result = verify(bytes(changed), KEY)
        assert {f.path for f in result.findings} == {info.filename}, result.findings
