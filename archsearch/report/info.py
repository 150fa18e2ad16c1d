"""What a dashboard shows, computed from a study as plain data (no plotting).

Compute, then draw: the figures in ``figures.py`` only lay out what ``study_view``
returns, and the tests check this data rather than figure JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from archsearch.errors import ArchsearchError
from archsearch.spec import parse_spec, resolve, spec_to_yaml
from archsearch.study import failures, hypervolume, pareto_front
from archsearch.study.canary import canary_summary
from archsearch.study.front import ReferenceVerdict, record_point, reference_verdicts
from archsearch.study.protocol import AccuracyProtocol
from archsearch.study.record import recorded_config, records
from archsearch.urls import shown_url

Kind = Literal["front", "dominated", "duplicate", "infeasible"]


@dataclass(frozen=True)
class TrialPoint:
    """A complete trial as the Pareto plot draws it: one marker each."""

    number: int
    accuracy: float
    latency_ms: float
    kind: Kind
    status: str
    trained: bool
    reference: str | None
    params: int | None
    macs: int | None
    p10_ms: float | None
    p90_ms: float | None
    summary: str
    duplicate_of: int | None = None


@dataclass(frozen=True)
class HistoryStep:
    """After trial ``number`` finished: its accuracy (if trained) and the front's hypervolume so far."""

    number: int
    accuracy: float | None
    feasible: bool
    hypervolume: float


@dataclass(frozen=True)
class FrontMember:
    number: int
    accuracy: float
    latency_ms: float
    params: int | None
    macs: int | None
    reference: str | None
    yaml: str


@dataclass
class StudyView:
    """Everything the dashboard shows about one study."""

    name: str
    storage: str
    budget_ms: float | None
    points: list[TrialPoint]
    front: list[FrontMember]
    history: list[HistoryStep]
    latency_pairs: list[tuple[int, float, float]]
    """(trial, predicted ms, measured ms) for trials whose latency was predicted and then measured."""
    importances: dict[str, dict[str, float]] = field(default_factory=dict)
    """Objective ("accuracy", "latency") -> parameter -> fANOVA importance."""
    importance_notes: dict[str, str] = field(default_factory=dict)
    """Objective -> why its importances could not be computed."""
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[int, str]] = field(default_factory=list)
    dominated_references: dict[str, list[int]] = field(default_factory=dict)
    """Reference -> the feasible search trials that dominate it beyond noise, best first."""
    reference_verdicts: list[ReferenceVerdict] = field(default_factory=list)
    accuracy_protocol: AccuracyProtocol | None = None
    canary: dict[str, Any] | None = None
    """The study's canary readings (``canary_summary``): did the device drift during it?"""
    """What the accuracies are (a proxy, and how it was obtained)."""

    @property
    def hypervolume(self) -> float:
        return self.history[-1].hypervolume if self.history else 0.0


def spec_oneline(spec_data: dict[str, Any]) -> str:
    """A one-line description of a spec for hover text: resolution, width, depth, kernels, SE."""
    try:
        spec = parse_spec(spec_data)
        blocks = resolve(spec).blocks
    except ArchsearchError:
        return "spec not readable"
    kernels = sorted({k for b in blocks if (k := getattr(b.block, "kernel", None))})
    with_se = sum(1 for b in blocks if getattr(b.block, "se_ratio", 0))
    parts = [f"{spec.input.size}px", f"width x{spec.width_multiplier:g}", f"{len(blocks)} blocks"]
    if kernels:
        parts.append("kernels " + "/".join(map(str, kernels)))
    parts.append(f"SE in {with_se}/{len(blocks)}")
    return ", ".join(parts)


def _points(study: optuna.Study, front_numbers: set[int]) -> list[TrialPoint]:
    points = []
    for record in records(study, (TrialState.COMPLETE,)):
        if not record.is_complete:
            continue
        kind: Kind
        if not record.feasible:
            kind = "infeasible"
        elif record.number in front_numbers:
            kind = "front"
        elif record.is_duplicate:
            kind = "duplicate"
        else:
            kind = "dominated"
        p10, p90 = record.latency_spread
        accuracy, latency = record.values or (0.0, 0.0)
        points.append(TrialPoint(
            number=record.number, accuracy=accuracy, latency_ms=latency, kind=kind, status=record.label,
            trained=bool(record.trained), reference=record.reference, params=record.param_count, macs=record.macs,
            p10_ms=p10, p90_ms=p90, summary=spec_oneline(record.spec) if record.spec is not None else "",
            duplicate_of=record.duplicate_of))
    return points


def _history(study: optuna.Study, budget_ms: float | None) -> list[HistoryStep]:
    steps, seen = [], []
    for record in sorted(records(study), key=lambda r: r.number):
        if not record.state.is_finished():
            continue
        accuracy = None
        if record.state == TrialState.COMPLETE and record.values is not None:
            feasible = record.feasible
            if record.trained is not False:
                accuracy = record.values[0]
            seen.append(record_point(record))
        else:
            feasible = False
        volume = hypervolume(seen, budget_ms) if budget_ms else 0.0
        steps.append(HistoryStep(record.number, accuracy, feasible, volume))
    return steps


def _importances(study: optuna.Study) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """fANOVA importances of the search parameters, per objective, over the trials that inform it.

    Accuracy: trained search trials only (rejected ones carry a placeholder 0).
    Latency: every complete search trial (rejected ones were measured or predicted).
    """
    searched = [r for r in records(study, (TrialState.COMPLETE,))
                if r.params and r.values is not None and not r.is_reference and not r.is_duplicate]
    targets = {"accuracy": ([r for r in searched if r.trained], 0),
               "latency": (searched, 1)}
    importances: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    for objective, (trials, index) in targets.items():
        varied = {name for name in trials[0].params if len({str(t.params.get(name)) for t in trials}) > 1} \
            if trials else set()
        if len(trials) < 3 or not varied:
            notes[objective] = f"needs at least 3 {'trained ' if index == 0 else ''}search trials that differ " \
                               f"(this study has {len(trials)})"
            continue
        # A single-objective copy in memory: Optuna's evaluators take a study and one target.
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line per dashboard
        try:
            copy = optuna.create_study(direction="maximize" if index == 0 else "minimize")
        finally:
            optuna.logging.set_verbosity(verbosity)
        distributions = {t.number: t.distributions for t in study.get_trials(deepcopy=False)}
        copy.add_trials([optuna.trial.create_trial(params=r.params, distributions=distributions[r.number],
                                                    value=r.values[index]) for r in trials
                         if r.values is not None and set(r.params) == set(trials[0].params)])
        try:
            result = optuna.importance.get_param_importances(
                copy, params=sorted(varied), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        except (ValueError, RuntimeError) as error:
            notes[objective] = f"could not be computed: {error}"
            continue
        importances[objective] = dict(result)
    return importances, notes


def study_view(study: optuna.Study, storage: str) -> StudyView:
    """The dashboard's data for ``study`` (stored at ``storage``, shown with any password hidden)."""
    budget = recorded_config(study).get("budget_ms")
    front_points = pareto_front(study)
    front_numbers = {p.number for p in front_points}
    by_number = {r.number: r for r in records(study)}
    front = []
    for point in front_points:
        spec_data = by_number[point.number].spec
        text = "" if spec_data is None else spec_to_yaml(parse_spec(
            {**spec_data, "name": f"{study.study_name}-trial{point.number}"}))
        front.append(FrontMember(point.number, point.accuracy, point.latency_ms, point.params, point.macs,
                                 point.reference, text))
    pairs = [(r.number, r.predicted_latency_ms, r.measured_latency_ms) for r in by_number.values()
             if r.predicted_latency_ms is not None and r.measured_latency_ms is not None and not r.is_duplicate]
    importances, notes = _importances(study)
    verdicts = reference_verdicts(study)
    return StudyView(
        name=study.study_name, storage=shown_url(storage), budget_ms=budget, points=_points(study, front_numbers),
        front=front, history=_history(study, budget), latency_pairs=pairs, importances=importances,
        importance_notes=notes, counts=dict(Counter(r.label for r in by_number.values())),
        failures=failures(study), dominated_references={v.reference: v.dominated_by for v in verdicts},
        reference_verdicts=verdicts, accuracy_protocol=AccuracyProtocol.of_study(study),
        canary=canary_summary(study))


__all__ = ["FrontMember", "HistoryStep", "StudyView", "TrialPoint", "spec_oneline", "study_view"]
