"""The soak benchmark's figures (bench.soak), pure: each process's memory over its lives (a killed
process comes back under another pid), and the consumer group's lag over the soak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MB = 1024 * 1024

# (seconds into the soak, pid or None while the process is down, resident bytes)
MemorySample = tuple[float, int | None, int]
# (seconds into the soak, the group's lag or None while it could not be read)
LagSample = tuple[float, int | None]


@dataclass(frozen=True)
class Life:
    """One process's memory from its first sample to its last (a restart begins another life)."""

    pid: int
    first_s: float  # when it was first sampled
    last_s: float
    start_bytes: int  # the first sample after the warm-up (a process is still loading before)
    end_bytes: int
    peak_bytes: int
    samples: int

    @property
    def growth(self) -> float | None:
        """End against start: 1.10 is 10 % more resident memory at the end."""
        return self.end_bytes / self.start_bytes if self.start_bytes else None


def lives(samples: Sequence[MemorySample], warmup_s: float) -> list[Life]:
    """Split one role's samples into the lives of its processes, in the order they appeared.

    Samples while the role had no process (pid None), or of a process already gone (0 bytes), are
    left out. A life's start is its first sample `warmup_s` or more after its first one (its very
    first if it lived shorter), so that the import and start-up of a restarted process do not read as
    growth."""
    by_pid: dict[int, list[tuple[float, int]]] = {}
    for t, pid, rss in samples:
        if pid is None or rss <= 0:
            continue
        by_pid.setdefault(pid, []).append((t, rss))
    result = []
    for pid, seen in by_pid.items():
        first_t = seen[0][0]
        settled = [rss for t, rss in seen if t >= first_t + warmup_s]
        result.append(
            Life(
                pid=pid,
                first_s=first_t,
                last_s=seen[-1][0],
                start_bytes=settled[0] if settled else seen[0][1],
                end_bytes=seen[-1][1],
                peak_bytes=max(rss for _, rss in seen),
                samples=len(seen),
            )
        )
    return sorted(result, key=lambda life: life.first_s)


def life_text(life: Life) -> str:
    growth = life.growth
    shown = "–" if growth is None else f"{(growth - 1) * 100:+.0f}%"
    return (
        f"pid {life.pid} from +{life.first_s:.0f}s: {life.start_bytes / MB:.0f} → "
        f"{life.end_bytes / MB:.0f} MB ({shown}), peak {life.peak_bytes / MB:.0f} MB, "
        f"{life.samples} samples"
    )


@dataclass(frozen=True)
class LagSummary:
    max_lag: int | None
    max_at_s: float | None
    unknown: int  # samples where the lag could not be read (the broker was down)
    samples: int


def lag_summary(samples: Sequence[LagSample]) -> LagSummary:
    known = [(t, lag) for t, lag in samples if lag is not None]
    if not known:
        return LagSummary(None, None, len(samples), len(samples))
    at, top = max(known, key=lambda s: (s[1], -s[0]))  # the first time it was that high
    return LagSummary(top, at, len(samples) - len(known), len(samples))


def group_lag(ends: dict[int, int], committed: dict[int, int]) -> int:
    """Records produced and not yet committed, over the partitions written to: a partition without a
    commit yet counts whole."""
    return sum(max(0, end - committed.get(p, 0)) for p, end in ends.items())
