"""The audit log's hash chain: canonical JSON, SHA-256, and the check that finds the first break.

Each entry's hash covers its own fields and the previous entry's hash, so altering an entry breaks
its own hash, and deleting or reordering entries breaks the link from the next one. The head row
(newest seq and hash) catches entries deleted from the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from schemas.trail import AuditEntry

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is: the same content always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over every field of the entry except the hash itself (the previous hash included)."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # altered, deleted, reordered, truncated
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind} — {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    entries: int
    head_seq: int
    head_hash: str
    problem: AuditProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_chain(entries: Iterable[AuditEntry], head: tuple[int, str] | None) -> AuditReport:
    """Walk the entries in seq order; report the first one that was altered, deleted or reordered."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    for entry in entries:
        count += 1
        recomputed = entry_hash(entry.model_dump())
        if entry.seq != expected_seq:
            kind = "deleted" if entry.seq > expected_seq else "reordered"
            return _report(
                count,
                head,
                AuditProblem(expected_seq, kind, f"expected entry {expected_seq} next, found {entry.seq}"),
            )
        if recomputed != entry.hash:
            return _report(
                count,
                head,
                AuditProblem(
                    entry.seq,
                    "altered",
                    f"{entry.action} of {entry.entity} {entry.entity_id!r} by {entry.actor} at {entry.at}: "
                    "its content no longer matches its hash",
                ),
            )
        if entry.prev_hash != prev_hash:
            return _report(
                count,
                head,
                AuditProblem(
                    entry.seq,
                    "reordered",
                    "it does not follow the entry before it: entries were moved, replaced or removed",
                ),
            )
        prev_hash, expected_seq = entry.hash, expected_seq + 1
    last_seq = expected_seq - 1
    if head is not None and (head[0], head[1]) != (last_seq, prev_hash):
        if head[0] > last_seq:
            problem = AuditProblem(
                last_seq + 1, "deleted", f"the log ends at {last_seq}; its head says {head[0]}"
            )
        else:
            problem = AuditProblem(head[0], "altered", "the head of the log does not match its last entry")
        return _report(count, head, problem)
    if head is None and count:
        return _report(count, head, AuditProblem(1, "altered", "the log has entries but no head"))
    return _report(count, head, None)


def _report(count: int, head: tuple[int, str] | None, problem: AuditProblem | None) -> AuditReport:
    seq, digest = head if head is not None else (0, GENESIS)
    return AuditReport(entries=count, head_seq=seq, head_hash=digest, problem=problem)
