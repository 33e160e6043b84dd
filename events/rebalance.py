"""A consumer whose rebalance never ends joins its group afresh.

kafka-python (3.0.12) can lose a rejoin that new metadata started: a poll whose time ran out while
the JoinGroup was on its way leaves the join to finish on the client's network thread, which takes
the new assignment's snapshot there; the next poll then sees nothing left to join, so the join is
never completed. The consumer stays "rebalancing" for good, with no partitions and no heartbeats, and
the broker drops it from the group after a session; nothing it does later brings it back. It
happened to routers started just after their topic was made (the leader assigned before it had the
topic's partitions, "No partition metadata for topic …", then rejoined once they came): the router
was up, reported itself alive, and read nothing.

Java's client counts a pending join as a rejoin still needed; here the router watches its consumer's
group state (`KafkaConsumer.group_metadata`) and, after `STUCK_AFTER_SESSIONS` sessions of
rebalancing, leaves and joins again (`unsubscribe`, `subscribe`), which cannot be lost: the join that
follows an unsubscribe is pending until it completes. A legitimate rebalance ends within a session
(the broker drops members that do not rejoin by then); one that did not is at worst joined once more,
which moves partitions and reads nothing twice (records in flight of a lost partition are read again
by its new owner, and idempotency keys dedupe the runs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafka import KafkaConsumer

log = logging.getLogger(__name__)

# Sessions (consumer_session_timeout_ms) a rebalance may last before the consumer joins afresh.
STUCK_AFTER_SESSIONS = 3
REBALANCING = "<rebalancing>"  # kafka.structs.MemberState.REBALANCING, without importing kafka here


@dataclass
class RebalanceWatch:
    """How long the consumer has been rebalancing; `stuck` says when it is time to join afresh."""

    after: float  # seconds
    since: float | None = None

    def stuck(self, state: str, now: float) -> bool:
        """Called after each poll with the consumer's group state; True once it has been
        rebalancing for `after` seconds (then the count starts again)."""
        if state != REBALANCING:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        if now - self.since < self.after:
            return False
        self.since = None
        return True


def rejoin_if_stuck(consumer: KafkaConsumer, watch: RebalanceWatch, topics: list[str], now: float) -> bool:
    """Join the group afresh if the consumer's rebalance has lasted too long; True if it did."""
    if not watch.stuck(consumer.group_metadata().state, now):
        return False
    log.warning(
        "consumer %s rebalancing for %.0fs with partitions %s: joining the group afresh (a rejoin the "
        "Kafka client lost, events/rebalance.py)",
        consumer.config.get("client_id"),
        watch.after,
        sorted(tp.partition for tp in consumer.assignment()),
    )
    consumer.unsubscribe()
    consumer.subscribe(topics)
    return True
