"""Risk gates on the scored levels, and the scoring helpers: major versions, scales, evidence bounds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from flows.risk.scoring import RiskEvidence, RiskScore, gates, major, on_scale, score
from schemas.payloads import ReassessmentReason, RiskLevel
from schemas.policy import Policy
from tests.flows.risk.scoring_samples import BY_NAME, PROPERTY, RICH, C, H, L, M, appetite_medium, ev, shipped

# -- gates -----------------------------------------------------------------------------------------

# A likelihood × impact on the shipped 5×5 matrix for each level.
AT = {L: (1, 1), M: (3, 3), H: (4, 4), C: (5, 5)}


def at(category: str, level: RiskLevel, policy: Policy) -> RiskScore:
    likelihood, impact = AT[level]
    assert policy.level_for(likelihood, impact) == level
    c = BY_NAME[category]
    return RiskScore(
        category=category,
        title=c.title,
        likelihood=likelihood,
        impact=impact,
        inherent_level=level,
        residual_likelihood=likelihood,
        residual_level=level,
        treatment=c.treatment,
        controls=list(c.controls),
        rationale=[],
    )


@pytest.mark.parametrize(
    ("policy", "before", "now", "why"),
    [
        pytest.param(shipped, None, M, "medium is above the appetite (low)", id="new-medium"),
        pytest.param(shipped, None, C, "critical is above the appetite (low)", id="new-critical"),
        pytest.param(shipped, None, L, None, id="new-low"),
        pytest.param(shipped, L, M, "medium is above the appetite (low)", id="low-to-medium"),
        pytest.param(shipped, L, L, None, id="low-to-low"),
        pytest.param(shipped, M, H, "rose from medium to high", id="medium-to-high"),
        pytest.param(shipped, H, C, "rose from high to critical", id="high-to-critical"),
        pytest.param(shipped, M, M, None, id="medium-to-medium"),
        pytest.param(shipped, H, H, None, id="high-to-high"),
        pytest.param(shipped, H, M, None, id="high-to-medium"),
        pytest.param(shipped, C, L, None, id="critical-to-low"),
        pytest.param(appetite_medium, L, M, None, id="appetite-medium-low-to-medium"),
        pytest.param(appetite_medium, None, M, None, id="appetite-medium-new-medium"),
        pytest.param(
            appetite_medium, M, H, "high is above the appetite (medium)", id="appetite-medium-to-high"
        ),
        pytest.param(
            appetite_medium, H, C, "rose from high to critical", id="appetite-medium-high-to-critical"
        ),
        pytest.param(appetite_medium, C, H, None, id="appetite-medium-critical-to-high"),
    ],
)
def test_gates(
    policy: Callable[[], Policy], before: RiskLevel | None, now: RiskLevel, why: str | None
) -> None:
    previous = {} if before is None else {"fairness": before}
    found = gates(previous, [at("fairness", now, policy())], policy())
    if why is None:
        assert found == []
    else:
        assert len(found) == 1
        gate = found[0]
        assert (gate.category, gate.previous, gate.level, gate.why) == ("fairness", before, now, why)


def test_gates_match_previous_levels_by_category_and_keep_the_order() -> None:
    policy = shipped()
    scores = [
        at("drift", H, policy),
        at("fairness", H, policy),
        at("privacy", M, policy),
        at("misuse", L, policy),
    ]
    previous = {"fairness": H, "privacy": L, "misuse": C, "security": C}
    found = gates(previous, scores, policy)
    assert [(g.category, g.previous, g.level) for g in found] == [("drift", None, H), ("privacy", L, M)]


def test_gates_on_real_scores() -> None:
    policy = shipped()
    scores = score(RICH, policy)
    found = gates({}, scores, policy)
    assert [g.category for g in found] == [s.category for s in scores if s.inherent_level != L]
    assert gates({s.category: s.inherent_level for s in scores}, scores, policy) == []


# -- helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3", 3),
        ("v2.1.0", 2),
        ("V7", 7),
        ("2024.1", 2024),
        ("10.0.1-rc1", 10),
        ("0.9", 0),
        (None, None),
        ("", None),
        ("latest", None),
        ("release-2", None),
        (" 1", None),
        ("v", None),
    ],
)
def test_major(version: str | None, expected: int | None) -> None:
    assert major(version) == expected


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ("3", "2", True),
        ("v2.0", "1.9", True),
        ("10", "9", True),
        ("2.1", "2.0", False),
        ("2", "3", False),
        ("2", None, False),
        (None, "2", False),
        ("latest", "1", False),
    ],
)
def test_new_major_version(new: str | None, old: str | None, expected: bool) -> None:
    assert ev(model_version=new, previous_version=old).new_major_version is expected


@pytest.mark.parametrize(
    ("fraction", "size", "expected"),
    [
        (0.4, 5, 2),
        (0.4, 2, 1),
        (0.4, 10, 4),
        (0.4, 3, 2),
        (0.2, 5, 1),
        (0.6, 5, 3),
        (0.8, 5, 4),
        (0.6, 10, 6),
        (0.1 + 0.2, 10, 3),  # 3.0000000000000004 in floating point: rounded before the ceiling
        (1.0, 2, 2),
        (1.0, 5, 5),
        (1.0, 10, 10),
        (0.0, 5, 1),
        (0.0, 2, 1),
        (1.5, 5, 5),
    ],
)
def test_on_scale(fraction: float, size: int, expected: int) -> None:
    assert on_scale(fraction, size) == expected


@PROPERTY
@given(st.floats(0, 1), st.integers(2, 10))
def test_property_on_scale_stays_on_the_scale(fraction: float, size: int) -> None:
    assert 1 <= on_scale(fraction, size) <= size


def test_evidence_with_more_failures_than_checks_is_refused() -> None:
    with pytest.raises(ValidationError, match="2 failed checks but only 1 checks"):
        RiskEvidence(system="s", reason=ReassessmentReason.manual, checks=1, failed_checks=["a", "b"])
