"""The people of the example policy (policy/aims-policy.yaml), by the groups they sit in.

Not a test module: import the names. A comment says what each one may do, so a test reads as a story.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# model-risk: approvers of medium and high risks; incident responders
AISHA = "aisha.khan@northwind.example"
TOM = "tom.becker@northwind.example"
LI = "li.wei@northwind.example"
# compliance: approvers of high and critical risks; incident responders
MARIA = "maria.rossi@northwind.example"
JON = "jon.olsen@northwind.example"
# executive: approvers of critical risks, review attendees (Claire chairs); not incident responders
CLAIRE = "claire.dubois@northwind.example"
SAM = "sam.okafor@northwind.example"
# in no approver group: may submit requests and own actions, may not decide or respond
DEV = "dev@northwind.example"
# not in the policy at all
OUTSIDER = "someone@else.example"


# Any spelling a person or a directory might produce: each letter's case flipped at will, and spaces,
# tabs or line breaks around it.
SPACES = st.text(alphabet=" \t\r\n", max_size=4)


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    cased = "".join(c.upper() if flip else c.lower() for c, flip in zip(name, flips, strict=True))
    return draw(SPACES) + cased + draw(SPACES)


def prove_people(policy: dict[str, Any], slack_ids: dict[str, str], jira_accounts: dict[str, str]) -> None:
    """The session's policy proves its people as production would (issue 20): each person's Slack id
    and Jira account are the fakes', and the OS login running the tests may decide as any of them on
    the command line (one login plays every approver here, listed explicitly; the example policy's
    unsafe `cli_any_login` is switched off)."""
    from aims.login import operator_login

    login = operator_login()
    people: dict[str, dict[str, Any]] = {}
    for email in sorted(set(slack_ids) | set(jira_accounts)):
        person: dict[str, Any] = {"slack": slack_ids.get(email), "jira": jira_accounts.get(email)}
        person["logins"] = [login] if login else []
        people[email] = {k: v for k, v in person.items() if v is not None}
    policy["people"] = people
    policy["decisions"] = {**policy.get("decisions", {}), "cli_any_login": False}
