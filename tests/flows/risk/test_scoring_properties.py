"""Risk scoring is deterministic and monotone: same evidence same scores; more failures never lower one."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from flows.risk.scoring import INCIDENT_RISK, IncidentFact, RiskEvidence, RiskScore, score
from schemas.payloads import IncidentCategory, ReassessmentReason, RiskTier, Severity
from schemas.policy import Policy
from schemas.policy_file import load_policy
from tests.flows.risk.scoring_samples import EXAMPLE, PROPERTY, RICH, check_rationale, shipped, sized

# -- determinism -----------------------------------------------------------------------------------


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
