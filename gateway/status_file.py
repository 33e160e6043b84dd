"""Where a running gateway says which port it listens on.

Apart from the app so that `aims status` and the supervisor find the file without importing Starlette
and the gateway (over a second on a loaded machine, inside a status probe's 0.3 s budget).
"""

from pathlib import Path


def status_path(state_dir: Path) -> Path:
    return state_dir / "gateway.json"
