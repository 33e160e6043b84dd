"""Drafted baseline suites and their review. Pure: no Prefect, no Kafka, no GX.

A dataset without a suite gets one drafted from its first version (`status: baseline`). Nobody has
judged that draft, so a version checked only against it is *provisional*: it is recorded with its
verdict, but it never becomes the drift reference, however well it did (it passed the bounds of the
very data it is compared with: 5 % null incomes, ages of 150 and an unknown country code passed
"with warnings" against a draft, and became the reference). The dataset's owner is asked once per
drafted suite to review it; `aims dq accept-baseline` makes the draft the reviewed suite, recorded
with who and when, and from then on versions are judged and accepted as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from schemas.payloads import Verdict
from schemas.records import DatasetVersion, SuiteReview
from schemas.suites import Suite, SuiteStatus

if TYPE_CHECKING:
    from schemas.data_sources import DataSource

ACCEPTED = "accepted"
REJECTED = "rejected"
PROVISIONAL = "provisional"
SUPERSEDED = "superseded"
REMINDER = "reminder"
ACCEPTANCE = "acceptance"


def version_status(verdict: Verdict, suite_status: SuiteStatus | None) -> str:
    """What a checked version is: rejected when it failed; provisional when the suite it was checked
    against is a drafted baseline (or was drafted from it); accepted only against a reviewed suite."""
    if verdict is Verdict.failed:
        return REJECTED
    if verdict is Verdict.superseded:
        return SUPERSEDED
    if verdict is Verdict.baseline or suite_status is not SuiteStatus.reviewed:
        return PROVISIONAL
    return ACCEPTED


def may_be_reference(version: DatasetVersion) -> bool:
    """Only an accepted version with rows is a drift reference: never a provisional, rejected or
    superseded one, nor an empty one (it has no distribution to compare with)."""
    return version.status == ACCEPTED and bool(version.profile and version.profile.get("rows"))


def reference_of(versions: Iterable[DatasetVersion], before_version: str) -> DatasetVersion | None:
    """The drift reference for `before_version`: the last (in the order given) version that may be
    one, other than the version itself."""
    found = None
    for v in versions:
        if v.version != before_version and may_be_reference(v):
            found = v
    return found


# -- the review ------------------------------------------------------------------------------------


def review_round(reviews: Iterable[SuiteReview]) -> int:
    """How many times a drafted suite of the dataset was accepted: a new draft opens the next round."""
    return sum(1 for r in reviews if r.kind == ACCEPTANCE and r.accepted)


def reminder_id(dataset: str, round_: int) -> str:
    return f"{dataset}:{REMINDER}:{round_}"


def acceptance_id(dataset: str, round_: int) -> str:
    return f"{dataset}:accepted:{round_}"


def needs_reminder(dataset: str, reviews: Iterable[SuiteReview]) -> bool:
    """At most one reminder per dataset until its drafted suite is accepted."""
    listed = list(reviews)
    return reminder_id(dataset, review_round(listed)) not in {r.id for r in listed}


_BASELINE_VERSION = re.compile(r"^baseline-(?P<n>.+)$")


def reviewed_version(drafted: str) -> str:
    """The version the accepted suite is given: `baseline-1` becomes `1`; any other gains `-reviewed`."""
    match = _BASELINE_VERSION.fullmatch(drafted)
    return match.group("n") if match else f"{drafted}-reviewed"


def reviewed_suite(drafted: Suite) -> Suite:
    """The drafted suite as the reviewed one: the same expectations, `status: reviewed`, a new version."""
    return drafted.model_copy(
        update={"status": SuiteStatus.reviewed, "version": reviewed_version(drafted.version)}
    )


def owner_of(
    dataset_owner: str, versions: Iterable[DatasetVersion], sources: Mapping[str, DataSource]
) -> str | None:
    """Who owns a dataset: its register record's owner, else the `owner` of the policy's data source
    its newest version was read from; None when neither says."""
    if dataset_owner.strip():
        return dataset_owner.strip()
    for v in sorted(versions, key=lambda v: v.received_at, reverse=True):
        source = sources.get(str(v.location.get("source", "")))
        if source is not None:
            return source.owner
    return None


@dataclass(frozen=True)
class Reminder:
    """What the owner is told, and the one line the register keeps of it."""

    text: str
    note: str


def reminder(dataset: str, suite_version: str, suite_path: str, version: str, owner: str | None) -> Reminder:
    """The request to review a drafted suite. Plain text: the sender escapes it for where it goes."""
    text = (
        f"Data-quality suite of {dataset} needs your review: version {version} was checked against the "
        f"suite drafted from its first version ({suite_version}, {suite_path}), so it is provisional and "
        "is not used as the drift reference. Review every expectation (bounds, severity), then run "
        f"`aims dq accept-baseline {dataset} --by YOUR-EMAIL`."
    )
    if owner is None:
        note = (
            f"no owner to ask: set `owner` on the data source of {dataset} in the policy "
            "(data_sources.<id>.owner); recorded here instead"
        )
    else:
        note = f"asked {owner} to review the drafted suite {suite_version}"
    return Reminder(text, note)
