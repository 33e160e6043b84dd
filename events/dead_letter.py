"""Dead letters: the original record, untouched, with why it was refused in the headers."""

from __future__ import annotations

from collections.abc import Sequence
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
_MAX_DETAIL = 4000


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
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(PREFIX)]
