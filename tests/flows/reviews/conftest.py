"""Fixtures of the review tests: the seeded register the pack is gathered from."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.reviews.seeding import Seeded, run_history, seed_register
from tests.resources import migrated_register


@pytest.fixture(params=[1, 2, 3, 4])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    rng = random.Random(request.param)
    reg = migrated_register(tmp_path)
    seed_register(reg, rng)
    yield Seeded(reg, run_history(rng))
    reg.close()
