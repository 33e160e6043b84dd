"""The router's offset ledger: records settle in any order, commits never pass an unsettled one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from events.offsets import OffsetLedger


class Item:
    """A record stand-in; compared by identity, as the router's works are."""

    serials = iter(range(10**9))

    def __init__(self, partition: int, offset: int) -> None:
        self.partition = partition
        self.offset = offset
        self.serial = next(Item.serials)  # id() is reused once an item is gone


def test_a_partition_commits_its_settled_prefix_only() -> None:
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    items = [Item(0, o) for o in (10, 11, 12, 13)]
    for item in items:
        assert ledger.admit(0, item.offset, item, size=100) == []
    ledger.settle(0, 12, items[2])
    ledger.settle(0, 13, items[3])
    assert ledger.ready() == {}, "10 is not settled: nothing may be committed"
    ledger.settle(0, 10, items[0])
    assert ledger.ready() == {0: 11}
    ledger.settle(0, 11, items[1])
    assert ledger.ready() == {0: 14}
    assert ledger.total == 0 and ledger.bytes == 0


def test_one_waiting_record_holds_its_partition_not_the_others() -> None:
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    waiting, behind, other = Item(0, 5), Item(0, 6), Item(1, 3)
    for item in (waiting, behind, other):
        ledger.admit(item.partition, item.offset, item)
    ledger.settle(0, 6, behind)
    ledger.settle(1, 3, other)
    assert ledger.ready() == {1: 4}
    assert ledger.held(0) == 2 and ledger.held(1) == 0


def test_records_done_behind_a_waiting_one_are_not_in_flight_and_let_go_of_their_bytes() -> None:
    """A flood's dead letters settle while a good event of their partition waits for its run: they
    are held for the commit's sake only, so they must neither count as in flight (which pauses the
    partition) nor keep their records in memory."""
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    waiting, *done = [Item(0, o) for o in range(5)]
    for item in (waiting, *done):
        ledger.admit(0, item.offset, item, size=100)
    for item in done:
        assert ledger.settle(0, item.offset, item)
    assert ledger.held(0) == 5 and ledger.in_flight(0) == 1 and ledger.bytes == 100
    assert ledger.unsettled() == [waiting]
    assert ledger.revoke([0]) == [waiting], "a revocation drops only what still had work to do"
    assert ledger.total == 0 and ledger.bytes == 0


def test_committed_offsets_leave_ready_unless_the_partition_moved_on() -> None:
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    first, second = Item(0, 0), Item(0, 1)
    ledger.admit(0, 0, first)
    ledger.admit(0, 1, second)
    ledger.settle(0, 0, first)
    sent = ledger.ready()
    ledger.settle(0, 1, second)  # settles while the commit of `sent` is on its way
    ledger.committed(sent)
    assert ledger.ready() == {0: 2}
    ledger.committed({0: 2})
    assert ledger.ready() == {}


def test_a_partition_read_again_from_an_earlier_offset_starts_afresh() -> None:
    """Its position was reset (assigned again): what was held of it is dropped, and nothing is
    skipped — skipping 3..6 as "already taken" would commit past them once 7 settled."""
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    held = [Item(0, o) for o in (5, 6, 7)]
    for item in held:
        assert ledger.admit(0, item.offset, item) == []
    ledger.admit(1, 0, Item(1, 0))
    again = Item(0, 3)
    assert ledger.admit(0, 3, again) == held
    assert ledger.held(0) == 1 and ledger.held(1) == 1
    assert not ledger.settle(0, 7, held[2]), "the old assignment's news settles nothing"
    ledger.settle(0, 3, again)
    assert ledger.ready() == {0: 4}
    same = Item(0, 4)
    ledger.admit(0, 4, same)
    assert ledger.admit(0, 4, Item(0, 4)) == [same], "even the same offset again means a reset"


def test_a_revoked_partition_is_forgotten_and_old_news_does_not_settle_its_new_records() -> None:
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    old = Item(0, 4)
    ledger.admit(0, 4, old, size=10)
    assert ledger.partitions() == {0}
    assert ledger.revoke([0]) == [old]
    assert ledger.total == 0 and ledger.bytes == 0 and ledger.partitions() == set()
    new = Item(0, 4)  # the partition came back: the same record is read again
    assert ledger.admit(0, 4, new) == []
    assert not ledger.settle(0, 4, old), "the launch of the forgotten record must not settle the new one"
    assert ledger.ready() == {}
    assert ledger.settle(0, 4, new)
    assert ledger.ready() == {0: 5}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("settle"), st.integers(0, 2), st.integers(0, 40)),
        st.tuples(st.just("commit"), st.just(0), st.just(0)),
        st.tuples(st.just("revoke"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("reread"), st.integers(0, 2), st.integers(0, 40)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_any_history_never_commits_past_an_unsettled_record(ops: list[tuple[str, int, int]]) -> None:
    """Whatever is taken, settled, committed or revoked in whatever order: every offset ready to
    commit has every record below it (since the last revocation) settled, and settling everything
    makes the whole partition committable."""
    ledger: OffsetLedger[int, Item] = OffsetLedger()
    next_offset = {p: 0 for p in range(3)}
    live: dict[int, list[Item]] = {p: [] for p in range(3)}
    settled: set[int] = set()
    committed: dict[int, int] = {}
    for op, partition, n in ops:
        if op == "take":
            for _ in range(n):
                # Offsets with gaps, as compaction and transaction markers leave them.
                item = Item(partition, next_offset[partition])
                next_offset[partition] += 2
                assert ledger.admit(partition, item.offset, item, size=1) == []
                live[partition].append(item)
        elif op == "settle":
            candidates = [i for p in live.values() for i in p if i.serial not in settled]
            if candidates:
                item = candidates[n % len(candidates)]
                assert ledger.settle(item.partition, item.offset, item)
                settled.add(item.serial)
        elif op == "commit":
            ready = ledger.ready()
            committed.update(ready)
            ledger.committed(ready)
        elif op == "revoke":
            ledger.revoke([partition])
            live[partition] = []
            committed.pop(partition, None)
        elif live[partition]:
            # The partition is read again from an earlier offset (its position was reset).
            before = ledger.held(partition)
            item = Item(partition, live[partition][n % len(live[partition])].offset)
            unsettled = ledger.in_flight(partition)
            dropped = ledger.admit(partition, item.offset, item, size=1)
            assert before >= len(dropped) == unsettled, "what was still in flight is dropped"
            live[partition] = [item]
            next_offset[partition] = item.offset + 2
            committed.pop(partition, None)
        for p, offset in ledger.ready().items():
            below = [i for i in live[p] if i.offset < offset]
            assert all(i.serial in settled for i in below), (p, offset)
        for p, items in live.items():
            prefix = next((k for k, i in enumerate(items) if i.serial not in settled), len(items))
            assert ledger.held(p) == len(items) - prefix, "held: from the first unsettled record on"
            assert ledger.in_flight(p) == sum(1 for i in items if i.serial not in settled)
        assert ledger.total == sum(ledger.held(p) for p in live)
        assert ledger.bytes == sum(ledger.in_flight(p) for p in live), "only records in flight weigh"
    for p, items in live.items():
        for item in items:
            if item.serial not in settled:
                ledger.settle(p, item.offset, item)
        if items:
            assert ledger.ready().get(p, committed.get(p)) == items[-1].offset + 1
        assert ledger.held(p) == 0
    assert ledger.total == 0 and ledger.bytes == 0
