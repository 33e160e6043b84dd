"""The one shape of every human input: a `Command` in, a `Verdict` out.

An approval decision, an incident update, a set of management-review results (and whatever comes
next) is a frozen command that says who (an identity and the channel it was authenticated on), what
and when. `handle` looks its handler up in one table (`HANDLERS`); every handler records the
attempt (accepted or refused, with the reason) in one unit of work with its outbox events and
returns a `Verdict`: accepted, duplicate or refused with the reasons, plus what the channel needs to
answer (the outbox keys to send, whether the refusal is new, the text to tell the person).

Adding a kind of input is a command class in its activity's `commands.py` and its handler beside
it, marked `@handles(TheCommand)`: that is its row in the table. The table lives here, and the
activities register into it, so an activity's flows can call `handle` without an import cycle; a
command cannot be built without importing the module that registers its handler.

Pure: no Prefect, no Kafka. The register and the policy are handed in (`Context`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from schemas.controls import first_control, shown
from schemas.payloads import DecisionChannel

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.policy import Policy

Status = Literal["accepted", "duplicate", "refused", "ignored"]


@dataclass(frozen=True)
class Actor:
    """Who gave the command: the policy's name for them (an email, or `slack:<id>` when unknown),
    the channel that authenticated them and what it proved (`credential`: the Slack user id, the
    Jira account id, the OS login; None when the channel proves nobody, as the Prefect UI's form)."""

    name: str
    channel: DecisionChannel
    credential: str | None = None

    @property
    def label(self) -> str:
        # The register's actor for the unit of work, as every path wrote it before.
        return f"{self.channel.value}:{self.name}"


@dataclass(frozen=True, kw_only=True)
class Command:
    """A human input. `delivery` names what identifies this delivery (a redelivered webhook or a
    retried click carries the same parts), so a refused attempt is recorded once."""

    actor: Actor
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    delivery: tuple[str, ...] = ()

    def refusal_id(self) -> str | None:
        return attempt_key(*self.delivery) if self.delivery else None

    def describe(self) -> str:
        """What the command asks, for the log (no free text: reasons and notes stay in the register)."""
        return type(self).__name__


@dataclass(frozen=True)
class Context:
    """What a handler works with, handed in by the composition root (gateway, CLI, flow)."""

    register: Register
    policy: Policy
    topic: str


@dataclass(frozen=True)
class Verdict:
    """What became of a command, and what the channel needs to answer it.

    - `status`: accepted, duplicate (nothing changed), refused (`reasons` say why) or ignored (the
      command asked for nothing);
    - `message`: what was recorded, or the refusal;
    - `reply`: what the person is told when it was accepted (`message` unless the command says more);
    - `keys`: the outbox rows staged with it, to send once committed;
    - `fresh`: False for a refusal recorded before (a redelivery): the channel answered it already;
    - `logged`: the attempt has a row in the register (a refusal before any record exists has none);
    - `record`, `state`, `ref`: the row written, the subject's status after it, the id it made
      (an action planned);
    - `parts`: one verdict per result when a command carries several (a review comment).
    """

    status: Status
    message: str
    reasons: tuple[str, ...] = ()
    reply: str = ""
    keys: tuple[str, ...] = ()
    fresh: bool = True
    logged: bool = True
    record: object | None = None
    state: str | None = None
    ref: str | None = None
    parts: tuple[Verdict, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def refused(self) -> bool:
        return self.status == "refused"

    @property
    def duplicate(self) -> bool:
        return self.status == "duplicate"

    @classmethod
    def refusal(
        cls,
        why: str,
        *,
        logged: bool = False,
        fresh: bool = True,
        record: object | None = None,
        state: str | None = None,
        ref: str | None = None,
    ) -> Verdict:
        return cls("refused", why, (why,), fresh=fresh, logged=logged, record=record, state=state, ref=ref)


Handler = Callable[[Any, Context], Verdict]
C = TypeVar("C", bound=Command)

# The one handler table: command type → handler (one row per command, written by `handles`).
HANDLERS: dict[type[Command], Handler] = {}


def handles(
    command_type: type[C],
) -> Callable[[Callable[[C, Context], Verdict]], Callable[[C, Context], Verdict]]:
    """Mark a function as the handler of one command type: its row in `HANDLERS`."""

    def register(handler: Callable[[C, Context], Verdict]) -> Callable[[C, Context], Verdict]:
        if command_type in HANDLERS:
            raise TypeError(f"{command_type.__name__} has a handler already: one row per command")
        HANDLERS[command_type] = handler
        return handler

    return register


def handle(command: Command, ctx: Context) -> Verdict:
    """Record the command's attempt and say what became of it: the one path of every human input."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(
            f"no handler for {type(command).__name__}: mark its handler @handles({type(command).__name__})"
        )
    problem = _control_in(command)
    if problem is not None:
        # Before anything is recorded: PostgreSQL cannot hold U+0000 in a text column (the attempt's
        # record failed and the gateway answered 500), and the others steer terminals and readers.
        return Verdict.refusal(problem)
    return handler(command, ctx)


def _control_in(command: Command) -> str | None:
    """What a command's text carries that no record may: a control character (free text keeps its line
    breaks and tabs, as `Text` does), named by field and written out, never echoed."""
    for where, text, allowed in _texts(command, ""):
        found = first_control(text, allowed)
        if found is not None:
            at, ch = found
            return f"{where} must not contain control characters, got {shown(ch)} at character {at + 1}"
    return None


def _texts(value: object, where: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, str):
        yield where, value, "\n\r\t"
    elif isinstance(value, Actor):
        # Names and credentials are one-line identities: no control character at all.
        for name, text in (("name", value.name), ("credential", value.credential)):
            if text:
                yield f"{where}.{name}", text, ""
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            if f.name != "delivery":  # what identifies the delivery: hashed, never stored
                yield from _texts(getattr(value, f.name), f"{where}.{f.name}" if where else f.name)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _texts(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, f"{where}[{key!r}]")


def attempt_key(*parts: str) -> str:
    """A refused attempt's id from what identifies its delivery, so a redelivery is recorded once."""
    return "refused-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


# -- answering, written once for every channel ------------------------------------------------------


def chat_text(verdict: Verdict) -> str:
    """The ephemeral reply to the person who clicked (Slack)."""
    if verdict.accepted:
        return f"Recorded: {verdict.reply or verdict.message}."
    if verdict.duplicate:
        return "Already recorded; nothing changed."
    return f"Not recorded: {verdict.message}."


def cli_text(verdict: Verdict, subject: str, by: str, *, on_behalf: str = "by") -> tuple[str, int]:
    """What the CLI prints and its exit code: a refusal is an error (exit 2, as every `aims` error)
    and says whether the attempt is logged; a duplicate changes nothing. `on_behalf`: "for" a
    decision, "by" an update."""
    if verdict.refused:
        logged = "; the attempt is logged" if verdict.logged else ""
        return f"refused: {verdict.message}{logged}", 2
    if verdict.duplicate:
        return f"{subject}: {verdict.message}; nothing changed", 0
    state = f" (status: {verdict.state})" if verdict.state else ""
    return f"{subject}: {verdict.message} {on_behalf} {by}{state}", 0
