"""How busy this host's other cores were while a measurement ran: ``/proc/stat`` read before and after.

A latency must never be timed while another core trains or converts: a busy neighbour
shares caches and memory bandwidth with the measuring core. The figure is recorded
with each measurement the agent makes, so a figure taken beside other work can be
told apart afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

CpuTimes = dict[int, tuple[int, int]]
"""Per logical core: (busy jiffies, total jiffies) since boot."""


def cpu_times(stat: Path = Path("/proc/stat")) -> CpuTimes | None:
    """Per-core busy and total time from ``/proc/stat``; None where there is no such file (not Linux)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    times: CpuTimes = {}
    for line in text.splitlines():
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        values = [int(value) for value in fields[:8]]
        total = sum(values)
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        times[int(name[3:])] = (total - idle, total)
    return times


def measuring_cores(threads: int) -> set[int]:
    """The cores a measurement with ``threads`` threads runs on, seen from this process.

    A single-threaded worker pins itself to the last core it may use
    (``archsearch.latency.worker``, which inherits this process's affinity); a
    multi-threaded one may use all of them.
    """
    if not hasattr(os, "sched_getaffinity"):
        return set()
    cores = sorted(os.sched_getaffinity(0))
    return {cores[-1]} if threads == 1 else set(cores)


def busy_fraction(before: CpuTimes | None, after: CpuTimes | None, exclude: set[int]) -> float | None:
    """The fraction of time the cores not in ``exclude`` were busy between two readings.

    None when it cannot be told: no readings, or no other core.
    """
    if before is None or after is None:
        return None
    busy = total = 0
    for core, (busy_after, total_after) in after.items():
        if core in exclude or core not in before:
            continue
        busy += busy_after - before[core][0]
        total += total_after - before[core][1]
    if total <= 0:
        return None
    return min(1.0, max(0.0, busy / total))


__all__ = ["CpuTimes", "busy_fraction", "cpu_times", "measuring_cores"]
