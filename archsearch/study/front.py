"""Reading a study: its Pareto front, its references and the search trials that dominate them, its failures."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.study.canary import canary_summary
from archsearch.study.fidelity import dominates
from archsearch.study.ladder import study_ladder_state
from archsearch.study.protocol import LABEL, AccuracyProtocol
from archsearch.study.record import FAMILY_ATTR, TRIALS_ATTR, TrialRecord, recorded_config, records
from archsearch.study.seed_noise import seed_noise
from archsearch.urls import shown_url


@dataclass(frozen=True)
class Point:
    """A trial as a point of the accuracy-latency plane."""

    number: int
    accuracy: float
    latency_ms: float
    params: int | None
    macs: int | None
    name: str | None
    reference: str | None
    feasible: bool

    def dominates(self, other: Point) -> bool:
        return dominates((self.accuracy, self.latency_ms), (other.accuracy, other.latency_ms))


def record_point(record: TrialRecord) -> Point:
    """A complete trial's record as a point: its values, cost attributes and feasibility."""
    assert record.values is not None, f"trial {record.number} has no values"
    accuracy, latency = record.values
    return Point(record.number, accuracy, latency, record.param_count, record.macs, record.spec_name,
                 record.reference, record.feasible)


def trial_point(trial: FrozenTrial) -> Point:
    """A complete trial as a point: its values, cost attributes and feasibility (constraints <= 0)."""
    return record_point(TrialRecord.of(trial))


def pareto_front(study: optuna.Study) -> list[Point]:
    """Feasible, non-dominated trials (Optuna's ``best_trials``), fastest first.

    A trial that reused an earlier trial's result (same spec) stands for that trial and
    is left out, so each network appears once.
    """
    members = [r for r in map(TrialRecord.of, study.best_trials) if not r.is_duplicate]
    return sorted((record_point(r) for r in members), key=lambda p: p.latency_ms)


def hypervolume(points: list[Point], budget_ms: float) -> float:
    """Area (accuracy x ms) dominated by the feasible points, bounded by accuracy 0 and the budget."""
    best, area = 0.0, 0.0
    for point in sorted((p for p in points if p.feasible and p.latency_ms <= budget_ms), key=lambda p: p.latency_ms):
        if point.accuracy > best:
            area += (budget_ms - point.latency_ms) * (point.accuracy - best)
            best = point.accuracy
    return area


def _complete(study: optuna.Study) -> list[TrialRecord]:
    return [r for r in records(study, (TrialState.COMPLETE,)) if r.is_complete]


def reference_points(study: optuna.Study) -> list[Point]:
    return [record_point(r) for r in _complete(study) if r.is_reference]


def search_points(study: optuna.Study) -> list[Point]:
    """Feasible, complete search trials (not references, not duplicates) as points."""
    return [record_point(r) for r in _complete(study) if not r.is_reference and not r.is_duplicate and r.feasible]


def accuracy_margin(a: float, b: float, validation_images: int | None, seed_band: float | None = None) -> float:
    """How far apart two proxy accuracies must be to count as different.

    Two independent sources of noise, combined in quadrature: the validation set (the 95%
    band of a difference of two proportions on ``n`` images, ``1.96 * sqrt(a(1-a)/n +
    b(1-b)/n)``: the same networks scored on another draw of images) and the training
    seed (``seed_band``, measured per protocol, ``archsearch.study.seed_noise``: the same
    networks trained again with another seed). Never less than one image (``1/n``).
    Unknown ``n`` (studies that did not record it) and no seed band: 0.
    """
    seed = seed_band or 0.0
    if not validation_images:
        return seed
    n = validation_images
    images = 1.96 * math.sqrt((a * (1 - a) + b * (1 - b)) / n)
    return max(1.0 / n, math.sqrt(images ** 2 + seed ** 2))


@dataclass(frozen=True)
class ReferenceVerdict:
    """A reference against the search trials at least as fast as it."""

    reference: str
    number: int
    accuracy: float
    latency_ms: float
    dominated_by: list[int]
    """Feasible search trials as fast or faster and more accurate by more than the noise band, best first."""
    on_par: list[int]
    """Trials as fast or faster whose accuracy is within the band (neither clearly better nor worse), best first."""
    validation_images: int | None
    seed_band: float | None = None
    """The protocol's measured seed-to-seed band (None: never measured for this protocol)."""

    def margin(self, other_accuracy: float) -> float:
        return accuracy_margin(self.accuracy, other_accuracy, self.validation_images, self.seed_band)


def reference_verdicts(study: optuna.Study) -> list[ReferenceVerdict]:
    """Each reference against every feasible, complete search trial (not only the front's).

    A trial *dominates* a reference when it is at least as fast and more accurate by more
    than ``accuracy_margin`` (the noise of the study's validation set and, where measured
    for the study's protocol, of a change of training seed); a trial at least as fast
    whose accuracy is within that margin is *on par*. A reference on the front would
    otherwise hide the trials that beat another reference, so every trial counts. Best
    first: most accurate, then fastest.
    """
    protocol = AccuracyProtocol.of_study(study)
    images = protocol.validation_images if protocol else None
    noise = seed_noise(asdict(protocol)) if protocol else None
    seed = noise.band if noise else None
    candidates = sorted(search_points(study), key=lambda p: (-p.accuracy, p.latency_ms, p.number))
    verdicts = []
    for ref in reference_points(study):
        if ref.reference is None:
            continue
        faster = [p for p in candidates if p.latency_ms <= ref.latency_ms]
        beyond = [p.number for p in faster
                  if p.accuracy - ref.accuracy > accuracy_margin(ref.accuracy, p.accuracy, images, seed)]
        par = [p.number for p in faster if p.number not in beyond
               and ref.accuracy - p.accuracy <= accuracy_margin(ref.accuracy, p.accuracy, images, seed)]
        verdicts.append(ReferenceVerdict(ref.reference, ref.number, ref.accuracy, ref.latency_ms, beyond, par, images,
                                         seed))
    return verdicts


def reference_sentence(verdict: ReferenceVerdict | dict[str, Any]) -> str:
    """A verdict in words, e.g. ``mobilenet_v3_large is dominated by trial(s) 8, 5; on par with trial(s) 3``."""
    data = asdict(verdict) if isinstance(verdict, ReferenceVerdict) else verdict
    parts = []
    if data["dominated_by"]:
        parts.append(f"is dominated by trial(s) {', '.join(map(str, data['dominated_by']))}")
    if data["on_par"]:
        parts.append(f"on par with trial(s) {', '.join(map(str, data['on_par']))}")
    text = f"{data['reference']} " + ("; ".join(parts) if parts else "is not dominated by any search trial")
    images, seed = data.get("validation_images"), data.get("seed_band")
    if images:
        band = f"more accurate beyond the 95% noise band of {images} validation images"
    else:
        band = "more accurate (validation noise unknown: the study recorded no validation size)"
    if seed:
        band += f" and of a change of training seed ({seed * 100:.1f} points, measured for this protocol)"
    else:
        band += "; seed-to-seed noise not measured for this protocol"
    return f"{text} (dominated = as fast or faster and {band})"


def dominated_references(study: optuna.Study) -> dict[str, list[int]]:
    """Each reference and the search trials that dominate it beyond noise, best first (``reference_verdicts``)."""
    return {v.reference: v.dominated_by for v in reference_verdicts(study)}


def failures(study: optuna.Study) -> list[tuple[int, str]]:
    return [(r.number, r.reason or "unknown") for r in records(study, (TrialState.FAIL,))]


def _trials_by_worker(all_records: list[TrialRecord]) -> dict[str, int]:
    """How many trials each worker (host:pid) ran, busiest first."""
    counts: dict[str, int] = {}
    for record in all_records:
        if record.worker is not None:
            counts[record.worker] = counts.get(record.worker, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def study_report(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Everything ``show-study`` prints, as data (the storage URL with any password hidden)."""
    all_records = records(study)
    by_status: dict[str, int] = {}
    for record in all_records:
        by_status[record.label] = by_status.get(record.label, 0) + 1
    config = recorded_config(study)
    front = pareto_front(study)
    protocol = AccuracyProtocol.of_study(study)
    return {
        "study": study.study_name,
        "storage": shown_url(storage_url),
        "accuracy": LABEL,
        "accuracy_protocol": protocol.as_dict() if protocol else None,
        "config": config,
        "budget_ms": config.get("budget_ms"),
        "device": config.get("device"),
        "trials": len(all_records),
        "trial_count": study.user_attrs.get(TRIALS_ATTR),
        "workers": _trials_by_worker(all_records),
        "by_status": by_status,
        "front": [asdict(p) for p in front],
        "hypervolume": hypervolume(front, config["budget_ms"]) if config.get("budget_ms") else None,
        "references": [asdict(p) for p in reference_points(study)],
        "dominated_references": dominated_references(study),
        "reference_verdicts": [asdict(v) for v in reference_verdicts(study)],
        "failures": [{"trial": n, "reason": r} for n, r in failures(study)],
        "canary": canary_summary(study),
        "ladder": [state.as_dict() for state in ladder] if (ladder := study_ladder_state(study)) else None,
        "family": study.user_attrs.get(FAMILY_ATTR),
    }


__all__ = ["Point", "ReferenceVerdict", "accuracy_margin", "dominated_references", "failures", "hypervolume",
           "pareto_front", "record_point", "reference_points", "reference_sentence", "reference_verdicts",
           "search_points", "study_report", "trial_point"]
