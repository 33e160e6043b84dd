"""Where the data is read: local CSV and Parquet files (with pandas), and SQL tables (an engine on the
table's database and the reflected table). Failures become `DataUnavailable`, saying what to fix and
whether a retry may help; passwords are scrubbed from every message.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlparse

import sqlalchemy as sa

from schemas.payloads import FileLocation, SqlTableLocation

if TYPE_CHECKING:
    import pandas as pd
from connectors.great_expectations.common import DataUnavailable, Location, first_line

_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


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


def file_of(location: FileLocation) -> tuple[Path, str]:
    parsed = urlparse(location.uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DataUnavailable(location.uri, "only local files can be read; the URI names another host")
        path = Path(unquote(parsed.path))
    elif len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise DataUnavailable(
            location.uri, f"{parsed.scheme}:// is not readable here; give a local path or a file:// URI"
        )
    else:
        path = Path(location.uri)
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if suffixes and suffixes[-1] == ".gz" and (len(suffixes) < 2 or suffixes[0] != ".csv"):
        fmt = None
    if fmt is None:
        raise DataUnavailable(
            str(path),
            f"unsupported file type ({path.suffix or 'no extension'}): publish CSV (.csv, .csv.gz) "
            "or Parquet (.parquet, .pq)",
        )
    return path, fmt


def read_frame(path: Path, fmt: str) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise DataUnavailable(
            str(path), "file not found; check the location in the event (path or file:// URI)"
        )
    if not path.is_file():
        raise DataUnavailable(str(path), "not a file; the location must name one CSV or Parquet file")
    try:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataUnavailable(str(path), "the CSV file is empty; it needs at least a header row") from None
    except ImportError as exc:
        raise DataUnavailable(str(path), f"reading {fmt} needs a missing library: {exc}") from None
    except PermissionError:
        raise DataUnavailable(str(path), "permission denied; make the file readable by the worker") from None
    except (OSError, ValueError) as exc:  # pandas' ParserError and pyarrow's ArrowInvalid are ValueErrors
        what = "CSV" if fmt == "csv" else "Parquet"
        raise DataUnavailable(
            str(path), f"cannot be read as {what}: {first_line(exc)}; fix the file or its producer"
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def default_dataset(location: Location) -> str:
    if isinstance(location, FileLocation):
        name = file_of(location)[0].name
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            name = name.removesuffix(suffix)
    else:
        name = location.table.rpartition(".")[2]
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "dataset"


@contextlib.contextmanager
def open_table(location: SqlTableLocation, secret: str | None, password_env: str) -> Iterator[Sql]:
    """An engine on the table's database and the reflected table; DataUnavailable if unreachable."""
    scrub = _scrubber(secret)
    try:
        url = sa.make_url(location.url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        reason = f"not a SQLAlchemy URL ({exc}); write it as dialect+driver://user@host/database"
        raise DataUnavailable(location.url, scrub(reason)) from None
    sqlite = url.get_backend_name() == "sqlite"
    if secret and not sqlite and url.password is None:
        url = url.set(password=secret)
    schema, _, table_name = location.table.rpartition(".")
    display = f"table {location.table} at {url.render_as_string(hide_password=True)}"
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
        yield Sql(engine=engine, url=url, table=table, display=display, scrub=scrub)
    finally:
        engine.dispose()
