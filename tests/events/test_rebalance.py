"""When a router's consumer joins its group afresh (events.rebalance): a rebalance that never ends."""

from __future__ import annotations

from events.rebalance import REBALANCING, RebalanceWatch

STABLE = "<stable>"


def test_a_rebalance_lasting_the_watchs_time_is_stuck_once_and_then_counted_afresh() -> None:
    watch = RebalanceWatch(after=30)
    assert [watch.stuck(REBALANCING, t) for t in (100, 110, 129.9)] == [False, False, False]
    assert watch.stuck(REBALANCING, 130), "30 s of rebalancing: join afresh"
    assert not watch.stuck(REBALANCING, 131), "the new join has its own 30 s"
    assert watch.stuck(REBALANCING, 161)


def test_rebalances_that_end_never_add_up() -> None:
    watch = RebalanceWatch(after=30)
    states = [(REBALANCING, 0), (STABLE, 20), (REBALANCING, 25), (STABLE, 50), (REBALANCING, 70)]
    assert not any(watch.stuck(state, t) for state, t in states)
    assert not watch.stuck(STABLE, 1000), "a stable member is never stuck"


def test_the_state_named_is_the_kafka_clients_own() -> None:
    from kafka.structs import MemberState

    assert MemberState.REBALANCING == REBALANCING
