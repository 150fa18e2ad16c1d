"""Reading a study: its Pareto front, its references and the search trials that dominate them, its failures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.study.fidelity import dominates
from archsearch.study.record import TrialRecord, recorded_config, records
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


def dominated_references(study: optuna.Study) -> dict[str, list[int]]:
    """Each reference and the search trials that dominate it, best first.

    A reference is dominated by a search trial when some feasible, complete search trial
    has accuracy >= and latency <= the reference's, one of them strictly. Every such
    trial counts, not only the front's: a reference on the front (MobileNetV3-Small,
    say) would otherwise hide the trials that dominate another reference. Best first:
    most accurate, then fastest.
    """
    candidates = sorted(search_points(study), key=lambda p: (-p.accuracy, p.latency_ms, p.number))
    return {ref.reference: [p.number for p in candidates if p.dominates(ref)]
            for ref in reference_points(study) if ref.reference is not None}


def failures(study: optuna.Study) -> list[tuple[int, str]]:
    return [(r.number, r.failure_reason or "unknown") for r in records(study, (TrialState.FAIL,))]


def study_report(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Everything ``show-study`` prints, as data (the storage URL with any password hidden)."""
    all_records = records(study)
    by_status: dict[str, int] = {}
    for record in all_records:
        by_status[record.label] = by_status.get(record.label, 0) + 1
    config = recorded_config(study)
    front = pareto_front(study)
    return {
        "study": study.study_name,
        "storage": shown_url(storage_url),
        "config": config,
        "budget_ms": config.get("budget_ms"),
        "trials": len(all_records),
        "by_status": by_status,
        "front": [asdict(p) for p in front],
        "hypervolume": hypervolume(front, config["budget_ms"]) if config.get("budget_ms") else None,
        "references": [asdict(p) for p in reference_points(study)],
        "dominated_references": dominated_references(study),
        "failures": [{"trial": n, "reason": r} for n, r in failures(study)],
    }


__all__ = ["Point", "dominated_references", "failures", "hypervolume", "pareto_front", "record_point",
           "reference_points", "search_points", "study_report", "trial_point"]
