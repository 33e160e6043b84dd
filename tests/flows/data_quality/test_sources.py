"""Events name data sources of the policy, never locations of their own (issue 19, item 1).

`resolve` turns a data-changed event into what the engine reads, or refuses it with a reason a person
can act on. Property: whatever relative path, `..`, absolute path or symlink an event names, the
result is a file inside its source's root, or a refusal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from connectors.great_expectations.common import DataUnavailable, FileTarget, SqlTarget
from flows.data_quality.sources import resolve
from schemas.payloads import DataChanged
from schemas.policy import Policy
from schemas.policy_file import load_policy
from schemas.settings import AimsSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "policy" / "aims-policy.yaml"


def policy_with(sources: dict[str, Any], **limits: int) -> Policy:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["data_sources"] = sources
    if limits:
        raw["data_quality"]["limits"] = limits
    return Policy.model_validate(raw)


def changed(**named: Any) -> DataChanged:
    data = {"dataset_id": "loans", "version": "1", "change_kind": "created", **named}
    return DataChanged.model_validate(data)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    (root / "loans").mkdir(parents=True)
    (root / "loans" / "2026.csv").write_text("a\n1\n")
    return root


@pytest.fixture
def conf(tmp_path: Path) -> AimsSettings:
    return AimsSettings(state_dir=tmp_path / "state", dq_password=SecretStr("s3cret"))


def test_the_example_policy_declares_the_demo_source_outside_the_state_folder() -> None:
    demo = load_policy(EXAMPLE).data_sources["demo"]
    assert demo.kind == "files"
    state = AimsSettings().state_path
    for root in demo.roots:
        real = root.resolve()
        assert not real.is_relative_to(state) and not state.is_relative_to(real)


def test_a_file_in_a_declared_source_resolves_inside_its_root(lake: Path, conf: AimsSettings) -> None:
    policy = policy_with({"lake": {"kind": "files", "roots": [str(lake)], "limits": {"max_rows": 7}}})
    resolved = resolve(changed(source="lake", path="loans/2026.csv"), policy, conf)
    assert isinstance(resolved.target, FileTarget)
    assert resolved.target.path == lake.resolve() / "loans" / "2026.csv"
    assert resolved.target.limits.max_rows == 7  # the source's own cap over the policy's default
    assert resolved.named == {"source": "lake", "path": "loans/2026.csv"} and resolved.notice is None


@pytest.mark.parametrize(
    ("named", "reason"),
    [
        ({"source": "attacker", "path": "x.csv"}, "no data source 'attacker' in the policy"),
        ({"source": "lake", "path": "/etc/passwd.csv"}, "must be relative to a root"),
        ({"source": "lake", "path": "../secret.csv"}, "leads outside the root of data source 'lake'"),
        ({"source": "lake", "path": "loans/../../secret.csv"}, "leads outside the root"),
        ({"source": "lake", "path": "loans/missing.csv"}, "no such file in data source 'lake'"),
        ({"source": "lake", "table": "users"}, "holds files: name a `path`"),
        ({"source": "wh", "path": "x.csv"}, "is a SQL database: name a `table`"),
        ({"source": "wh", "table": "secrets"}, "is not one of data source 'wh''s tables"),
        ({"location": {"uri": "/etc/shadow.csv"}}, "the file is in no data source of the policy"),
        (
            {"location": {"url": "postgresql://dq_reader@127.0.0.1:5/x", "table": "t"}},
            "the database is in no data source of the policy",
        ),
    ],
)
def test_what_no_source_declares_is_refused_with_a_reason(
    lake: Path, conf: AimsSettings, named: dict[str, Any], reason: str
) -> None:
    policy = policy_with(
        {
            "lake": {"kind": "files", "roots": [str(lake)]},
            "wh": {"kind": "sql", "url": "postgresql://dq_reader@db/wh", "tables": ["loans"]},
        }
    )
    with pytest.raises(DataUnavailable, match=reason.replace("(", r"\(")) as refused:
        resolve(changed(**named), policy, conf)
    assert not refused.value.retryable


def test_without_a_policy_nothing_is_a_source(conf: AimsSettings) -> None:
    with pytest.raises(DataUnavailable, match="no data sources: there is no policy file"):
        resolve(changed(source="lake", path="a.csv"), None, conf)


def test_a_symlink_out_of_the_root_is_refused(lake: Path, tmp_path: Path, conf: AimsSettings) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    (lake / "loans" / "link.csv").symlink_to(secret)
    (lake / "out").symlink_to(tmp_path)
    policy = policy_with({"lake": {"kind": "files", "roots": [str(lake)]}})
    for path in ("loans/link.csv", "out/secret.csv"):
        with pytest.raises(DataUnavailable, match="leads outside the root"):
            resolve(changed(source="lake", path=path), policy, conf)


def test_the_state_folder_is_never_a_root(tmp_path: Path, conf: AimsSettings) -> None:
    (conf.state_path / "demo").mkdir(parents=True)
    (conf.state_path / "register.sqlite").write_text("")
    for root in (conf.state_path, conf.state_path / "demo", tmp_path):
        policy = policy_with({"s": {"kind": "files", "roots": [str(root)]}})
        with pytest.raises(DataUnavailable, match="the state folder, inside it or around it"):
            resolve(changed(source="s", path="register.sqlite"), policy, conf)
    register = policy_with({"r": {"kind": "sql", "url": f"sqlite:///{conf.state_path / 'register.sqlite'}"}})
    with pytest.raises(DataUnavailable, match="in the state folder"):
        resolve(changed(source="r", table="audit_log"), register, conf)


def test_credentials_go_to_their_own_source_only(conf: AimsSettings) -> None:
    policy = policy_with(
        {
            "wh": {"kind": "sql", "url": "postgresql://dq_reader@db/wh", "credentials": "dq_password"},
            "open": {"kind": "sql", "url": "postgresql://reader@other/db"},
        }
    )
    wh = resolve(changed(source="wh", table="loans"), policy, conf).target
    other = resolve(changed(source="open", table="loans"), policy, conf).target
    assert isinstance(wh, SqlTarget) and isinstance(other, SqlTarget)
    assert wh.url == "postgresql://dq_reader@db/wh" and wh.password == SecretStr("s3cret")
    assert other.password is None and wh.password_env == "AIMS_DQ_PASSWORD"


def test_the_policy_refuses_a_password_in_a_url_and_foreign_credentials() -> None:
    with pytest.raises(ValidationError, match="carries a password"):
        policy_with({"wh": {"kind": "sql", "url": "postgresql://u:pw@db/wh"}})
    with pytest.raises(ValidationError, match="not a data-source credential setting"):
        policy_with({"wh": {"kind": "sql", "url": "postgresql://u@db/wh", "credentials": "jira_api_token"}})
    with pytest.raises(ValidationError, match="not a root"):
        policy_with({"all": {"kind": "files", "roots": ["/"]}})


def test_an_old_location_inside_a_source_is_read_as_that_source_with_a_notice(
    lake: Path, conf: AimsSettings
) -> None:
    policy = policy_with(
        {
            "lake": {"kind": "files", "roots": [str(lake)]},
            "wh": {"kind": "sql", "url": "postgresql://dq_reader@db/wh", "credentials": "dq_password"},
        }
    )
    file = resolve(changed(location={"uri": (lake / "loans" / "2026.csv").as_uri()}), policy, conf)
    assert file.named == {"source": "lake", "path": "loans/2026.csv"}
    assert file.notice is not None and '{"source": "lake", "path": "loans/2026.csv"}' in file.notice
    table = resolve(changed(location={"url": "postgresql://dq_reader@db/wh", "table": "t"}), policy, conf)
    assert isinstance(table.target, SqlTarget) and table.target.password == SecretStr("s3cret")
    assert table.notice is not None and "`location` is deprecated" in table.notice


def test_an_event_names_its_data_one_way() -> None:
    for bad in (
        {},
        {"source": "lake"},
        {"source": "lake", "path": "a.csv", "table": "t"},
        {"source": "lake", "path": "a.csv", "location": {"uri": "/a.csv"}},
        {"location": {"uri": "/a.csv"}, "path": "a.csv"},
    ):
        with pytest.raises(ValidationError):
            changed(**bad)


# -- the property: inside the root, or refused ----------------------------------------------------

segments = st.one_of(
    st.sampled_from(["..", ".", "", "loans", "link", "out", "2026.csv", "x.csv", "~", "..."]),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"), min_size=1, max_size=8),
)
paths = st.one_of(
    st.lists(segments, min_size=1, max_size=6).map("/".join),
    st.lists(segments, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    st.text(max_size=40),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths)
def test_any_path_resolves_inside_the_root_or_is_refused(
    path: str, lake: Path, tmp_path: Path, conf: AimsSettings
) -> None:
    if not os.path.lexists(lake / "loans" / "link"):
        (lake / "loans" / "link").symlink_to(tmp_path)  # a way out, as a producer might leave one
        (lake / "out").symlink_to("..")
    policy = policy_with({"lake": {"kind": "files", "roots": [str(lake)]}})
    try:
        data = changed(source="lake", path=path)
    except ValidationError:
        return  # not even a path: the event is refused at the door (dead-lettered)
    try:
        resolved = resolve(data, policy, conf)
    except DataUnavailable as refused:
        assert not refused.retryable and refused.reason
        return
    target = resolved.target
    assert isinstance(target, FileTarget) and target.root == lake.resolve()
    assert target.path.resolve() == target.path and target.path.is_relative_to(lake.resolve())
    assert target.path != lake.resolve()
