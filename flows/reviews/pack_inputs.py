"""The pack's sections for the inputs of 9.3.2 a) to c): the actions of previous reviews, changes in
the issues (policy, scope, roles), and the needs of interested parties. Pure: no Prefect, no Kafka.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from schemas.review_pack import (
    Table,
)

if TYPE_CHECKING:
    from connectors.register.store import UnitOfWork
    from schemas import records as r
    from schemas.policy import Policy
    from schemas.trail import AuditEntry
from flows.reviews.pack_common import Draft, Period, count_of, day_of, new_draft

# -- 9.3.2 a) ----------------------------------------------------------------------------------------


def previous_actions_section(
    uow: UnitOfWork, review: r.ManagementReview, period: Period, now: datetime
) -> Draft:
    earlier = [a for a in uow.review_actions.find(order_by="due") if a.review_id != review.id]
    open_ = [a for a in earlier if a.status == "open"]
    overdue = [a for a in open_ if a.due < now.date()]
    done = [a for a in earlier if a.status == "done" and a.closed_at in period]
    dropped = [a for a in earlier if a.status == "dropped" and a.closed_at in period]
    draft = new_draft(
        f"{count_of(len(open_), 'action')} from earlier reviews open ({len(overdue)} overdue); "
        f"{len(done)} were done and {len(dropped)} dropped in the period.",
        open=len(open_),
        overdue=len(overdue),
        done_in_period=len(done),
        dropped_in_period=len(dropped),
    )
    shown = [*open_, *done, *dropped]
    if shown:
        draft.tables.append(
            Table(
                title="Actions from previous reviews",
                columns=["Action", "Review", "Owner", "Due", "Status"],
                rows=[[a.id, a.review_id, a.owner, a.due.isoformat(), _action_status(a, now)] for a in shown],
            )
        )
    if not earlier:
        draft.missing.append(
            "No actions from earlier management reviews are recorded: either this is the first review "
            "or earlier reviews decided no actions."
        )
    return draft


def _action_status(action: r.ReviewAction, now: datetime) -> str:
    if action.status == "open" and action.due < now.date():
        return f"open, overdue by {(now.date() - action.due).days} d"
    return action.status


# -- 9.3.2 b) ----------------------------------------------------------------------------------------


def _at(entry: AuditEntry) -> datetime:
    return datetime.fromisoformat(entry.at).astimezone(UTC)


def issues_section(
    uow: UnitOfWork, policy: Policy, previous: r.ManagementReview | None, period: Period
) -> Draft:
    systems = uow.systems.find(order_by="name")
    added = [s for s in systems if s.created_at in period]
    retired: list[str] = []
    tiers: list[list[str]] = []
    for entry in uow.audit_entries("ai_system"):
        if entry.action != "update" or _at(entry) not in period or not entry.before or not entry.after:
            continue
        before, after = entry.before, entry.after
        if after.get("lifecycle_stage") == "retired" and before.get("lifecycle_stage") != "retired":
            retired.append(entry.entity_id)
        if before.get("risk_tier") != after.get("risk_tier"):
            tiers.append(
                [
                    entry.entity_id,
                    str(before.get("risk_tier") or "—"),
                    str(after.get("risk_tier") or "—"),
                    day_of(_at(entry)),
                ]
            )
    changes = policy_changes(previous.policy if previous else {}, policy.model_dump(mode="json"))
    draft = new_draft(
        f"{count_of(len(added), 'AI system')} added, {len(retired)} retired, "
        f"{count_of(len(tiers), 'risk-tier change')}; "
        f"{count_of(len(changes), 'policy change')} since the last review.",
        systems=len(systems),
        systems_added=len(added),
        systems_retired=len(retired),
        tier_changes=len(tiers),
        policy_changes=len(changes) if previous and previous.policy else None,
    )
    if added:
        draft.tables.append(
            Table(
                title="AI systems added",
                columns=["System", "Owner", "Stage", "Tier", "Added"],
                rows=[
                    [s.name, s.owner, s.lifecycle_stage, s.risk_tier or "—", day_of(s.created_at)]
                    for s in added
                ],
            )
        )
    if retired:
        draft.findings.append("Retired: " + ", ".join(sorted(set(retired))))
    if tiers:
        draft.tables.append(
            Table(title="Risk-tier changes", columns=["System", "From", "To", "On"], rows=tiers)
        )
    if previous is None or not previous.policy:
        draft.figures["policy_changes"] = None
        draft.missing.append(
            "No earlier review recorded the policy, so policy changes cannot be listed; this review "
            "records the current policy for the next one."
        )
    elif changes:
        draft.tables.append(Table(title="Policy changes", columns=["Setting", "Was", "Now"], rows=changes))
    return draft


def policy_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """Leaf settings that differ, as [dotted path, was, now]; lists compare whole."""
    if not before:
        return []
    rows: list[list[str]] = []
    for key in sorted(set(before) | set(after)):
        path, was, now = f"{prefix}{key}", before.get(key), after.get(key)
        if isinstance(was, dict) and isinstance(now, dict):
            rows += policy_changes(was, now, f"{path}.") if was else [[path, "—", _short(now)]]
        elif was != now:
            rows.append([path, _short(was), _short(now)])
    return rows


def _short(value: Any, limit: int = 80) -> str:
    text = "—" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- 9.3.2 c) ----------------------------------------------------------------------------------------


def interested_parties_section(uow: UnitOfWork, period: Period) -> Draft:
    needs = [n for n in uow.party_needs.find(order_by="recorded_at") if n.recorded_at in period]
    kinds = Counter(n.change for n in needs)
    draft = new_draft(
        f"{count_of(len(needs), 'need')} of interested parties recorded in the period.",
        recorded=len(needs),
        new=kinds.get("new", 0),
        changed=kinds.get("changed", 0),
        withdrawn=kinds.get("withdrawn", 0),
    )
    if needs:
        draft.tables.append(
            Table(
                title="Needs and expectations recorded",
                columns=["Party", "Need", "Change", "Recorded by", "On"],
                rows=[[n.party, n.need, n.change, n.recorded_by, day_of(n.recorded_at)] for n in needs],
            )
        )
    else:
        draft.missing.append(
            "No needs or expectations of interested parties were recorded in the period "
            "(`aims parties add` records them); the review should confirm none changed."
        )
    return draft
