"""Risk scoring: the documented rules on the shipped policy, case by case, and explainable steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flows.risk.scoring import CATEGORIES, INCIDENT_RISK, RiskEvidence, score
from schemas.payloads import IncidentCategory, RiskLevel, RiskTier, Severity
from schemas.policy import Policy
from tests.flows.risk.scoring_samples import (
    BY_NAME,
    C,
    H,
    L,
    M,
    appetite_medium,
    check_rationale,
    ev,
    excluding_a74,
    inc,
    scored,
    shipped,
    sized,
)


def test_shipped_policy_is_what_the_cases_assume() -> None:
    policy = shipped()
    assert len(policy.risk.likelihood) == 5 and len(policy.risk.impact) == 5
    assert [(b.level, b.max_score) for b in policy.risk.levels] == [(L, 4), (M, 9), (H, 16), (C, 25)]
    assert policy.risk.appetite == L
    excluded = set(policy.statement_of_applicability.exclusions)
    assert not any(set(c.controls) & excluded for c in CATEGORIES), "no category's treatment is excluded"
    assert appetite_medium().levels_needing_approval() == [H, C]


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
