"""The suite every loans table passes, shared by the GX adapter tests."""

from __future__ import annotations

from tests.connectors.great_expectations.data import expect, loans, suite

# Every check a loans table passes; one of each kind of expectation.
PASSING = suite(
    expect("expect_table_columns_to_match_set", column_set=list(loans(1).columns)),
    expect("expect_table_row_count_to_be_between", min_value=100, max_value=1000),
    expect("expect_column_values_to_not_be_null", column="applicant_id"),
    expect("expect_column_values_to_be_unique", column="applicant_id"),
    expect("expect_column_values_to_be_between", "warning", column="amount", min_value=0, max_value=30_000),
    expect(
        "expect_column_values_to_be_in_set",
        column="purpose",
        value_set=["car", "home", "education", "travel"],
    ),
    expect("expect_column_values_to_not_be_null", "warning", column="score", mostly=0.9),
    expect(
        "expect_column_mean_to_be_between", "warning", column="income", min_value=40_000, max_value=50_000
    ),
)
