"""What a router may commit: per partition, the records it took and has not committed, in order.

Records of one partition settle out of order: each subject is its own chain, so while one subject's
decision waits for its run, the other subjects' events on that partition are routed. The committed
offset of a partition must still never pass a record that is not settled — a crash would lose it.
The ledger keeps that rule in one place and knows nothing of Kafka clients: partitions are any
hashable key, which keeps it testable without a broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)
T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    offset: int
    item: T | None  # let go of once settled: the entry is then kept for the commit's order only
    size: int
    settled: bool = False


class OffsetLedger(Generic[P, T]):
    """Records taken per partition, in offset order; the offset each partition may be committed to.

    A record is *settled* when nothing more must happen to it before its offset may be committed
    (its runs were accepted and recorded, or it reached the dead-letter topic). The commit offset of
    a partition is one past its longest settled prefix, whatever order records settle in.
    """

    def __init__(self) -> None:
        self._held: dict[P, deque[_Entry[T]]] = {}
        self._index: dict[tuple[P, int], _Entry[T]] = {}
        self._last: dict[P, int] = {}
        self._ready: dict[P, int] = {}
        self._in_flight: dict[P, int] = {}
        self._bytes = 0

    def admit(self, partition: P, offset: int, item: T, size: int = 0) -> list[T]:
        """Hold a record just taken. Returns the items this drops: none, unless the record is not
        after the last one taken of its partition.

        A consumer reads a partition backwards only when its position was reset — the partition
        was assigned again and is read from its committed offset. What the ledger held of it then
        belongs to the old assignment, and anything taken past the committed offset will be read
        again: it is dropped, and the partition starts afresh here. Skipping the records instead
        (as "already taken") would commit past them once the later ones settle: they would be lost.
        """
        dropped = self.revoke([partition]) if offset <= self._last.get(partition, -1) else []
        entry = _Entry(offset, item, size)
        self._held.setdefault(partition, deque()).append(entry)
        self._index[(partition, offset)] = entry
        self._last[partition] = offset
        self._in_flight[partition] = self._in_flight.get(partition, 0) + 1
        self._bytes += size
        return dropped

    def settle(self, partition: P, offset: int, item: T) -> bool:
        """Mark a held record settled; False when that record is not held (any more).

        `item` must be the one admitted: after a partition was revoked and assigned again, the same
        offset is held for a new item, and the old item's late news must not settle it.
        """
        entry = self._index.get((partition, offset))
        if entry is None or entry.settled or entry.item is not item:
            return False
        # Nothing more happens to it: only its place in the partition's order is kept.
        entry.settled, entry.item = True, None
        self._bytes -= entry.size
        self._in_flight[partition] -= 1
        held = self._held[partition]
        while held and held[0].settled:
            done = held.popleft()
            del self._index[(partition, done.offset)]
            self._ready[partition] = done.offset + 1
        return True

    def revoke(self, partitions: Iterable[P]) -> list[T]:
        """Forget partitions this router no longer owns; the items it held of them, to abandon."""
        dropped: list[T] = []
        for partition in partitions:
            for entry in self._held.pop(partition, deque()):
                del self._index[(partition, entry.offset)]
                if entry.item is not None:  # not settled: it had work left
                    self._bytes -= entry.size
                    dropped.append(entry.item)
            self._last.pop(partition, None)
            self._ready.pop(partition, None)
            self._in_flight.pop(partition, None)
        return dropped

    def ready(self) -> dict[P, int]:
        """Commit offsets that advanced since they were last `committed`."""
        return dict(self._ready)

    def committed(self, offsets: dict[P, int]) -> None:
        """These offsets reached Kafka; a partition that advanced since keeps its newer offset."""
        for partition, offset in offsets.items():
            if self._ready.get(partition) == offset:
                del self._ready[partition]

    def partitions(self) -> set[P]:
        """Partitions of which something is held or ready to commit."""
        return set(self._last) | set(self._ready)

    def held(self, partition: P) -> int:
        """Records of the partition taken and not yet committable."""
        return len(self._held.get(partition, ()))

    def in_flight(self, partition: P) -> int:
        """Records of the partition taken and not settled: those something still happens to."""
        return self._in_flight.get(partition, 0)

    def unsettled(self) -> list[T]:
        return [e.item for held in self._held.values() for e in held if e.item is not None]

    @property
    def total(self) -> int:
        return len(self._index)

    @property
    def bytes(self) -> int:
        """The size of the records in flight (a settled one's record is let go of)."""
        return self._bytes
