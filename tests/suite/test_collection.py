"""Collecting the suite must not import Prefect.

Prefect reads its settings (the API URL among them) when it is first imported. A test module that
imported it at collection fixed them before the session stack exported its own: in a whole-suite run
the in-process routers then talked to an ephemeral Prefect server, so stopping the stack's server
stopped nothing and the failure tests failed, while each module alone passed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys, pytest
code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"])
loaded = sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect."))
print("PREFECT-LOADED" if loaded else "PREFECT-ABSENT", code)
"""


def test_collecting_every_test_module_leaves_prefect_unimported() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    last = probe.stdout.strip().splitlines()[-1]
    assert last == "PREFECT-ABSENT 0", (
        "collecting the tests imported Prefect (or collection failed); import it inside the test or "
        f"fixture that needs it:\n{probe.stdout[-3000:]}\n{probe.stderr[-2000:]}"
    )
