"""The audit log's hash chain: how an entry is hashed, and the check that finds the first break.

Each entry's hash covers its own fields and the previous entry's hash, so altering an entry breaks
its own hash, and deleting or reordering entries breaks the link from the next one. The head row
(newest seq and hash) catches entries deleted from the end.

Two formats live in one log (issue 20, points 5 and 6):
- *legacy* entries (written before migration 0011): SHA-256 over Python's sorted-key JSON of the
  fields, `before`/`after` read back from a JSON column. On PostgreSQL JSONB rewrote some numbers
  (`1.7e+18` came back as the integer 1700000000000000000), so their recomputed hash could differ;
  they are verified exactly as before, nothing about them changes.
- *text* entries: `before`/`after` are stored as RFC 8785 (JCS) text and the hash covers those
  stored bytes, so no database can change what is hashed. From the seq the head names as
  `keyed_from` on, the hash is an HMAC-SHA256 with the installation's audit key (kept outside the
  database): whoever can write the database but lacks the key cannot re-chain the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from schemas.trail import AuditEntry

GENESIS = "0" * 64
TEXT = "jcs"  # the `encoding` of entries whose before/after are stored as RFC 8785 text
# RFC 8785 represents numbers as IEEE 754 doubles and refuses integers it cannot hold exactly.
_SAFE_INT = 2**53 - 1
_ENTRY_DOMAIN = b"aims.audit.entry.v2\n"


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: the legacy entries' form (kept to verify them)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def jcs(value: Any) -> str:
    """RFC 8785 canonical JSON; integers beyond ±(2**53-1) written exactly as their decimal digits.

    RFC 8785 refuses such integers (a double cannot hold them), but register records carry them
    (64-bit ids, nanosecond timestamps in dataset profiles): they are written as the digits JCS
    writes for an integral double, so the text reads back as the same integer and stays canonical.
    """
    big: list[int] = []
    marker = f"\x00int-{secrets.token_hex(8)}:"  # random per call: no stored string can imitate it

    def swap(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int):
            if -_SAFE_INT <= v <= _SAFE_INT:
                return v
            big.append(v)
            return f"{marker}{len(big) - 1}"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [swap(x) for x in v]
        return v

    text = rfc8785.dumps(swap(value)).decode()
    if not big:
        return text
    quoted = re.escape(json.dumps(marker)[1:-1])  # the marker as JCS escaped it, inside its quotes
    return re.sub(f'"{quoted}(\\d+)"', lambda m: str(big[int(m[1])]), text)


def entry_hash(fields: dict[str, Any]) -> str:
    """Legacy: SHA-256 over every field of the entry except the hash itself (the previous hash included)."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


ENVELOPE = ("seq", "at", "actor", "action", "entity", "entity_id", "before_text", "after_text", "prev_hash")


def text_entry_hash(fields: Mapping[str, Any], key: bytes | None) -> str:
    """A text entry's hash over its stored strings: HMAC-SHA256 with `key`, plain SHA-256 without.

    The scheme is part of what is hashed, so a keyed entry cannot pass for a plain one.
    """
    body = {name: fields[name] for name in ENVELOPE}
    body["scheme"] = "hmac-sha256" if key is not None else "sha256"
    data = _ENTRY_DOMAIN + jcs(body).encode()
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def entry_view(row: Mapping[str, Any]) -> AuditEntry:
    """An audit_log row as the record the rest of the code reads (before/after as values)."""
    fields = {name: row[name] for name in AuditEntry.model_fields if name not in ("before", "after")}
    if row.get("encoding") == TEXT:
        fields["before"] = None if row["before_text"] is None else json.loads(row["before_text"])
        fields["after"] = None if row["after_text"] is None else json.loads(row["after_text"])
    else:
        fields["before"], fields["after"] = row["before"], row["after"]
    return AuditEntry.model_validate(fields)


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # altered, deleted, reordered, truncated, rewritten, unkeyed, row altered, …
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind} — {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    entries: int
    head_seq: int
    head_hash: str
    problem: AuditProblem | None
    keyed_from: int | None = None
    anchors_checked: int = 0
    last_good_anchor: int | None = None
    anchors_rejected: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class HeadRow:
    seq: int
    hash: str
    keyed_from: int | None = None


def verify_chain(
    entries: Iterable[AuditEntry | Mapping[str, Any]],
    head: tuple[int, str] | HeadRow | None,
    *,
    key: bytes | None = None,
    anchors: Mapping[int, Any] | None = None,
) -> AuditReport:
    """Walk the entries in seq order; report the first one that was altered, deleted or reordered.

    `entries` are audit_log rows (or legacy records) streamed in seq order: nothing is kept but the
    previous hash. `anchors` (seq → an object with `head`, `keyed_from`, `at`) were published outside
    the database; each entry that has one must carry the anchored hash, else everything after the
    last anchor that matched is suspect and that is the entry named.
    """
    state = _Walk(
        head if isinstance(head, HeadRow) or head is None else HeadRow(*head), key, dict(anchors or {})
    )
    for entry in entries:
        problem = state.step(entry if isinstance(entry, Mapping) else entry.model_dump())
        if problem is not None:
            return state.report(problem)
    return state.report(state.finish())


def verify_segment(
    entries: Iterable[Mapping[str, Any]], start: tuple[int, str] | None, head: HeadRow, key: bytes | None
) -> AuditProblem | None:
    """Check the entries after `start` (a seq and its hash, already trusted) up to the head's seq."""
    walk = _Walk(head, key, {}, start)
    for entry in entries:
        if entry["seq"] > head.seq:
            break
        problem = walk.step(entry)
        if problem is not None:
            return problem
    if walk.expected - 1 != head.seq or walk.prev_hash != head.hash:
        return AuditProblem(walk.expected, "altered", "the entries do not lead to the head of the log")
    return None


class _Walk:
    def __init__(
        self,
        head: HeadRow | None,
        key: bytes | None,
        anchors: dict[int, Any],
        start: tuple[int, str] | None = None,
    ) -> None:
        self.head, self.key, self.anchors = head, key, anchors
        self.keyed_from = head.keyed_from if head else None
        self.prev_hash, self.expected, self.count = GENESIS, 1, 0
        if start is not None:
            self.expected, self.prev_hash = start[0] + 1, start[1]
        self.last_good: int | None = None
        self.checked = 0

    def report(self, problem: AuditProblem | None) -> AuditReport:
        seq, digest = (self.head.seq, self.head.hash) if self.head is not None else (0, GENESIS)
        return AuditReport(
            entries=self.count,
            head_seq=seq,
            head_hash=digest,
            problem=problem,
            keyed_from=self.keyed_from,
            anchors_checked=self.checked,
            last_good_anchor=self.last_good,
        )

    def _after_good(self) -> int:
        return (self.last_good or 0) + 1

    def step(self, row: Mapping[str, Any]) -> AuditProblem | None:
        self.count += 1
        seq = row["seq"]
        if seq != self.expected:
            kind = "deleted" if seq > self.expected else "reordered"
            return AuditProblem(self.expected, kind, f"expected entry {self.expected} next, found {seq}")
        keyed = self.keyed_from is not None and seq >= self.keyed_from
        if row.get("encoding") == TEXT:
            if keyed and self.key is None:
                return AuditProblem(
                    seq,
                    "unkeyed",
                    f"entries from {self.keyed_from} on are keyed: set AIMS_AUDIT_KEY to check",
                )
            recomputed = text_entry_hash(row, self.key if keyed else None)
        elif keyed:
            return AuditProblem(seq, "altered", "a legacy (unkeyed) entry after the log became keyed")
        else:
            recomputed = entry_hash({k: row[k] for k in AuditEntry.model_fields})
        if not hmac.compare_digest(recomputed, row["hash"]):
            return AuditProblem(
                seq,
                "altered",
                f"{row['action']} of {row['entity']} {row['entity_id']!r} by {row['actor']} at {row['at']}: "
                "its content no longer matches its hash",
            )
        if row["prev_hash"] != self.prev_hash:
            return AuditProblem(
                seq,
                "reordered",
                "it does not follow the entry before it: entries were moved, replaced or removed",
            )
        anchor = self.anchors.pop(seq, None)
        if anchor is not None:
            self.checked += 1
            if not hmac.compare_digest(anchor.head, row["hash"]):
                return AuditProblem(
                    self._after_good(),
                    "rewritten",
                    f"entry {seq} differs from the anchor published at {anchor.at}: the log was rewritten "
                    f"after {'entry ' + str(self.last_good) if self.last_good else 'its start'}",
                )
            self.last_good = seq
        self.prev_hash, self.expected = row["hash"], self.expected + 1
        return None

    def finish(self) -> AuditProblem | None:
        last_seq = self.expected - 1
        head = self.head
        if head is not None and (head.seq, head.hash) != (last_seq, self.prev_hash):
            if head.seq > last_seq:
                return AuditProblem(
                    last_seq + 1, "deleted", f"the log ends at {last_seq}; its head says {head.seq}"
                )
            return AuditProblem(head.seq, "altered", "the head of the log does not match its last entry")
        if head is None and self.count:
            return AuditProblem(1, "altered", "the log has entries but no head")
        if self.anchors:
            # Anchors the walk never reached: the log was cut back (or rolled back to a copy).
            beyond = max(self.anchors)
            anchor = self.anchors[beyond]
            return AuditProblem(
                self._after_good(),
                "truncated",
                f"the log ends at {last_seq} but the anchor published at {anchor.at} says it "
                f"reached {beyond}",
            )
        return None


def check_keyed_from(report: AuditReport, anchored_keyed_from: int | None) -> AuditProblem | None:
    """The database's `keyed_from` must be the one the anchors published: moving it downgrades entries."""
    if anchored_keyed_from is not None and report.keyed_from != anchored_keyed_from:
        return AuditProblem(
            anchored_keyed_from,
            "downgraded",
            f"the anchors say the log is keyed from entry {anchored_keyed_from}; the database says "
            f"{report.keyed_from if report.keyed_from is not None else 'never'}",
        )
    return None
