"""Asking a dataset's owner to review its drafted suite: once per drafted suite, until it is accepted.

The reminder is a `suite_review` row first (its id makes it once per dataset and round, whichever
run gets there first), then a Slack direct message to the owner when Slack is set up and the owner
known; otherwise the row is the reminder (`aims datasets NAME` shows it).
"""

from __future__ import annotations

import logging

from flows.data_quality.suite_review import (
    REMINDER,
    needs_reminder,
    owner_of,
    reminder,
    reminder_id,
    review_round,
)
from flows.evidence import actor, chat, register
from flows.runtime import current
from schemas.records import SuiteReview

FLOW = "check-data-quality"
log = logging.getLogger(__name__)


def remind_owner(dataset: str, version: str, suite_path: str, suite_version: str) -> SuiteReview | None:
    """Record (and send) the one reminder of this drafted suite; None when it was sent before."""
    from connectors.slack import ChatError
    from flows.text import mrkdwn

    policy = current().optional_policy
    sources = policy.data_sources if policy is not None else {}
    slack = chat()
    with register().unit_of_work(actor(FLOW)) as uow:
        reviews = uow.suite_reviews.find(dataset=dataset)
        if not needs_reminder(dataset, reviews):
            return None
        record = uow.datasets.get(dataset)
        owner = owner_of(record.owner if record else "", uow.dataset_versions.find(dataset=dataset), sources)
        message = reminder(dataset, suite_version, suite_path, version, owner)
        row = SuiteReview(
            id=reminder_id(dataset, review_round(reviews)),
            dataset=dataset,
            kind=REMINDER,
            suite_version=suite_version,
            by=owner,
            channel="slack" if slack is not None and owner is not None else "register",
            note=message.note,
        )
        uow.suite_reviews.add(row)
    if row.channel != "slack" or owner is None or slack is None:
        return row
    try:
        sent = slack.post_to_person(owner, mrkdwn(message.text))
    except ChatError as exc:
        sent = None
        log.warning("the review reminder of %s did not reach %s in Slack: %s", dataset, owner, exc)
    if sent is None:
        with register().unit_of_work(actor(FLOW)) as uow:
            row = uow.suite_reviews.update(
                row.id, channel="register", note=f"{message.note}; Slack did not deliver it to {owner}"
            )
    return row
