"""What every command group shares: settings, the register, who is acting, checked input, output.

Kept cheap to import (argparse and the standard library only): `aims --help` and every command
load it, and the heavy packages are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aims.errors import CliError

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.policy import Policy
    from schemas.records import Record
    from schemas.settings import AimsSettings

Handler = Callable[[argparse.Namespace], int]
# How a group adds a top-level command: name, handler, help text → the command's parser.
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def cli_settings() -> AimsSettings:
    """The settings from the environment; invalid ones are a usage error that names the variable."""
    from pydantic import ValidationError

    from schemas.settings import load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        from aims.emit import explain

        raise CliError(f"invalid settings in the environment (AIMS_*):\n{explain(exc)}") from None
    if settings.event_signing_key is None:
        from infra.stack_state import stored_signing_key

        # The key the local stack made: the CLI beside it signs what it publishes as its processes do.
        stored = stored_signing_key(settings.state_path)
        if stored is not None:
            settings = settings.model_copy(update={"event_signing_key": stored})
    # Likewise the local broker's user and CA, when `aims up` started it with SASL_SSL (the file is
    # infra.kafka_tls.CLIENT_FILE; looked for first, so that other commands import no TLS code).
    if settings.kafka_bootstrap_servers is None and (settings.state_path / "kafka" / "client.json").exists():
        from infra.kafka_tls import with_local_security

        settings = with_local_security(settings)
    return settings


class PlainFormatter(logging.Formatter):
    """Log lines whose message shows control characters written out (ESC as \\x1b, a line break as
    a space): a name or reason from an event cannot recolour the terminal or forge a log line.
    A traceback, which is ours, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from flows.text import plain

        record.message = plain(record.message)
        return super().formatMessage(record)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PlainFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python logs every reconnection attempt at ERROR while a broker is away: 108 lines for an
    # 8-second restart. The router says once what it holds on, and when Kafka is back.
    for chatty in ("kafka.net", "kafka.cluster"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)


def open_register(settings: AimsSettings) -> Register:
    """The register, migrated; a problem with it is a message for the user, not a traceback."""
    from connectors.register import open_register as open_
    from connectors.register.store import RegisterError

    try:
        return open_(settings)
    except RegisterError as exc:
        raise CliError(str(exc)) from None


def load_policy(settings: AimsSettings, why: str) -> Policy:
    """The policy file the settings name; unreadable or invalid, it says what could not be done."""
    from schemas.policy_file import PolicyError
    from schemas.policy_file import load_policy as load

    try:
        return load(settings.policy_file)
    except (PolicyError, OSError) as exc:
        raise CliError(f"cannot {why}: {exc}") from None


# -- output ----------------------------------------------------------------------------------------


def dump(records: Sequence[Record] | Record | dict[str, Any]) -> None:
    """Records (or a document of them) as sorted, indented JSON on stdout: the `--json` output."""
    if isinstance(records, dict):
        payload: Any = records
    elif isinstance(records, Sequence):
        payload = [r.model_dump(mode="json") for r in records]
    else:
        payload = records.model_dump(mode="json")
    json.dump(payload, sys.stdout, indent=2, sort_keys=True)
    print()


def empty(what: str, hint: str) -> int:
    print(f"no {what} in the register yet — {hint}")
    return 0


def utc_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


# -- who is acting ---------------------------------------------------------------------------------


def identity(by: str | None, what: str, placeholder: str = "EMAIL") -> str:
    """--by, or the login name when it is not given, checked as a name (the one `--by` rule).

    `what` completes "cannot tell …" when there is no login name to fall back on.
    """
    import getpass

    from schemas.payloads import Name

    if by is None:
        try:
            by = getpass.getuser()
        except (OSError, KeyError, ImportError):  # no login name here: the user must say
            raise CliError(f"cannot tell {what}: pass --by {placeholder}") from None
    return arg(Name, by, "--by")


# -- checked input ---------------------------------------------------------------------------------

# Pydantic's wording of the checks on payload names and texts, as a person would say it.
PLAIN = {
    "string_too_short": "must not be empty",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "must not be blank or start or end with a space",
}


def validated(kind: Any, value: str, flag: str) -> str:
    """`value` checked against a payload type (Name, Text); a failure names the flag."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return str(TypeAdapter(kind).validate_python(value))
    except ValidationError as exc:
        problems = "; ".join(PLAIN.get(e["type"], e["msg"]) for e in exc.errors(include_url=False))
        raise CliError(f"invalid {flag} {value!r}: {problems}") from None


def arg(kind: Any, value: str, flag: str) -> str:
    """`validated`, and no NUL: PostgreSQL cannot store one, so it is refused here, not there."""
    if "\x00" in value:
        raise CliError(f"invalid {flag} {value!r}: must not contain a NUL character")
    return validated(kind, value, flag)


def annex_a_controls(ids: list[str], flag: str) -> list[str]:
    """Annex A control ids of the catalogue, each once; an unknown one names the controls it may mean."""
    from schemas.catalogue import load_catalogue

    known = [c.id for c in load_catalogue().controls]
    for id_ in ids:
        if id_ not in known:
            close = [k for k in known if k.startswith(id_.rstrip(".") + ".")][:6]
            hint = (
                f"; did you mean one of {', '.join(close)}" if close else " (e.g. A.6.2.8; `aims controls`)"
            )
            raise CliError(f"invalid {flag} {id_!r}: not an Annex A control{hint}")
    return list(dict.fromkeys(ids))


def checked_text(value: str, flag: str, what: str) -> str:
    """A free text, stripped; blank is refused here, before anything is recorded."""
    from schemas.payloads import Text

    if not value.strip():
        raise CliError(f"invalid {flag} {value!r}: must not be empty; {what}")
    return arg(Text, value.strip(), flag)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(value: str, flag: str) -> date:
    """A calendar date written YYYY-MM-DD, and only that."""
    example = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    if not _ISO_DATE.fullmatch(value):
        raise CliError(f"invalid {flag} {value!r}: expected a date as YYYY-MM-DD, e.g. {example}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"invalid {flag} {value!r}: there is no such date (YYYY-MM-DD, e.g. {example})"
        ) from None


# -- announcing ------------------------------------------------------------------------------------


def send_now(
    settings: AimsSettings, keys: list[str], done: str = "sent to the waiting request-approval run"
) -> None:
    """Publish the staged events at once; if Kafka is away they are safe in the outbox and go later."""
    from kafka.errors import KafkaError

    from aims.endpoints import resolve
    from infra.resources import outbox_sender

    try:
        endpoints = resolve(settings)
        outbox = outbox_sender(
            open_register(settings), endpoints.kafka, "aims-cli", settings.event_signing_key
        )
        try:
            sent = outbox.send(keys, "cli")
        finally:
            outbox.close()
    except (CliError, KafkaError) as exc:
        print(f"warning: not sent yet ({exc}); the router's outbox relay sends it", file=sys.stderr)
        return
    if sent < len(keys):
        print("warning: not sent yet; the router's outbox relay sends it", file=sys.stderr)
        return
    print(done)


# -- parser pieces ---------------------------------------------------------------------------------


def listing_options(
    parser: argparse.ArgumentParser, statuses: list[str] | None, nested: bool = False
) -> None:
    """--system/--status/--json, on a command group and again on its `list` action.

    On the action they default to SUPPRESS, so `aims risks --json list` keeps the group's value.
    """
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    parser.add_argument("--system", metavar="S", help="only this AI system", **default)
    if statuses:
        parser.add_argument("--status", choices=statuses, **default)
    parser.add_argument("--json", action="store_true", **default)


def usage_only(_: argparse.Namespace) -> int:
    """The handler of a group that needs an action: argparse has already refused the command line."""
    return 2
