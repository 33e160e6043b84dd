"""Expectation suites: what a dataset must satisfy, one YAML file per dataset in the repository's `suites/`.

A suite file (`suites/loan-applications.yaml`) reads:

    dataset: loan-applications
    version: "3"               # a string the team bumps on every change
    status: reviewed           # or `baseline`: generated from a first accepted version, not reviewed yet
    drift:                     # optional: the columns drift is measured on
      columns: null            # null (the default) means every column
      exclude: [applicant_id]
    expectations:
      - expectation: expect_column_values_to_not_be_null   # a Great Expectations expectation, snake_case
        severity: critical     # its failure fails the check; `warning` only warns
        kwargs: {column: applicant_id}
        notes: Every application has an id.

`load_suite` returns a validated, frozen `Suite`, or raises `SuiteError` listing every problem at its
line, as a compiler would (`suites/x.yaml:12:9: expectations[2].kwargs.mostly: ...`). Whether an
expectation exists in Great Expectations (GX), and whether its kwargs suit it, is asked of a `check`
callable: `connectors.great_expectations.load_suite` passes GX's, so this module never imports GX
(about 5 s). `dump_suite` writes a suite back as readable YAML (for generated baselines).

The results of running a suite (`CheckOutcome`) and the reference statistics of a dataset version
(`DatasetProfile`) are defined here too: they are stored in the register, and flows read them without
the connector. Nothing heavy is imported: PyYAML and pydantic only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

# PyYAML has no type stubs in this environment; mypy's ignore_missing_imports makes it Any.
import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from schemas.fields import DATASET_ID_PATTERN
from schemas.yaml_source import YamlProblem, YamlSourceError, load_model

try:  # libyaml's emitter when PyYAML was built with it; the pure-Python one otherwise
    from yaml import CSafeDumper as _SafeDumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _SafeDumper

MAX_BYTES = 1_000_000
SUITES_DIR = "suites"
Loc = tuple[str | int, ...]
# (expectation name, kwargs) -> problems, each at a location relative to the entry: ("expectation",),
# ("kwargs",) or ("kwargs", "mostly"). The connector's asks GX's registry and the expectation's model.
ExpectationCheck = Callable[[str, Mapping[str, Any]], Sequence[tuple[Loc, str]]]

# GX arguments that the entry or the engine sets, never the kwargs.
RESERVED_KWARGS: Mapping[str, str] = {
    "severity": "set `severity` on the entry, beside `kwargs`",
    "notes": "set `notes` on the entry, beside `kwargs`",
    "meta": "the engine sets it",
    "id": "the engine sets it",
    "batch_id": "the engine sets it",
    "result_format": "the engine sets it",
    "catch_exceptions": "the engine sets it",
    "rendered_content": "the engine sets it",
    "windows": "not supported",
}


class SuiteModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SuiteStatus(StrEnum):
    reviewed = "reviewed"
    baseline = "baseline"


class ExpectationSeverity(StrEnum):
    """What a failed expectation does to the check: `critical` fails it, `warning` only warns."""

    critical = "critical"
    warning = "warning"


def _fail(title: str, problems: Sequence[tuple[Loc, str]]) -> None:
    """Raise every problem at its own location (pydantic prefixes the location of the model checked)."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("suite", "{reason}", {"reason": msg}), loc=loc, input=None
                )
                for loc, msg in problems
            ],
        )


def _quoted_version(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise PydanticCustomError(
            "version_type",
            'write the version in quotes, e.g. version: "{value}"; unquoted, YAML reads it as a number '
            "(1.10 becomes 1.1)",
            {"value": value},
        )
    return value


def _finite(value: JsonValue) -> JsonValue:
    """No NaN or infinity anywhere: kwargs are stored as JSON, and JSON has neither."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item} is not a number JSON can hold; use a finite number")
        if isinstance(item, list):
            stack += item
        elif isinstance(item, dict):
            stack += item.values()
    return value


Text = Annotated[str, Field(min_length=1, max_length=10_000)]
DatasetName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Dataset identifier, as in the AIMS register and the DataChanged events.",
    ),
]
Version = Annotated[
    str,
    BeforeValidator(_quoted_version),
    Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$", description="Suite version, a string."),
]
ColumnName = Annotated[str, Field(min_length=1, max_length=256)]
ExpectationName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="A GX expectation, snake_case, e.g. expect_column_values_to_not_be_null.",
    ),
]
KwargValue = Annotated[JsonValue, AfterValidator(_finite)]


def _no_reserved(kwargs: dict[str, JsonValue]) -> dict[str, JsonValue]:
    reserved = [
        ((key,), f"not allowed in kwargs: {why}") for key, why in RESERVED_KWARGS.items() if key in kwargs
    ]
    _fail("kwargs", reserved)
    return kwargs


Kwargs = Annotated[dict[str, KwargValue], AfterValidator(_no_reserved)]


class ExpectationSpec(SuiteModel):
    """One expectation of a suite."""

    expectation: ExpectationName
    severity: ExpectationSeverity = Field(description="critical: a failure fails the check; warning: warns.")
    kwargs: Kwargs = Field(
        default_factory=dict, description="The expectation's arguments, as GX names them (column, mostly…)."
    )
    notes: Text | None = Field(None, description="Why the expectation is there; shown to reviewers.")

    @model_validator(mode="after")
    def _checked(self, info: ValidationInfo) -> ExpectationSpec:
        check = info.context.get("check") if isinstance(info.context, dict) else None
        if check is not None:
            _fail("expectation", check(self.expectation, self.kwargs))
        return self

    def key(self) -> str:
        """Identity within a suite: the expectation and its kwargs (severity and notes aside)."""
        return json.dumps([self.expectation, self.kwargs], sort_keys=True)


class DriftSettings(SuiteModel):
    """Which columns drift is measured on."""

    columns: list[ColumnName] | None = Field(
        None, max_length=10_000, description="Columns to measure; null means every column."
    )
    exclude: list[ColumnName] = Field(
        default_factory=list, max_length=10_000, description="Columns never measured (ids, free text)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DriftSettings:
        problems: list[tuple[Loc, str]] = []
        for field in ("columns", "exclude"):
            seen: set[str] = set()
            for i, name in enumerate(getattr(self, field) or []):
                if name in seen:
                    problems.append(((field, i), f"{name!r} is listed twice"))
                seen.add(name)
        chosen = set(self.columns or [])
        problems += [
            (("exclude", i), f"{name!r} is also in columns; list it in one of the two")
            for i, name in enumerate(self.exclude)
            if name in chosen
        ]
        _fail("drift", problems)
        return self

    def select(self, available: Sequence[str]) -> list[str]:
        """The columns to measure among `available`, in their order."""
        chosen = set(available if self.columns is None else self.columns)
        return [c for c in available if c in chosen and c not in self.exclude]


class Suite(SuiteModel):
    """The expectation suite of one dataset."""

    dataset: DatasetName
    version: Version
    status: SuiteStatus = Field(description="reviewed, or baseline (generated and not reviewed yet).")
    description: Text | None = Field(None, description="What the suite protects, for reviewers.")
    drift: DriftSettings = Field(default_factory=DriftSettings, description="Drift measurement settings.")
    expectations: list[ExpectationSpec] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _no_duplicates(self) -> Suite:
        first: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, spec in enumerate(self.expectations):
            earlier = first.setdefault(spec.key(), i)
            if earlier != i:
                problems.append(
                    (("expectations", i), f"the same expectation and kwargs as expectations[{earlier}]")
                )
        _fail("suite", problems)
        return self


def suite_file(folder: Path, dataset: str) -> Path:
    """Where the suite of `dataset` lives: `<folder>/<dataset>.yaml`."""
    if not re.match(DATASET_ID_PATTERN, dataset):
        raise ValueError(f"{dataset!r} cannot name a suite file")
    return folder / f"{dataset}.yaml"


# -- results --------------------------------------------------------------------------------------


class Verdict(StrEnum):
    passed = "passed"
    failed = "failed"  # a critical expectation failed
    warning = "warning"  # only warning-severity expectations failed


class ExpectationOutcome(SuiteModel):
    """How one expectation fared. Values are JSON-safe (NaN becomes null, dates ISO text)."""

    expectation: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: ExpectationSeverity
    success: bool
    observed_value: Any = Field(None, description="What GX observed (a mean, the column set…), if any.")
    element_count: int | None = Field(None, description="Rows the expectation looked at.")
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_sample: list[Any] = Field(
        default_factory=list, max_length=20, description="Some of the unexpected values (at most 20)."
    )
    exception: str | None = Field(None, description="Why GX could not evaluate it (a missing column…).")


class CheckStatistics(SuiteModel):
    evaluated: int = Field(ge=0)
    successful: int = Field(ge=0)
    unsuccessful: int = Field(ge=0)
    success_percent: float | None = Field(None, description="None when nothing was evaluated.")


class CheckOutcome(SuiteModel):
    """A suite run against one dataset version."""

    dataset: str
    suite_version: str
    suite_status: SuiteStatus
    data_version: str | None = Field(None, description="The dataset version checked, if the caller said.")
    location: str = Field(description="What was read: a path, or a table at a URL without password.")
    engine: str = Field(description="GX execution engine that ran the checks, e.g. SqliteExecutionEngine.")
    verdict: Verdict
    statistics: CheckStatistics
    expectations: list[ExpectationOutcome] = Field(description="In suite order.")
    checked_at: AwareDatetime
    duration_seconds: float = Field(ge=0)

    def failures(self, severity: ExpectationSeverity | None = None) -> list[ExpectationOutcome]:
        return [
            e for e in self.expectations if not e.success and (severity is None or e.severity == severity)
        ]


class NumericProfile(SuiteModel):
    """Reference statistics of a numeric column. Non-finite values count as nulls."""

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=0, description="Non-null values.")
    nulls: int = Field(ge=0)
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    quantiles: list[tuple[float, float]] = Field(
        default_factory=list,
        description="(probability, value) at 0, 0.01, … 1, linearly interpolated; empty without values.",
    )
    edges: list[float] = Field(
        default_factory=list,
        description="Inner bin edges: the reference's deciles (distinct), or the edges asked for.",
    )
    counts: list[int] = Field(
        default_factory=list,
        description="Values per bin, len(edges) + 1 bins: v falls in bin bisect_right(edges, v) "
        "(as flows.data_quality.drift.bin_counts), the outer bins open-ended.",
    )


class CategoricalProfile(SuiteModel):
    """Reference statistics of any other column: its most frequent values, as text."""

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0, description="Non-null values.")
    nulls: int = Field(ge=0)
    distinct: int = Field(ge=0)
    frequencies: dict[str, int] = Field(
        default_factory=dict, description="The 50 most frequent values (ties by value) and their counts."
    )
    other: int = Field(0, ge=0, description="Values outside the top 50.")


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class DatasetProfile(SuiteModel):
    """Reference statistics of a dataset version, for drift; `model_dump(mode="json")` stores it."""

    rows: int = Field(ge=0)
    columns: dict[str, ColumnProfile] = Field(description="Per column, in the dataset's column order.")


# -- loading --------------------------------------------------------------------------------------


# One thing wrong with a suite file; `line` and `column` are 1-based, None when unknown.
SuiteProblem = YamlProblem


class SuiteError(Exception):
    """The suite file cannot be used; `problems` lists every reason, in file order."""

    def __init__(self, path: Path, problems: list[SuiteProblem]) -> None:
        self.path = path
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid suite {path} ({count}):\n" + "\n".join(str(p) for p in problems))


_PATTERN_HINTS = {
    "expectation": "expected a snake_case GX expectation name, e.g. expect_column_values_to_not_be_null",
    "dataset": "a dataset name has letters, digits, '.', '_' and '-', and starts with a letter or digit",
}


def load_suite(path: Path, check: ExpectationCheck | None = None) -> Suite:
    """The validated suite in `path`, or `SuiteError` with every problem.

    Without `check`, expectation names and kwargs are checked for form only; pass the connector's
    check (or call `connectors.great_expectations.load_suite`) to check them against GX.
    """
    try:
        return load_model(
            path,
            Suite,
            max_bytes=MAX_BYTES,
            what="suite file",
            expected="a mapping",
            empty="a suite (dataset, version…)",
            context={"check": check},
            rewrite=_plain_data_error,
        )
    except YamlSourceError as exc:
        raise SuiteError(path, exc.problems) from None


def _json_value_loc(loc: Loc) -> Loc:
    """pydantic's JsonValue errors name the union member ('list', 'dict') before each index or key."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part in ("list", "dict") and i >= 3 and i + 1 < len(loc) and loc[:1] == ("expectations",):
            continue
        out.append(part)
    return tuple(out)


def _plain_data_error(err: ErrorDetails) -> ErrorDetails:
    """The error reworded for suite authors: kwargs that are not plain data, names that break a pattern."""
    loc: Loc = tuple(err["loc"])
    rewritten = err.copy()
    if err["type"] == "invalid-json-value":
        rewritten["loc"] = loc = _json_value_loc(loc)
        if isinstance(err["input"], dt.date | dt.datetime | dt.time):
            rewritten["msg"] = "YAML reads this as a date or time; quote it to keep the suite plain data"
        else:
            rewritten["msg"] = "not plain data (text, number, boolean, null, list or mapping)"
    if err["type"] == "string_pattern_mismatch" and loc[-1:] in (("expectation",), ("dataset",)):
        rewritten["msg"] = _PATTERN_HINTS[str(loc[-1])]
    return rewritten


# -- writing --------------------------------------------------------------------------------------


class _Dumper(_SafeDumper):
    """Short lists of plain values on one line (`[a, b]`), multi-line text as blocks."""


def _represent_list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    flow = len(data) <= 30 and all(isinstance(v, str | int | float | bool) or v is None for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_str(dumper: _Dumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def suite_document(suite: Suite) -> dict[str, Any]:
    """The suite as the plain data of its YAML file, fields in reading order, empty ones left out."""
    doc: dict[str, Any] = {"dataset": suite.dataset, "version": suite.version, "status": suite.status.value}
    if suite.description:
        doc["description"] = suite.description
    if suite.drift != DriftSettings():
        doc["drift"] = {"columns": suite.drift.columns, "exclude": list(suite.drift.exclude)}
    entries = []
    for spec in suite.expectations:
        entry: dict[str, Any] = {"expectation": spec.expectation, "severity": spec.severity.value}
        entry["kwargs"] = dict(spec.kwargs)
        if spec.notes:
            entry["notes"] = spec.notes
        entries.append(entry)
    doc["expectations"] = entries
    return doc


def dump_suite(suite: Suite, path: Path) -> None:
    """Write `suite` to `path` as readable YAML that `load_suite` reads back equal (atomically)."""
    header = (
        f"# Expectation suite of dataset {suite.dataset}; the format is described in schemas/suites.py.\n"
    )
    if suite.status is SuiteStatus.baseline:
        header += (
            "# A generated baseline: review every expectation (bounds, severity), then set\n"
            "# `status: reviewed` and bump `version`.\n"
        )
    body = yaml.dump(
        suite_document(suite), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(header + body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
