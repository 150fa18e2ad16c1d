"""The canary: a study re-measures one fixed network now and then, to notice when the device changes.

Latency figures are only comparable within one regime of the machine. A study that
resumes on another host, or runs on through a throttled CPU, would otherwise mix
regimes silently. The canary times an *anchor* (the study's first reference, at the
study's class count) after the first trial of every run (a resume may be on another
host) and every ``every`` search trials after that, between trials (never beside
training), bypassing the latency cache, and compares each reading with the study's first one. A
reading beyond ``band`` (relative) is a drift: the run says so, and every reading is
stored on the study (``CANARY_ATTR``) so ``show-study`` and the dashboard can say it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from archsearch.spec import NetworkSpec

if TYPE_CHECKING:
    import optuna

    from archsearch.latency import LatencyResult

CANARY_ATTR = "archsearch:canary"
CANARY_EVERY = 10
DRIFT_BAND = 0.05
"""Readings further than this from the first are a drift (see the README's latency-protocol benchmark)."""


@dataclass(frozen=True)
class CanaryReading:
    """One timing of the anchor: when (trials done), how fast, and against the study's first reading."""

    trials_done: int
    at: str
    median_ms: float
    ratio: float
    drifted: bool


class Canary:
    """Times ``anchor`` with ``remeasure`` when due, stores the reading on ``study``, reports drift."""

    def __init__(self, study: optuna.Study, anchor: NetworkSpec, remeasure: Callable[[NetworkSpec], LatencyResult],
                 band: float = DRIFT_BAND, every: int = CANARY_EVERY) -> None:
        self.study, self.anchor, self.remeasure = study, anchor, remeasure
        self.band, self.every = band, every
        self._checked_this_run = False

    def readings(self) -> list[CanaryReading]:
        return [CanaryReading(**r) for r in self.study.user_attrs.get(CANARY_ATTR, {}).get("readings", [])]

    def due(self, trials_done: int) -> bool:
        """At the start of every run (a resume may be another host), then every ``every`` trials."""
        if not self._checked_this_run:
            return True
        readings = self.readings()
        return not readings or trials_done - readings[-1].trials_done >= self.every

    def check(self, trials_done: int) -> str | None:
        """Time the anchor and store the reading; a sentence when it drifted beyond the band, else None."""
        self._checked_this_run = True
        measured = self.remeasure(self.anchor).median_ms
        readings = self.readings()
        first = readings[0].median_ms if readings else measured
        ratio = measured / first
        reading = CanaryReading(trials_done, datetime.now(UTC).isoformat(timespec="seconds"), measured, ratio,
                                abs(ratio - 1) > self.band)
        stored: dict[str, Any] = {"anchor": self.anchor.name, "band": self.band,
                                  "readings": [asdict(r) for r in readings] + [asdict(reading)]}
        self.study.set_user_attr(CANARY_ATTR, stored)
        if not reading.drifted:
            return None
        return (f"canary: {self.anchor.name} now takes {measured:.3f} ms against {first:.3f} ms at this study's "
                f"first reading ({ratio - 1:+.1%}, beyond the {self.band:.0%} noise band): the device has changed "
                f"(another host, a throttled or busy CPU); latencies measured from here on are not comparable "
                f"with earlier ones")


def canary_summary(study: optuna.Study) -> dict[str, Any] | None:
    """The stored canary readings of ``study`` and whether any drifted (None before the first reading)."""
    stored = study.user_attrs.get(CANARY_ATTR)
    if not stored:
        return None
    readings = stored.get("readings", [])
    return {**stored, "drifted": any(r.get("drifted") for r in readings),
            "max_deviation": max((abs(r["ratio"] - 1) for r in readings), default=0.0)}


__all__ = ["CANARY_ATTR", "CANARY_EVERY", "DRIFT_BAND", "Canary", "CanaryReading", "canary_summary"]
