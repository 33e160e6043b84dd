"""The Jira fake, driven by the real pycontribs `jira` client, so that tests built on it are worth something.

Every call here goes over HTTP through `jira.JIRA` and its `ResilientSession`; nothing in the client is
patched except `jira.resilientsession.time.sleep` in the rate-limit test, which CONTRACTS.md allows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jira import JIRA, JIRAError

from tests.fakes.jira import (
    CUSTOM_FIELD_ID,
    ISSUE_NOT_FOUND,
    LEGACY_SEARCH_GONE,
    RETRY_HEADER,
    SIGNATURE_HEADER,
    JiraFake,
)

EMAIL = "aims-bot@example.com"
TOKEN = "api-token-123"
GOV = {"project": {"key": "GOV"}, "issuetype": {"name": "Task"}}


@pytest.fixture
def fake() -> Iterator[JiraFake]:
    with JiraFake() as jira_fake:
        jira_fake.add_user(EMAIL, "AIMS Bot", TOKEN)
        jira_fake.add_project("GOV", "Governance")
        yield jira_fake


@pytest.fixture
def client(fake: JiraFake) -> JIRA:
    return JIRA(server=fake.url, basic_auth=(EMAIL, TOKEN), max_retries=0)


def _create(client: JIRA, summary: str = "Approve model v2", **fields: Any) -> str:
    return client.create_issue(fields={**GOV, "summary": summary, **fields}).key


def _error_body(error: JIRAError) -> Any:
    """The ErrorCollection the fake answered with, as the client received it."""
    assert error.response is not None
    return error.response.json()


class Receiver:
    """A webhook endpoint like the application's: a stdlib server answering from a script of statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/jira"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


# -- client construction and reads ------------------------------------------------------------------------


def test_construction_reads_server_info_and_sees_cloud(fake: JiraFake, client: JIRA) -> None:
    assert client.deploymentType == "Cloud"
    assert client.server_info()["versionNumbers"] == [1001, 0, 0]
    me = client.myself()
    assert me["emailAddress"] == EMAIL and me["displayName"] == "AIMS Bot" and me["active"] is True
    first = fake.requests[0]
    assert (first.method, first.path, first.user, first.status) == (
        "GET",
        "/rest/api/2/serverInfo",
        EMAIL,
        200,
    )


def test_bad_credentials_are_refused_with_401(fake: JiraFake) -> None:
    with pytest.raises(JIRAError) as error:
        JIRA(server=fake.url, basic_auth=(EMAIL, "wrong"), max_retries=0)
    assert error.value.status_code == 401
    assert fake.requests[-1].user is None


# -- issues -------------------------------------------------------------------------------------------------


def test_create_issue_with_dicts_answers_201_and_prefetches(fake: JiraFake, client: JIRA) -> None:
    issue = client.create_issue(
        fields={
            **GOV,
            "summary": "Approve model v2",
            "description": "Risk *high*",
            "labels": ["aims", "gate"],
        }
    )
    assert issue.key == "GOV-1"
    assert issue.fields.status.name == "To Do" and issue.fields.status.statusCategory.key == "new"
    assert issue.fields.labels == ["aims", "gate"] and issue.fields.description == "Risk *high*"
    calls = [(r.method, r.path, r.status) for r in fake.requests[1:]]
    assert calls == [("POST", "/rest/api/2/issue", 201), ("GET", "/rest/api/2/issue/GOV-1", 200)]
    assert fake.issues["GOV-1"]["fields"]["project"]["key"] == "GOV"


def test_create_issue_with_project_and_issuetype_strings_looks_them_up(fake: JiraFake, client: JIRA) -> None:
    issue = client.create_issue(project="GOV", issuetype="Incident", summary="Drift on model v2")
    assert issue.fields.issuetype.name == "Incident"
    lookups = [(r.path, r.query) for r in fake.requests if r.path.startswith("/rest/api/2/project/")]
    assert lookups == [
        ("/rest/api/2/project/GOV", {}),
        ("/rest/api/2/project/10000", {"expand": ["issueTypes"]}),
    ]


def test_create_issue_validation_errors_name_the_field(client: JIRA) -> None:
    with pytest.raises(JIRAError) as error:
        client.create_issue(
            fields={"project": {"key": "NOPE"}, "issuetype": {"name": "Task"}, "summary": "x"}
        )
    assert error.value.status_code == 400
    assert _error_body(error.value) == {
        "errorMessages": [],
        "errors": {"project": "valid project is required"},
    }
    with pytest.raises(JIRAError) as error:
        client.create_issue(fields={**GOV, "summary": "  "})
    assert error.value.status_code == 400 and "summary" in _error_body(error.value)["errors"]


def test_custom_field_is_listed_and_stored(fake: JiraFake, client: JIRA) -> None:
    assert CUSTOM_FIELD_ID in {f["id"] for f in client.fields()}
    key = _create(client, **{CUSTOM_FIELD_ID: "evt-42"})
    assert client.issue(key).raw["fields"][CUSTOM_FIELD_ID] == "evt-42"


def test_unknown_issue_is_404_with_jiras_message(client: JIRA) -> None:
    with pytest.raises(JIRAError) as error:
        client.issue("GOV-99")
    assert error.value.status_code == 404
    assert error.value.text == ISSUE_NOT_FOUND


# -- workflow -----------------------------------------------------------------------------------------------


def test_transitions_are_those_available_from_the_current_status(client: JIRA) -> None:
    key = _create(client)
    available = {t["name"]: t["id"] for t in client.transitions(key)}
    assert available == {"Start": "21", "Approve": "31", "Reject": "41", "Done": "51"}
    client.transition_issue(key, "31")
    assert [(t["name"], t["id"], t["to"]["name"]) for t in client.transitions(key)] == [
        ("Reopen", "11", "To Do")
    ]


def test_transition_by_name_with_a_comment(fake: JiraFake, client: JIRA) -> None:
    key = _create(client)
    assert client.transition_issue(key, "approve", comment="Approved by the AI risk owner") == {}
    assert fake.status(key) == "Approved"
    assert fake.comments(key) == ["Approved by the AI risk owner"]
    status = client.issue(key).fields.status
    assert (status.name, status.id, status.statusCategory.key) == ("Approved", "10001", "done")
    assert fake.requests[-2].status == 204


def test_invalid_transition_is_400(fake: JiraFake, client: JIRA) -> None:
    key = _create(client)
    with pytest.raises(JIRAError) as error:
        client.transition_issue(key, "11")  # Reopen is not available from To Do
    assert error.value.status_code == 400
    assert error.value.text == "Transition id '11' is not valid for this issue."
    assert fake.status(key) == "To Do"


def test_a_test_can_extend_the_workflow(fake: JiraFake, client: JIRA) -> None:
    fake.add_status("Escalated", "indeterminate")
    transition_id = fake.add_transition("To Do", "Escalate", "Escalated")
    key = _create(client)
    assert transition_id in {t["id"] for t in client.transitions(key)}
    client.transition_issue(key, "Escalate")
    assert fake.status(key) == "Escalated"


# -- comments -----------------------------------------------------------------------------------------------


def test_add_comment_and_list_comments(fake: JiraFake, client: JIRA) -> None:
    key = _create(client)
    comment = client.add_comment(key, "Evidence attached")
    assert comment.body == "Evidence attached" and comment.author.displayName == "AIMS Bot"
    assert fake.requests[-1].status == 201
    assert [c.body for c in client.comments(key)] == ["Evidence attached"]
    assert fake.comments(key) == ["Evidence attached"]


# -- search -------------------------------------------------------------------------------------------------


def test_search_issues_by_labels_goes_to_search_jql(fake: JiraFake, client: JIRA) -> None:
    first = _create(client, labels=["aims-gate"])
    _create(client, labels=["other"])
    third = _create(client, labels=["aims-gate", "x"])
    found = client.search_issues('project = GOV AND labels = "aims-gate"')
    assert [i.key for i in found] == [first, third]
    assert found[0].fields.summary == "Approve model v2"
    assert [i.key for i in client.search_issues("labels = aims-gate", use_post=True)] == [first, third]
    paths = [r.path for r in fake.requests]
    assert "/rest/api/2/field" in paths and "/rest/api/2/search" not in paths
    assert [i.key for i in client.search_issues(f"key = {third}")] == [third]
    assert [i.key for i in client.search_issues('status = "To Do" and labels = other')] == ["GOV-2"]


def test_search_pages_with_next_page_token(client: JIRA) -> None:
    keys = [_create(client, labels=["p"]) for _ in range(3)]
    page = client.enhanced_search_issues("labels = p", maxResults=2, json_result=True)
    assert [i["key"] for i in page["issues"]] == keys[:2] and page["isLast"] is False
    rest = client.enhanced_search_issues(
        "labels = p", maxResults=2, nextPageToken=page["nextPageToken"], json_result=True
    )
    assert [i["key"] for i in rest["issues"]] == keys[2:] and rest["isLast"] is True
    assert "nextPageToken" not in rest
    assert [i.key for i in client.search_issues("labels = p ORDER BY key DESC", maxResults=False)] == keys[
        ::-1
    ]


def test_unsupported_jql_is_400_naming_the_problem(client: JIRA) -> None:
    with pytest.raises(JIRAError) as error:
        client.search_issues("labels = a OR labels = b")
    assert error.value.status_code == 400 and "OR" in str(error.value.text)
    with pytest.raises(JIRAError) as error:
        client.search_issues("project = NOPE")
    assert error.value.text == "The value 'NOPE' does not exist for the field 'project'."


def test_legacy_search_is_gone_with_410(fake: JiraFake) -> None:
    server_client = JIRA(server=fake.url, basic_auth=(EMAIL, TOKEN), max_retries=0, get_server_info=False)
    with pytest.raises(JIRAError) as error:
        server_client.search_issues("labels = x")  # not known as Cloud, so the client uses /search
    assert error.value.status_code == 410
    assert _error_body(error.value) == {"errorMessages": [LEGACY_SEARCH_GONE], "errors": {}}


# -- failure injection --------------------------------------------------------------------------------------


def test_429_once_is_retried_and_the_issue_created_once(
    fake: JiraFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("jira.resilientsession.time.sleep", lambda seconds: None)
    retrying = JIRA(server=fake.url, basic_auth=(EMAIL, TOKEN), max_retries=1)
    fake.fail_next("POST", "/rest/api/2/issue", status=429, retry_after=0)
    key = _create(retrying)
    assert list(fake.issues) == [key]
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.status for r in posts] == [429, 201]


def test_injected_failure_has_no_effect(fake: JiraFake, client: JIRA) -> None:
    key = _create(client)
    fake.fail_next("POST", "/transitions", status=503, retry_after=None)
    with pytest.raises(JIRAError) as error:
        client.transition_issue(key, "31")
    assert error.value.status_code == 503
    assert fake.status(key) == "To Do"
    client.transition_issue(key, "31")
    assert fake.status(key) == "Approved"


# -- webhooks -----------------------------------------------------------------------------------------------


def test_transition_sends_a_signed_issue_updated_webhook(
    fake: JiraFake, client: JIRA, receiver: Receiver
) -> None:
    secret = "whsec-test"
    fake.set_webhook(receiver.url, secret)
    key = _create(client, labels=["aims-gate"])
    before = int(time.time() * 1000)
    client.transition_issue(key, "Approve", comment="OK by risk owner")
    [delivery] = fake.wait_deliveries(1)
    headers, body = receiver.received[0]
    assert body == delivery.body and delivery.status == 200 and RETRY_HEADER not in headers
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
    assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["webhookEvent"] == "jira:issue_updated" and event["issue_event_type_name"] == "issue_generic"
    assert before <= event["timestamp"] <= int(time.time() * 1000)
    assert (
        event["user"]["emailAddress"] == EMAIL and event["user"]["accountId"] == client.myself()["accountId"]
    )
    assert event["issue"]["key"] == key and event["issue"]["fields"]["status"]["name"] == "Approved"
    assert event["issue"]["fields"]["labels"] == ["aims-gate"]
    assert event["changelog"]["items"] == [
        {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": "10000",
            "fromString": "To Do",
            "to": "10001",
            "toString": "Approved",
        }
    ]
    assert event["comment"]["body"] == "OK by risk owner"
    assert event["comment"]["author"]["displayName"] == "AIMS Bot"


def test_webhook_is_retried_after_a_500_and_can_be_redelivered(
    fake: JiraFake, client: JIRA, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    fake.set_webhook(receiver.url, None)
    key = _create(client)
    client.transition_issue(key, "Reject")
    first, retried = fake.wait_deliveries(2)
    assert (first.status, first.retry, retried.status, retried.retry) == (500, 0, 200, 1)
    assert receiver.received[1][0][RETRY_HEADER] == "1" and RETRY_HEADER not in receiver.received[0][0]
    assert receiver.received[1][1] == receiver.received[0][1]
    assert SIGNATURE_HEADER not in receiver.received[0][0]
    again = fake.redeliver()
    assert again.status == 200 and again.retry == 2 and again.body == first.body
    assert again.identifier == first.identifier
    assert receiver.received[2][0][RETRY_HEADER] == "2" and len(fake.deliveries) == 3


# -- robustness ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[JiraFake]:
    with JiraFake() as jira_fake:
        jira_fake.add_user(EMAIL, "AIMS Bot", TOKEN)
        jira_fake.add_project("GOV", "Governance")
        yield jira_fake


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (EMAIL, TOKEN)
        yield session


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(["project", "issuetype", "summary", "description", "labels", CUSTOM_FIELD_ID])
ISSUE_BODIES = JSON_VALUES | st.fixed_dictionaries(
    {
        "fields": st.dictionaries(FIELD_NAMES | st.text(max_size=10), JSON_VALUES, max_size=6)
        | st.fixed_dictionaries(
            {
                "project": st.sampled_from([{"key": "GOV"}, {"id": "10000"}, {"id": 10000}, {"key": 1}]),
                "issuetype": st.sampled_from([{"name": "Task"}, {"id": "10003"}, {"name": "Nope"}]),
                "summary": st.text(max_size=300) | JSON_VALUES,
            },
            optional={"labels": st.lists(st.text(max_size=8), max_size=3) | JSON_VALUES},
        )
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=ISSUE_BODIES)
def test_any_json_body_to_create_issue_is_201_or_an_error_collection(
    shared_fake: JiraFake, http: requests.Session, body: Any
) -> None:
    before = len(shared_fake.issues)
    response = http.post(
        f"{shared_fake.url}/rest/api/2/issue",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code in (201, 400), response.text
    answer = response.json()
    if response.status_code == 201:
        assert set(answer) == {"id", "key", "self"} and len(shared_fake.issues) == before + 1
    else:
        assert isinstance(answer["errorMessages"], list) and isinstance(answer["errors"], dict)
        assert answer["errorMessages"] or answer["errors"]
        assert len(shared_fake.issues) == before
    assert shared_fake.errors == []
