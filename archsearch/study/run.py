"""The study runner: open or resume a study, train its references, then run trials until done.

Two objectives (maximise validation accuracy, minimise measured latency) and the
budget as a hard constraint set with ``Trial.set_constraint`` (latency - budget <= 0 is
feasible), so Optuna's Pareto front holds feasible trials only. What one trial does is
``study/trial.py``; this module owns the study's lifecycle: recorded settings and
resume, interrupted trials, references first, the trial count and timeout, progress.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.data import Dataset, load_dataset
from archsearch.references import load_reference
from archsearch.space import SearchSpace, load_space
from archsearch.study.canary import Canary
from archsearch.study.config import LEGACY_SETTINGS, StudyConfig
from archsearch.study.fidelity import SuccessiveHalving
from archsearch.study.front import pareto_front
from archsearch.study.optuna_storage import (
    ARCHSEARCH_DIRECTIONS,
    SqliteLock,
    StudyError,
    is_sqlite,
    open_storage,
)
from archsearch.study.protocol import AccuracyProtocol, record_protocol
from archsearch.study.record import CONFIG_ATTR, INTERRUPTED, Status, TrialRecord, TrialRecorder, records
from archsearch.study.screening import LatencyScreen, ProfileScreen
from archsearch.study.training import StoppedEarly
from archsearch.study.trial import TrialEvaluator
from archsearch.study.weights import TrialWeightStore
from archsearch.urls import shown_url


@dataclass(frozen=True)
class StudyProgress:
    """Where the study stands after a trial: what a progress display shows."""

    done: int
    """Search trials finished (references and interrupted trials not counted)."""
    total: int | None
    front_size: int
    best_accuracy: float | None
    """Best accuracy on the feasible front."""
    elapsed_seconds: float
    seconds_left: float | None
    """Estimated from the pace so far, when the study has a trial count."""
    timeout_left_seconds: float | None


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
    progress: StudyProgress | None = None
    notice: str | None = None
    """A warning to show after this trial (the canary saw the device drift)."""


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
    return [t for t in study.get_trials(deepcopy=False) if TrialRecord.of(t).counts_as_search_trial]


def open_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create or resume the study ``config`` names; a resume under other settings is refused."""
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                                directions=["maximize", "minimize"], sampler=make_sampler(config))
    if study.directions != ARCHSEARCH_DIRECTIONS:
        raise StudyError(f"study {config.name!r} exists but is not an archsearch study")
    recorded = study.user_attrs.get(CONFIG_ATTR)
    identity = config.identity()
    if recorded is None:
        study.set_user_attr(CONFIG_ATTR, identity)
        recorded = identity
    recorded = {**LEGACY_SETTINGS, **recorded}  # what settings added since meant before they existed
    if recorded != identity:
        changed = sorted(k for k in identity.keys() | recorded.keys() if identity.get(k) != recorded.get(k))
        first = changed[0]
        raise StudyError(
            f"study {config.name!r} was started with {first}={recorded.get(first)!r}, this run asks for "
            f"{first}={identity.get(first)!r} ({len(changed)} setting(s) differ: {', '.join(changed)}); "
            f"use another --study name to start afresh")
    existing = len(study.get_trials(deepcopy=False))
    if existing:
        study.sampler = make_sampler(config, existing)
    return study


def close_interrupted(study: optuna.Study, storage: optuna.storages.BaseStorage, url: str) -> None:
    """Trials a killed process left RUNNING are marked failed (their work was not stored).

    A SQLite file serves one process, so every RUNNING trial there is orphaned. On a
    server database other workers may be running trials: only those whose heartbeat
    stopped are failed, by Optuna's own ``fail_stale_trials``.
    """
    if not is_sqlite(url):
        with warnings.catch_warnings():  # "experimental" since Optuna 2.9; the behaviour is what we need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        TrialRecorder.stored(storage, trial._trial_id).set(failure_reason=INTERRUPTED)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def check_proxy_sees_resolution(config: StudyConfig, space: SearchSpace) -> None:
    """Refuse a space that searches the input size under a fixed training resolution.

    Proxy accuracy would not respond to resolution, so the search would get smaller
    inputs for free (their latency drops, their proxy accuracy does not).
    """
    searched = [p.name for p in space.parameters if p.name == "input.size"]
    if searched and config.train_scale is None:
        fixed = f"--train-size {config.train_size}" if config.train_size else "the dataset's resolution"
        raise StudyError(f"space {space.name!r} searches input.size, but training at a fixed resolution ({fixed}) "
                         "would make proxy accuracy blind to it; train at a fraction of each input "
                         "(--train-scale, default 0.25) or fix input.size in the space")


class StudyRunner:
    """Runs one study: owns its data, space, latency screen and trial evaluator."""

    def __init__(self, config: StudyConfig, progress: ProgressCallback | None = None) -> None:
        from archsearch.latency import get_backend

        self.config = config
        self.progress = progress
        get_backend(config.backend)
        self.dataset: Dataset = load_dataset(config.dataset, config.train_size, seed=config.seed)
        self.space: SearchSpace = load_space(config.space).with_overrides(classes=self.dataset.classes)
        check_proxy_sees_resolution(config, self.space)
        self.url = config.storage_url()
        storage = open_storage(self.url)
        self._lock = SqliteLock(self.url).acquire()  # before anything is written: one process per SQLite file
        try:
            self._open(config, storage)
        except BaseException:
            self._lock.release()
            raise
        self._started = time.monotonic()

    def _open(self, config: StudyConfig, storage: optuna.storages.RDBStorage) -> None:
        """Everything that writes to the study: its record, the protocol, the latency screen, the evaluator."""
        from archsearch.latency import LatencyPredictor, measure_latency, remeasure_latency
        from archsearch.latency.profile import this_device_profile

        self.study = open_study(config, storage)
        self.protocol = AccuracyProtocol.of_run(config, self.dataset)
        record_protocol(self.study, self.protocol)
        close_interrupted(self.study, storage, self.url)
        measure = partial(measure_latency, backend=config.backend, threads=config.threads, storage=self.url)
        self.profile = this_device_profile(config.backend, config.threads, (self.url, None))
        screen: LatencyScreen | ProfileScreen
        if self.profile is not None:
            pairs = [(r.profile_latency_ms, r.measured_latency_ms) for r in records(self.study)
                     if r.profile_latency_ms is not None and r.measured_latency_ms is not None]
            screen = ProfileScreen(self.profile, measure, config.budget_ms, pairs)
        else:
            screen = LatencyScreen(LatencyPredictor(config.backend, config.threads, storage=self.url), measure)
        anchor = self.space.references[0] if self.space.references else "mobilenet_v3_small"
        self.canary = Canary(self.study, load_reference(anchor, classes=self.dataset.classes),
                             partial(remeasure_latency, backend=config.backend, threads=config.threads))
        halving = SuccessiveHalving(config.epochs, config.eta) if config.multi_fidelity else None
        self.evaluator = TrialEvaluator(config, self.study, self.dataset, screen, measure,
                                        TrialWeightStore(self.url, config.name), halving)

    @property
    def latency_plan(self) -> str:
        """How candidates' latency is obtained in this run, in one sentence for the run's output."""
        if self.profile is None:
            return ("latency: candidates measured (converted and timed) before training, or predicted from the "
                    "per-part table once it covers them; no device profile for this machine yet "
                    "(`archsearch profile build` makes one in about 15 minutes)")
        return (f"latency: screened by this machine's device profile (trusted within +/-"
                f"{self.profile.accuracy.band:.0%}); trained candidates and those near the budget are measured, "
                f"and the measurement is what the study records")

    @property
    def shown_url(self) -> str:
        """The storage URL with any password hidden: the one to print."""
        return shown_url(self.url)

    def run(self) -> optuna.Study:
        """References first (once per study), then search trials until the trial count or timeout."""
        from archsearch.latency import persistent_worker

        self._started = time.monotonic()
        try:
            with persistent_worker():
                if self.config.references:
                    for name in self.space.references:
                        if not self._has_reference(name):
                            self._run_trial(reference=name)
                while not self.finished():
                    self._run_trial()
        finally:
            self.close()
        return self.study

    def close(self) -> None:
        """Let another process use this study's SQLite file (done by ``run``)."""
        self._lock.release()

    def finished(self) -> bool:
        """The study reached its trial count, or the timeout passed."""
        progress = self.snapshot()
        return ((progress.total is not None and progress.done >= progress.total)
                or (progress.timeout_left_seconds is not None and progress.timeout_left_seconds <= 0))

    def snapshot(self) -> StudyProgress:
        """The study's progress now (trials done, front, time left)."""
        done = len(search_trials(self.study))
        front = pareto_front(self.study)
        elapsed = time.monotonic() - self._started
        total = self.config.trials
        seconds_left = None
        if total is not None and done:
            seconds_left = max(0.0, elapsed / done * (total - done))
        timeout = self.config.timeout_minutes
        return StudyProgress(done=done, total=total, front_size=len(front),
                             best_accuracy=max((p.accuracy for p in front), default=None), elapsed_seconds=elapsed,
                             seconds_left=seconds_left,
                             timeout_left_seconds=None if timeout is None else max(0.0, timeout * 60 - elapsed))

    def _has_reference(self, name: str) -> bool:
        return any(r.reference == name and r.state == TrialState.COMPLETE for r in records(self.study))

    def _run_trial(self, reference: str | None = None) -> None:
        """One trial through ``study.optimize``, so Optuna keeps its heartbeat on server storage."""
        report = TrialReport(-1, Status.COMPLETE, None, None, 0.0, reference)

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            recorder = TrialRecorder.running(trial)
            report.number = trial.number
            try:
                if reference is not None:
                    recorder.set(reference=reference)
                    spec = load_reference(reference, classes=self.dataset.classes)
                else:
                    spec = self.space.suggest(trial)
                outcome = self.evaluator.evaluate(trial, spec, is_reference=reference is not None)
            except StoppedEarly as stop:
                report.status, report.reason = Status.STOPPED_EARLY, str(stop)
                recorder.set(status=report.status)
                raise optuna.TrialPruned(str(stop)) from None
            except KeyboardInterrupt:
                recorder.set(failure_reason="interrupted by the user")
                raise
            except Exception as error:  # stored with its reason; Optuna marks the trial failed
                text = str(error).strip().splitlines()
                report.status, report.reason = Status.FAILED, f"{type(error).__name__}: {text[0] if text else ''}"[:500]
                recorder.set(status=Status.FAILED, failure_reason=report.reason)
                raise
            report.accuracy, report.latency_ms, report.status = outcome.accuracy, outcome.latency_ms, outcome.status
            recorder.set(status=outcome.status)
            return outcome.values

        started = time.perf_counter()
        self.study.optimize(objective, n_trials=1, catch=(Exception,))
        report.seconds = time.perf_counter() - started
        done = len(search_trials(self.study))
        if self.canary.due(done):  # after the trial: never while training runs
            report.notice = self.canary.check(done)
        if self.progress is not None:
            report.progress = self.snapshot()
            self.progress(self.study, report)


def run_study(config: StudyConfig | None = None, progress: ProgressCallback | None = None,
              **settings: object) -> optuna.Study:
    """Run (or resume) a study and return it. ``settings`` are ``StudyConfig`` fields.

    >>> study = run_study(budget_ms=20, trials=20)          # doctest: +SKIP
    """
    if config is None:
        config = StudyConfig(**settings)
    elif settings:
        config = StudyConfig.model_validate({**config.model_dump(), **settings})
    return StudyRunner(config, progress).run()


__all__ = ["ProgressCallback", "StudyProgress", "StudyRunner", "TrialReport", "close_interrupted", "make_sampler",
           "open_study", "run_study", "search_trials"]
