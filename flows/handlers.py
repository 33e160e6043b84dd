"""The one handler table: command type → handler. Every human input goes through `handle`.

Adding a kind of input is a command class in its activity's `commands.py`, its handler beside it,
and one row here. The gateway, the CLI and the flows call `handle`, never a handler directly, so
each attempt is recorded (accepted or refused, with its reasons) the same way whatever the channel.

Pure: no Prefect, no Kafka (the handlers stage outbox rows in the register's unit of work).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.approvals.commands import DecideApproval, decide
from flows.commands import Command, Context, Verdict
from flows.incidents.commands import UpdateIncident, update_incident
from flows.reviews.commands import RecordReviewResults, record_results

Handler = Callable[[Any, Context], Verdict]

HANDLERS: Mapping[type[Command], Handler] = {
    DecideApproval: decide,
    UpdateIncident: update_incident,
    RecordReviewResults: record_results,
}


def handle(command: Command, ctx: Context) -> Verdict:
    """Record the command's attempt and say what became of it."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"no handler for {type(command).__name__}: add its row to flows.handlers.HANDLERS")
    return handler(command, ctx)
