"""`DataQualityEngine`, what flows need, and `GxEngine`, the adapter: runs a suite through GX's pandas
or SQL engine and turns its results into a `CheckOutcome`; drafts baselines, profiles, builds Data
Docs. GX is imported inside the methods that need it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa

from schemas.suites import (
    CheckOutcome,
    CheckStatistics,
    DatasetProfile,
    ExpectationOutcome,
    ExpectationSeverity,
    ExpectationSpec,
    Suite,
    Verdict,
)

if TYPE_CHECKING:
    import pandas as pd
from connectors.great_expectations.baselines import baseline_suite
from connectors.great_expectations.common import (
    SAMPLE_SIZE,
    DataUnavailable,
    FileTarget,
    SqlTarget,
    Target,
    first_line,
    json_safe,
)
from connectors.great_expectations.data_docs import gx_validation_result
from connectors.great_expectations.files import FileData, read_file
from connectors.great_expectations.profiling import Facts, column_profile, frame_facts, sql_facts
from connectors.great_expectations.sources import Sql, default_dataset, no_scrub, open_table
from connectors.great_expectations.suites import expectation_class

# Data as one check reads it: a file's frame (read once, hashed) or an open, reflected SQL table.
Data = FileData | Sql


_SITE = "aims"


_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}


_MISSING_COLUMN = re.compile(r'The column "(?P<column>.*?)" in BatchData does not exist')


class DataQualityEngine(Protocol):
    """What flows need from a data-quality engine. Each method takes a target (read for that call) or
    the data `read` opened, so that a check reading once passes the same data to all three."""

    def read(self, target: Target) -> contextlib.AbstractContextManager[Data]:
        """The target's data, within its caps: a file read once, or a table opened."""
        ...

    def validate(self, data: Target | Data, suite: Suite, *, data_version: str | None = None) -> CheckOutcome:
        """Run `suite` against the data."""
        ...

    def baseline(self, data: Target | Data, *, dataset: str | None = None, version: str = "1") -> Suite:
        """A suite drafted from the data, with status `baseline`, for review."""
        ...

    def profile(
        self,
        data: Target | Data,
        *,
        columns: Sequence[str] | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
    ) -> DatasetProfile:
        """Reference statistics for drift; numeric columns binned on `edges` where given."""
        ...

    def build_data_docs(self, site_dir: Path, results: Sequence[CheckOutcome]) -> Path:
        """A Data Docs site of `results` in `site_dir`; the path of its index.html."""
        ...


class GxEngine:
    """The GX adapter. Thread-safe: GX itself is not, so its calls take turns."""

    def __init__(self) -> None:
        # No password here: each SQL target carries its own source's (issue 19).
        self._lock = threading.RLock()
        self._context: Any = None

    # -- the interface ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self, target: Target) -> Iterator[Data]:
        if isinstance(target, FileTarget):
            yield read_file(target)
        else:
            with open_table(target) as sql:
                yield sql

    def validate(self, data: Target | Data, suite: Suite, *, data_version: str | None = None) -> CheckOutcome:
        started, checked_at = time.perf_counter(), dt.datetime.now(dt.UTC)
        scrub: Callable[[str], str] = no_scrub
        with self._opened(data) as read:
            if isinstance(read, FileData):
                frame = read.frame
                columns = [str(c) for c in frame.columns]
                display = read.display
                results, engine_name = self._run(
                    suite, lambda ctx, name: _pandas_batch(ctx, name, frame), display
                )
            else:
                sql = read
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

    def baseline(self, data: Target | Data, *, dataset: str | None = None, version: str = "1") -> Suite:
        if dataset is None and not isinstance(data, FileTarget | SqlTarget):
            raise TypeError("name the dataset of data already read")
        facts, display = self._facts(data, None, None, distribution=False)
        name = dataset or default_dataset(cast(Target, data))
        return baseline_suite(facts, name, version, display)

    def profile(
        self,
        data: Target | Data,
        *,
        columns: Sequence[str] | None = None,
        edges: Mapping[str, Sequence[float]] | None = None,
    ) -> DatasetProfile:
        facts, _ = self._facts(data, columns, edges, distribution=True)
        return DatasetProfile(rows=facts.rows, columns={c.name: column_profile(c) for c in facts.columns})

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
                key, value = gx_validation_result(outcome)
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
        scrub: Callable[[str], str] = no_scrub,
    ) -> tuple[dict[int, Any], str]:
        """Each suite entry's GX result (or the message why GX refused it) and the engine's name."""
        import great_expectations as gx
        from great_expectations.exceptions import GreatExpectationsError

        expectations = []
        results: dict[int, Any] = {}
        for i, spec in enumerate(suite.expectations):
            try:
                cls = expectation_class(spec.expectation)
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
                reason = scrub(f"the database failed during the check: {first_line(exc)}")
                raise DataUnavailable(display, reason, retryable=True) from None
            finally:
                _drop_datasource(context, name)
        return results, engine_name

    # -- reading ----------------------------------------------------------------------------------

    def _facts(
        self,
        data: Target | Data,
        columns: Sequence[str] | None,
        edges: Mapping[str, Sequence[float]] | None,
        *,
        distribution: bool,
    ) -> tuple[Facts, str]:
        with self._opened(data) as read:
            if isinstance(read, FileData):
                return frame_facts(read.frame, columns, edges or {}, distribution), read.display
            try:
                return sql_facts(read, columns, edges or {}, distribution), read.display
            except sa.exc.SQLAlchemyError as exc:
                raise DataUnavailable(
                    read.display, read.scrub(f"a query failed: {first_line(exc)}"), retryable=True
                ) from None

    @contextlib.contextmanager
    def _opened(self, data: Target | Data) -> Iterator[Data]:
        """Data already read as it is; a target read (within its caps) for this call only."""
        if isinstance(data, FileTarget | SqlTarget):
            with self.read(data) as read:
                yield read
        else:
            yield data


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


def _sql_batch(context: Any, name: str, sql: Sql) -> Any:
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


def _outcome(
    spec: ExpectationSpec, result: Any, columns: Sequence[str], scrub: Callable[[str], str]
) -> ExpectationOutcome:
    base = {"expectation": spec.expectation, "kwargs": json_safe(spec.kwargs), "severity": spec.severity}
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
        observed_value=json_safe(details.get("observed_value")),
        element_count=_int_or_none(details.get("element_count")),
        unexpected_count=_int_or_none(details.get("unexpected_count")),
        unexpected_percent=_float_or_none(details.get("unexpected_percent")),
        unexpected_sample=[json_safe(v) for v in list(sample)[:SAMPLE_SIZE]],
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


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
