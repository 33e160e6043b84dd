"""The audit hash covers the exact bytes stored, so no database can make a genuine entry look altered.

The false alarm found on main (issue 20): PostgreSQL's JSONB rewrote `1.7e+18` as
`1700000000000000000`, which reads back as an integer; the hash recomputed from the read-back
differed and `aims audit verify` reported tampering that never happened. Dataset profiles of 64-bit
ids or nanosecond timestamps carry such numbers. Entries now store before/after as RFC 8785 text.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.register.store import Register
from schemas import records as r
from tests.records import sample

AWKWARD = [
    1.7e18,
    2**63 - 1,
    -(2**63),
    -0.0,
    1e-7,
    1e21,
    0.1,
    2**53,
    2**53 + 1,
    5e-324,
    1.7976931348623157e308,
]


def profile_version(profile: dict[str, Any]) -> r.DatasetVersion:
    return sample(r.DatasetVersion).model_copy(
        update={"id": uuid.uuid4().hex, "version": uuid.uuid4().hex, "profile": profile}
    )


def same_number(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_number(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_number, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(b, int | float)
            and not isinstance(b, bool)
            and math.isclose(a, b, rel_tol=0, abs_tol=0)
        )
    return a == b and type(a) is type(b)


def test_awkward_numbers_in_an_audited_record_verify(register: Register) -> None:
    # Test fails before the fix on PostgreSQL: JSONB's read-back of 1.7e+18 hashed differently.
    profile = {"columns": {"id": {"min": 1.7e18, "max": 2**63 - 1}}, "values": AWKWARD}
    with register.unit_of_work("flow:check-data-quality/run-1") as uow:
        version = uow.dataset_versions.add(profile_version(profile))
        uow.dataset_versions.update(version.id, status="checked")
    report = register.verify_audit()
    assert report.ok, report.problem
    with register.reader() as uow:
        logged = uow.audit_entries(entity="dataset_version")[-1].after
    assert logged is not None and same_number(profile, logged["profile"])


# PostgreSQL's text and JSONB cannot hold U+0000 at all (the record's own JSONB column refuses it).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_any_audited_value_verifies_and_reads_back(register: Register, value: Any) -> None:
    with register.unit_of_work("t") as uow:
        uow.dataset_versions.add(profile_version({"v": value}))
    assert register.verify_audit().ok
    with register.reader() as uow:
        logged = uow.audit_entries()[-1].after
    assert logged is not None and same_number({"v": value}, logged["profile"])


@pytest.mark.parametrize("value", AWKWARD)
def test_jcs_is_canonical_and_exact(value: float | int) -> None:
    from connectors.register.audit import jcs

    text = jcs({"b": value, "a": [value]})
    assert text == jcs(json.loads(text))  # canonical: its own canonical form
    assert same_number(value, json.loads(text)["b"])


def test_jcs_writes_big_integers_as_jcs_writes_integral_doubles() -> None:
    from connectors.register.audit import jcs

    assert jcs(1.7e18) == jcs(1700000000000000000) == "1700000000000000000"
    assert jcs({"id": 2**63 - 1}) == '{"id":9223372036854775807}'
    assert jcs(-0.0) == "0" and jcs(1e-7) == "1e-7"
    assert jcs({"s": "\x00int-0:1"}) == '{"s":"\\u0000int-0:1"}'  # a string like the marker stays a string


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_jcs_is_idempotent_and_lossless(value: Any) -> None:
    from connectors.register.audit import jcs

    text = jcs(value)
    assert jcs(json.loads(text)) == text
    assert same_number(value, json.loads(text))
