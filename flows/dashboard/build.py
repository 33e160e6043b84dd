"""Build the dashboard and write it atomically: what `aims dashboard` and the flows' hook share.

No Prefect here: the hook (`flows/dashboard/hook.py`) adds the artifact and the throttle.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flows.dashboard.gather import FAILED_SINCE, gather
from flows.dashboard.render import html
from schemas.catalogue import load_catalogue

if TYPE_CHECKING:
    from connectors.register.store import Register
    from flows.reviews.pack_common import RunHistory
    from schemas.dashboard import Dashboard
    from schemas.policy import Policy

FILE_NAME = "dashboard.html"


def failed_since(now: datetime) -> datetime:
    return now - FAILED_SINCE


def build(register: Register, policy: Policy, now: datetime, prefect: RunHistory | None) -> Dashboard:
    with register.reader() as uow:
        return gather(uow, policy, load_catalogue(), now=now, prefect=prefect)


def write_atomically(path: Path, text: str) -> None:
    """Written to a temporary file beside `path` and renamed over it: a reader (a browser, the
    Prefect artifact's link) never sees half a page, and a failed write leaves the old one."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write(board: Dashboard, path: Path) -> Path:
    write_atomically(path, html(board))
    return path
