"""The study runner: open or resume a study, train its references, then run trials until done.

Two objectives (maximise validation accuracy, minimise measured latency) and the
budget as a hard constraint set with ``Trial.set_constraint`` (latency - budget <= 0 is
feasible), so Optuna's Pareto front holds feasible trials only. What one trial does is
``study/trial.py``; this module owns the study's lifecycle: recorded settings and
resume, interrupted trials, references first, the trial count and timeout, progress.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from archsearch.data import Dataset, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.references import load_reference
from archsearch.space import SearchSpace, load_space
from archsearch.spec import NetworkSpec
from archsearch.study.canary import Canary
from archsearch.study.claims import WorkClaims, reference_piece
from archsearch.study.config import LEGACY_SETTINGS, RESUMABLE_CHANGES, StudyConfig
from archsearch.study.fidelity import SuccessiveHalving
from archsearch.study.front import pareto_front
from archsearch.study.ladder import Estimate, Ladder, mac_power_law
from archsearch.study.optuna_storage import (
    ARCHSEARCH_DIRECTIONS,
    SqliteLock,
    StudyError,
    heartbeat_seconds,
    is_sqlite,
    load_existing_study,
    open_storage,
)
from archsearch.study.protocol import AccuracyProtocol, record_protocol
from archsearch.study.record import (
    CONFIG_ATTR,
    INTERRUPTED,
    LADDER_ATTR,
    SURPLUS,
    TRIALS_ATTR,
    Status,
    TrialRecord,
    TrialRecorder,
    records,
)
from archsearch.study.screening import LatencyScreen, Measure, MeasuredScreen, ProfileScreen
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

def this_worker() -> str:
    """This process, as trials record who ran them (host:pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def make_sampler(config: StudyConfig, resumed_trials: int = 0, shared: bool = False) -> optuna.samplers.BaseSampler:
    """The study's sampler. A resumed study offsets the seed by its trial count, so the
    sampler does not replay the random draws of the run it continues.

    ``shared``: the study has other workers. Each worker then seeds from its host and
    process too (workers seeded alike would draw the same candidates), and TPE takes
    the trials others are running as if they had failed (Optuna's constant liar), so it
    does not propose what is already being trained.
    """
    seed = config.seed + resumed_trials
    if shared:
        seed = int.from_bytes(hashlib.sha256(f"{seed}:{socket.gethostname()}:{os.getpid()}".encode()).digest()[:4])
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    with warnings.catch_warnings():  # constant_liar is "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8, constant_liar=shared)


def search_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished search trials (not references, not interrupted): what counts toward ``trials``."""
    return [t for t in study.get_trials(deepcopy=False) if TrialRecord.of(t).counts_as_search_trial]


def open_study(config: StudyConfig, storage: optuna.storages.BaseStorage, shared: bool = False) -> optuna.Study:
    """Create or resume the study ``config`` names; a resume under other settings is refused.

    The trial count is the study's: recorded when the study starts, changed only by a
    run that asks for a count (``trials`` given), read by every worker that joins.
    """
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                                directions=["maximize", "minimize"], sampler=make_sampler(config))
    if study.directions != ARCHSEARCH_DIRECTIONS:
        raise StudyError(f"study {config.name!r} exists but is not an archsearch study")
    recorded = study.user_attrs.get(CONFIG_ATTR)
    identity = config.identity()
    if recorded is None:
        study.set_user_attr(CONFIG_ATTR, identity)
        recorded = identity
    # What settings added since meant before they existed; and none that may change on a resume
    # (studies recorded some of those before they could).
    recorded = {k: v for k, v in {**LEGACY_SETTINGS, **recorded}.items() if k not in RESUMABLE_CHANGES}
    if recorded != identity:
        changed = sorted(k for k in identity.keys() | recorded.keys() if identity.get(k) != recorded.get(k))
        first = changed[0]
        raise StudyError(
            f"study {config.name!r} was started with {first}={recorded.get(first)!r}, this run asks for "
            f"{first}={identity.get(first)!r} ({len(changed)} setting(s) differ: {', '.join(changed)}); "
            f"use another --study name to start afresh")
    if TRIALS_ATTR not in study.user_attrs or "trials" in config.model_fields_set:
        study.set_user_attr(TRIALS_ATTR, config.trials)
    existing = len(study.get_trials(deepcopy=False))
    if existing or shared:
        study.sampler = make_sampler(config, existing, shared)
    return study


def study_trial_count(study: optuna.Study) -> int | None:
    """The number of search trials the study stops at (``None``: until a timeout)."""
    return study.user_attrs.get(TRIALS_ATTR, None)


def join_config(name: str, storage: str | None = None, timeout_minutes: float | None = None) -> StudyConfig:
    """The settings an existing study recorded, to join it as one more worker (``archsearch worker``).

    Workers cannot disagree on space, budget, data or protocol: they have no settings of
    their own but where the study lives and how long to work.
    """
    study, url = load_existing_study(name, storage)
    recorded = study.user_attrs.get(CONFIG_ATTR)
    if not recorded:
        raise StudyError(f"study {name!r} in {shown_url(url)} recorded no archsearch settings; start it with "
                         "`archsearch run` first")
    settings = {**LEGACY_SETTINGS, **recorded, "storage": storage, "timeout_minutes": timeout_minutes}
    try:
        return StudyConfig.model_validate(settings)
    except ValidationError as error:
        raise StudyError(f"study {name!r} recorded settings this version cannot read: "
                         f"{str(error).splitlines()[0]}") from None


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

    poll_seconds: float = 5.0
    """How often a worker waiting for other workers looks at the study again (at most every heartbeat)."""
    database_patience_minutes: float = 30.0
    """How long a worker keeps retrying a database it lost before it gives up."""

    def __init__(self, config: StudyConfig, progress: ProgressCallback | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        from archsearch.latency import get_backend

        self.config = config
        self.progress = progress
        self.notify: Callable[[str], None] = notify or (lambda text: None)
        """Where the runner says what it waits for (another worker, the database); the CLI prints it."""
        self._said: set[str] = set()
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
        from archsearch.latency import AgentMeasure, LatencyPredictor, measure_latency, remeasure_latency
        from archsearch.latency.profile import device_profile, this_device_profile

        self.shared = not is_sqlite(self.url)  # server storage: other workers may share the study
        if self.shared:
            self.poll_seconds = min(self.poll_seconds, float(heartbeat_seconds()))
        self.study = open_study(config, storage, self.shared)
        self.protocol = AccuracyProtocol.of_run(config, self.dataset)
        record_protocol(self.study, self.protocol)
        close_interrupted(self.study, storage, self.url)
        measure: Measure = partial(measure_latency, backend=config.backend, threads=config.threads, storage=self.url)
        remeasure: Measure = partial(remeasure_latency, backend=config.backend, threads=config.threads)
        self.profile = None
        self.agent: AgentMeasure | None = None
        screen: LatencyScreen | ProfileScreen | MeasuredScreen
        pairs = [(r.profile_latency_ms, r.measured_latency_ms) for r in records(self.study)
                 if r.profile_latency_ms is not None and r.measured_latency_ms is not None]
        if config.device is not None:  # the device's agent measures; nothing is timed or predicted from here
            self.agent = AgentMeasure(self.url, config.device, config.backend, config.threads,
                                      on_wait=lambda text: self.notify(text))
            measure, remeasure = self.agent, self.agent.remeasure
            self.profile = device_profile(config.device, config.backend, config.threads, (self.url, None))
            screen = (MeasuredScreen(measure) if self.profile is None
                      else ProfileScreen(self.profile, measure, config.budget_ms, pairs))
        elif (profile := this_device_profile(config.backend, config.threads, (self.url, None))) is not None:
            self.profile = profile
            screen = ProfileScreen(profile, measure, config.budget_ms, pairs)
        else:
            screen = LatencyScreen(LatencyPredictor(config.backend, config.threads, storage=self.url), measure)
        anchor = self.space.references[0] if self.space.references else "mobilenet_v3_small"
        self.canary = Canary(self.study, load_reference(anchor, classes=self.dataset.classes), remeasure)
        halving = SuccessiveHalving(config.epochs, config.eta) if config.multi_fidelity else None
        self.claims = WorkClaims(self.url, config.name)
        started = len(self.study.get_trials(deepcopy=False))  # a resumed ladder does not replay its draws
        self.ladder = Ladder(self.space, config.ladder_ms, seed=config.seed + started) if config.ladder_ms else None
        self.measure = measure
        self.evaluator = TrialEvaluator(config, self.study, self.dataset, screen, measure,
                                        TrialWeightStore.for_config(self.study, self.url, config), halving,
                                        self.claims,
                                        lambda text: self.notify(text), self.poll_seconds)

    @property
    def latency_plan(self) -> str:
        """How candidates' latency is obtained in this run, in one sentence for the run's output."""
        if self.agent is not None:
            running = self.agent.agents_running()
            serving = (f"agent(s) serving it now: {', '.join(running)}" if running else
                       f"no agent serving it yet: start `{self.agent.start_command()}` on the device")
            screening = ("every candidate measured there before training (no profile of the device yet: "
                         f"`archsearch profile build --device {self.config.device}` makes one through its agent)"
                         if self.profile is None else
                         f"candidates screened by the device's profile (trusted within "
                         f"+/-{self.profile.accuracy.band:.0%}), trained ones and those near the budget measured")
            return (f"latency: measured on device {self.config.device!r} by its measurement agent, one request at "
                    f"a time; nothing is timed on this machine; {screening}; {serving}")
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
        """References first (once per study), then search trials until the study's trial count or this
        worker's timeout. With other workers on the study, a worker with nothing left to start stays
        until their trials end, so a trial whose worker dies is retried rather than left behind."""
        from archsearch.latency import persistent_worker

        self._started = time.monotonic()
        lost_since: float | None = None
        try:
            with persistent_worker():
                while True:
                    try:
                        if not self._step():
                            break
                        lost_since = None
                    except (DBAPIError, optuna.exceptions.StorageInternalError) as error:
                        lost_since = self._wait_for_database(error, lost_since)
        finally:
            self.close()
        return self.study

    def _step(self) -> bool:
        """Start the next piece of work, or wait for other workers' trials; ``False`` when there is nothing left."""
        if self.shared:
            close_interrupted(self.study, self.study._storage, self.url)
        if self._timed_out():
            return False
        trials = self.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            self._run_trial()  # a retry of a trial whose worker died: Optuna hands it out first
            return True
        if self.config.references:
            for name in self.space.references:
                if self._reference_to_do(name):
                    self._run_trial(reference=name)
                    return True
        total = study_trial_count(self.study)
        done, running = self._search_counts(trials)
        if total is None or done + running < total:
            self._plan_next_search_trial(None if total is None else total - done - running)
            self._run_trial()
            return True
        if running or any(t.state == TrialState.RUNNING for t in trials):
            self._say_once("waiting", f"the study's {total} trials are started; waiting for the {running or 'running'} "
                           "trial(s) on other workers to end (one whose worker dies is retried here)")
            time.sleep(self.poll_seconds)
            return True
        return False

    def _plan_next_search_trial(self, room: int | None) -> None:
        """Enqueue what the next search trial should be, when the sampler should not choose: the
        references' configurations first (warm start), then a draw for the lowest empty rung of the
        ladder. Optuna hands an enqueued trial to the next ``optimize`` call, in any worker."""
        all_records = records(self.study)
        if self.config.warm_start and not any(r.warm_start or r.counts_as_search_trial for r in all_records):
            from archsearch.study.warm_start import warm_start_points

            for point in warm_start_points(self.space, self.dataset.classes)[:room]:
                self.study.enqueue_trial(point.params, user_attrs={"warm_start": point.reference})
                self.notify(f"warm start: {point.describe()}")
            return
        if self.ladder is None:
            return
        aim = self.ladder.next_aim(all_records, self._latency_estimate(all_records), self._measure_for_aim)
        if self.ladder.unreachable != self.study.user_attrs.get(LADDER_ATTR, {}):
            self.study.set_user_attr(LADDER_ATTR, dict(self.ladder.unreachable))  # why a rung was given up
        if aim is not None:
            self.study.enqueue_trial(aim.params, user_attrs={"aimed_at_ms": aim.rung.budget_ms})
            measured = f", measured {aim.measured_ms:.2f} ms" if aim.measured_ms is not None else ""
            self.notify(f"ladder: next trial aimed at the empty {aim.rung.budget_ms:g} ms rung "
                        f"(a network estimated at {aim.estimated_ms:.2f} ms{measured})")

    def _measure_for_aim(self, spec: NetworkSpec) -> float | None:
        """A ladder draw measured as its trial would be (cached: the trial finds it); ``None`` if it cannot be."""
        try:
            return self.measure(spec).median_ms
        except ArchsearchError:  # a draw the backend cannot run is one the ladder does not aim at
            return None

    def _latency_estimate(self, all_records: list[TrialRecord]) -> Estimate | None:
        """Latency without measuring, for the ladder's draws: the device profile (calibrated to this host),
        else a power law in MACs fitted to what this study measured."""
        screen = self.evaluator.screen
        if isinstance(screen, ProfileScreen):
            return lambda spec: screen.profile.predict(spec) * screen.scale
        return mac_power_law([(r.macs, r.measured_latency_ms) for r in all_records
                              if r.macs and r.measured_latency_ms is not None]
                             + (self.ladder.measured if self.ladder else []))

    def _wait_for_database(self, error: Exception, lost_since: float | None) -> float:
        """The database went away: say so, wait with growing pauses, give up after ``database_patience_minutes``."""
        now = time.monotonic()
        lost_since = lost_since if lost_since is not None else now
        waited = now - lost_since
        root: BaseException = error  # Optuna wraps the driver's error: the root cause names the problem
        while (root.__cause__ or root.__context__) is not None:
            root = root.__cause__ or root.__context__  # type: ignore[assignment]
        lines = str(getattr(root, "orig", None) or root).strip().splitlines()
        reason = lines[0] if lines else type(root).__name__
        if waited > self.database_patience_minutes * 60:
            raise StudyError(f"lost the database {self.shown_url} for {waited / 60:.0f} min, giving up "
                             f"({reason}); completed trials are stored, start the worker again to go on") from None
        pause = min(60.0, 2.0 * 2 ** min(6, int(waited // 10)))
        self.notify(f"database {self.shown_url} unreachable ({reason}); retrying in {pause:.0f} s "
                    f"(lost {waited:.0f} s ago)")
        time.sleep(pause)
        return lost_since

    def _say_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.notify(text)

    def close(self) -> None:
        """Let another process use this study's SQLite file (done by ``run``)."""
        self._lock.release()

    def _timed_out(self) -> bool:
        timeout = self.config.timeout_minutes
        return timeout is not None and time.monotonic() - self._started >= timeout * 60

    @staticmethod
    def _search_counts(trials: list[FrozenTrial]) -> tuple[int, int]:
        """(search trials that count, search trials running or waiting): what the trial count compares."""
        done = running = 0
        for trial in trials:
            record = TrialRecord.of(trial)
            if record.counts_as_search_trial:
                done += 1
            elif trial.state in (TrialState.RUNNING, TrialState.WAITING) and not record.is_reference:
                running += 1
        return done, running

    def snapshot(self) -> StudyProgress:
        """The study's progress now (trials done, front, time left)."""
        done = len(search_trials(self.study))
        front = pareto_front(self.study)
        elapsed = time.monotonic() - self._started
        total = study_trial_count(self.study)
        seconds_left = None
        if total is not None and done:
            seconds_left = max(0.0, elapsed / done * (total - done))
        timeout = self.config.timeout_minutes
        return StudyProgress(done=done, total=total, front_size=len(front),
                             best_accuracy=max((p.accuracy for p in front), default=None), elapsed_seconds=elapsed,
                             seconds_left=seconds_left,
                             timeout_left_seconds=None if timeout is None else max(0.0, timeout * 60 - elapsed))

    def _reference_to_do(self, name: str) -> bool:
        """Reference ``name`` is neither done nor being trained by a worker (claimed by a live trial)."""
        if any(r.reference == name and r.state == TrialState.COMPLETE for r in records(self.study)):
            return False
        holder = self.claims.holder(reference_piece(name))
        if holder is None:
            return True
        trial = next((t for t in self.study.get_trials(deepcopy=False) if t.number == holder), None)
        return trial is None or trial.state == TrialState.FAIL

    def _is_retry(self, trial: optuna.Trial) -> bool:
        """The trial is Optuna's retry of one whose worker died."""
        return "failed_trial" in self.study._storage.get_trial_system_attrs(trial._trial_id)

    def _surplus(self, trial: optuna.Trial) -> bool:
        """Workers that checked the count together started more trials than it has room for: the
        trials numbered below this one already fill it (trial numbers are handed out by the database)."""
        total = study_trial_count(self.study)
        if total is None:
            return False
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        done, running = self._search_counts(earlier)
        return done + running >= total

    def _run_trial(self, reference: str | None = None) -> None:
        """One trial through ``study.optimize``, so Optuna keeps its heartbeat on server storage."""
        report = TrialReport(-1, Status.COMPLETE, None, None, 0.0, reference)

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            recorder = TrialRecorder.running(trial)
            recorder.set(worker=this_worker())
            report.number = trial.number
            name = reference
            if self._is_retry(trial):  # a retried trial is what it was, whatever this worker meant to start
                name = report.reference = trial.user_attrs.get("reference")
            elif name is None and self._surplus(trial):
                recorder.set(failure_reason=SURPLUS)
                report.status, report.reason = Status.FAILED, SURPLUS
                raise _Surplus
            try:
                if name is not None:
                    recorder.set(reference=name)
                    spec = load_reference(name, classes=self.dataset.classes)
                else:
                    spec = self.space.suggest(trial)
                outcome = self.evaluator.evaluate(trial, spec, reference=name)
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
        self.evaluator.weights.prune()  # weights of trials this one pushed off the front for good
        if report.reason == SURPLUS:
            return
        report.seconds = time.perf_counter() - started
        done = len(search_trials(self.study))
        if self.canary.due(done):  # after the trial: never while training runs
            report.notice = self.canary.check(done)
        if self.progress is not None:
            report.progress = self.snapshot()
            self.progress(self.study, report)


class _Surplus(Exception):  # noqa: N818 - not an error: the trial count filled while this trial started
    """The study's trial count filled between a worker's check and its new trial."""


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


__all__ = ["ProgressCallback", "StudyProgress", "StudyRunner", "TrialReport", "close_interrupted", "join_config",
           "make_sampler", "open_study", "run_study", "search_trials", "study_trial_count"]
