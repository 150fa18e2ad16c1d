"""Step 3 of a trial: the latency that decides whether a candidate is trained at all.

With a device profile for this machine (``archsearch profile build``), a candidate is
screened by the profile's prediction, which converts and runs nothing: clearly over the
budget, it is rejected; clearly under, it is trained and measured afterwards; within the
profile's error band of the budget, it is measured now and the measurement decides
(``ProfileScreen``). Without one, screening works as before the profile existed
(``LatencyScreen``): predicting costs one short measurement per part missing from the
per-part table, and when more than ``max_missing_parts`` parts are missing the network
is measured outright, before any training, and that measurement is final.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from archsearch.spec import NetworkSpec

if TYPE_CHECKING:
    from archsearch.latency import LatencyPredictor, LatencyResult
    from archsearch.latency.profile import DeviceProfile

Measure = Callable[[NetworkSpec], "LatencyResult"]

MAX_MISSING_PARTS = 3
"""Predict only when at most this many parts are unmeasured (a part costs ~1.5 s, a network ~6 s here)."""


@dataclass(frozen=True)
class Screening:
    """A candidate's screening latency, how it was obtained, and the measurement when there was one.

    ``predicted_ms`` is the prediction made on the way (also when a measurement followed);
    ``margin`` is the relative error a prediction is trusted within, when the screen knows it.
    """

    latency_ms: float
    source: Literal["predicted", "measured"]
    measurement: LatencyResult | None = None
    predicted_ms: float | None = None
    margin: float | None = None
    profile_ms: float | None = None
    """A device profile's own prediction, before the study's calibration."""

    def rejects(self, budget_ms: float, margin: float) -> bool:
        """Clearly over budget: a prediction beyond ``budget * (1 + margin)``, a measurement beyond the budget.

        The screening's own ``margin`` (a profile's error band) takes precedence over ``margin``.
        """
        margin = self.margin if self.margin is not None else margin
        limit = budget_ms * (1 + margin) if self.source == "predicted" else budget_ms
        return self.latency_ms > limit


class MeasuredScreen:
    """Screens every candidate by measuring it: a study whose latency comes from a named device's
    agent predicts nothing on the machine it runs on (this machine's table and profile describe
    other hardware)."""

    def __init__(self, measure: Measure) -> None:
        self.measure = measure

    def screen(self, spec: NetworkSpec, measure: bool = False) -> Screening:
        measured = self.measure(spec)
        return Screening(measured.median_ms, "measured", measured)


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
        predicted = self.predictor.predict(spec).latency_ms
        return Screening(predicted, "predicted", predicted_ms=predicted)


class ProfileScreen:
    """Screens candidates by a device profile's prediction; measures only those near the budget.

    The profile's prediction is calibrated to this study's host: every network the study
    measures (references first, then trained candidates) adds a pair, and predictions are
    scaled by the median measured/predicted ratio so far. Hosts of the same kind differ by
    2-3x here, and a profile imported from a team's machine of the same model would
    otherwise screen every candidate wrongly. ``band`` is the profile's relative error
    that held-out networks stayed within (its 95th percentile): a calibrated prediction
    further than that from the budget decides alone.
    """

    def __init__(self, profile: DeviceProfile, measure: Measure, budget_ms: float,
                 pairs: list[tuple[float, float]] | None = None) -> None:
        self.profile, self.measure, self.budget_ms = profile, measure, budget_ms
        self.band = profile.accuracy.band
        self.pairs: list[tuple[float, float]] = list(pairs or [])
        """(profile prediction, measurement) of every network this study measured."""

    @property
    def scale(self) -> float:
        """Measured / predicted on this host: the median ratio of the pairs so far (1 before any)."""
        if not self.pairs:
            return 1.0
        return float(math.exp(statistics.median(math.log(m / p) for p, m in self.pairs if p > 0 and m > 0)))

    def observe(self, raw_prediction_ms: float, measured_ms: float) -> None:
        """A network this study measured: its profile prediction and its measurement."""
        self.pairs.append((raw_prediction_ms, measured_ms))

    def screen(self, spec: NetworkSpec, measure: bool = False) -> Screening:
        """Predict ``spec``; measure it now when told to (references) or when the prediction is within the band."""
        raw = self.profile.predict(spec)
        predicted = raw * self.scale
        near = self.budget_ms * (1 - self.band) <= predicted <= self.budget_ms * (1 + self.band)
        if measure or near:
            measured = self.measure(spec)
            return Screening(measured.median_ms, "measured", measured, predicted_ms=predicted, margin=self.band,
                             profile_ms=raw)
        return Screening(predicted, "predicted", predicted_ms=predicted, margin=self.band, profile_ms=raw)


__all__ = ["MAX_MISSING_PARTS", "LatencyScreen", "Measure", "ProfileScreen", "Screening"]
