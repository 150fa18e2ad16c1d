"""What a dashboard shows, computed from a study as plain data (no plotting).

Compute, then draw: the figures in ``figures.py`` only lay out what ``study_view``
returns, and the tests check this data rather than figure JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.errors import ArchsearchError
from archsearch.spec import parse_spec, resolve, spec_to_yaml
from archsearch.study import failures, hypervolume, pareto_front, trial_point
from archsearch.study.run import CONFIG_ATTR

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


def _status(trial: FrozenTrial) -> str:
    return trial.user_attrs.get("status") or trial.state.name.lower()


def _feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def _points(study: optuna.Study, front_numbers: set[int]) -> list[TrialPoint]:
    points = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if trial.values is None or len(trial.values) != 2:
            continue
        duplicate_of = attrs.get("duplicate_of")
        kind: Kind
        if not _feasible(trial):
            kind = "infeasible"
        elif trial.number in front_numbers:
            kind = "front"
        elif duplicate_of is not None:
            kind = "duplicate"
        else:
            kind = "dominated"
        protocol = attrs.get("latency_protocol") or {}
        points.append(TrialPoint(
            number=trial.number, accuracy=trial.values[0], latency_ms=trial.values[1], kind=kind,
            status=_status(trial), trained=bool(attrs.get("trained")), reference=attrs.get("reference"),
            params=attrs.get("params"), macs=attrs.get("macs"), p10_ms=protocol.get("p10_ms"),
            p90_ms=protocol.get("p90_ms"), summary=spec_oneline(attrs["spec"]) if "spec" in attrs else "",
            duplicate_of=duplicate_of))
    return points


def _history(study: optuna.Study, budget_ms: float | None) -> list[HistoryStep]:
    steps, seen = [], []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if not trial.state.is_finished():
            continue
        accuracy = None
        if trial.state == TrialState.COMPLETE and trial.values is not None:
            feasible = _feasible(trial)
            if trial.user_attrs.get("trained", True):
                accuracy = trial.values[0]
            seen.append(trial_point(trial))
        else:
            feasible = False
        volume = hypervolume(seen, budget_ms) if budget_ms else 0.0
        steps.append(HistoryStep(trial.number, accuracy, feasible, volume))
    return steps


def _importances(study: optuna.Study) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """fANOVA importances of the search parameters, per objective, over the trials that inform it.

    Accuracy: trained search trials only (rejected ones carry a placeholder 0).
    Latency: every complete search trial (rejected ones were measured or predicted).
    """
    searched = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.params and "reference" not in t.user_attrs and "duplicate_of" not in t.user_attrs]
    targets = {"accuracy": ([t for t in searched if t.user_attrs.get("trained")], 0),
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
        copy.add_trials([optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                    value=t.values[index]) for t in trials
                         if set(t.params) == set(trials[0].params)])
        try:
            result = optuna.importance.get_param_importances(
                copy, params=sorted(varied), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        except (ValueError, RuntimeError) as error:
            notes[objective] = f"could not be computed: {error}"
            continue
        importances[objective] = dict(result)
    return importances, notes


def study_view(study: optuna.Study, storage: str) -> StudyView:
    """The dashboard's data for ``study`` (stored at ``storage``)."""
    config = study.user_attrs.get(CONFIG_ATTR, {})
    budget = config.get("budget_ms")
    front_points = pareto_front(study)
    front_numbers = {p.number for p in front_points}
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    front = []
    for point in front_points:
        spec_data = dict(trials[point.number].user_attrs["spec"])
        spec_data["name"] = f"{study.study_name}-trial{point.number}"
        front.append(FrontMember(point.number, point.accuracy, point.latency_ms, point.params, point.macs,
                                 point.reference, spec_to_yaml(parse_spec(spec_data))))
    pairs = [(t.number, t.user_attrs["predicted_latency_ms"], t.user_attrs["measured_latency_ms"])
             for t in trials.values()
             if "predicted_latency_ms" in t.user_attrs and "measured_latency_ms" in t.user_attrs
             and "duplicate_of" not in t.user_attrs]
    importances, notes = _importances(study)
    return StudyView(
        name=study.study_name, storage=storage, budget_ms=budget, points=_points(study, front_numbers),
        front=front, history=_history(study, budget), latency_pairs=pairs, importances=importances,
        importance_notes=notes, counts=dict(Counter(_status(t) for t in trials.values())),
        failures=failures(study))


__all__ = ["FrontMember", "HistoryStep", "StudyView", "TrialPoint", "spec_oneline", "study_view"]
