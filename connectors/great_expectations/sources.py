"""SQL tables (an engine on the table's database and the reflected table), and the name a drafted
suite gets. Files are read by `files.py`. Failures become `DataUnavailable`, saying what to fix and
whether a retry may help; passwords are scrubbed from every message.

The target is a declared source's (`flows/data_quality/sources.py` resolved it): its URL is the
policy's and its password that source's own, so the unknown-host and refused classifications below
describe the organisation's own database, never an address an event chose.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from connectors.great_expectations.common import (
    DataUnavailable,
    FileTarget,
    SqlTarget,
    Target,
    TooLarge,
    first_line,
)


def _scrubber(secret: str | None) -> Callable[[str], str]:
    if not secret:
        return no_scrub
    forms = sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in forms:
            text = text.replace(form, "***")
        return text

    return scrub


def no_scrub(text: str) -> str:
    return text


@dataclass
class Sql:
    engine: sa.Engine
    url: sa.URL
    table: sa.Table
    display: str
    scrub: Callable[[str], str]


# SQLSTATEs of a connection refused for good: no such database, no such user, a wrong password.
_REFUSED = {
    "3D000": "the database does not exist; fix the database name in the URL",
    "28000": "the server does not know or admit this user; fix the user name in the URL",
    "28P01": "the server refused the password; set the right one in {env} (in the worker's environment)",
}


# The same refusals as libpq words them (psycopg keeps no SQLSTATE for a failed connection).
_LIBPQ_REFUSED = (
    (re.compile(r'FATAL:\s+database ".*" does not exist'), "3D000"),
    (re.compile(r'FATAL:\s+role ".*" does not exist'), "28000"),
    (re.compile(r"no pg_hba\.conf entry"), "28000"),
    (re.compile(r"password authentication failed"), "28P01"),
)


def _wrong_address(exc: BaseException, url: sa.URL, password_env: str) -> str | None:
    """Why connecting can never work, when it cannot: an unknown host, database or user, a wrong
    password. None for what may pass (a server down or restarting, a network timeout)."""
    import socket

    orig = getattr(exc, "orig", None) or exc
    code = None
    for cause in (orig, orig.__cause__, orig.__context__):
        code = code or getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if code is None:
        text = str(orig)
        code = next((c for pattern, c in _LIBPQ_REFUSED if pattern.search(text)), None)
    if code in _REFUSED:
        return _REFUSED[code].format(env=password_env)
    host = url.host
    if host and not host.startswith("/"):
        try:
            socket.getaddrinfo(host, None)
        except socket.gaierror as err:  # EAI_AGAIN (DNS not answering now) may pass
            unknown = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
            if err.errno in unknown:
                return f"the host {host} is unknown (no such name in DNS); fix the host in the URL"
        except (UnicodeError, OSError):
            pass
    return None


def default_dataset(target: Target) -> str:
    if isinstance(target, FileTarget):
        name = target.path.name
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            name = name.removesuffix(suffix)
    else:
        name = target.table.rpartition(".")[2]
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "dataset"


@contextlib.contextmanager
def open_table(target: SqlTarget) -> Iterator[Sql]:
    """An engine on the table's database and the reflected table, within the source's caps on columns
    and rows; DataUnavailable if unreachable, TooLarge over a cap."""
    secret = target.password.get_secret_value() if target.password is not None else None
    secret = secret or None
    password_env = target.password_env
    scrub = _scrubber(secret)
    try:
        url = sa.make_url(target.url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        reason = f"not a SQLAlchemy URL ({exc}); write it as dialect+driver://user@host/database"
        raise DataUnavailable(scrub(target.url), scrub(reason)) from None
    sqlite = url.get_backend_name() == "sqlite"
    # The source's own password, for the source's own URL (the caller pairs them from the policy).
    if secret and not sqlite and url.password is None:
        url = url.set(password=secret)
    schema, _, table_name = target.table.rpartition(".")
    display = f"table {target.table} at {url.render_as_string(hide_password=True)}"
    database = url.database or ""
    local = sqlite and database not in ("", ":memory:") and not database.startswith("file:")
    if local and not Path(database).is_file():
        raise DataUnavailable(display, f"the SQLite database file {database} does not exist")
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        reason = f"cannot use this URL: {exc}; install the database driver, or fix the URL's dialect"
        raise DataUnavailable(display, scrub(reason)) from None
    try:
        try:
            table = sa.Table(table_name, sa.MetaData(), schema=schema or None, autoload_with=engine)
        except sa.exc.NoSuchTableError:
            raise DataUnavailable(
                display, "no such table; check the table name (schema-qualified as schema.table)"
            ) from None
        except ImportError as exc:
            reason = f"the database driver is not installed ({exc}); install it in the worker"
            raise DataUnavailable(display, scrub(reason)) from None
        except sa.exc.SQLAlchemyError as exc:
            wrong = _wrong_address(exc, url, password_env)
            if wrong is not None:  # a retry would meet the same refusal: a finding, now
                raise DataUnavailable(display, scrub(f"{wrong} ({first_line(exc)})")) from None
            reason = (
                f"cannot reach the database ({first_line(exc)}); check that it is up, the URL, "
                f"and the password in {password_env}"
            )
            raise DataUnavailable(display, scrub(reason), retryable=True) from None
        _within_caps(engine, table, target, display, scrub)
        yield Sql(engine=engine, url=url, table=table, display=display, scrub=scrub)
    finally:
        engine.dispose()


def _within_caps(
    engine: sa.Engine, table: sa.Table, target: SqlTarget, display: str, scrub: Callable[[str], str]
) -> None:
    """Columns from the reflected table, rows by one count: the checks run in the database, but a
    profile still fetches per column, and the caps are the source's whatever its kind."""
    limits = target.limits
    if len(table.columns) > limits.max_columns:
        raise TooLarge(display, f"{len(table.columns):,} columns", limits.max_columns, "max_columns")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    except sa.exc.SQLAlchemyError as exc:
        reason = scrub(f"counting the rows failed: {first_line(exc)}")
        raise DataUnavailable(display, reason, retryable=True) from None
    if int(rows) > limits.max_rows:
        raise TooLarge(display, f"{int(rows):,} rows", limits.max_rows, "max_rows")
