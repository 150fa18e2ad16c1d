"""The study: sample, predict, reject or train, measure, store; resumable and multi-objective.

Two objectives (maximise validation accuracy, minimise measured latency) and the
budget as a hard constraint set with ``Trial.set_constraint`` (latency - budget <= 0
is feasible), so Optuna's Pareto front holds feasible trials only. Per trial:

1. sample a spec from the space (Optuna's sampler);
2. a spec already evaluated (same hash) is not trained again: its result is reused;
3. predict its latency from the part table; clearly over budget -> recorded as
   infeasible with the prediction, never trained;
4. train it (proxy training), stopping early at rungs where it is dominated;
5. measure its latency in the worker process (never while training runs) and store,
   with the trained weights of a feasible network (for export).

Everything a trial knows is stored as Optuna user attributes as soon as it is known.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.cost import network_cost
from archsearch.data import Dataset, load_dataset
from archsearch.references import load_reference
from archsearch.space import SearchSpace, load_space
from archsearch.spec import NetworkSpec, canonical_json, spec_hash
from archsearch.study.config import StudyConfig
from archsearch.study.fidelity import SuccessiveHalving, rung_population
from archsearch.study.optuna_storage import ARCHSEARCH_DIRECTIONS, StudyError, is_sqlite, open_storage

if TYPE_CHECKING:
    from archsearch.db import Store

CONFIG_ATTR = "archsearch:config"
MAX_MISSING_PARTS = 3
"""Predict a candidate's latency only when at most this many of its parts are unmeasured.

One part costs about 1.5 s to convert and time, one whole network about 6 s here."""
INTERRUPTED = "interrupted: the process ended while this trial ran"


class TrialRejected(Exception):
    """Internal: the trial stopped early (dominated at a rung)."""


@dataclass
class TrialReport:
    """What the progress display shows after each trial."""

    number: int
    status: str
    accuracy: float | None
    latency_ms: float | None
    seconds: float
    reference: str | None = None
    reason: str | None = None


ProgressCallback = Callable[[optuna.Study, TrialReport], None]


def make_sampler(config: StudyConfig, resumed_trials: int = 0) -> optuna.samplers.BaseSampler:
    """The study's sampler. A resumed study offsets the seed by its trial count, so the
    sampler does not replay the random draws of the run it continues."""
    seed = config.seed + resumed_trials
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)


def search_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished search trials (not references, not interrupted): what counts toward ``trials``."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and "reference" not in t.user_attrs
            and t.user_attrs.get("failure_reason") != INTERRUPTED]


def _spec_attrs(spec: NetworkSpec) -> dict[str, Any]:
    cost = network_cost(spec)
    return {"spec": json.loads(canonical_json(spec)), "spec_hash": spec_hash(spec), "spec_name": spec.name,
            "params": cost.params, "macs": cost.macs, "input_size": spec.input.size}


class StudyRunner:
    """Runs one study: owns the space, the data, the predictor and the budget."""

    def __init__(self, config: StudyConfig, progress: ProgressCallback | None = None) -> None:
        from archsearch.latency import LatencyPredictor, get_backend

        self.config = config
        self.progress = progress
        get_backend(config.backend)
        self.dataset: Dataset = load_dataset(config.dataset, config.train_size, seed=config.seed)
        self.space: SearchSpace = load_space(config.space).with_overrides(classes=self.dataset.classes)
        self.url = config.storage_url()
        self.storage = open_storage(self.url)
        self.predictor = LatencyPredictor(config.backend, config.threads, storage=self.url)
        self.halving = SuccessiveHalving(config.epochs, config.eta) if config.multi_fidelity else None
        self._weights_store: Store | None = None  # opened on the first trained trial
        self.study = self._open_study()

    # ----- study lifecycle -----

    def _open_study(self) -> optuna.Study:
        study = optuna.create_study(study_name=self.config.name, storage=self.storage, load_if_exists=True,
                                    directions=["maximize", "minimize"], sampler=make_sampler(self.config))
        if study.directions != ARCHSEARCH_DIRECTIONS:
            raise StudyError(f"study {self.config.name!r} exists but is not an archsearch study")
        recorded = study.user_attrs.get(CONFIG_ATTR)
        identity = self.config.identity()
        if recorded is None:
            study.set_user_attr(CONFIG_ATTR, identity)
        elif recorded != identity:
            changed = sorted(k for k in identity.keys() | recorded.keys() if identity.get(k) != recorded.get(k))
            first = changed[0]
            raise StudyError(
                f"study {self.config.name!r} was started with {first}={recorded.get(first)!r}, this run asks for "
                f"{first}={identity.get(first)!r} ({len(changed)} setting(s) differ: {', '.join(changed)}); "
                f"use another --study name to start afresh")
        self._close_interrupted(study)
        existing = len(study.get_trials(deepcopy=False))
        if existing:
            study.sampler = make_sampler(self.config, existing)
        return study

    def _close_interrupted(self, study: optuna.Study) -> None:
        """Trials a killed process left RUNNING are marked failed (their work was not stored).

        A SQLite file serves one process, so every RUNNING trial there is orphaned. On a
        server database other workers may be running trials: only those whose heartbeat
        stopped are failed, by Optuna's own ``fail_stale_trials``.
        """
        if not is_sqlite(self.url):
            with warnings.catch_warnings():  # "experimental" since Optuna 2.9; the behaviour is what we need
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            return
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.storage.set_trial_user_attr(trial._trial_id, "failure_reason", INTERRUPTED)
            self.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)

    def remaining(self, started: float) -> tuple[int | None, float | None]:
        trials_left = None if self.config.trials is None else self.config.trials - len(search_trials(self.study))
        seconds_left = None if self.config.timeout_minutes is None else (
            self.config.timeout_minutes * 60 - (time.monotonic() - started))
        return trials_left, seconds_left

    def run(self) -> optuna.Study:
        from archsearch.latency import persistent_worker

        started = time.monotonic()
        with persistent_worker():
            if self.config.references:
                for name in self.space.references:
                    if not self._has_reference(name):
                        self._run_trial(reference=name)
            while True:
                trials_left, seconds_left = self.remaining(started)
                if (trials_left is not None and trials_left <= 0) or (seconds_left is not None and seconds_left <= 0):
                    break
                self._run_trial()
        return self.study

    def _has_reference(self, name: str) -> bool:
        return any(t.user_attrs.get("reference") == name and t.state == TrialState.COMPLETE
                   for t in self.study.get_trials(deepcopy=False))

    # ----- one trial -----

    def _run_trial(self, reference: str | None = None) -> None:
        """One trial through ``study.optimize``, so Optuna keeps its heartbeat on server storage."""
        report = TrialReport(-1, "complete", None, None, 0.0, reference)

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            report.number = trial.number
            try:
                if reference is not None:
                    trial.set_user_attr("reference", reference)
                    spec = load_reference(reference, classes=self.dataset.classes)
                else:
                    spec = self.space.suggest(trial)
                values, report.status = self._evaluate(trial, spec, reference is not None)
            except TrialRejected as stop:
                report.status, report.reason = "stopped_early", str(stop)
                trial.set_user_attr("status", report.status)
                raise optuna.TrialPruned(str(stop)) from None
            except KeyboardInterrupt:
                trial.set_user_attr("failure_reason", "interrupted by the user")
                raise
            except Exception as error:  # stored with its reason; Optuna marks the trial failed
                text = str(error).strip().splitlines()
                report.status, report.reason = "failed", f"{type(error).__name__}: {text[0] if text else ''}"[:500]
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("failure_reason", report.reason)
                raise
            report.accuracy, report.latency_ms = values
            trial.set_user_attr("status", report.status)
            return values

        started = time.perf_counter()
        self.study.optimize(objective, n_trials=1, catch=(Exception,))
        report.seconds = time.perf_counter() - started
        if self.progress is not None:
            self.progress(self.study, report)

    def _evaluate(self, trial: optuna.Trial, spec: NetworkSpec, is_reference: bool) -> tuple[tuple[float, float], str]:
        budget = self.config.budget_ms
        for key, value in _spec_attrs(spec).items():
            trial.set_user_attr(key, value)

        if not is_reference:
            previous = self._evaluated(spec_hash(spec))
            if previous is not None:  # same network: reuse, do not train again
                for key in ("predicted_latency_ms", "measured_latency_ms", "screen_latency_ms", "latency_source",
                            "latency_protocol", "accuracy", "history", "train_seconds", "trained"):
                    if key in previous.user_attrs:
                        trial.set_user_attr(key, previous.user_attrs[key])
                trial.set_user_attr("duplicate_of", previous.number)
                accuracy, latency = previous.values
                trial.set_constraint("latency_budget", latency - budget)
                return (accuracy, latency), "duplicate"

        latency, source, measured = self._screen(trial, spec, is_reference)
        limit = budget * (1 + self.config.reject_margin) if source == "predicted" else budget
        if not is_reference and latency > limit:
            # Clearly over budget: recorded as infeasible with its latency, never trained.
            # Accuracy 0 is a placeholder (trained: false); the constraint keeps it off the front.
            trial.set_user_attr("trained", False)
            trial.set_constraint("latency_budget", latency - budget)
            return (0.0, latency), f"rejected_{source}"

        result = self._train(trial, spec, latency, allow_stop=not is_reference)
        measured = measured or self._measure(spec)
        trial.set_user_attr("measured_latency_ms", measured.median_ms)
        trial.set_user_attr("latency_protocol", {**measured.protocol, "p10_ms": measured.p10_ms,
                                                  "p90_ms": measured.p90_ms, "runs": measured.runs})
        trial.set_constraint("latency_budget", measured.median_ms - budget)
        status = "complete" if measured.median_ms <= budget else "over_budget"
        if status == "complete" and result.weights is not None:  # only feasible trials export
            self._keep_weights(trial.number, spec_hash(spec), result.weights)
            trial.set_user_attr("weights_stored", True)
        return (result.accuracy, measured.median_ms), status

    def _screen(self, trial: optuna.Trial, spec: NetworkSpec, is_reference: bool) -> tuple[float, str, Any]:
        """The latency that decides whether ``spec`` is trained: predicted, or measured when cheaper.

        Predicting costs one short measurement per part missing from the table; measuring
        the whole network costs one conversion. When more than ``MAX_MISSING_PARTS`` are
        missing (typical early in a study of a large space) the network is measured
        instead, before any training, and that measurement is the trial's latency.
        """
        from archsearch.latency import decompose

        parts = decompose(spec)
        missing = len({p.key for p in parts} - set(self.predictor.table(parts)))
        if is_reference or missing > MAX_MISSING_PARTS:
            measured = self._measure(spec)
            trial.set_user_attr("latency_source", "measured")
            trial.set_user_attr("screen_latency_ms", measured.median_ms)
            return measured.median_ms, "measured", measured
        prediction = self.predictor.predict(spec)
        trial.set_user_attr("latency_source", "predicted")
        trial.set_user_attr("predicted_latency_ms", prediction.latency_ms)
        trial.set_user_attr("screen_latency_ms", prediction.latency_ms)
        return prediction.latency_ms, "predicted", None

    def _evaluated(self, digest: str) -> FrozenTrial | None:
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.user_attrs.get("spec_hash") == digest and "reference" not in t.user_attrs:
                return t
        return None

    def _train(self, trial: optuna.Trial, spec: NetworkSpec, predicted_ms: float, allow_stop: bool) -> Any:
        from archsearch.train import TrainConfig, train_spec

        config = TrainConfig(epochs=self.config.epochs, batch_size=self.config.batch_size,
                             learning_rate=self.config.learning_rate, seed=self.config.seed)
        history: list[dict[str, float]] = []

        def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            history.append(metrics)
            trial.set_user_attr("history", history)  # stored now: rung decisions and resumes read it
            if not allow_stop or self.halving is None:
                return True
            population = rung_population(self.study.get_trials(deepcopy=False), epoch, trial.number)
            return self.halving.should_continue(epoch, metrics["val_accuracy"], predicted_ms, population)

        trial.set_user_attr("trained", True)
        result = train_spec(spec, self.dataset, config, on_epoch=on_epoch)
        trial.set_user_attr("history", result.history)
        trial.set_user_attr("accuracy", result.accuracy)
        trial.set_user_attr("train_seconds", result.seconds)
        trial.set_user_attr("epochs_trained", result.epochs)
        if result.stopped_early:
            raise TrialRejected(f"dominated at epoch {result.epochs} (accuracy {result.accuracy:.3f})")
        return result

    def _keep_weights(self, number: int, digest: str, weights: bytes) -> None:
        """Trained weights go beside the study (same database), so exports need no retraining."""
        from archsearch.db import Store, TrialWeights

        if self._weights_store is None:
            self._weights_store = Store(self.url)
        with self._weights_store.session() as session:
            session.merge(TrialWeights(study_name=self.config.name, trial_number=number, spec_hash=digest,
                                       weights=weights))

    def _measure(self, spec: NetworkSpec) -> Any:
        from archsearch.latency import measure_latency

        return measure_latency(spec, backend=self.config.backend, threads=self.config.threads, storage=self.url)


def run_study(config: StudyConfig | None = None, progress: ProgressCallback | None = None,
              **settings: Any) -> optuna.Study:
    """Run (or resume) a study and return it. ``settings`` are ``StudyConfig`` fields.

    >>> study = run_study(budget_ms=20, trials=20)          # doctest: +SKIP
    """
    if config is None:
        config = StudyConfig(**settings)
    elif settings:
        config = StudyConfig.model_validate({**config.model_dump(), **settings})
    return StudyRunner(config, progress).run()
