"""The routers' part of `aims status`: their heartbeat files, read and judged.

A router counts as alive only with a fresh heartbeat and partitions to route; the heartbeat files of
routers whose process is gone are removed, so dead routers are not listed forever.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

# Heartbeats are a few hundred bytes; reading more than this is reading something else.
HEARTBEAT_MAX_BYTES = 64 * 1024
# A router writes its heartbeat every ~2 s; a beat older than this says nothing about it.
HEARTBEAT_STALE_SECONDS = 15
# A stale heartbeat from another host (whose process we cannot check) is no longer listed after this.
HEARTBEAT_FORGET_SECONDS = 600


# -- routers -----------------------------------------------------------------------------------


def _printable(value: object, limit: int = 200) -> str | None:
    """Heartbeat text reaches a terminal: no control characters, bounded length."""
    if not isinstance(value, str):
        return None
    return "".join(c if c.isprintable() else "?" for c in value[:limit])


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _time(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # JSON integers have no bound
        return None
    return seconds if math.isfinite(seconds) else None


def _partition_list(value: object) -> list[int] | None:
    """The partitions a router holds; None (unknown) unless it is a list of partition numbers."""
    if not isinstance(value, list):
        return None
    numbers = [_count(p) for p in value]
    if any(n is None for n in numbers):
        return None
    return sorted({n for n in numbers if n is not None})


def _process_running(pid: int) -> bool | None:
    if pid <= 0:  # 0 and negative numbers name process groups, not a process
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it belongs to another user
    except (OSError, OverflowError):  # OverflowError: a number no process can have
        return None
    return True


def _read_beat(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        with path.open("rb") as f:
            beat = json.loads(f.read(HEARTBEAT_MAX_BYTES))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not JSON, not UTF-8
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if not isinstance(beat, dict):
        return None, f"a JSON {type(beat).__name__}, not an object"
    return beat, None


def router_view(path: Path, now: float, hostname: str) -> tuple[str, dict[str, Any] | None]:
    """What `aims status` says about one heartbeat file: ("listed", view); ("gone", None) when its
    process is not running on this host (the file is removed); ("forgotten", None) when nothing was
    heard from it for too long, or the file went away while we looked (the router stopped)."""
    try:
        written = path.stat().st_mtime
    except OSError:
        return "forgotten", None
    beat, unreadable = _read_beat(path)
    fallback_name = path.stem.removeprefix("router-")
    if beat is None:
        if now - written > HEARTBEAT_FORGET_SECONDS:
            return "forgotten", None
        return "listed", {
            "name": fallback_name,
            "condition": "unreadable",
            "alive": False,
            "error": unreadable,
        }
    # Heartbeats from older routers lack host and partitions: the host is then this one, and
    # partitions are unknown.
    host = _printable(beat.get("host")) or hostname
    pid = _count(beat.get("pid"))
    at = _time(beat.get("at"))
    running = _process_running(pid) if host == hostname and pid is not None else None
    if running is False:
        # In a read-only state folder the file stays, but it is still not listed: its process is gone.
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return "gone", None
    age = None if at is None else now - at
    fresh = age is not None and abs(age) < HEARTBEAT_STALE_SECONDS
    partitions = _partition_list(beat.get("partitions"))
    state = _printable(beat.get("state"), 20)
    holding = state == "holding" or (state is None and beat.get("holding") is True)
    if not fresh:
        # Listed as long as its process exists; otherwise for a while (we cannot look on another host).
        silent = age if age is not None and age > 0 else now - written
        if running is not True and silent > HEARTBEAT_FORGET_SECONDS:
            return "forgotten", None
        condition = "stale"
    elif holding:
        condition = "holding"
    elif partitions is None:
        condition = "unknown"
    else:
        condition = "routing" if partitions else "idle"
    return "listed", {
        "name": _printable(beat.get("name")) or fallback_name,
        "condition": condition,
        # Alive means doing its job: a fresh beat, with partitions to route.
        "alive": fresh and bool(partitions),
        "host": host,
        "pid": pid,
        "at": at,
        "age_seconds": None if age is None else round(age, 1),
        "partitions": partitions,
        "state": state,
        "holding_on": _printable(beat.get("holding_on"), 40),
        "in_flight": _count(beat.get("in_flight")),
        "waiting_subjects": _count(beat.get("waiting_subjects")),
        "consumed": _count(beat.get("consumed")),
        "routed": _count(beat.get("routed")),
        "dead_lettered": _count(beat.get("dead_lettered")),
        "last_error": _printable(beat.get("last_error"), 300),
    }


def read_routers(directory: Path, now: float, hostname: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The routers to list, and the names of the gone ones whose heartbeat files were removed."""
    listed, removed = [], []
    for path in sorted(directory.glob("router-*.json")):
        verdict, view = router_view(path, now, hostname)
        if view is not None:
            listed.append(view)
        elif verdict == "gone":
            removed.append(path.stem.removeprefix("router-"))
    return listed, removed
