"""Which coalesced run a later change of its dataset stands down (`LatestCoalesced`). Pure."""

from __future__ import annotations

from uuid import UUID, uuid4

from events.router_work import LatestCoalesced

TAG = "coalesce:dataset:loans"


def start(
    book: LatestCoalesced,
    offset: int,
    run: UUID | None = None,
    *,
    tag: str = TAG,
    partition: int = 0,
) -> tuple[UUID, UUID | None]:
    run = run or uuid4()
    return run, book.replace(tag, run, partition, offset)


def test_a_later_change_stands_down_the_run_before_it() -> None:
    book = LatestCoalesced()
    first, replaced = start(book, 10)
    assert replaced is None
    second, replaced = start(book, 11)
    assert replaced == first
    _, replaced = start(book, 12)
    assert replaced == second


def test_each_dataset_has_its_own_latest_run() -> None:
    book = LatestCoalesced()
    loans, _ = start(book, 1)
    _, replaced = start(book, 2, tag="coalesce:dataset:claims")
    assert replaced is None
    _, replaced = start(book, 3)
    assert replaced == loans


def test_the_same_run_again_stands_nothing_down() -> None:
    book = LatestCoalesced()
    run, _ = start(book, 5)
    assert start(book, 5, run)[1] is None  # a retried launch got the same run back


def test_a_record_delivered_again_leaves_the_later_run_standing() -> None:
    book = LatestCoalesced()
    start(book, 1)
    later, _ = start(book, 2)
    # Offset 1 again (its partition came back): its run was made before and must not replace `later`.
    assert start(book, 1)[1] is None
    _, replaced = start(book, 3)
    assert replaced == later


def test_a_run_from_another_partition_is_not_replaced() -> None:
    book = LatestCoalesced()
    start(book, 7, partition=0)
    assert start(book, 1, partition=1)[1] is None


def test_the_oldest_dataset_is_forgotten_past_the_limit() -> None:
    book = LatestCoalesced(limit=2)
    start(book, 1, tag="a")
    start(book, 2, tag="b")
    start(book, 3, tag="c")  # "a" forgotten
    assert start(book, 4, tag="a")[1] is None
    assert start(book, 5, tag="c")[1] is not None
