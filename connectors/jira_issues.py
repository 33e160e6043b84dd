"""Jira: approval issues with approve/reject transitions, comments, and finding an issue again.

Flows and the gateway depend on `IssueTracker`; `JiraTracker` is the real adapter on the `jira`
client (REST v2, Cloud search). The client is built on first use, because building it already asks
the server for its version.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from jira import JIRA

    from schemas.settings import AimsSettings


class TrackerError(RuntimeError):
    """Jira refused or could not be reached after the retries."""


# What a label we search for may hold. Ours are `aims-<kind>-<hex>`; anything with a quote, space or
# JQL syntax would change the search, so it is refused before any request (labels come from hashes,
# never from ids: see flows.approvals.messages.jira_label).
SEARCHABLE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def searchable(label: str) -> str:
    """`label`, when it is safe to put into a JQL string; ValueError otherwise."""
    if not SEARCHABLE_LABEL.fullmatch(label):
        raise ValueError(f"not a label to search Jira for: {label!r} (letters, digits, '.', '_', '-')")
    return label


class IssueTracker(Protocol):
    def find(self, label: str) -> str | None:
        """The key of the issue carrying this label (our idempotency key), if one exists."""
        ...

    def create(self, project: str, summary: str, description: str, labels: list[str]) -> str: ...

    def status(self, key: str) -> str: ...

    def transition(self, key: str, name: str, comment: str | None = None) -> bool:
        """Move the issue along the named transition; False when it is not available from here."""
        ...

    def comment(self, key: str, body: str) -> None: ...

    def account_id(self) -> str:
        """Our own account, so the gateway ignores the webhooks of our own transitions."""
        ...


class JiraTracker:
    def __init__(
        self, url: str, email: str, token: str, issue_type: str = "Task", retries: int = 3, timeout: int = 15
    ) -> None:
        self.url = url
        self._auth = (email, token)
        self.issue_type = issue_type
        self._retries = retries
        self._timeout = timeout
        self._client: JIRA | None = None
        self._me: str | None = None

    @property
    def client(self) -> JIRA:
        if self._client is None:
            from jira import JIRA

            self._client = self._guard(
                "connect",
                lambda: JIRA(
                    server=self.url, basic_auth=self._auth, max_retries=self._retries, timeout=self._timeout
                ),
            )
        return self._client

    def _guard(self, what: str, call: Any) -> Any:
        from jira.exceptions import JIRAError
        from requests import RequestException

        try:
            return call()
        except JIRAError as exc:
            raise TrackerError(f"Jira {what} failed ({exc.status_code}): {exc.text}") from exc
        except RequestException as exc:
            raise TrackerError(f"Jira {what}: cannot reach {self.url}: {exc}") from exc

    def find(self, label: str) -> str | None:
        jql = f'labels = "{searchable(label)}"'
        issues = self._guard("search", lambda: self.client.search_issues(jql, maxResults=1, fields="status"))
        return str(issues[0].key) if issues else None

    def create(self, project: str, summary: str, description: str, labels: list[str]) -> str:
        fields = {
            "project": {"key": project},
            "issuetype": {"name": self.issue_type},
            "summary": summary[:250],
            "description": description,
            "labels": labels,
        }
        issue = self._guard("create issue", lambda: self.client.create_issue(fields=fields, prefetch=False))
        return str(issue.key)

    def status(self, key: str) -> str:
        issue = self._guard("read issue", lambda: self.client.issue(key, fields="status"))
        return str(issue.fields.status.name)

    def transition(self, key: str, name: str, comment: str | None = None) -> bool:
        available = self._guard("read transitions", lambda: self.client.transitions(key))
        match = [t for t in available if str(t["name"]).casefold() == name.casefold()]
        if not match:
            return False
        self._guard("transition", lambda: self.client.transition_issue(key, match[0]["id"], comment=comment))
        return True

    def comment(self, key: str, body: str) -> None:
        self._guard("comment", lambda: self.client.add_comment(key, body))

    def account_id(self) -> str:
        if self._me is None:
            self._me = str(self._guard("read own account", self.client.myself)["accountId"])
        return self._me


def jira_from_settings(settings: AimsSettings) -> JiraTracker | None:
    """The configured Jira, or None when no site is set (Jira is then not used)."""
    if not settings.jira_url:
        return None
    if not settings.jira_email or settings.jira_api_token is None:
        raise TrackerError("AIMS_JIRA_URL is set: set AIMS_JIRA_EMAIL and AIMS_JIRA_API_TOKEN too")
    return JiraTracker(
        settings.jira_url,
        settings.jira_email,
        settings.jira_api_token.get_secret_value(),
        settings.jira_issue_type,
    )
