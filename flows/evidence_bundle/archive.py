"""The bundle as one archive: a deterministic zip, a manifest of every file's SHA-256 signed with the
audit log's key, written atomically; and its offline check.

The manifest is RFC 8785 (JCS) text and its signature an HMAC-SHA256 with the audit key over a domain
tag and those bytes — the audit log's own canonical JSON and key (`connectors.register.audit.jcs`,
AIMS_AUDIT_KEY), so an auditor who trusts the log's key trusts the bundle. The zip is laid out
canonically (names sorted, stored uncompressed, fixed times and attributes): the check rebuilds it from
what it read, so a changed byte anywhere, in a file or in the zip's own structure, is found.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.register.audit import jcs
from flows.evidence_bundle.gather import Bundle
from flows.evidence_bundle.render import index_html

FORMAT = "aims-evidence-bundle/1"
INDEX = "index.html"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_DOMAIN = b"aims.evidence.manifest.v1\n"
_TIME = (1980, 1, 1, 0, 0, 0)  # every member's time: the bundle's time is in its manifest
_MODE = 0o100644 << 16
# What reading a damaged zip can raise (a changed byte can turn any field into nonsense).
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    KeyError,
    struct.error,
    RuntimeError,
)


class BundleExists(FileExistsError):
    """--out names a file that exists, and --force was not given."""


def as_json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def bundle_files(bundle: Bundle) -> dict[str, bytes]:
    """Every file of the bundle but the manifest and its signature: archive path → content."""
    files: dict[str, bytes] = {
        "controls.json": as_json(bundle.controls),
        "soa.json": as_json(bundle.soa),
        "audit.json": as_json(bundle.audit),
        **{f"{name}.json": as_json(items) for name, items in bundle.sections.items()},
        **{path: text.encode() for path, text in bundle.texts.items()},
    }
    for path, disk in sorted(bundle.attachments.items()):
        files[path] = disk.read_bytes()
    listing = sorted([*files, INDEX, MANIFEST, SIGNATURE])
    files[INDEX] = index_html(bundle, listing).encode()
    return files


def manifest_bytes(files: Mapping[str, bytes], bundle: Bundle) -> bytes:
    return jcs(
        {
            "format": FORMAT,
            "generated_at": bundle.generated_at.isoformat(),
            "organisation": bundle.organisation,
            "period": bundle.scope.describe(),
            "controls": [c["id"] for c in bundle.controls],
            "audit_head": bundle.audit.get("anchor_text"),
            "files": {
                path: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                for path, data in sorted(files.items())
            },
        }
    ).encode()


def sign(manifest: bytes, key: bytes) -> bytes:
    tag = hmac.new(key, _DOMAIN + manifest, hashlib.sha256).hexdigest()
    return jcs({"scheme": "hmac-sha256", "key": "the audit log's key", "signature": tag}).encode()


def archive_bytes(members: Mapping[str, bytes]) -> bytes:
    """The canonical zip of `members`: sorted names, stored, fixed times and attributes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = _MODE
            zf.writestr(info, members[name])
    return buffer.getvalue()


def seal(bundle: Bundle, key: bytes) -> bytes:
    """The archive: the bundle's files, the manifest of them and the manifest's signature."""
    files = bundle_files(bundle)
    manifest = manifest_bytes(files, bundle)
    return archive_bytes({**files, MANIFEST: manifest, SIGNATURE: sign(manifest, key)})


def write_atomically(data: bytes, out: Path, *, force: bool) -> None:
    """`data` at `out`, whole or not at all: written beside it, then linked (or, with `force`,
    renamed) into place. Without `force` an existing `out` is left alone (BundleExists)."""
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        if force:
            tmp.replace(out)
            return
        try:
            os.link(tmp, out)  # fails if `out` exists, even one made a moment ago by someone else
        except FileExistsError:
            raise BundleExists(f"{out} exists (--force replaces it)") from None
    finally:
        tmp.unlink(missing_ok=True)


# -- the check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: str
    kind: str  # changed, missing, extra, unreadable, unsigned, layout
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.path} — {self.detail}"


@dataclass
class Verification:
    files: int = 0
    findings: list[Finding] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


def _read_members(data: bytes, report: Verification) -> dict[str, bytes] | None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except _READ_ERRORS as exc:
        report.findings.append(Finding("(archive)", "unreadable", f"not a readable zip archive: {exc}"))
        return None
    members: dict[str, bytes] = {}
    for info in infos:
        if info.filename in members:
            report.findings.append(Finding(info.filename, "extra", "a second member of this name"))
            continue
        try:
            members[info.filename] = zf.read(info)
        except _READ_ERRORS as exc:
            report.findings.append(Finding(info.filename, "changed", f"cannot be read back: {exc}"))
    return members


def _check_manifest(members: Mapping[str, bytes], key: bytes, report: Verification) -> dict[str, Any] | None:
    manifest, signature = members.get(MANIFEST), members.get(SIGNATURE)
    if manifest is None or signature is None:
        for name, value in ((MANIFEST, manifest), (SIGNATURE, signature)):
            if value is None and not any(f.path == name for f in report.findings):
                report.findings.append(Finding(name, "missing", "the bundle cannot be checked without it"))
        return None
    try:
        stated = json.loads(signature)["signature"]
        doc = json.loads(manifest)
        files = doc["files"]
        if not isinstance(files, dict) or not isinstance(stated, str):
            raise TypeError("not a manifest")
    except (ValueError, KeyError, TypeError) as exc:
        report.findings.append(Finding(MANIFEST, "changed", f"not a readable manifest: {exc}"))
        return None
    expected = hmac.new(key, _DOMAIN + manifest, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, stated):
        report.findings.append(
            Finding(
                MANIFEST,
                "unsigned",
                "its signature does not match with this audit key: the manifest or its signature was "
                "changed, or the bundle was signed with another key",
            )
        )
    return dict(doc)


def verify(data: bytes, key: bytes) -> Verification:
    """Every problem with an archive: each changed, missing or extra file by name, a manifest not
    signed with `key`, and any change to the zip's own structure."""
    report = Verification()
    members = _read_members(data, report)
    if members is None:
        return report
    doc = _check_manifest(members, key, report)
    if doc is None:
        return report
    report.manifest = doc
    listed: dict[str, Any] = doc["files"]
    report.files = len(listed)
    unreadable = {f.path for f in report.findings}
    for path in sorted(listed):
        if path in unreadable:
            continue
        if path not in members:
            report.findings.append(Finding(path, "missing", "listed in the manifest, not in the archive"))
            continue
        digest = hashlib.sha256(members[path]).hexdigest()
        if not isinstance(listed[path], dict) or listed[path].get("sha256") != digest:
            report.findings.append(Finding(path, "changed", "its SHA-256 is not the manifest's"))
    for path in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        report.findings.append(Finding(path, "extra", "in the archive, not in the manifest"))
    if report.ok and archive_bytes(members) != data:
        at = next(
            (i for i, (a, b) in enumerate(zip(archive_bytes(members), data, strict=False)) if a != b), 0
        )
        report.findings.append(
            Finding(
                "(archive)",
                "layout",
                f"the zip's own structure (headers, directory, comment) was changed, from byte {at}; "
                "the files themselves are intact",
            )
        )
    return report
