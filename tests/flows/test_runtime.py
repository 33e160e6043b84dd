"""The resources flow code uses are built once by a composition root and handed in (issue 18, item 3).

A flow-run process builds its `Runtime` with `infra.resources.flow_runtime` from the settings; these
tests build one the same way on a real register and check what the flows then see.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connectors.register.store import Register
from flows.runtime import NoRuntime, Runtime, current, use
from infra.resources import flow_runtime
from schemas.policy import Policy
from schemas.policy_file import PolicyError, PolicyMissing, load_policy
from schemas.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "policy" / "aims-policy.yaml"


def test_flow_code_without_a_runtime_says_who_must_install_one() -> None:
    import flows.evidence as evidence

    with pytest.raises(NoRuntime, match=r"flows\.runtime\.use"):
        current()
    with pytest.raises(NoRuntime):
        evidence.register()


def test_the_policy_is_parsed_once_per_runtime_however_often_flow_code_asks(register: Register) -> None:
    import flows.evidence as evidence

    parses: list[Policy] = []

    def parse() -> Policy:
        parses.append(load_policy(EXAMPLE))
        return parses[-1]

    with use(Runtime(settings=load_settings(), register=register, load_policy=parse)):
        first = evidence.load_policy()
        assert all(evidence.load_policy() is first for _ in range(3))
    assert len(parses) == 1


def test_flow_runtime_opens_the_settings_register_and_reads_their_policy(tmp_path: Path) -> None:
    import flows.evidence as evidence

    policy = tmp_path / "policy.yaml"
    shutil.copy(EXAMPLE, policy)
    settings = load_settings(state_dir=tmp_path / "state", policy_file=policy, kafka_bootstrap_servers=None)
    runtime = flow_runtime(settings)
    try:
        with use(runtime):
            assert evidence.register() is runtime.register
            assert evidence.load_policy().version == load_policy(EXAMPLE).version
            assert evidence.run_settings().events_topic == settings.events_topic
            # No broker configured: nothing is sent now, the rows wait for the router's relay.
            assert evidence.send_outbox.fn("test-flow", ["a#1"]) == 0
        with runtime.register.reader() as uow:
            assert uow.outbox.find(sent_at=None) == []
    finally:
        runtime.register.close()


def test_a_missing_policy_stops_the_flows_that_need_it_and_says_where_to_put_one(tmp_path: Path) -> None:

    missing = tmp_path / "nowhere.yaml"
    settings = load_settings(state_dir=tmp_path / "state", policy_file=missing, kafka_bootstrap_servers=None)
    runtime = flow_runtime(settings)
    try:
        assert runtime.optional_policy is None
        with pytest.raises(PolicyMissing, match="AIMS_POLICY_FILE") as raised:
            _ = runtime.policy
        assert str(missing) in str(raised.value)
    finally:
        runtime.register.close()


def test_an_invalid_policy_is_an_error_not_a_fallback(tmp_path: Path) -> None:

    bad = tmp_path / "policy.yaml"
    bad.write_text("risk: [not, a, mapping]\n")
    settings = load_settings(state_dir=tmp_path / "state", policy_file=bad, kafka_bootstrap_servers=None)
    runtime = flow_runtime(settings)
    try:
        with pytest.raises(PolicyError, match=r"policy\.yaml:1"):
            _ = runtime.optional_policy
    finally:
        runtime.register.close()


def test_a_provided_runtime_is_built_on_first_use_once_for_every_thread(register: Register) -> None:
    """Prefect's own engine runs the flow with no root of ours before it (infra/flow_process.py)."""
    from concurrent.futures import ThreadPoolExecutor

    from flows.runtime import install, provide

    built: list[Runtime] = []

    def build() -> Runtime:
        built.append(Runtime(settings=load_settings(), register=register, load_policy=lambda: None))
        return built[-1]

    provide(build)
    try:
        assert not built, "providing opens nothing"
        with ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda _: current(), range(32)))
        assert len(built) == 1
        assert all(runtime is built[0] for runtime in seen)
    finally:
        provide(None)
        install(None)
    with pytest.raises(NoRuntime):
        current()
