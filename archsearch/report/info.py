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
from archsearch.study.ladder import ladder_state
from archsearch.study.protocol import AccuracyProtocol
from archsearch.study.record import FAMILY_ATTR, LADDER_ATTR, TrialRecord, recorded_config, records
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
    aimed_at_ms: float | None = None
    """The ladder rung this search trial was drawn for, when the ladder chose it."""
    family_rungs_ms: tuple[float, ...] = ()
    """The family's rungs whose pick is this trial (``archsearch family``)."""


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


@dataclass(frozen=True)
class LadderRung:
    """A rung of the study's budget ladder as the study stands (``study.ladder.ladder_state``)."""

    budget_ms: float
    floor_ms: float
    filled_by: tuple[int, ...]
    """Trained, feasible search trials measured inside the rung's band, in trial order."""
    aimed: tuple[int, ...]
    """Finished trials the ladder drew for this rung."""
    given_up: str | None
    sentence: str
    """Why the rung holds no network (``unfilled_sentence``), or which trials fill it."""

    @property
    def filled(self) -> bool:
        return bool(self.filled_by)


@dataclass(frozen=True)
class FamilyVerdict:
    """A family member against one reference retrained under the same recipe."""

    reference: str
    outcome: str
    """``beats``, ``matches`` or ``loses``."""
    difference: float
    margin: float
    beyond_seed_spread: bool
    sentence: str


@dataclass(frozen=True)
class FamilyMember:
    """One rung's network after final training at its deployment input, measured on its exported .tflite."""

    rung_ms: float
    trial: int
    name: str
    spec_hash: str
    input_size: int
    params: int | None
    macs: int | None
    proxy_accuracy: float | None
    """The search's proxy accuracy (short training, reduced input): not comparable with ``accuracies``."""
    search_latency_ms: float | None
    latency_ms: float
    """Re-measured on the exported .tflite."""
    accuracies: tuple[float, ...]
    """Per seed, of each seed's exported .tflite in LiteRT."""
    accuracy_mean: float
    accuracy_std: float
    files: dict[str, str]
    same_as_rung_ms: float | None
    """This rung's pick is the network of this lower rung."""
    verdicts: tuple[FamilyVerdict, ...]
    within_rung: bool | None = None
    """Whether the re-measured latency is still within the rung (``None``: not recorded)."""
    shipped_seed: int | None = None
    """The seed whose exported files are shipped."""
    shipped_accuracy: float | None = None


@dataclass(frozen=True)
class FamilyReference:
    """A reference of the space retrained under the family's recipe."""

    reference: str
    latency_ms: float
    input_size: int | None
    params: int | None
    macs: int | None
    accuracies: tuple[float, ...]
    accuracy_mean: float
    accuracy_std: float


@dataclass(frozen=True)
class FamilyReferenceVerdict:
    reference: str
    member_rung_ms: float | None
    outcome: str
    sentence: str


@dataclass(frozen=True)
class Family:
    """The study's family (``archsearch family``): one network per rung, retrained and measured as deployed."""

    study: str
    folder: str
    created: str
    recipe: dict[str, Any]
    """Epochs, batch size, learning rate, weight decay, batch-norm momentum, seeds, resolution, dataset..."""
    recipe_summary: str
    seeds: tuple[int, ...]
    members: tuple[FamilyMember, ...]
    """In rung order."""
    unfilled: tuple[tuple[float, str], ...]
    """(rung ms, why no network) for each rung the family has no network for."""
    references: tuple[FamilyReference, ...]
    reference_verdicts: tuple[FamilyReferenceVerdict, ...]
    stored_rungs_ms: tuple[float, ...] = ()
    """The ladder the family was made for, as recorded (older families: empty)."""
    latency_protocol: str = ""
    """How ``latency_ms`` was measured (backend, threads, batch)."""

    @property
    def rungs_ms(self) -> list[float]:
        """Every rung: the recorded ladder, and any rung a member or an unfilled entry names."""
        return sorted(set(self.stored_rungs_ms) | {m.rung_ms for m in self.members}
                      | {rung for rung, _ in self.unfilled})


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def family_of(data: dict[str, Any]) -> Family:
    """The stored family dict (``FAMILY_ATTR``) as typed data; ``KeyError``/``TypeError``/``ValueError`` if
    it does not have the shape ``archsearch family`` writes."""
    recipe = dict(data.get("recipe") or {})
    members = []
    for item in data["members"]:
        verdicts = tuple(FamilyVerdict(
            reference=str(v["reference"]), outcome=str(v["outcome"]), difference=float(v["difference"]),
            margin=float(v["margin"]), beyond_seed_spread=bool(v.get("beyond_seed_spread")),
            sentence=str(v["sentence"])) for v in item.get("verdicts") or ())
        same = item.get("same_as_rung_ms")
        members.append(FamilyMember(
            rung_ms=float(item["rung_ms"]), trial=int(item["trial"]), name=str(item.get("name") or ""),
            spec_hash=str(item.get("spec_hash") or ""), input_size=int(item["input_size"]),
            params=_optional_int(item.get("params")), macs=_optional_int(item.get("macs")),
            proxy_accuracy=_optional_float(item.get("proxy_accuracy")),
            search_latency_ms=_optional_float(item.get("search_latency_ms")), latency_ms=float(item["latency_ms"]),
            accuracies=tuple(float(a) for a in item.get("accuracies") or ()),
            accuracy_mean=float(item["accuracy_mean"]), accuracy_std=float(item.get("accuracy_std") or 0.0),
            files={str(k): str(v) for k, v in (item.get("files") or {}).items()},
            same_as_rung_ms=None if same is None else float(same), verdicts=verdicts,
            within_rung=None if item.get("within_rung") is None else bool(item["within_rung"]),
            shipped_seed=_optional_int(item.get("shipped_seed")),
            shipped_accuracy=_optional_float(item.get("shipped_accuracy"))))
    references = tuple(FamilyReference(
        reference=str(r["reference"]), latency_ms=float(r["latency_ms"]),
        input_size=_optional_int(r.get("input_size")), params=_optional_int(r.get("params")),
        macs=_optional_int(r.get("macs")), accuracies=tuple(float(a) for a in r.get("accuracies") or ()),
        accuracy_mean=float(r["accuracy_mean"]), accuracy_std=float(r.get("accuracy_std") or 0.0))
        for r in data.get("references") or ())
    reference_verdicts_ = tuple(FamilyReferenceVerdict(
        reference=str(v["reference"]), member_rung_ms=_optional_float(v.get("member_rung_ms")),
        outcome=str(v.get("outcome") or ""), sentence=str(v["sentence"]))
        for v in data.get("reference_verdicts") or ())
    return Family(
        study=str(data.get("study") or ""), folder=str(data.get("folder") or ""),
        created=str(data.get("created") or ""), recipe=recipe, recipe_summary=str(recipe.get("summary") or ""),
        seeds=tuple(int(s) for s in recipe.get("seeds") or ()),
        members=tuple(sorted(members, key=lambda m: m.rung_ms)),
        unfilled=tuple(sorted((float(u["rung_ms"]), str(u.get("reason") or "")) for u in data.get("unfilled") or ())),
        references=references, reference_verdicts=reference_verdicts_,
        stored_rungs_ms=tuple(float(r) for r in data.get("rungs_ms") or ()),
        latency_protocol=str(data.get("latency_protocol") or ""))


def _family(study: optuna.Study) -> tuple[Family | None, str | None]:
    """The study's family and, when the stored one cannot be read, why (the dashboard shows it instead)."""
    data = study.user_attrs.get(FAMILY_ATTR)
    if data is None:
        return None, None
    try:
        return family_of(data), None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return None, f"the stored family ({FAMILY_ATTR}) cannot be read: {type(error).__name__} {error}"


def _ladder(all_records: list[TrialRecord], budgets_ms: Any,
            unreachable: dict[str, str] | None = None) -> list[LadderRung] | None:
    if not budgets_ms:
        return None
    rungs = []
    for state in ladder_state(all_records, [float(b) for b in budgets_ms], unreachable):
        rungs.append(LadderRung(state.rung.budget_ms, state.rung.floor_ms, tuple(state.filled_by),
                                tuple(n for n, _ in state.aimed), state.given_up, state.sentence))
    return rungs


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
    """What the accuracies are (a proxy, and how it was obtained)."""
    canary: dict[str, Any] | None = None
    """The study's canary readings (``canary_summary``): did the device drift during it?"""
    ladder: list[LadderRung] | None = None
    """The budget ladder's rungs, ascending (``None``: a single budget)."""
    family: Family | None = None
    """The study's family (``archsearch family``), when one was made."""
    family_note: str | None = None
    """Why a stored family could not be shown."""

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


def _points(study: optuna.Study, front_numbers: set[int], family: Family | None = None) -> list[TrialPoint]:
    picked: dict[int, list[float]] = {}
    for member in family.members if family else ():
        picked.setdefault(member.trial, []).append(member.rung_ms)
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
            duplicate_of=record.duplicate_of, aimed_at_ms=record.aimed_at_ms,
            family_rungs_ms=tuple(picked.get(record.number, ()))))
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
    config = recorded_config(study)
    budget = config.get("budget_ms")
    front_points = pareto_front(study)
    front_numbers = {p.number for p in front_points}
    all_records = records(study)
    by_number = {r.number: r for r in all_records}
    family, family_note = _family(study)
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
        name=study.study_name, storage=shown_url(storage), budget_ms=budget,
        points=_points(study, front_numbers, family),
        front=front, history=_history(study, budget), latency_pairs=pairs, importances=importances,
        importance_notes=notes, counts=dict(Counter(r.label for r in by_number.values())),
        failures=failures(study), dominated_references={v.reference: v.dominated_by for v in verdicts},
        reference_verdicts=verdicts, accuracy_protocol=AccuracyProtocol.of_study(study),
        canary=canary_summary(study),
        ladder=_ladder(all_records, config.get("ladder_ms"), study.user_attrs.get(LADDER_ATTR)),
        family=family, family_note=family_note)


__all__ = ["Family", "FamilyMember", "FamilyReference", "FamilyReferenceVerdict", "FamilyVerdict", "FrontMember",
           "HistoryStep", "LadderRung", "StudyView", "TrialPoint", "family_of", "spec_oneline", "study_view"]
