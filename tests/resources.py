"""Resources the tests share, built one way: the example policy and a migrated register.

Not a test module: conftest.py files turn these into fixtures, and modules whose module-level tables
need the policy call `example_policy()` (parsed once per session, whoever asks first).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.register.store import Register
    from schemas.policy import Policy

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = REPO / "policy" / "aims-policy.yaml"


@cache
def example_policy() -> Policy:
    """policy/aims-policy.yaml, parsed once. Policy models are frozen, so sharing one is safe."""
    from schemas.policy_file import load_policy

    return load_policy(EXAMPLE_POLICY)


def migrated_register(state: Path) -> Register:
    """The SQLite register of a state folder (where the CLI and the flows find it), migrated to head."""
    from connectors.register.store import Register

    register = Register.for_state(state)
    register.migrate()
    return register
