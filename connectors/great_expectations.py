"""Great Expectations (GX 1.x) behind a small interface: run suites, draft baselines, profile datasets.

Flows depend on `DataQualityEngine`; `GxEngine` is the real adapter. Importing this module is cheap:
GX (about 5 s), pandas and numpy are imported inside the methods that need them, and nothing is
created until a method runs (then one in-memory GX context per engine, reused).

Where the data is read:
- a CSV (`.csv`, `.csv.gz`) or Parquet (`.parquet`, `.pq`) file, by local path or `file://` URI, is
  read with pandas and checked by GX's pandas engine;
- a SQL table is checked by GX's SQLAlchemy engine, so every expectation runs as SQL in the database
  (aggregates, and samples of at most 20 unexpected values): the table is never loaded into Python.
  `profile` and `baseline` use aggregate and window queries too.

Credentials: `SqlTableLocation.url` never carries a password. The `password` given to `GxEngine`
(the setting `dq_password`, AIMS_DQ_PASSWORD in the environment) is merged into every non-SQLite
URL that has none, when a check runs. Messages and results show the URL with `***`, and the password
is scrubbed from any error text GX or the driver produce.

Data that cannot be read raises `DataUnavailable`, saying what to fix; `retryable` tells a transient
database failure (the server down or unreachable, a query failing midway) from a bad location: a
missing or unreadable file, an unknown table, and a URL that can never work (no such host, database
or user, a refused password, a driver not installed) are not retryable.

A suite whose expectation GX cannot evaluate (a missing column, a type mismatch) is not an error:
that expectation fails, with the reason in `exception`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import difflib
import math
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlparse

import sqlalchemy as sa
from pydantic import SecretStr

from schemas.payloads import FileLocation, SqlTableLocation
from schemas.suites import (
    CategoricalProfile,
    CheckOutcome,
    CheckStatistics,
    DatasetProfile,
    ExpectationOutcome,
    ExpectationSeverity,
    ExpectationSpec,
    Loc,
    NumericProfile,
    Suite,
    SuiteStatus,
    Verdict,
)
from schemas.suites import load_suite as _load_suite

if TYPE_CHECKING:
    import pandas as pd

PASSWORD_ENV = "AIMS_DQ_PASSWORD"
SAMPLE_SIZE = 20  # unexpected values kept per expectation
TOP_VALUES = 50  # categorical frequencies kept in a profile
VALUE_SET_MAX = 20  # a text column with at most this many values gets a value set in a baseline
QUANTILES = tuple(i / 100 for i in range(101))
DECILES = tuple(range(10, 100, 10))  # indices into QUANTILES of the histogram edges
_MAX_TEXT = 200  # longest sample value kept, in characters
_SITE = "aims"
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
_MISSING_COLUMN = re.compile(r'The column "(?P<column>.*?)" in BatchData does not exist')
# Arguments every GX expectation has; the rest are the expectation's own (for "did you mean").
_BASE_FIELDS = {
    "id",
    "meta",
    "notes",
    "result_format",
    "description",
    "catch_exceptions",
    "rendered_content",
    "severity",
    "windows",
}

Location = FileLocation | SqlTableLocation


class DataUnavailable(Exception):
    """The data cannot be read; the message says what to fix. `retryable`: the database may come back."""

    def __init__(self, location: str, reason: str, *, retryable: bool = False) -> None:
        self.location = location
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"{location}: {reason}")


def _scrubber(secret: str | None) -> Callable[[str], str]:
    if not secret:
        return _no_scrub
    forms = sorted({secret, quote(secret, safe=""), quote(secret)}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in forms:
            text = text.replace(form, "***")
        return text

    return scrub


def _no_scrub(text: str) -> str:
    return text


class DataQualityEngine(Protocol):
    """What flows need from a data-quality engine."""

    def validate(self, location: Location, suite: Suite, *, data_version: str | None = None) -> CheckOutcome:
        """Run `suite` against the data at `location`."""
        ...

    def baseline(self, location: Location, *, dataset: str | None = None, version: str = "1") -> Suite:
        """A suite drafted from the data at `location`, with status `baseline`, for review."""
        ...

    def profile(
        self,
        location: Location,
        *,
        columns: Sequence[str] | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
    ) -> DatasetProfile:
        """Reference statistics for drift; numeric columns binned on `edges` where given."""
        ...

    def build_data_docs(self, site_dir: Path, results: Sequence[CheckOutcome]) -> Path:
        """A Data Docs site of `results` in `site_dir`; the path of its index.html."""
        ...


# -- suites ---------------------------------------------------------------------------------------


def load_suite(path: Path) -> Suite:
    """`schemas.suites.load_suite` with every expectation checked against GX (name and kwargs)."""
    return _load_suite(path, check=check_expectation)


def check_expectation(name: str, kwargs: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems with one expectation entry, located relative to it: an unknown name, bad kwargs."""
    from great_expectations.compatibility import pydantic as gx_pydantic
    from great_expectations.exceptions import GreatExpectationsError

    known = _expectation_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else "see https://greatexpectations.io/expectations"
        return [(("expectation",), f"not a Great Expectations expectation; {hint}")]
    cls = _expectation_class(name)
    try:
        cls(**kwargs)
    except gx_pydantic.ValidationError as exc:
        return _kwargs_problems(name, cls, exc.errors())
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError, GreatExpectationsError) as exc:
        return [(("kwargs",), f"{name} refuses these kwargs: {exc}")]
    return []


def _expectation_names() -> list[str]:
    from great_expectations.expectations import registry

    registry.register_core_expectations()
    return sorted(registry.list_registered_expectation_implementations())


def _expectation_class(name: str) -> Any:
    from great_expectations.expectations.registry import get_expectation_impl

    return get_expectation_impl(name)


def _kwargs_problems(name: str, cls: Any, errors: Sequence[Mapping[str, Any]]) -> list[tuple[Loc, str]]:
    """GX's (pydantic v1) errors, one per argument: a union reports each member; keep the telling one."""
    own = sorted(set(cls.__fields__) - _BASE_FIELDS)
    by_field: dict[str, list[str]] = {}
    roots: list[str] = []
    for err in errors:
        loc = err.get("loc") or ("__root__",)
        key, kind, msg = str(loc[0]), str(err.get("type", "")), str(err.get("msg", ""))
        if key == "__root__":
            roots.append(msg)
        elif kind == "value_error.extra":
            close = difflib.get_close_matches(key, own, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "it takes: " + ", ".join(own)
            by_field.setdefault(key, []).append(f"{name} has no argument {key!r}; {hint}")
        elif kind == "value_error.missing":
            by_field.setdefault(key, []).append(f"{name} needs {key!r}")
        else:
            by_field.setdefault(key, []).append(msg)
    problems: list[tuple[Loc, str]] = []
    for key, messages in by_field.items():
        # "not a valid dict" is the suite-parameter alternative ({"$PARAMETER": …}) of every argument
        telling = [m for m in messages if m != "value is not a valid dict"] or messages
        problems.append((("kwargs", key), telling[0]))
    if not problems:  # a check across arguments; when an argument failed it is mostly a knock-on
        problems += [(("kwargs",), msg) for msg in dict.fromkeys(roots)]
    return problems


# -- the engine -----------------------------------------------------------------------------------


@dataclass
class _Column:
    """Facts about one column, from pandas or from SQL, in the same shape (values native)."""

    name: str
    numeric: bool
    integer: bool = False
    count: int = 0
    nulls: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    quantiles: list[tuple[float, float]] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    top: list[tuple[Any, int]] = field(default_factory=list)
    distinct: int = 0


@dataclass
class _Facts:
    rows: int
    columns: list[_Column]


@dataclass
class _Sql:
    engine: sa.Engine
    url: sa.URL
    table: sa.Table
    display: str
    scrub: Callable[[str], str]


class GxEngine:
    """The GX adapter. Thread-safe: GX itself is not, so its calls take turns."""

    def __init__(self, *, password: SecretStr | None = None, password_env: str = PASSWORD_ENV) -> None:
        self._password = password
        self._password_env = password_env
        self._lock = threading.RLock()
        self._context: Any = None

    # -- the interface ----------------------------------------------------------------------------

    def validate(self, location: Location, suite: Suite, *, data_version: str | None = None) -> CheckOutcome:
        started, checked_at = time.perf_counter(), dt.datetime.now(dt.UTC)
        scrub: Callable[[str], str] = _no_scrub
        if isinstance(location, FileLocation):
            path, fmt = _file_of(location)
            frame = _read_frame(path, fmt)
            columns = [str(c) for c in frame.columns]
            display = str(path)
            results, engine_name = self._run(
                suite, lambda ctx, name: _pandas_batch(ctx, name, frame), display
            )
        else:
            with self._sql(location) as sql:
                columns = [c.name for c in sql.table.columns]
                display, scrub = sql.display, sql.scrub
                results, engine_name = self._run(
                    suite, lambda ctx, name: _sql_batch(ctx, name, sql), display, scrub
                )
        outcomes = [
            _outcome(spec, results.get(i), columns, scrub) for i, spec in enumerate(suite.expectations)
        ]
        return CheckOutcome(
            dataset=suite.dataset,
            suite_version=suite.version,
            suite_status=suite.status,
            data_version=data_version,
            location=display,
            engine=engine_name,
            verdict=_verdict(outcomes),
            statistics=_statistics(outcomes),
            expectations=outcomes,
            checked_at=checked_at,
            duration_seconds=time.perf_counter() - started,
        )

    def baseline(self, location: Location, *, dataset: str | None = None, version: str = "1") -> Suite:
        facts, display = self._facts(location, None, None, distribution=False)
        name = dataset or _default_dataset(location)
        return _baseline_suite(facts, name, version, display)

    def profile(
        self,
        location: Location,
        *,
        columns: Sequence[str] | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
    ) -> DatasetProfile:
        facts, _ = self._facts(location, columns, edges, distribution=True)
        return DatasetProfile(rows=facts.rows, columns={c.name: _column_profile(c) for c in facts.columns})

    def build_data_docs(self, site_dir: Path, results: Sequence[CheckOutcome]) -> Path:
        """Build the site from `results` alone: pages of results not given (older builds) are removed,
        so pass every result the site should show (from the register, say)."""
        import great_expectations as gx

        site_dir = Path(site_dir).resolve()
        site_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            context = gx.get_context(mode="ephemeral", project_config=_context_config(site_dir))
            store = context.validation_results_store
            for outcome in results:
                key, value = _gx_validation_result(outcome)
                store.set(key, value)
            context.build_data_docs(site_names=[_SITE])
        return site_dir / "index.html"

    # -- GX ---------------------------------------------------------------------------------------

    def _gx_context(self) -> Any:
        if self._context is None:
            import great_expectations as gx

            self._context = gx.get_context(mode="ephemeral", project_config=_context_config(None))
        return self._context

    def _run(
        self,
        suite: Suite,
        make_batch: Callable[[Any, str], Any],
        display: str,
        scrub: Callable[[str], str] = _no_scrub,
    ) -> tuple[dict[int, Any], str]:
        """Each suite entry's GX result (or the message why GX refused it) and the engine's name."""
        import great_expectations as gx
        from great_expectations.exceptions import GreatExpectationsError

        expectations = []
        results: dict[int, Any] = {}
        for i, spec in enumerate(suite.expectations):
            try:
                cls = _expectation_class(spec.expectation)
                expectations.append(cls(**spec.kwargs, severity=spec.severity.value, meta={"aims_index": i}))
            except (
                TypeError,
                ValueError,
                ArithmeticError,
                KeyError,
                AttributeError,
                GreatExpectationsError,
            ) as exc:
                # A suite built in code skips the loader's check; GX's refusal fails that entry only.
                results[i] = f"GX refused the expectation: {scrub(str(exc))}"
        # Given to the constructor: `add_expectation` would drop an entry GX deems equal to an earlier
        # one ({column: a} and {column: a, mostly: 1}), and it needs a current Data Context.
        gx_suite = gx.ExpectationSuite(name=suite.dataset, expectations=expectations)
        with self._lock:
            context = self._gx_context()
            name = f"aims-{uuid.uuid4().hex[:12]}"
            try:
                batch = make_batch(context, name)
                engine_name = type(batch.data.execution_engine).__name__
                if gx_suite.expectations:
                    validated = batch.validate(gx_suite, result_format=_RESULT_FORMAT)
                    for result in validated.results:
                        results[int(result.expectation_config.meta["aims_index"])] = result
            except sa.exc.SQLAlchemyError as exc:
                reason = scrub(f"the database failed during the check: {_first_line(exc)}")
                raise DataUnavailable(display, reason, retryable=True) from None
            finally:
                _drop_datasource(context, name)
        return results, engine_name

    # -- reading ----------------------------------------------------------------------------------

    def _facts(
        self,
        location: Location,
        columns: Sequence[str] | None,
        edges: Mapping[str, Sequence[float]] | None,
        *,
        distribution: bool,
    ) -> tuple[_Facts, str]:
        if isinstance(location, FileLocation):
            path, fmt = _file_of(location)
            frame = _read_frame(path, fmt)
            return _frame_facts(frame, columns, edges or {}, distribution), str(path)
        with self._sql(location) as sql:
            try:
                return _sql_facts(sql, columns, edges or {}, distribution), sql.display
            except sa.exc.SQLAlchemyError as exc:
                raise DataUnavailable(
                    sql.display, sql.scrub(f"a query failed: {exc}"), retryable=True
                ) from None

    def _secret(self) -> str | None:
        # Given by the caller from the settings (`dq_password`); the environment is not read here.
        if self._password is None:
            return None
        return self._password.get_secret_value() or None

    @contextlib.contextmanager
    def _sql(self, location: SqlTableLocation) -> Iterator[_Sql]:
        """An engine on the table's database and the reflected table; DataUnavailable if unreachable."""
        secret = self._secret()
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
                wrong = _wrong_address(exc, url, self._password_env)
                if wrong is not None:  # a retry would meet the same refusal: a finding, now
                    raise DataUnavailable(display, scrub(f"{wrong} ({_first_line(exc)})")) from None
                reason = (
                    f"cannot reach the database ({_first_line(exc)}); check that it is up, the URL, "
                    f"and the password in {self._password_env}"
                )
                raise DataUnavailable(display, scrub(reason), retryable=True) from None
            yield _Sql(engine=engine, url=url, table=table, display=display, scrub=scrub)
        finally:
            engine.dispose()


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


# -- GX plumbing ----------------------------------------------------------------------------------


def _context_config(site_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if site_dir is not None:
        sites[_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        # GX draws tqdm bars ("Calculating Metrics") unless told not to.
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )


def _pandas_batch(context: Any, name: str, frame: pd.DataFrame) -> Any:
    source = context.data_sources.add_pandas(name)
    asset = source.add_dataframe_asset(name="frame")
    return asset.add_batch_definition_whole_dataframe("whole").get_batch(
        batch_parameters={"dataframe": frame}
    )


def _sql_batch(context: Any, name: str, sql: _Sql) -> Any:
    connection = sql.url.render_as_string(hide_password=False)
    backend = sql.url.get_backend_name()
    with warnings.catch_warnings():
        # add_sql warns that a dialect has a GX class of its own; schema_name is deprecated but needed.
        warnings.simplefilter("ignore")
        if backend == "sqlite":
            source = context.data_sources.add_sqlite(name, connection_string=connection)
        elif backend == "postgresql":
            source = context.data_sources.add_postgres(name, connection_string=connection)
        else:
            source = context.data_sources.add_sql(name, connection_string=connection)
        table = sql.table
        if table.schema:
            asset = source.add_table_asset(name="table", table_name=table.name, schema_name=table.schema)
        else:
            asset = source.add_table_asset(name="table", table_name=table.name)
    return asset.add_batch_definition_whole_table("whole").get_batch()


def _drop_datasource(context: Any, name: str) -> None:
    """Forget the per-check datasource, closing the connections GX opened for it."""
    source = context.data_sources.all().get(name)
    if source is None:
        return
    engines = []
    if hasattr(source, "get_engine"):
        engines.append(source.get_engine())
        execution = getattr(source, "_execution_engine", None)
        if execution is not None and getattr(execution, "engine", None) is not None:
            engines.append(execution.engine)
    context.data_sources.delete(name)
    for engine in engines:
        engine.dispose()


def _gx_validation_result(outcome: CheckOutcome) -> tuple[Any, Any]:
    """A stored outcome back as the GX validation result Data Docs render, and its store key."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.metadata_types import FailureSeverity

    results = []
    for e in outcome.expectations:
        result: dict[str, Any] = {}
        if e.observed_value is not None:
            result["observed_value"] = e.observed_value
        for name in ("element_count", "unexpected_count", "unexpected_percent"):
            if getattr(e, name) is not None:
                result[name] = getattr(e, name)
        if e.unexpected_count is not None:
            result["partial_unexpected_list"] = e.unexpected_sample
        exception = {
            "raised_exception": e.exception is not None,
            "exception_message": e.exception,
            # the renderer needs text here; tracebacks are not kept
            "exception_traceback": e.exception,
        }
        config = ExpectationConfiguration(
            type=e.expectation, kwargs=e.kwargs, severity=FailureSeverity(e.severity.value)
        )
        results.append(
            ExpectationValidationResult(
                success=e.success, expectation_config=config, result=result, exception_info=exception
            )
        )
    stats = outcome.statistics
    run_id = RunIdentifier(run_name=_path_safe(outcome.data_version or "check"), run_time=outcome.checked_at)
    suite_name = _path_safe(outcome.dataset)
    value = ExpectationSuiteValidationResult(
        success=stats.unsuccessful == 0,  # as GX has it; the verdict is among the batch markers
        results=results,
        suite_name=suite_name,
        statistics={
            "evaluated_expectations": stats.evaluated,
            "successful_expectations": stats.successful,
            "unsuccessful_expectations": stats.unsuccessful,
            "success_percent": stats.success_percent,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "run_id": run_id,
            "validation_time": outcome.checked_at,
            "active_batch_definition": {
                "datasource_name": outcome.engine,
                "data_connector_name": "",
                "data_asset_name": outcome.location,
                "batch_identifiers": {},
            },
            "batch_markers": {
                "verdict": outcome.verdict.value,
                "suite_version": outcome.suite_version,
                "suite_status": outcome.suite_status.value,
            },
            "batch_spec": {"location": outcome.location},
        },
    )
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=run_id,
        batch_identifier=_path_safe(f"{outcome.dataset}-{outcome.checked_at:%Y%m%dT%H%M%S%fZ}"),
    )
    return key, value


def _path_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "_"


# -- results --------------------------------------------------------------------------------------


def _outcome(
    spec: ExpectationSpec, result: Any, columns: Sequence[str], scrub: Callable[[str], str]
) -> ExpectationOutcome:
    base = {"expectation": spec.expectation, "kwargs": _json_safe(spec.kwargs), "severity": spec.severity}
    if result is None or isinstance(result, str):
        return ExpectationOutcome(**base, success=False, exception=result or "GX returned no result")
    details = result.result or {}
    exception = _exception_message(result.exception_info)
    if exception is not None:
        exception = scrub(_clearer(exception, columns))
    sample = details.get("partial_unexpected_list") or []
    return ExpectationOutcome(
        **base,
        success=bool(result.success),
        observed_value=_json_safe(details.get("observed_value")),
        element_count=_int_or_none(details.get("element_count")),
        unexpected_count=_int_or_none(details.get("unexpected_count")),
        unexpected_percent=_float_or_none(details.get("unexpected_percent")),
        unexpected_sample=[_json_safe(v) for v in list(sample)[:SAMPLE_SIZE]],
        exception=exception,
    )


def _exception_message(info: Any) -> str | None:
    """GX reports exceptions flat ({raised_exception, exception_message}) or per metric that failed."""
    if not info:
        return None
    if "raised_exception" in info:
        return (
            str(info.get("exception_message") or "GX raised an exception")
            if info["raised_exception"]
            else None
        )
    messages = [
        str(v.get("exception_message") or "GX raised an exception")
        for v in info.values()
        if isinstance(v, Mapping) and v.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _clearer(message: str, columns: Sequence[str]) -> str:
    if match := _MISSING_COLUMN.search(message):
        shown = ", ".join(columns[:30]) + (", …" if len(columns) > 30 else "")
        return f"column {match['column']!r} is not in the data (its columns: {shown})"
    return message


def _verdict(outcomes: Sequence[ExpectationOutcome]) -> Verdict:
    failed = [o for o in outcomes if not o.success]
    if any(o.severity is ExpectationSeverity.critical for o in failed):
        return Verdict.failed
    return Verdict.warning if failed else Verdict.passed


def _statistics(outcomes: Sequence[ExpectationOutcome]) -> CheckStatistics:
    successful = sum(o.success for o in outcomes)
    return CheckStatistics(
        evaluated=len(outcomes),
        successful=successful,
        unsuccessful=len(outcomes) - successful,
        success_percent=100 * successful / len(outcomes) if outcomes else None,
    )


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Plain JSON data: numpy scalars unwrapped, NaN null, dates ISO text, long text cut."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
    if _missing(value):
        return None
    if depth > 20:
        return str(value)[:_MAX_TEXT]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, decimal.Decimal):
        return _json_safe(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return _json_safe(value.hex())
    if hasattr(value, "isoformat") and callable(value.isoformat):  # pandas.Timestamp
        try:
            return str(value.isoformat())
        except ValueError:  # NaT
            return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return _json_safe(value.item(), depth + 1)
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays
        return _json_safe(value.tolist(), depth + 1)
    return _json_safe(str(value))


def _missing(value: Any) -> bool:
    """NaN-likes that are not None: pandas' NaT and NA, numpy's NaN."""
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses bool(); an array is ambiguous
        return repr(value) == "<NA>"


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _first_line(exc: BaseException) -> str:
    """The gist of an error: the driver's own message for a SQLAlchemy error, without the SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# -- files ----------------------------------------------------------------------------------------


def _file_of(location: FileLocation) -> tuple[Path, str]:
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


def _read_frame(path: Path, fmt: str) -> pd.DataFrame:
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
            str(path), f"cannot be read as {what}: {_first_line(exc)}; fix the file or its producer"
        ) from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _default_dataset(location: Location) -> str:
    if isinstance(location, FileLocation):
        name = _file_of(location)[0].name
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            name = name.removesuffix(suffix)
    else:
        name = location.table.rpartition(".")[2]
    return re.sub(r"[^A-Za-z0-9._-]", "-", name).strip("-._") or "dataset"


# -- facts: pandas and SQL ------------------------------------------------------------------------


def _quantiles(value_at: Callable[[int], float], n: int) -> list[tuple[float, float]]:
    """Linear interpolation between order statistics (numpy's and pandas' default), from a lookup."""
    out = []
    for p in QUANTILES:
        h = (n - 1) * p
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        a = value_at(lo)
        out.append((p, a + (value_at(hi) - a) * (h - lo)))
    return out


def _ranks(n: int) -> list[int]:
    """The order statistics (0-based) `_quantiles` reads."""
    needed: set[int] = set()
    for p in QUANTILES:
        lo = math.floor((n - 1) * p)
        needed |= {lo, min(lo + 1, n - 1)}
    return sorted(needed)


def _decile_edges(quantiles: Sequence[tuple[float, float]]) -> list[float]:
    return sorted({quantiles[i][1] for i in DECILES}) if quantiles else []


def _ordered_top(counts: Sequence[tuple[Any, int]]) -> list[tuple[Any, int]]:
    items = list(counts)
    try:
        items.sort(key=lambda kv: (-kv[1], kv[0]))
    except TypeError:  # values of mixed types
        items.sort(key=lambda kv: (-kv[1], str(kv[0])))
    return items[:TOP_VALUES]


def _is_numeric(series: pd.Series) -> bool:
    from pandas.api import types

    return bool(types.is_numeric_dtype(series) and not types.is_bool_dtype(series))


def _frame_facts(
    frame: pd.DataFrame,
    columns: Sequence[str] | None,
    edges: Mapping[str, Sequence[float]],
    distribution: bool,
) -> _Facts:
    import numpy as np
    import pandas as pd
    from pandas.api import types

    chosen = None if columns is None else set(columns)
    wanted = [c for c in frame.columns if chosen is None or c in chosen]
    out: list[_Column] = []
    for name in wanted:
        series = frame[name]
        if _is_numeric(series):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            finite = np.sort(values[np.isfinite(values)])
            n = int(finite.size)
            col = _Column(
                name, numeric=True, integer=types.is_integer_dtype(series), count=n, nulls=len(values) - n
            )
            if n:
                col.min, col.max, col.mean = float(finite[0]), float(finite[-1]), float(finite.mean())
                if distribution:
                    col.quantiles = _quantiles(finite.item, n)
            if distribution:
                col.edges = (
                    sorted(float(e) for e in edges[name]) if name in edges else _decile_edges(col.quantiles)
                )
                bins = np.searchsorted(np.asarray(col.edges, dtype="float64"), finite, side="right")
                col.counts = [int(c) for c in np.bincount(bins, minlength=len(col.edges) + 1)]
        else:
            present = series[series.notna()]
            if isinstance(series.dtype, pd.CategoricalDtype):
                present = present.astype(object)
            counts = present.value_counts(sort=False)
            col = _Column(name, numeric=False, count=len(present), nulls=len(series) - len(present))
            col.distinct = len(counts)
            col.top = _ordered_top([(_native(v), int(c)) for v, c in counts.items()])
        out.append(col)
    return _Facts(rows=len(frame), columns=out)


def _native(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and callable(value.item) else value


def _sql_numeric(column: sa.Column[Any]) -> tuple[bool, bool]:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False, False
    return isinstance(kind, sa.Integer | sa.Numeric | sa.Float), isinstance(kind, sa.Integer)


def _sql_facts(
    sql: _Sql, columns: Sequence[str] | None, edges: Mapping[str, Sequence[float]], distribution: bool
) -> _Facts:
    """The same facts as `_frame_facts`, computed by the database: aggregates, and for quantiles a
    window query that returns only the order statistics needed (about 200 rows per column)."""
    table = sql.table
    chosen = None if columns is None else set(columns)
    wanted = [c for c in table.columns if chosen is None or c.name in chosen]
    aggregates: list[sa.ColumnElement[Any]] = [sa.func.count().label("rows")]
    for i, c in enumerate(wanted):
        numeric, _ = _sql_numeric(c)
        aggregates.append(sa.func.count(c).label(f"n{i}"))
        if numeric:
            aggregates += [
                sa.func.min(c).label(f"min{i}"),
                sa.func.max(c).label(f"max{i}"),
                sa.func.avg(c).label(f"avg{i}"),
            ]
        else:
            aggregates.append(sa.func.count(sa.distinct(c)).label(f"d{i}"))
    out: list[_Column] = []
    with sql.engine.connect() as conn:
        row = conn.execute(sa.select(*aggregates).select_from(table)).mappings().one()
        rows = int(row["rows"])
        for i, c in enumerate(wanted):
            numeric, integer = _sql_numeric(c)
            count = int(row[f"n{i}"])
            col = _Column(c.name, numeric=numeric, integer=integer, count=count, nulls=rows - count)
            if numeric:
                if count:
                    col.min, col.max = float(row[f"min{i}"]), float(row[f"max{i}"])
                    col.mean = float(row[f"avg{i}"])
                if distribution:
                    if count:
                        stats = _order_statistics(conn, table, c, _ranks(count))
                        col.quantiles = _quantiles(stats.__getitem__, count)
                    col.edges = (
                        sorted(float(e) for e in edges[c.name])
                        if c.name in edges
                        else _decile_edges(col.quantiles)
                    )
                    col.counts = _sql_histogram(conn, table, c, col.edges, count)
            else:
                col.distinct = int(row[f"d{i}"])
                frequency = sa.func.count().label("frequency")
                top = conn.execute(
                    sa.select(c, frequency)
                    .where(c.is_not(None))
                    .group_by(c)
                    .order_by(frequency.desc(), c)
                    .limit(TOP_VALUES)
                )
                col.top = _ordered_top([(v, int(f)) for v, f in top])
            out.append(col)
    return _Facts(rows=rows, columns=out)


def _order_statistics(
    conn: sa.Connection, table: sa.Table, column: sa.Column[Any], ranks: Sequence[int]
) -> dict[int, float]:
    ordered = (
        sa.select(column.label("v"), sa.func.row_number().over(order_by=column).label("rn"))
        .where(column.is_not(None))
        .subquery()
    )
    wanted = [r + 1 for r in ranks]  # row_number counts from 1
    rows = conn.execute(sa.select(ordered.c.rn, ordered.c.v).where(ordered.c.rn.in_(wanted)))
    return {int(rn) - 1: float(v) for rn, v in rows}


def _sql_histogram(
    conn: sa.Connection, table: sa.Table, column: sa.Column[Any], edges: Sequence[float], count: int
) -> list[int]:
    if not edges:
        return [count]
    bucket = sa.case(*[(column < edge, i) for i, edge in enumerate(edges)], else_=len(edges))
    binned = sa.select(bucket.label("b")).where(column.is_not(None)).subquery()
    counts = [0] * (len(edges) + 1)
    for b, n in conn.execute(sa.select(binned.c.b, sa.func.count()).group_by(binned.c.b)):
        counts[int(b)] = int(n)
    return counts


def _column_profile(col: _Column) -> NumericProfile | CategoricalProfile:
    if col.numeric:
        return NumericProfile(
            count=col.count,
            nulls=col.nulls,
            min=col.min,
            max=col.max,
            mean=col.mean,
            quantiles=col.quantiles,
            edges=col.edges,
            counts=col.counts,
        )
    frequencies: dict[str, int] = {}
    for value, n in col.top:
        key = str(_json_safe(value))
        frequencies[key] = frequencies.get(key, 0) + n
    return CategoricalProfile(
        count=col.count,
        nulls=col.nulls,
        distinct=col.distinct,
        frequencies=frequencies,
        other=col.count - sum(n for _, n in col.top),
    )


# -- baselines ------------------------------------------------------------------------------------


def _baseline_suite(facts: _Facts, dataset: str, version: str, display: str) -> Suite:
    n = facts.rows
    entries: list[dict[str, Any]] = [
        {
            "expectation": "expect_table_columns_to_match_set",
            "severity": "critical",
            "kwargs": {"column_set": [c.name for c in facts.columns], "exact_match": True},
            "notes": "The columns at baseline.",
        },
        {
            "expectation": "expect_table_row_count_to_be_between",
            "severity": "warning",
            "kwargs": {"min_value": n // 2, "max_value": max(2 * n, 1)},
            "notes": f"{n} rows at baseline; the range allows halving or doubling.",
        },
    ]
    for col in facts.columns:
        if n and col.nulls == 0:
            entries.append(
                {
                    "expectation": "expect_column_values_to_not_be_null",
                    "severity": "warning",
                    "kwargs": {"column": col.name},
                    "notes": f"No nulls in {n} rows at baseline.",
                }
            )
        if col.numeric and col.min is not None and col.max is not None and math.isfinite(col.max - col.min):
            low, high = _slack_range(col.min, col.max, col.integer)
            entries.append(
                {
                    "expectation": "expect_column_values_to_be_between",
                    "severity": "warning",
                    "kwargs": {"column": col.name, "min_value": low, "max_value": high},
                    "notes": f"Observed {_num(col.min)} to {_num(col.max)} at baseline, "
                    "widened by 10% of the span.",
                }
            )
        elif not col.numeric and 0 < col.distinct <= VALUE_SET_MAX and col.count >= 2 * col.distinct:
            values = [_json_safe(v) for v, _ in col.top]
            entries.append(
                {
                    "expectation": "expect_column_values_to_be_in_set",
                    "severity": "warning",
                    "kwargs": {"column": col.name, "value_set": values},
                    "notes": f"The {len(values)} values seen at baseline.",
                }
            )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    return Suite.model_validate(
        {
            "dataset": dataset,
            "version": version,
            "status": SuiteStatus.baseline,
            "description": f"Generated on {today} from {display} ({n} rows).",
            "expectations": entries,
        }
    )


def _slack_range(low: float, high: float, integer: bool) -> tuple[float | int, float | int]:
    """[low, high] widened by 10% of the span (or of the value, for a constant), rounded outward to a
    round number; never below 0 for a column that had no negative value."""
    slack = (high - low) * 0.1 or max(abs(high) * 0.1, 1.0)
    step = 10.0 ** math.floor(math.log10(slack))
    lo = math.floor((low - slack) / step) * step
    hi = math.ceil((high + slack) / step) * step
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        return math.floor(lo), math.ceil(hi)
    digits = max(0, -math.floor(math.log10(step)))
    return round(lo, digits), round(hi, digits)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
