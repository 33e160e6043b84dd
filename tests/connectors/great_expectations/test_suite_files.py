"""Suite files: the shipped example, problems located at the right field and line, and fuzzing."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.great_expectations import check_expectation, load_suite
from schemas.suites import (
    DriftSettings,
    Suite,
    SuiteError,
    SuiteProblem,
    SuiteStatus,
    dump_suite,
    suite_file,
)
from schemas.suites import load_suite as load_suite_form_only
from tests.resources import REPO

EXAMPLE = REPO / "suites" / "loan-applications.yaml"
PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))

VALID = """\
dataset: loans
version: "2"
status: reviewed
expectations:
  - expectation: expect_column_values_to_not_be_null
    severity: critical
    kwargs:
      column: applicant_id
  - expectation: expect_column_values_to_be_between
    severity: warning
    kwargs: {column: amount, min_value: 0, max_value: 1000}
"""


def write(tmp_path: Path, text: str | bytes, name: str = "loans.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, checked: bool = True) -> list[SuiteProblem]:
    with pytest.raises(SuiteError) as caught:
        (load_suite if checked else load_suite_form_only)(path)
    assert str(path) in str(caught.value)
    return caught.value.problems


def where(found: list[SuiteProblem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.field) for p in found]


def test_the_shipped_example_is_a_valid_reviewed_suite() -> None:
    suite = load_suite(EXAMPLE)
    assert suite.dataset == "loan-applications" and suite.status is SuiteStatus.reviewed
    assert suite_file(REPO / "suites", suite.dataset) == EXAMPLE
    assert suite.drift.select(["applicant_id", "income", "approved"]) == ["income", "approved"]
    assert {e.severity.value for e in suite.expectations} == {"critical", "warning"}


def test_a_valid_suite_loads_frozen(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, VALID))
    assert [e.expectation for e in suite.expectations] == [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
    ]
    assert suite.expectations[1].kwargs == {"column": "amount", "min_value": 0, "max_value": 1000}
    assert suite.drift == DriftSettings()
    with pytest.raises(ValueError, match="frozen"):
        suite.version = "3"  # type: ignore[misc]


def test_an_unknown_expectation_is_named_at_its_line_with_a_suggestion(tmp_path: Path) -> None:
    text = VALID.replace("expect_column_values_to_be_between", "expect_column_values_to_be_betwen")
    [problem] = problems(write(tmp_path, text))
    assert (problem.line, problem.column, problem.field) == (9, 18, "expectations[1].expectation")
    assert "not a Great Expectations expectation" in problem.message
    assert "did you mean 'expect_column_values_to_be_between'" in problem.message
    # without GX's check, only the form of the name is checked
    assert load_suite_form_only(write(tmp_path, text)).expectations[1].expectation.endswith("betwen")


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("column: applicant_id", "column: 5", 8, "expectations[0].kwargs.column", "str type expected"),
        ("column: applicant_id", "column: [a, b]", 8, "expectations[0].kwargs.column", "str type expected"),
        ("min_value: 0,", "min_value: [0],", 11, "expectations[1].kwargs.min_value", "not a valid float"),
        (
            "column: applicant_id",
            "column: a\n      mostly: 2",
            9,
            "expectations[0].kwargs.mostly",
            "less than",
        ),
        (
            "column: applicant_id",
            "colum: applicant_id",
            8,
            "expectations[0].kwargs.colum",
            "did you mean 'col",
        ),
        ("column: applicant_id", "colum: applicant_id", 8, "expectations[0].kwargs.column", "needs 'column'"),
        ("column: applicant_id", "{}", 7, "expectations[0].kwargs.column", "needs 'column'"),
        (
            "amount, min_value: 0, max_value: 1000",
            "amount",
            11,
            "expectations[1].kwargs",
            "cannot both be None",
        ),
    ],
)
def test_kwargs_gx_refuses_are_located(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    text = VALID.replace(old, new) if new != "{}" else VALID.replace("\n      " + old, " {}")
    found = problems(write(tmp_path, text))
    assert any((p.line, p.field) == (line, field) and message in p.message for p in found), found


def test_duplicate_keys_are_problems_at_the_second_key(tmp_path: Path) -> None:
    text = VALID.replace("      column: applicant_id\n", "      column: applicant_id\n      column: id\n")
    text = text.replace('version: "2"\n', 'version: "2"\nversion: "3"\n')
    found = problems(write(tmp_path, text))
    assert where(found) == [(3, "version"), (10, "expectations[0].kwargs.column")]
    assert all("duplicate key (first on line" in p.message for p in found)


def test_every_problem_is_reported_in_file_order(tmp_path: Path) -> None:
    text = """\
dataset: loans
version: 1.10
status: reviewd
drift:
  columns: [a]
  exclude: [b, a, b]
expectations:
  - expectation: expect_column_values_to_not_be_null
    severity: critical
    kwargs: {column: a, severity: warning, min_value: 2024-01-01}
  - expectation: Expect-Thing
    severity: fatal
    note: hello
  - expectation: expect_column_values_to_not_be_null
    kwargs: {column: x, 7: y}
"""
    found = problems(write(tmp_path, text))
    assert where(found) == [
        (2, "version"),
        (3, "status"),
        (6, "drift.exclude[1]"),
        (6, "drift.exclude[2]"),
        (10, "expectations[0].kwargs.min_value"),
        (11, "expectations[1].expectation"),
        (12, "expectations[1].severity"),
        (13, "expectations[1].note"),
        (14, "expectations[2].severity"),
        (15, "expectations[2].kwargs[7]"),
    ]
    by_field = {p.field: p.message for p in found}
    assert 'version: "1.1"' in by_field["version"]
    assert "'a' is also in columns" in by_field["drift.exclude[1]"]
    assert "'b' is listed twice" in by_field["drift.exclude[2]"]
    assert "quote it" in by_field["expectations[0].kwargs.min_value"]
    assert "snake_case" in by_field["expectations[1].expectation"]
    assert "did you mean 'notes'" in by_field["expectations[1].note"]
    assert by_field["expectations[2].severity"] == "Field required"
    text = text.replace(", min_value: 2024-01-01", "")
    [reserved] = [p for p in problems(write(tmp_path, text)) if p.field == "expectations[0].kwargs.severity"]
    assert reserved.line == 10 and "set `severity` on the entry" in reserved.message


def test_the_same_expectation_twice_is_a_problem(tmp_path: Path) -> None:
    text = VALID + "  - expectation: expect_column_values_to_not_be_null\n    severity: warning\n"
    text += "    kwargs: {column: applicant_id}\n"
    [problem] = problems(write(tmp_path, text))
    assert (problem.line, problem.field) == (12, "expectations[2]")
    assert "expectations[0]" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the file is empty"),
        ("- a\n- b\n", 1, "expected a mapping at the top, found a list"),
        ("dataset: [unclosed\n", 2, "YAML syntax error"),
        ("dataset: loans\n  version: 2\n", 2, "YAML syntax error"),
        ("dataset: !!python/object:os.system x\n", 1, "invalid YAML value"),
        ("dataset: loans\x07\n", 1, "YAML does not allow"),
    ],
)
def test_files_that_are_no_suite_yaml(tmp_path: Path, text: str, line: int, message: str) -> None:
    [problem] = problems(write(tmp_path, text))
    assert problem.line == line
    assert message in problem.message


def test_unreadable_files_are_suite_errors(tmp_path: Path) -> None:
    assert "cannot read" in problems(tmp_path / "missing.yaml")[0].message
    [problem] = problems(write(tmp_path, b"dataset: loans\nversion: \xff\n"))
    assert (problem.line, "not UTF-8") == (2, problem.message[:9])


def test_dump_then_load_gives_the_same_suite(tmp_path: Path) -> None:
    suite = load_suite(EXAMPLE)
    path = tmp_path / "out" / "loan-applications.yaml"
    dump_suite(suite, path)
    assert load_suite(path) == suite
    text = path.read_text()
    assert "column_set: [applicant_id, income, amount, term_months, approved]" in text
    baseline = suite.model_copy(update={"status": SuiteStatus.baseline})
    dump_suite(baseline, path)
    assert load_suite(path) == baseline
    assert "# A generated baseline: review every expectation" in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["loan-applications.yaml"]  # no temporary left


def test_suite_file_refuses_names_that_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot name a suite file"):
        suite_file(tmp_path, "../etc/passwd")


# -- fuzzing --------------------------------------------------------------------------------------

junk_text = st.one_of(
    st.text(max_size=300),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from([*":-[]{}&*!|>'\"%@`#,? \n\tabc01.", "  ", "- ", ": ", "dataset", "kwargs"])
        ),
    ),
    st.builds(lambda parts: "".join(parts), st.lists(st.sampled_from(VALID.splitlines(keepends=True)))),
)


@PROPERTY
@given(junk_text)
def test_junk_text_raises_suite_errors_only(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), text)
        try:
            load_suite(path)
        except SuiteError as exc:
            assert exc.problems
            assert all(str(p).startswith(str(path)) for p in exc.problems)


names = st.sampled_from(
    [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_table_columns_to_match_set",
        "expect_table_row_count_to_be_between",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_values_to_match_regex",
        "expect_column_quantile_values_to_be_between",
        "unexpected_rows_expectation",
        "expect_nothing",
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["a", "b", "$PARAM", "{}", "2024-01-01"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
kwarg_names = st.sampled_from(
    [
        "column",
        "column_A",
        "column_B",
        "mostly",
        "min_value",
        "max_value",
        "value_set",
        "column_set",
        "exact_match",
        "regex",
        "quantile_ranges",
        "strict_min",
        "row_condition",
        "condition_parser",
        "unexpected_rows_query",
        "severity",
        "x",
    ]
)
random_entries = st.fixed_dictionaries(
    {
        "expectation": names,
        "severity": st.sampled_from(["critical", "warning", "fatal", 1]),
        "kwargs": st.dictionaries(kwarg_names, values, max_size=5),
    },
    optional={"notes": st.text(max_size=10) | st.integers()},
)
columns = st.text(min_size=1, max_size=10)
plausible_entries = st.one_of(
    st.fixed_dictionaries(
        {
            "expectation": st.just("expect_column_values_to_not_be_null"),
            "severity": st.sampled_from(["critical", "warning"]),
            "kwargs": st.fixed_dictionaries({"column": columns}, optional={"mostly": st.floats(-0.5, 1.5)}),
        }
    ),
    st.fixed_dictionaries(
        {
            "expectation": st.just("expect_column_values_to_be_between"),
            "severity": st.sampled_from(["critical", "warning"]),
            "kwargs": st.fixed_dictionaries(
                {"column": columns},
                optional={"min_value": scalars, "max_value": scalars, "strict_min": scalars},
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "expectation": st.just("expect_table_columns_to_match_set"),
            "severity": st.just("critical"),
            "kwargs": st.fixed_dictionaries(
                {"column_set": st.lists(columns, max_size=4)}, optional={"exact_match": scalars}
            ),
        }
    ),
)
documents = st.fixed_dictionaries(
    {
        "dataset": st.sampled_from(["loans", "loans", "loans", "", "a b", 3]),
        "version": st.sampled_from(["1", "1", "1", 2, 1.5, None]),
        "status": st.sampled_from(["reviewed", "baseline", "draft"]),
        "expectations": st.lists(st.one_of(random_entries, plausible_entries, plausible_entries), max_size=5),
    },
    optional={"drift": st.fixed_dictionaries({}, optional={"columns": values, "exclude": values})},
)


@PROPERTY
@given(documents)
def test_random_suites_are_loaded_or_refused_with_located_problems(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), yaml.safe_dump(document, sort_keys=False))
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            assert exc.problems and all(p.line is not None for p in exc.problems)
        else:
            assert isinstance(suite, Suite)
            assert all(not check_expectation(e.expectation, e.kwargs) for e in suite.expectations)
