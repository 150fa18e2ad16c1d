"""Reading a study: its Pareto front, its references and what they are dominated by, its failures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.study.fidelity import dominates
from archsearch.study.run import CONFIG_ATTR


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


def trial_point(trial: FrozenTrial) -> Point:
    """A complete trial as a point: its values, cost attributes and feasibility (constraints <= 0)."""
    accuracy, latency = trial.values
    feasible = all(value <= 0 for value in trial.constraints.values())
    return Point(trial.number, accuracy, latency, trial.user_attrs.get("params"), trial.user_attrs.get("macs"),
                 trial.user_attrs.get("spec_name"), trial.user_attrs.get("reference"), feasible)


def pareto_front(study: optuna.Study) -> list[Point]:
    """Feasible, non-dominated trials (Optuna's ``best_trials``), fastest first.

    A trial that reused an earlier trial's result (same spec) stands for that trial and
    is left out, so each network appears once.
    """
    members = [t for t in study.best_trials if "duplicate_of" not in t.user_attrs]
    return sorted((trial_point(t) for t in members), key=lambda p: p.latency_ms)


def hypervolume(points: list[Point], budget_ms: float) -> float:
    """Area (accuracy x ms) dominated by the feasible points, bounded by accuracy 0 and the budget."""
    best, area = 0.0, 0.0
    for point in sorted((p for p in points if p.feasible and p.latency_ms <= budget_ms), key=lambda p: p.latency_ms):
        if point.accuracy > best:
            area += (budget_ms - point.latency_ms) * (point.accuracy - best)
            best = point.accuracy
    return area


def reference_points(study: optuna.Study) -> list[Point]:
    return [trial_point(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "reference" in t.user_attrs]


def dominated_references(study: optuna.Study) -> dict[str, list[int]]:
    """Each reference and the numbers of the front's search trials that dominate it."""
    front = [p for p in pareto_front(study) if p.reference is None]
    return {ref.reference: [p.number for p in front if p.dominates(ref)] for ref in reference_points(study)}


def failures(study: optuna.Study) -> list[tuple[int, str]]:
    return [(t.number, t.user_attrs.get("failure_reason", "unknown"))
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]


def study_report(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Everything ``show-study`` prints, as data."""
    trials = study.get_trials(deepcopy=False)
    by_status: dict[str, int] = {}
    for trial in trials:
        status = trial.user_attrs.get("status") or trial.state.name.lower()
        by_status[status] = by_status.get(status, 0) + 1
    config = study.user_attrs.get(CONFIG_ATTR, {})
    return {
        "study": study.study_name,
        "storage": storage_url,
        "config": config,
        "budget_ms": config.get("budget_ms"),
        "trials": len(trials),
        "by_status": by_status,
        "front": [asdict(p) for p in pareto_front(study)],
        "hypervolume": hypervolume(pareto_front(study), config["budget_ms"]) if config.get("budget_ms") else None,
        "references": [asdict(p) for p in reference_points(study)],
        "dominated_references": dominated_references(study),
        "failures": [{"trial": n, "reason": r} for n, r in failures(study)],
    }


__all__ = ["Point", "dominated_references", "failures", "hypervolume", "pareto_front",
           "reference_points", "study_report", "trial_point"]
