"""Step 3 of a trial: the latency that decides whether a candidate is trained at all.

Predicting costs one short measurement per part missing from the predictor's table;
measuring the whole network costs one conversion and a timing. When more than
``max_missing_parts`` parts are missing (typical early in a study of a large space) the
network is measured outright, before any training, and that measurement is final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archsearch.spec import NetworkSpec

if TYPE_CHECKING:
    from archsearch.latency import LatencyPredictor, LatencyResult

Measure = Callable[[NetworkSpec], "LatencyResult"]

MAX_MISSING_PARTS = 3
"""Predict only when at most this many parts are unmeasured (a part costs ~1.5 s, a network ~6 s here)."""


@dataclass(frozen=True)
class Screening:
    """A candidate's screening latency, how it was obtained, and the measurement when there was one."""

    latency_ms: float
    source: Literal["predicted", "measured"]
    measurement: LatencyResult | None = None

    def rejects(self, budget_ms: float, margin: float) -> bool:
        """Clearly over budget: a prediction beyond ``budget * (1 + margin)``, a measurement beyond the budget."""
        limit = budget_ms * (1 + margin) if self.source == "predicted" else budget_ms
        return self.latency_ms > limit


class LatencyScreen:
    """Screens candidates by prediction when the part table covers them, by measurement otherwise."""

    def __init__(self, predictor: LatencyPredictor, measure: Measure,
                 max_missing_parts: int = MAX_MISSING_PARTS) -> None:
        self.predictor, self.measure, self.max_missing_parts = predictor, measure, max_missing_parts

    def missing_parts(self, spec: NetworkSpec) -> int:
        from archsearch.latency import decompose

        parts = decompose(spec)
        return len({p.key for p in parts} - set(self.predictor.table(parts)))

    def screen(self, spec: NetworkSpec, measure: bool = False) -> Screening:
        """Predict or measure ``spec``; ``measure`` forces a measurement (references are always measured)."""
        if measure or self.missing_parts(spec) > self.max_missing_parts:
            measured = self.measure(spec)
            return Screening(measured.median_ms, "measured", measured)
        return Screening(self.predictor.predict(spec).latency_ms, "predicted")


__all__ = ["MAX_MISSING_PARTS", "LatencyScreen", "Measure", "Screening"]
