"""`aims demo` knows which runs each event's flow will ask for, outside any flow run (issue 18, item 3).

The demo computes them in the CLI process, which has no flow runtime installed: it must read the
policy itself (a first version of the reshape asked the flows' runtime for it, and `make demo` died
with NoRuntime).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aims.demo import follow_on_keys, sample_events
from flows.runtime import NoRuntime, current
from schemas.events import is_event
from schemas.payloads import IncidentReported, ModelVersionRegistered
from schemas.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "policy" / "aims-policy.yaml"


def test_follow_ons_are_known_without_a_flow_runtime(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copy(EXAMPLE, policy)
    settings = load_settings(state_dir=tmp_path / "state", policy_file=policy)
    with pytest.raises(NoRuntime):
        current()
    events = sample_events(tmp_path / "demo")
    incident = next(e for e in events if is_event(e, IncidentReported))
    model = next(e for e in events if is_event(e, ModelVersionRegistered))
    incident_keys = follow_on_keys(incident, settings)
    assert incident_keys and all(isinstance(k, str) and k for k in incident_keys)
    assert len(follow_on_keys(model, settings)) == 1
