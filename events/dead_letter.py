"""Dead letters: the original record, untouched, with why it was refused in the headers.

A record near the broker's size limit has no room for those headers: its dead letter is then a
*reference* (where the original is, why it was refused, its size and its first bytes), so that
dead-lettering never fails for a record's size and never stops its partition.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from events.codec import Headers, Reason

PREFIX = "dlq_"
REASON = f"{PREFIX}reason"
DETAIL = f"{PREFIX}detail"
SOURCE_TOPIC = f"{PREFIX}topic"
SOURCE_PARTITION = f"{PREFIX}partition"
SOURCE_OFFSET = f"{PREFIX}offset"
AT = f"{PREFIX}at"
REFERENCE = f"{PREFIX}reference"
_MAX_DETAIL = 4000
# Bytes of the original value a reference keeps, so a person can tell what the producer sent.
REFERENCE_PREFIX_BYTES = 1024
# A record's framing in a batch: the batch header (61 bytes) and the record's varints, at most.
_RECORD_OVERHEAD = 128


@dataclass
class DeadLetterLog:
    """Which dead letters the router logs one by one: the first of each reason in every `window`
    seconds. The others are counted, and `summary` sums them up in one line once the window ended.

    Every dead letter is on the dead-letter topic with its reason and detail in its headers; a log line
    each only repeated that, and a flood of malformed records made it a flood of lines: a fifth of the
    router's time per record, and a disk filled by whoever sends the most garbage.
    """

    window: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _started: float | None = None
    _shown: set[Reason] = field(default_factory=set)
    _unshown: Counter[Reason] = field(default_factory=Counter)

    def one_by_one(self, reason: Reason) -> bool:
        """True if this dead letter gets a line of its own; False if it is only counted."""
        if self._started is None:
            self._started = self.clock()
        if reason in self._shown:
            self._unshown[reason] += 1
            return False
        self._shown.add(reason)
        return True

    def summary(self) -> str | None:
        """Once the window has ended: the line that counts what it did not log (None if nothing),
        and a new window begins."""
        if self._started is None or self.clock() - self._started < self.window:
            return None
        unshown, self._unshown = self._unshown, Counter()
        self._started, self._shown = None, set()
        if not unshown:
            return None
        reasons = ", ".join(f"{reason.value} {count:,}" for reason, count in sorted(unshown.items()))
        return (
            f"dead-lettered {sum(unshown.values()):,} more record(s) in the last {self.window:g} s without a "
            f"line each ({reasons}); each is on the dead-letter topic with its reason and detail in its "
            "headers (`aims dlq list`)"
        )


def dead_letter_headers(
    original: Headers, reason: Reason, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    kept = [(k, v or b"") for k, v in original if not k.startswith(PREFIX)]
    return [
        *kept,
        (REASON, reason.value.encode()),
        (DETAIL, detail[:_MAX_DETAIL].encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (AT, datetime.now(UTC).isoformat().encode()),
    ]


def copy_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """About how many bytes a record with this key, value and headers takes on the wire (an upper bound)."""
    header_bytes = sum(len(k.encode()) + len(v or b"") + 10 for k, v in headers)
    return len(key or b"") + len(value or b"") + header_bytes + _RECORD_OVERHEAD


def reference_letter(
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    reason: Reason,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a dead letter that points at a record too large to copy whole."""
    original = value or b""
    body = {
        "reference": {"topic": topic, "partition": partition, "offset": offset},
        "reason": reason.value,
        "detail": detail[:_MAX_DETAIL],
        "size": len(original),
        "key_size": len(key or b""),
        "headers": sorted({k for k, _ in headers})[:50],
        "prefix": original[:REFERENCE_PREFIX_BYTES].decode("utf-8", errors="replace"),
        "note": "too large to copy with the dead-letter headers; the original is at the reference "
        "for as long as the topic retains it",
    }
    letter_headers = [
        *dead_letter_headers([], reason, detail, topic, partition, offset),
        (REFERENCE, b"1"),
    ]
    # A key of a size that matters is part of the problem: keep it only when small.
    small_key = key if key is not None and len(key) <= REFERENCE_PREFIX_BYTES else None
    return small_key, json.dumps(body).encode(), letter_headers


@dataclass(frozen=True)
class DeadLetter:
    """A record read back from the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", errors="replace")
        return ""

    @property
    def reason(self) -> str:
        return self.header(REASON)

    @property
    def detail(self) -> str:
        return self.header(DETAIL)

    @property
    def is_reference(self) -> bool:
        """Only a pointer to a record too large to copy: the original is not in this letter."""
        return self.header(REFERENCE) == "1"

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(PREFIX)]
