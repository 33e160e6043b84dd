"""Management-review results from a verified Jira transition, onto the one results path.

People record a review's results where its agenda lives: they move its Jira issue with a comment
holding one result per line (`flows.reviews.commands.COMMENT_HELP`); moving it to Done also closes the
review. Each line goes through `flows.reviews.commands.submit`, as `aims review …` does. What was
recorded, and what was refused and why, is answered in a comment; a refused closing moves the issue
back so that Jira does not show a review closed that the register holds open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from flows.reviews.commands import COMMENT_HELP, CommentError, Result, ResultKind, parse_comment, submit

if TYPE_CHECKING:
    from connectors.jira_issues import IssueTracker
    from connectors.register.store import Register
    from schemas.policy import Policy

log = logging.getLogger("aims.gateway")

CLOSING_STATUSES = frozenset({"done", "closed", "resolved"})


@dataclass
class ReviewHandled:
    status: str
    later: list[Callable[[], object]] = field(default_factory=list)


class ReviewDesk:
    def __init__(
        self, register: Register, policy: Callable[[], Policy], tracker: IssueTracker | None
    ) -> None:
        self.register = register
        self.policy = policy
        self.tracker = tracker

    def jira(
        self, issue: str, to_status: str, from_status: str, person: str, comment: str, at: datetime
    ) -> ReviewHandled | None:
        """None when the issue is no review's."""
        with self.register.reader() as uow:
            found = uow.reviews.find(jira_issue=issue, limit=1)
        if not found:
            return None
        review = found[0]
        closing = to_status.casefold() in CLOSING_STATUSES
        try:
            results = parse_comment(review.id, comment, person, at)
        except CommentError as exc:
            text = f"AIMS recorded nothing from this comment: {exc}. {COMMENT_HELP}"
            return self._answer("refused", issue, from_status, text, move_back=closing)
        if closing:
            results.append(Result(review.id, ResultKind.close, person, "jira", at=at))
        if not results:
            return ReviewHandled("ignored")
        with self.register.unit_of_work(f"jira:{person}") as uow:
            outcomes = [submit(uow, self.policy(), result) for result in results]
        fresh = [o for o in outcomes if not o.duplicate]
        if not fresh:
            return ReviewHandled("duplicate")
        for outcome in fresh:
            log.info("review %s result by %s via jira: %s", review.id, person, outcome.message)
        lines = [("Recorded: " if o.accepted else "Refused: ") + o.message for o in fresh]
        status = "recorded" if all(o.accepted for o in fresh) else "refused"
        close_refused = closing and not outcomes[-1].accepted
        text = f"AIMS, review {review.id}:\n" + "\n".join(lines)
        return self._answer(status, issue, from_status, text, move_back=close_refused)

    def _answer(
        self, status: str, issue: str, from_status: str, text: str, *, move_back: bool
    ) -> ReviewHandled:
        handled = ReviewHandled(status)
        tracker = self.tracker
        if tracker is None:
            return handled

        def answer() -> None:
            # A refused closing is put back, so Jira does not show closed a review the register holds open.
            if not (move_back and from_status and tracker.transition(issue, from_status, text)):
                tracker.comment(issue, text)

        handled.later.append(answer)
        return handled
