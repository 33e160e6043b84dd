"""Risk scoring: the documented rules on the shipped policy, explainable steps, determinism and gates."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flows.risk.scoring import (
    CATEGORIES,
    INCIDENT_RISK,
    IncidentFact,
    RiskEvidence,
    RiskScore,
    gates,
    major,
    on_scale,
    score,
    score_category,
)
from schemas.payloads import IncidentCategory, ReassessmentReason, RiskLevel, RiskTier, Severity
from schemas.policy import Policy
from schemas.policy_file import load_policy
from tests.resources import EXAMPLE_POLICY

EXAMPLE = EXAMPLE_POLICY
# database=None: nothing is written under the project (.hypothesis/) by these tests.
PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
BY_NAME = {c.name: c for c in CATEGORIES}
L, M, H, C = RiskLevel.low, RiskLevel.medium, RiskLevel.high, RiskLevel.critical


# -- policies --------------------------------------------------------------------------------------


@functools.cache
def shipped() -> Policy:
    return load_policy(EXAMPLE)


def example_dict() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


@functools.cache
def excluding_a74() -> Policy:
    """The shipped policy with A.7.4 (a data_quality and drift control) excluded in the SoA."""
    data = example_dict()
    data["statement_of_applicability"]["exclusions"]["A.7.4"] = "Data quality is the supplier's duty."
    return Policy.model_validate(data)


@functools.cache
def appetite_medium() -> Policy:
    data = example_dict()
    data["risk"]["appetite"] = "medium"
    del data["approvals"]["medium"]
    del data["slas"]["medium"]
    return Policy.model_validate(data)


def sized(likelihoods: int, impacts: int) -> Policy:
    """The shipped policy with scales of other sizes, and four bands spread over the new matrix."""
    data = example_dict()
    risk = data["risk"]
    risk["likelihood"] = [
        {"score": i, "name": f"l{i}", "description": f"Likelihood {i}."} for i in range(1, likelihoods + 1)
    ]
    risk["impact"] = [
        {"score": i, "name": f"i{i}", "description": f"Impact {i}."} for i in range(1, impacts + 1)
    ]
    top = likelihoods * impacts  # at least 4: every band below gets a distinct max_score under top
    risk["levels"] = [
        {"level": "low", "max_score": top // 4},
        {"level": "medium", "max_score": top // 2},
        {"level": "high", "max_score": 3 * top // 4},
        {"level": "critical", "max_score": top},
    ]
    return Policy.model_validate(data)


def test_shipped_policy_is_what_the_cases_assume() -> None:
    policy = shipped()
    assert len(policy.risk.likelihood) == 5 and len(policy.risk.impact) == 5
    assert [(b.level, b.max_score) for b in policy.risk.levels] == [(L, 4), (M, 9), (H, 16), (C, 25)]
    assert policy.risk.appetite == L
    excluded = set(policy.statement_of_applicability.exclusions)
    assert not any(set(c.controls) & excluded for c in CATEGORIES), "no category's treatment is excluded"
    assert appetite_medium().levels_needing_approval() == [H, C]


# -- evidence --------------------------------------------------------------------------------------


def ev(**fields: Any) -> RiskEvidence:
    return RiskEvidence(system="credit-scoring", reason=ReassessmentReason.manual, **fields)


def inc(id: str, category: IncidentCategory, severity: Severity) -> IncidentFact:
    return IncidentFact(id=id, category=category, severity=severity)


def scored(evidence: RiskEvidence, category: str, policy: Policy) -> RiskScore:
    return score_category(BY_NAME[category], evidence, policy)


Expected = tuple[int, int, RiskLevel, RiskLevel]  # likelihood, impact, inherent, residual
LIMITED = RiskTier.limited
MINIMAL = RiskTier.minimal


def case(
    id: str,
    category: str,
    expected: Expected,
    rule: str,
    *,
    policy: Callable[[], Policy] = shipped,
    **evidence: Any,
) -> Any:
    """One row: evidence, the category looked at, its expected score, a rule its rationale must name."""
    return pytest.param(ev(**evidence), category, policy, expected, rule, id=id)


# Shipped policy: baseline likelihood 40 % of 5 → 2; impact minimal 1, limited 2, not assessed 3,
# high 4, prohibited 5; residual likelihood one lower (no category's control is excluded).
# fmt: off
CASES = [
    # impact from the risk tier
    case("minimal-tier-no-evidence", "data_quality", (2, 1, L, L), "baseline", risk_tier=MINIMAL),
    case("limited-tier-impact-2", "data_quality", (2, 2, L, L), "baseline", risk_tier=LIMITED),
    case("not-assessed-tier-impact-3", "data_quality", (2, 3, M, L), "risk tier"),
    case("high-tier-impact-4", "data_quality", (2, 4, M, L), "risk tier", risk_tier=RiskTier.high),
    case(
        "prohibited-tier-impact-5", "data_quality", (2, 5, H, M), "risk tier",
        risk_tier=RiskTier.prohibited,
    ),
    # data quality
    case(
        "failure-rate-1-in-10-plus-1", "data_quality", (3, 2, M, L), "failure rate",
        risk_tier=LIMITED, datasets=["loans"], checks=10, failed_checks=["r1"],
    ),
    case(
        "failure-rate-1-in-4-plus-2", "data_quality", (4, 2, M, M), "failure rate",
        risk_tier=LIMITED, datasets=["loans"], checks=4, failed_checks=["r1"],
    ),
    case(
        "failure-rate-1-in-2-plus-3", "data_quality", (5, 2, H, M), "failure rate",
        risk_tier=LIMITED, datasets=["loans"], checks=2, failed_checks=["r1"],
    ),
    case(
        "checks-all-passed-no-step", "data_quality", (2, 2, L, L), "baseline",
        risk_tier=LIMITED, datasets=["loans"], checks=10,
    ),
    case(
        "datasets-without-checks-plus-1", "data_quality", (3, 3, M, M), "not checked",
        datasets=["loans", "bureau"],
    ),
    # drift
    case(
        "critical-drift-plus-2", "drift", (4, 2, M, M), "critical drift",
        risk_tier=LIMITED, drift_critical=["loans.income"],
    ),
    case(
        "drift-warning-plus-1", "drift", (3, 2, M, L), "drift warning",
        risk_tier=LIMITED, drift_warning=["loans.age"],
    ),
    case(
        "critical-drift-wins-over-warning", "drift", (4, 2, M, M), "critical drift",
        risk_tier=LIMITED, drift_critical=["loans.income"], drift_warning=["loans.age"],
    ),
    # incidents
    case(
        "high-bias-incident-plus-2-impact-4", "fairness", (4, 4, H, H), "impact at least",
        risk_tier=MINIMAL, incidents=[inc("INC-1", IncidentCategory.bias, Severity.high)],
    ),
    case(
        "medium-rights-incident-plus-1-impact-3", "fairness", (3, 3, M, M), "impact at least",
        risk_tier=MINIMAL, incidents=[inc("INC-1", IncidentCategory.fundamental_rights, Severity.medium)],
    ),
    case(
        "critical-incident-plus-3-impact-5", "robustness", (5, 5, C, C), "impact at least",
        risk_tier=MINIMAL, incidents=[inc("INC-1", IncidentCategory.death, Severity.critical)],
    ),
    case(
        "three-low-incidents-plus-1-plus-1", "privacy", (4, 1, L, L), "3 or more",
        risk_tier=MINIMAL,
        incidents=[inc(f"INC-{i}", IncidentCategory.privacy, Severity.low) for i in range(3)],
    ),
    case(
        "incident-of-another-kind-no-step", "fairness", (2, 1, L, L), "baseline",
        risk_tier=MINIMAL, incidents=[inc("INC-1", IncidentCategory.security, Severity.high)],
    ),
    case(
        "incident-never-lowers-tier-impact", "misuse", (3, 4, H, M), "incident of this kind",
        risk_tier=RiskTier.high, incidents=[inc("INC-1", IncidentCategory.misuse, Severity.low)],
    ),
    # model versions
    case(
        "major-3-after-2-robustness", "robustness", (3, 2, M, L), "new major version",
        risk_tier=LIMITED, model_version="3", previous_version="2",
    ),
    case(
        "major-3-after-2-fairness", "fairness", (3, 2, M, L), "new major version",
        risk_tier=LIMITED, model_version="3", previous_version="2",
    ),
    case(
        "major-v2.0-after-1.9-transparency", "transparency", (3, 2, M, L), "new major version",
        risk_tier=LIMITED, model_version="v2.0", previous_version="1.9",
    ),
    case(
        "major-version-not-data-quality", "data_quality", (2, 2, L, L), "baseline",
        risk_tier=LIMITED, model_version="3", previous_version="2",
    ),
    case(
        "minor-2.1-after-2.0-no-step", "robustness", (2, 2, L, L), "baseline",
        risk_tier=LIMITED, model_version="2.1", previous_version="2.0",
    ),
    case(
        "first-version-no-step", "robustness", (2, 2, L, L), "baseline",
        risk_tier=LIMITED, model_version="3",
    ),
    # provenance and impact assessment
    case(
        "unpinned-dataset-third-party-plus-1", "third_party", (3, 2, M, L), "pinned",
        risk_tier=LIMITED, datasets=["bureau"], checks=1, unpinned_datasets=["bureau"],
    ),
    case(
        "open-impact-assessment-plus-1", "transparency", (3, 2, M, L), "impact assessment",
        risk_tier=LIMITED, open_impact_assessments=["IA-7"],
    ),
    case(
        "steps-add-up", "transparency", (4, 2, M, M), "impact assessment",
        risk_tier=LIMITED, model_version="2", previous_version="1", open_impact_assessments=["IA-7"],
    ),
    # top of the scale: 2 + 3 (critical) + 1 (three incidents) + 1 (major version) = 7 → 5
    case(
        "likelihood-clamps-at-5", "robustness", (5, 5, C, C), "top of the scale",
        risk_tier=MINIMAL, model_version="2", previous_version="1",
        incidents=[inc(f"INC-{i}", IncidentCategory.performance, Severity.critical) for i in range(3)],
    ),
    # Statement of Applicability: A.7.4 excluded → data_quality and drift are not treated
    case(
        "soa-exclusion-residual-is-inherent", "data_quality", (3, 2, M, M), "only if all its controls apply",
        policy=excluding_a74, risk_tier=LIMITED, datasets=["loans"], checks=10, failed_checks=["r1"],
    ),
    case(
        "soa-exclusion-drift", "drift", (4, 2, M, M), "only if all its controls apply",
        policy=excluding_a74, risk_tier=LIMITED, drift_critical=["loans.income"],
    ),
    case(
        "soa-exclusion-other-category-treated", "robustness", (2, 2, L, L), "likelihood -1",
        policy=excluding_a74, risk_tier=LIMITED, datasets=["loans"], checks=10, failed_checks=["r1"],
    ),
]
# fmt: on


@pytest.mark.parametrize(("evidence", "category", "policy", "expected", "rule"), CASES)
def test_scoring_rules(
    evidence: RiskEvidence, category: str, policy: Callable[[], Policy], expected: Expected, rule: str
) -> None:
    s = scored(evidence, category, policy())
    likelihood, impact, inherent, residual = expected
    assert (s.likelihood, s.impact, s.inherent_level, s.residual_level) == expected
    assert s.inherent_level == policy().level_for(likelihood, impact) == inherent
    assert s.residual_level == policy().level_for(s.residual_likelihood, impact) == residual
    assert any(rule in step.rule for step in s.rationale), [step.rule for step in s.rationale]
    assert s.controls == list(BY_NAME[category].controls)
    # the category's score is the same when every category is scored at once
    assert next(x for x in score(evidence, policy()) if x.category == category) == s


def test_residual_likelihood_one_step_down_unless_a_control_is_excluded() -> None:
    evidence = ev(risk_tier=RiskTier.limited, datasets=["loans"], checks=10, failed_checks=["r1"])
    assert scored(evidence, "data_quality", shipped()).residual_likelihood == 2
    excluded = scored(evidence, "data_quality", excluding_a74())
    assert excluded.residual_likelihood == excluded.likelihood == 3
    assert excluded.rationale[-1].evidence == "A.7.4 excluded in the Statement of Applicability"
    assert excluded.rationale[-1].effect == "residual = inherent"


def test_residual_likelihood_does_not_go_below_1() -> None:
    policy = sized(2, 2)  # baseline is 40 % of 2 → 1: the treatment has nothing left to lower
    s = scored(ev(risk_tier=RiskTier.minimal), "misuse", policy)
    assert s.likelihood == s.residual_likelihood == 1
    # the treatment step still says why the residual equals the inherent level
    assert s.rationale[-1].effect == "residual likelihood 1"


def test_clamp_step_says_where_the_likelihood_stops() -> None:
    evidence = ev(
        risk_tier=RiskTier.minimal,
        model_version="2",
        previous_version="1",
        incidents=[inc(f"INC-{i}", IncidentCategory.bias, Severity.critical) for i in range(3)],
    )
    s = scored(evidence, "fairness", shipped())
    tops = [step for step in s.rationale if step.rule == "top of the scale"]
    assert len(tops) == 1
    assert tops[0].effect == "likelihood 5"
    # baseline 2 + critical 3 + repeated 1 + major version 1 = 7 before the clamp
    assert "7" in tops[0].evidence


def test_the_worst_incident_of_the_kind_counts() -> None:
    evidence = ev(
        risk_tier=RiskTier.minimal,
        incidents=[
            inc("INC-1", IncidentCategory.bias, Severity.low),
            inc("INC-2", IncidentCategory.fundamental_rights, Severity.high),
        ],
    )
    s = scored(evidence, "fairness", shipped())
    assert (s.likelihood, s.impact) == (4, 4)  # high: +2 and impact 80 %; two incidents are not three
    assert any("INC-2" in step.evidence for step in s.rationale)


def test_every_incident_category_is_evidence_of_a_known_risk() -> None:
    assert set(INCIDENT_RISK) == set(IncidentCategory)
    assert set(INCIDENT_RISK.values()) <= set(BY_NAME)


# -- rationale -------------------------------------------------------------------------------------


def check_rationale(s: RiskScore) -> None:
    assert s.rationale, s.category
    for step in s.rationale:
        for text in (step.rule, step.evidence, step.effect):
            assert isinstance(text, str) and text.strip(), step
    first = s.rationale[0]
    assert first.rule.startswith("baseline likelihood"), first
    assert any(step.rule.startswith("impact from the risk tier") for step in s.rationale)


@pytest.mark.parametrize(("evidence", "category", "policy", "expected", "rule"), CASES)
def test_every_score_explains_itself(
    evidence: RiskEvidence, category: str, policy: Callable[[], Policy], expected: Expected, rule: str
) -> None:
    scores = score(evidence, policy())
    assert [s.category for s in scores] == [c.name for c in CATEGORIES]
    for s in scores:
        check_rationale(s)


def test_baseline_step_names_the_scale_level() -> None:
    s = scored(ev(), "security", shipped())
    assert s.rationale[0].effect == "likelihood 2 (unlikely)"
    assert s.rationale[0].evidence == "every AI system"


# -- determinism -----------------------------------------------------------------------------------

RICH = ev(
    risk_tier=RiskTier.high,
    window_days=30,
    datasets=["loans", "bureau"],
    unpinned_datasets=["bureau"],
    checks=7,
    failed_checks=["r1", "r2"],
    drift_critical=["loans.income"],
    drift_warning=["loans.age"],
    incidents=[
        inc("INC-1", IncidentCategory.bias, Severity.medium),
        inc("INC-2", IncidentCategory.performance, Severity.critical),
    ],
    model_version="v4.1",
    previous_version="3.9",
    open_impact_assessments=["IA-3"],
)


def test_same_evidence_same_scores() -> None:
    policy = shipped()
    first = score(RICH, policy)
    assert score(RICH, policy) == first
    assert score(copy.deepcopy(RICH), policy) == first
    round_tripped = RiskEvidence.model_validate_json(RICH.model_dump_json())
    assert round_tripped == RICH
    assert score(round_tripped, policy) == first
    # and the scores themselves survive the register's JSON
    assert [RiskScore.model_validate_json(s.model_dump_json()) for s in first] == first


def test_the_policy_reloaded_gives_the_same_scores() -> None:
    assert score(RICH, load_policy(EXAMPLE)) == score(RICH, shipped())


# -- properties ------------------------------------------------------------------------------------

_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
incidents = st.builds(
    IncidentFact, id=_ids, category=st.sampled_from(IncidentCategory), severity=st.sampled_from(Severity)
)
versions = st.sampled_from(["1", "2", "2.1", "v3", None])


@st.composite
def evidences(draw: st.DrawFn) -> RiskEvidence:
    failed = draw(st.lists(_ids, max_size=6))
    return RiskEvidence(
        system=draw(_ids),
        reason=draw(st.sampled_from(ReassessmentReason)),
        risk_tier=draw(st.sampled_from([None, *RiskTier])),
        window_days=draw(st.integers(1, 365)),
        datasets=draw(st.lists(_ids, max_size=3)),
        unpinned_datasets=draw(st.lists(_ids, max_size=2)),
        checks=len(failed) + draw(st.integers(0, 12)),
        failed_checks=failed,
        drift_critical=draw(st.lists(_ids, max_size=2)),
        drift_warning=draw(st.lists(_ids, max_size=2)),
        incidents=draw(st.lists(incidents, max_size=5)),
        model_version=draw(versions),
        previous_version=draw(versions),
        open_impact_assessments=draw(st.lists(_ids, max_size=2)),
    )


def check_bounds(scores: list[RiskScore], policy: Policy) -> None:
    l_size, i_size = len(policy.risk.likelihood), len(policy.risk.impact)
    for s in scores:
        assert 1 <= s.likelihood <= l_size and 1 <= s.impact <= i_size, s
        assert 1 <= s.residual_likelihood <= s.likelihood, s
        assert s.inherent_level == policy.level_for(s.likelihood, s.impact)
        assert s.residual_level == policy.level_for(s.residual_likelihood, s.impact)
        assert s.residual_level.rank <= s.inherent_level.rank, s
        check_rationale(s)


@PROPERTY
@given(evidences())
def test_property_scores_are_deterministic_and_on_the_scales(evidence: RiskEvidence) -> None:
    policy = shipped()
    first = score(evidence, policy)
    assert score(evidence, policy) == first
    assert score(RiskEvidence.model_validate_json(evidence.model_dump_json()), policy) == first
    check_bounds(first, policy)


@PROPERTY
@given(evidences(), st.integers(2, 10), st.integers(2, 10))
def test_property_scores_stay_on_any_scale(evidence: RiskEvidence, likelihoods: int, impacts: int) -> None:
    policy = sized(likelihoods, impacts)
    check_bounds(score(evidence, policy), policy)


@PROPERTY
@given(evidences())
def test_property_one_more_failed_check_never_lowers_a_likelihood(evidence: RiskEvidence) -> None:
    policy = shipped()
    more = evidence.model_copy(
        update={"checks": evidence.checks + 1, "failed_checks": [*evidence.failed_checks, "one-more"]}
    )
    for before, after in zip(score(evidence, policy), score(more, policy), strict=True):
        assert after.likelihood >= before.likelihood, (before, after)
        assert after.impact == before.impact


@PROPERTY
@given(evidences(), incidents)
def test_property_one_more_incident_never_lowers_a_likelihood_or_impact(
    evidence: RiskEvidence, incident: IncidentFact
) -> None:
    policy = shipped()
    more = evidence.model_copy(update={"incidents": [*evidence.incidents, incident]})
    for before, after in zip(score(evidence, policy), score(more, policy), strict=True):
        assert after.likelihood >= before.likelihood, (before, after)
        assert after.impact >= before.impact, (before, after)
        if before.category != INCIDENT_RISK[incident.category]:
            assert after == before  # an incident is evidence of its own kind of risk only


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
