"""One trial, step by step: claim the work or reuse an identical spec, screen latency, reject or train, measure,
keep weights.

Each step is a function or object of its own (``screening``, ``training``, ``weights``);
``TrialEvaluator`` only puts them in order and records what each learned, as soon as
it is known, through the trial record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from archsearch.cost import network_cost
from archsearch.data import Dataset
from archsearch.spec import NetworkSpec, canonical_json, spec_hash
from archsearch.study.claims import WorkClaims, reference_piece, spec_piece
from archsearch.study.config import StudyConfig
from archsearch.study.fidelity import SuccessiveHalving, rung_population
from archsearch.study.ladder import rung_holding
from archsearch.study.record import Status, TrialRecord, TrialRecorder, records
from archsearch.study.screening import LatencyScreen, Measure, MeasuredScreen, ProfileScreen
from archsearch.study.training import StoppedEarly, train_candidate
from archsearch.study.weights import TrialWeightStore

if TYPE_CHECKING:
    import optuna

BUDGET_CONSTRAINT = "latency_budget"
"""The trial constraint: latency - budget (<= 0 is feasible)."""


@dataclass(frozen=True)
class Outcome:
    """What a trial returns to Optuna and how it ended."""

    accuracy: float
    latency_ms: float
    status: Status

    @property
    def values(self) -> tuple[float, float]:
        return self.accuracy, self.latency_ms


def record_spec(recorder: TrialRecorder, spec: NetworkSpec) -> str:
    """Store the spec and its costs; return its hash."""
    digest = spec_hash(spec)
    cost = network_cost(spec)
    recorder.set(spec=json.loads(canonical_json(spec)), spec_hash=digest, spec_name=spec.name,
                 param_count=cost.params, macs=cost.macs, input_size=spec.input.size)
    return digest


class TrialEvaluator:
    """Evaluates one spec inside a running Optuna trial of ``study``."""

    def __init__(self, config: StudyConfig, study: optuna.Study, dataset: Dataset,
                 screen: LatencyScreen | ProfileScreen | MeasuredScreen, measure: Measure, weights: TrialWeightStore,
                 halving: SuccessiveHalving | None, claims: WorkClaims,
                 notify: Callable[[str], None] = lambda text: None, poll_seconds: float = 5.0) -> None:
        self.config, self.study, self.dataset = config, study, dataset
        self.screen, self.measure, self.weights, self.halving = screen, measure, weights, halving
        self.claims, self.notify, self.poll_seconds = claims, notify, poll_seconds

    def evaluate(self, trial: optuna.Trial, spec: NetworkSpec, reference: str | None = None) -> Outcome:
        """Run the steps for ``spec`` (reference ``reference``, if it is one); raises ``StoppedEarly``
        when successive halving stops it."""
        recorder = TrialRecorder.running(trial)
        budget = self.config.budget_ms
        digest = record_spec(recorder, spec)
        is_reference = reference is not None

        previous = None if is_reference else self.evaluated(digest)
        if previous is None:  # claim the work, or wait for the worker that claimed it
            previous = self._claim(trial, reference_piece(reference) if is_reference else spec_piece(digest))
        if previous is not None and previous.state == TrialState.PRUNED:
            recorder.set(duplicate_of=previous.number)
            raise StoppedEarly(f"the same network as trial {previous.number}, which was stopped early")
        if previous is not None and previous.values is not None:  # the same network: reuse its result
            recorder.copy_result(previous)
            recorder.set(duplicate_of=previous.number)
            return self._finish(trial, previous.values[0], previous.values[1], Status.DUPLICATE)

        screening = self.screen.screen(spec, measure=is_reference)
        recorder.set(latency_source=screening.source, screen_latency_ms=screening.latency_ms)
        if screening.predicted_ms is not None:
            recorder.set(predicted_latency_ms=screening.predicted_ms)
        if screening.profile_ms is not None:
            recorder.set(profile_latency_ms=screening.profile_ms)
        if screening.measurement is not None:
            self._calibrate(screening.profile_ms, screening.measurement.median_ms)
        if not is_reference and screening.rejects(budget, self.config.reject_margin):
            # Recorded as infeasible with its latency, never trained; accuracy 0 is a
            # placeholder (trained: false) and the constraint keeps it off the front.
            recorder.set(trained=False)
            status = Status.REJECTED_PREDICTED if screening.source == "predicted" else Status.REJECTED_MEASURED
            return self._finish(trial, 0.0, screening.latency_ms, status)

        train_size = self.config.training_size(spec.input.size, self.dataset.image_size)
        recorder.set(train_size=train_size)
        rung = rung_holding(self.config.ladder_ms, screening.latency_ms) if self.config.ladder_ms else None
        band = None if rung is None else (rung.floor_ms, rung.budget_ms)  # a ladder's rungs are halved apart
        result = train_candidate(spec, self.dataset.at_size(train_size), self.config.train_config(), recorder,
                                 screening.latency_ms,
                                 None if is_reference else self.halving,
                                 lambda epoch: rung_population(records(self.study), epoch, trial.number, band))
        measured = screening.measurement
        if measured is None:
            measured = self.measure(spec)  # never while training runs
            self._calibrate(screening.profile_ms, measured.median_ms)
        recorder.set(measured_latency_ms=measured.median_ms,
                     latency_protocol={**measured.protocol, "p10_ms": measured.p10_ms, "p90_ms": measured.p90_ms,
                                       "runs": measured.runs})
        status = Status.COMPLETE if measured.median_ms <= budget else Status.OVER_BUDGET
        if status == Status.COMPLETE and result.weights is not None:  # only feasible trials export
            self.weights.keep(trial, digest, result.weights)
            recorder.set(weights_stored=True)
        return self._finish(trial, result.accuracy, measured.median_ms, status)

    def _calibrate(self, profile_ms: float | None, measured_ms: float) -> None:
        """A measured network teaches the profile screen this host's speed."""
        if profile_ms is not None and isinstance(self.screen, ProfileScreen):
            self.screen.observe(profile_ms, measured_ms)

    def _claim(self, trial: optuna.Trial, piece: str) -> TrialRecord | None:
        """Claim ``piece`` for ``trial``. ``None``: this trial does the work. Otherwise another trial
        holds it: wait until that trial ends and return its record (complete or stopped early);
        if it failed, take the work over."""
        from optuna.storages import fail_stale_trials

        waited = False
        while (holder := self.claims.claim(piece, trial.number)) is not None:
            record = next((r for r in records(self.study) if r.number == holder), None)
            if record is not None and record.state in (TrialState.COMPLETE, TrialState.PRUNED):
                return record
            if record is None or record.state == TrialState.FAIL:
                if self.claims.take_over(piece, holder, trial.number):
                    return None
                continue  # another worker took it over first: wait for that one
            if not waited:
                self.notify(f"trial {trial.number}: trial {holder} (another worker) is training the same network; "
                            "waiting for its result instead of training it twice")
                waited = True
            time.sleep(self.poll_seconds)
            fail_stale_trials(self.study)  # a holder whose worker died is failed here, and its work taken over
        return None

    def evaluated(self, digest: str) -> TrialRecord | None:
        """An earlier complete search trial of the same network, if any."""
        for record in records(self.study, (TrialState.COMPLETE,)):
            if record.spec_hash == digest and not record.is_reference and record.values is not None:
                return record
        return None

    def _finish(self, trial: optuna.Trial, accuracy: float, latency_ms: float, status: Status) -> Outcome:
        trial.set_constraint(BUDGET_CONSTRAINT, latency_ms - self.config.budget_ms)
        return Outcome(accuracy, latency_ms, status)


__all__ = ["BUDGET_CONSTRAINT", "Outcome", "TrialEvaluator", "record_spec"]
