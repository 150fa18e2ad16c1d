"""The timing loop: warm up, then time single runs until the median is stable."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TimingPolicy:
    """When to stop timing. ``runs`` fixes the count; otherwise the median must settle.

    After ``min_runs`` (and ``min_seconds``), timing stops once the median of all runs
    moved less than ``tolerance`` (relative) over the last ``batch`` runs, or at
    ``max_runs`` / ``max_seconds``.
    """

    runs: int | None = None
    warmup_runs: int = 10
    warmup_seconds: float = 0.2
    min_runs: int = 50
    min_seconds: float = 0.5
    batch: int = 25
    tolerance: float = 0.005
    max_runs: int = 5000
    max_seconds: float = 15.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class TimingStats:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    warmup_runs: int
    stable: bool
    min_ms: float = float("nan")
    p20_ms: float = float("nan")
    iqm_ms: float = float("nan")
    """Interquartile mean: the mean of the runs between p25 and p75."""

    @property
    def spread_ms(self) -> float:
        """p90 - p10: the width of the middle 80% of runs."""
        return self.p90_ms - self.p10_ms

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "spread_ms": self.spread_ms}


def time_runs(run: Callable[[], object], policy: TimingPolicy = TimingPolicy()) -> TimingStats:
    """Time ``run`` (one inference) under ``policy`` and summarise the per-run times."""
    clock = time.perf_counter
    warmup_runs, started = 0, clock()
    while warmup_runs < policy.warmup_runs or (clock() - started < policy.warmup_seconds and warmup_runs < 1000):
        run()
        warmup_runs += 1

    samples: list[float] = []
    stable = policy.runs is not None
    started = clock()
    previous_median: float | None = None
    while True:
        for _ in range(policy.batch if policy.runs is None else policy.runs):
            begin = clock()
            run()
            samples.append(clock() - begin)
        if policy.runs is not None:
            break
        median = float(np.median(samples))
        elapsed = clock() - started
        if len(samples) >= policy.min_runs and elapsed >= policy.min_seconds and previous_median is not None:
            if abs(median - previous_median) <= policy.tolerance * previous_median:
                stable = True
                break
        if len(samples) >= policy.max_runs or elapsed >= policy.max_seconds:
            break
        previous_median = median

    times_ms = np.asarray(samples) * 1e3
    p10, p20, p25, median, p75, p90 = np.percentile(times_ms, [10, 20, 25, 50, 75, 90])
    middle = times_ms[(times_ms >= p25) & (times_ms <= p75)]
    return TimingStats(float(median), float(p10), float(p90), len(samples), warmup_runs, stable,
                       float(times_ms.min()), float(p20), float(middle.mean()))
