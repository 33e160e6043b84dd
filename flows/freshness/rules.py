"""Is each control's evidence fresh, and what collects it again? Pure: no register, no clock, no Slack.

A control is **fresh** while its newest evidence (from anything that implements it, by when it was
collected) is younger than the policy's maximum age for it; **stale** after that; **missing** with no
evidence at all; **excluded** when the Statement of Applicability excludes it.

A stale or missing control is due again once per *period*: the first period starts when its evidence
went stale (for a missing one, at a fixed origin), and each further period is one maximum age long.
`collect-evidence` keys what it does by control and period, so it starts each collection once and
asks each owner once, however often it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from schemas.catalogue import Catalogue, EvidenceStat
from schemas.evidence_policy import EvidenceFreshness
from schemas.policy import Policy

# Periods of a control that never had evidence count from here (any fixed instant would do).
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class Status(StrEnum):
    fresh = "fresh"
    stale = "stale"
    missing = "missing"
    excluded = "excluded"


class Collection(StrEnum):
    """What the AIMS can do itself to collect a control's evidence again."""

    recheck_datasets = "recheck-datasets"  # a data-quality check of each dataset's latest version
    reassess_systems = "reassess-systems"  # a risk reassessment of each AI system in use
    impact_reminders = "impact-reminders"  # remind each system's owner of its impact assessment
    ask_owner = "ask-owner"  # nothing to run: the control's owner must supply it


# Which implementation's evidence each collection renews (names from the catalogue).
RENEWS: Mapping[str, Collection] = {
    "check-data-quality": Collection.recheck_datasets,
    "data_quality_result": Collection.recheck_datasets,
    "dataset_version": Collection.recheck_datasets,
    "reassess-risk": Collection.reassess_systems,
    "schedule-risk-reviews": Collection.reassess_systems,
    "impact_assessment": Collection.impact_reminders,
}


@dataclass(frozen=True)
class ControlFreshness:
    id: str
    title: str
    status: Status
    implemented_by: tuple[str, ...]
    evidence_count: int
    newest_at: datetime | None
    max_age: timedelta
    # When the newest evidence goes (or went) stale; None without evidence.
    stale_at: datetime | None
    # The start of the period a stale or missing control is due in; None while fresh or excluded.
    period_start: datetime | None

    @property
    def due(self) -> bool:
        return self.status in (Status.stale, Status.missing)

    @property
    def request_id(self) -> str:
        """The one evidence request of this control in this period."""
        assert self.period_start is not None, "only a stale or missing control is requested"
        return f"{self.id}@{self.period_start.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def period_start(stale_at: datetime | None, max_age: timedelta, now: datetime) -> datetime:
    """The start of the period `now` falls in, counting whole maximum ages from when it went stale."""
    anchor = stale_at if stale_at is not None else ORIGIN
    if now < anchor:
        return anchor
    return anchor + max_age * ((now - anchor) // max_age)


def judge(
    catalogue: Catalogue,
    evidence: Mapping[str, tuple[int, datetime | None]],
    policy: EvidenceFreshness,
    excluded: set[str] | frozenset[str],
    now: datetime,
) -> list[ControlFreshness]:
    """Every Annex A control, in catalogue order; `evidence`: id → (count, newest collection time)."""
    rows = []
    for control in catalogue.controls:
        count, newest = evidence.get(control.id, (0, None))
        max_age = policy.max_age(control.id)
        stale_at = newest + max_age if newest is not None else None
        if control.id in excluded:
            status = Status.excluded
        elif newest is None:
            status = Status.missing
        elif now >= stale_at:  # type: ignore[operator]  # stale_at is set with newest
            status = Status.stale
        else:
            status = Status.fresh
        due = status in (Status.stale, Status.missing)
        rows.append(
            ControlFreshness(
                id=control.id,
                title=control.title,
                status=status,
                implemented_by=tuple(i.name for i in catalogue.implementations_for(control.id)),
                evidence_count=count,
                newest_at=newest,
                max_age=max_age,
                stale_at=stale_at,
                period_start=period_start(stale_at, max_age, now) if due else None,
            )
        )
    return rows


def judge_by_policy(
    catalogue: Catalogue, evidence: Mapping[str, EvidenceStat], policy: Policy, now: datetime
) -> list[ControlFreshness]:
    """`judge` with what the register counted (`evidence_by_id`) and what the policy says: its maximum
    ages and the Statement of Applicability's exclusions. What `aims controls`, the dashboard and
    `collect-evidence` all show."""
    return judge(
        catalogue,
        {id_: (stat.count, stat.last_at) for id_, stat in evidence.items()},
        policy.evidence,
        set(policy.statement_of_applicability.exclusions),
        now,
    )


def collections(control: ControlFreshness) -> list[Collection]:
    """What collects the control's evidence again: what its implementations can run, else its owner."""
    found = {RENEWS[name] for name in control.implemented_by if name in RENEWS}
    return sorted(found, key=list(Collection).index) or [Collection.ask_owner]
