"""A ladder of budgets in one search: which rungs hold a trained network, and what to draw for an empty one.

A study over budgets ``b1 < b2 < ... < bn`` keeps ``bn`` as its one hard constraint, so
Optuna's front, its constraint handling and the sampler are those of a single budget.
What the ladder adds is *allocation*: rung ``i`` is filled when a trained, feasible
search trial measured inside its band ``(b(i-1), b(i)]``. Before each search trial the
lowest empty rung (not yet given up) gets the trial: the space is drawn at random many
times, each draw's latency is estimated without measuring anything (the device profile
when there is one, else a power law in MACs fitted to the study's own measurements),
and the draws estimated closest to the rung's aim are measured, nearest first, until one
lands inside the rung's band (or inside another empty rung's); that one is enqueued
(Optuna's ``enqueue_trial``), and its trial finds the measurement in the latency cache.
Once every rung is filled the sampler proposes freely again.

Why measure before enqueueing: at equal MACs, latency differs by up to 6x in the
``mobilenetv3`` space here (a four-rung ladder's benchmark: the three draws a MAC power
law put nearest 1.5 ms measured 4.6-10 ms, and the rung was given up), so an estimate
alone spends search trials on misses. A measurement costs a few seconds and no trial.

Why this and not a sampler that knows the ladder: multivariate TPE under a budget
learns where accuracy is high, and accuracy grows with size, so it spends its trials
just under the largest budget; the small rungs are where it has least reason to look.
Aiming single trials at empty rungs costs one trial per rung and leaves the sampler,
and everything it learns from the aimed trials, unchanged. A rung that three aimed
trials failed to fill, or that no draw of the space is estimated to reach, is given up
and reported with the figures that show why.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archsearch.cost import network_cost
from archsearch.space import SearchSpace
from archsearch.spec import NetworkSpec
from archsearch.study.record import LADDER_ATTR, TrialRecord, recorded_config, records

if TYPE_CHECKING:
    import optuna

AIM_FRACTION = 0.8
"""Where in its band an aimed draw should land: this fraction of the rung's budget (estimates err both ways)."""
MAX_AIMED_TRIALS = 3
"""Aimed trials a rung gets before it is given up (also: rounds of measured draws that all missed it)."""
AIM_MEASUREMENTS = 6
"""Draws measured per round for a rung, nearest the aim by estimate first, before the round counts as a miss."""
DRAWS = 400
"""Random points drawn from the space per aimed trial (about 0.6 ms each to build and cost)."""


@dataclass(frozen=True)
class Rung:
    """One budget of the ladder and the band of latencies that fills it."""

    budget_ms: float
    floor_ms: float
    """The rung below's budget (0 for the lowest): a network at or under it fills a lower rung."""

    def holds(self, latency_ms: float) -> bool:
        return self.floor_ms < latency_ms <= self.budget_ms

    @property
    def aim_ms(self) -> float:
        """The latency an aimed draw should have: high in the band, where the rung's accuracy is."""
        return max(self.budget_ms * AIM_FRACTION, (self.floor_ms + self.budget_ms) / 2)


def rungs(budgets_ms: Sequence[float]) -> list[Rung]:
    """The ladder's rungs, ascending."""
    ordered = sorted(budgets_ms)
    return [Rung(b, ordered[i - 1] if i else 0.0) for i, b in enumerate(ordered)]


def rung_holding(budgets_ms: Sequence[float], latency_ms: float) -> Rung | None:
    """The rung whose band holds ``latency_ms`` (``None`` above the top budget)."""
    return next((rung for rung in rungs(budgets_ms) if rung.holds(latency_ms)), None)


def fills(record: TrialRecord) -> bool:
    """A search trial that can fill a rung: trained to the end, feasible, not a reuse of another trial."""
    return (record.is_complete and record.feasible and not record.is_reference and not record.is_duplicate
            and record.trained is not False and record.measured_latency_ms is not None)


@dataclass
class RungState:
    """A rung as the study stands: the trials that fill it and the trials aimed at it."""

    rung: Rung
    filled_by: list[int] = field(default_factory=list)
    aimed: list[tuple[int, float | None]] = field(default_factory=list)
    """(trial, its latency) for each finished trial aimed at this rung."""
    given_up: str | None = None
    """Why the ladder stopped aiming at this rung, when it did."""

    @property
    def filled(self) -> bool:
        return bool(self.filled_by)

    @property
    def sentence(self) -> str:
        """The rung in words: the trials that fill it, or why none does (``unfilled_sentence``)."""
        if not self.filled:
            return unfilled_sentence(self)
        band = f"{self.rung.floor_ms:g}-" if self.rung.floor_ms else "under "
        return (f"rung {self.rung.budget_ms:g} ms: filled ({band}{self.rung.budget_ms:g} ms) by trial(s) "
                f"{', '.join(map(str, self.filled_by))}")

    def as_dict(self) -> dict[str, Any]:
        return {"budget_ms": self.rung.budget_ms, "floor_ms": self.rung.floor_ms, "filled": self.filled,
                "filled_by": self.filled_by, "aimed": [n for n, _ in self.aimed], "given_up": self.given_up,
                "sentence": self.sentence}


def ladder_state(all_records: Sequence[TrialRecord], budgets_ms: Sequence[float],
                 unreachable: Mapping[str, str] | None = None) -> list[RungState]:
    """Each rung, the trials that fill it (in trial order) and those aimed at it.

    ``unreachable``: rungs (``f"{budget:g}"``) no draw of the space was estimated to reach,
    with the figures, as the runner recorded them (``LADDER_ATTR``).
    """
    states = [RungState(r) for r in rungs(budgets_ms)]
    outcomes: dict[int, str] = {}
    for record in all_records:
        latency = record.measured_latency_ms if record.measured_latency_ms is not None else record.screen_latency_ms
        for state in states:
            if fills(record) and state.rung.holds(float(record.measured_latency_ms or 0.0)):
                state.filled_by.append(record.number)
            if (record.aimed_at_ms is not None and math.isclose(record.aimed_at_ms, state.rung.budget_ms)
                    and record.state.is_finished() and not record.interrupted):
                state.aimed.append((record.number, latency))
                outcomes[record.number] = (record.status or record.state.name.lower()).replace("_", " ")
    for state in states:
        if not state.filled and len(state.aimed) >= MAX_AIMED_TRIALS:
            shown = ", ".join(f"trial {n}: {lat:.2f} ms, {outcomes[n]}" if lat is not None else f"trial {n}: failed"
                              for n, lat in state.aimed)
            state.given_up = f"{len(state.aimed)} trials aimed at it did not fill it ({shown})"
        elif not state.filled and unreachable and f"{state.rung.budget_ms:g}" in unreachable:
            state.given_up = unreachable[f"{state.rung.budget_ms:g}"]
    return states


def study_ladder_state(study: optuna.Study) -> list[RungState] | None:
    """The ladder of a study as it stands (``None`` for a single budget)."""
    budgets = recorded_config(study).get("ladder_ms")
    if not budgets:
        return None
    return ladder_state(records(study), [float(b) for b in budgets], study.user_attrs.get(LADDER_ATTR))


def unfilled_sentence(state: RungState) -> str:
    """Why a rung holds no trained network, in words."""
    band = (f"({state.rung.floor_ms:g}, {state.rung.budget_ms:g}] ms" if state.rung.floor_ms
            else f"under {state.rung.budget_ms:g} ms")
    reason = state.given_up or ("no trial aimed at it yet" if not state.aimed else
                                f"{len(state.aimed)} aimed trial(s) so far, none filled it")
    return f"rung {state.rung.budget_ms:g} ms not filled: no trained feasible network {band}; {reason}"


Estimate = Callable[[NetworkSpec], float]
"""A latency estimate (ms) for a spec, made without measuring it."""


def mac_power_law(pairs: Sequence[tuple[int, float]]) -> Estimate | None:
    """``latency = c * MACs**b`` fitted in log-log to (MACs, measured ms) pairs (``b`` kept to 0.5-1.5).

    One pair gives proportionality; none gives ``None``. Rough (memory-bound layers and
    resolution move latency at equal MACs), which is why aimed trials are measured before
    training like any other candidate and several are allowed per rung.
    """
    points = [(math.log(m), math.log(ms)) for m, ms in pairs if m > 0 and ms > 0]
    if not points:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread > 1e-9 else 1.0
    slope = min(1.5, max(0.5, slope))
    intercept = mean_y - slope * mean_x

    def estimate(spec: NetworkSpec) -> float:
        return math.exp(intercept + slope * math.log(max(1, network_cost(spec).macs)))

    return estimate


Measure = Callable[[NetworkSpec], "float | None"]
"""A spec's measured latency (ms) under the study's protocol, or ``None`` when it could not be measured."""


@dataclass(frozen=True)
class Aim:
    """A point of the space drawn for a rung, with the estimate that chose it (and its measurement, if taken)."""

    rung: Rung
    params: dict[str, Any]
    estimated_ms: float
    measured_ms: float | None = None


class Ladder:
    """Chooses, before a search trial, whether to aim it at an empty rung and at which point of the space."""

    def __init__(self, space: SearchSpace, budgets_ms: Sequence[float], seed: int = 0, draws: int = DRAWS) -> None:
        self.space, self.budgets_ms, self.draws = space, tuple(sorted(budgets_ms)), draws
        self._random = random.Random(seed)
        self.unreachable: dict[str, str] = {}
        """Rungs (``f"{budget:g}"``) given up without spending a trial, with the figures: no draw was
        estimated to reach them, or every measured draw missed; the runner records them (``LADDER_ATTR``)."""
        self.measured: list[tuple[int, float]] = []
        """(MACs, ms) of every draw measured for an aim: more points for the runner's estimate."""
        self._misses: dict[str, list[float]] = {}
        self._tried: set[str] = set()
        """Draws already measured for an aim (``repr`` of their point): a later round measures new ones."""
        self._rounds: dict[str, int] = {}

    def state(self, all_records: Sequence[TrialRecord]) -> list[RungState]:
        return ladder_state(all_records, self.budgets_ms, self.unreachable)

    def next_aim(self, all_records: Sequence[TrialRecord], estimate: Estimate | None,
                 measure: Measure | None = None) -> Aim | None:
        """The point to enqueue for the lowest empty rung, or ``None`` (every rung filled or given up, or
        nothing measured yet to estimate from, or this round's measured draws all missed).

        With ``measure``, the draws nearest the aim are measured until one lands in an empty rung
        (``AIM_MEASUREMENTS`` per round); without, the nearest draw by estimate is taken as it is.
        """
        if estimate is None:
            return None
        empty = [s.rung for s in self.state(all_records) if not s.filled and s.given_up is None]
        for rung in empty:
            aim = self._draw_for(rung, estimate, measure, empty)
            if aim is not None:
                return aim
        return None

    def _draw_for(self, rung: Rung, estimate: Estimate, measure: Measure | None, empty: list[Rung]) -> Aim | None:
        drawn: dict[str, tuple[float, dict[str, Any], float]] = {}  # by repr(point): each point once
        fastest, slowest, inside = math.inf, 0.0, False
        for _ in range(self.draws):
            point = self.space.sample_point(self._random)
            estimated = estimate(self.space.spec_at(point))
            fastest, slowest = min(fastest, estimated), max(slowest, estimated)
            if rung.floor_ms < estimated <= rung.budget_ms:
                inside = True
                if repr(point) not in self._tried:
                    drawn[repr(point)] = (abs(math.log(estimated / rung.aim_ms)), point, estimated)
        key = f"{rung.budget_ms:g}"
        if not inside:
            self.unreachable[key] = (
                f"none of {self.draws} random networks of the space was estimated inside it (fastest estimated "
                f"{fastest:.2f} ms, slowest {slowest:.2f} ms)")
            return None
        nearest = sorted(drawn.values(), key=lambda item: item[0])
        if measure is None:
            return Aim(rung, nearest[0][1], nearest[0][2])
        misses = self._misses.setdefault(key, [])
        for _, point, estimated in nearest[:AIM_MEASUREMENTS]:  # none left untried: the round is a miss
            self._tried.add(repr(point))
            spec = self.space.spec_at(point)
            measured = measure(spec)
            if measured is None:
                continue
            self.measured.append((network_cost(spec).macs, measured))
            landed = next((r for r in empty if r.holds(measured)), None)
            if landed is not None:  # this rung's, or another empty one's: either way no trial is spent on a miss
                return Aim(landed, point, estimated, measured)
            misses.append(measured)
        self._rounds[key] = self._rounds.get(key, 0) + 1
        if self._rounds[key] >= MAX_AIMED_TRIALS or not drawn:
            figures = f" ({min(misses):.2f}-{max(misses):.2f} ms)" if misses else " (none could be measured)"
            self.unreachable[key] = (f"{len(misses)} networks estimated nearest to it were measured, none "
                                     f"inside it{figures}")
        return None


__all__ = ["AIM_FRACTION", "AIM_MEASUREMENTS", "Aim", "Estimate", "Ladder", "MAX_AIMED_TRIALS", "Measure", "Rung",
           "RungState", "fills",
           "ladder_state", "mac_power_law", "rungs", "study_ladder_state", "unfilled_sentence"]
