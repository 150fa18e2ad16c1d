"""One trial, step by step: reuse an identical spec, screen latency, reject or train, measure, keep weights.

Each step is a function or object of its own (``screening``, ``training``, ``weights``);
``TrialEvaluator`` only puts them in order and records what each learned, as soon as
it is known, through the trial record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from archsearch.cost import network_cost
from archsearch.data import Dataset
from archsearch.spec import NetworkSpec, canonical_json, spec_hash
from archsearch.study.config import StudyConfig
from archsearch.study.fidelity import SuccessiveHalving, rung_population
from archsearch.study.record import Status, TrialRecord, TrialRecorder, records
from archsearch.study.screening import LatencyScreen, Measure, ProfileScreen
from archsearch.study.training import train_candidate
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
                 screen: LatencyScreen | ProfileScreen, measure: Measure, weights: TrialWeightStore,
                 halving: SuccessiveHalving | None) -> None:
        self.config, self.study, self.dataset = config, study, dataset
        self.screen, self.measure, self.weights, self.halving = screen, measure, weights, halving

    def evaluate(self, trial: optuna.Trial, spec: NetworkSpec, is_reference: bool = False) -> Outcome:
        """Run the steps for ``spec``; raises ``StoppedEarly`` when successive halving stops it."""
        recorder = TrialRecorder.running(trial)
        budget = self.config.budget_ms
        digest = record_spec(recorder, spec)

        previous = None if is_reference else self.evaluated(digest)
        if previous is not None:  # the same network: reuse its result, do not train it again
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
        result = train_candidate(spec, self.dataset.at_size(train_size), self.config.train_config(), recorder,
                                 screening.latency_ms,
                                 None if is_reference else self.halving,
                                 lambda epoch: rung_population(records(self.study), epoch, trial.number))
        measured = screening.measurement
        if measured is None:
            measured = self.measure(spec)  # never while training runs
            self._calibrate(screening.profile_ms, measured.median_ms)
        recorder.set(measured_latency_ms=measured.median_ms,
                     latency_protocol={**measured.protocol, "p10_ms": measured.p10_ms, "p90_ms": measured.p90_ms,
                                       "runs": measured.runs})
        status = Status.COMPLETE if measured.median_ms <= budget else Status.OVER_BUDGET
        if status == Status.COMPLETE and result.weights is not None:  # only feasible trials export
            self.weights.keep(trial.number, digest, result.weights)
            recorder.set(weights_stored=True)
        return self._finish(trial, result.accuracy, measured.median_ms, status)

    def _calibrate(self, profile_ms: float | None, measured_ms: float) -> None:
        """A measured network teaches the profile screen this host's speed."""
        if profile_ms is not None and isinstance(self.screen, ProfileScreen):
            self.screen.observe(profile_ms, measured_ms)

    def evaluated(self, digest: str) -> TrialRecord | None:
        """An earlier complete search trial of the same network, if any."""
        from optuna.trial import TrialState

        for record in records(self.study, (TrialState.COMPLETE,)):
            if record.spec_hash == digest and not record.is_reference and record.values is not None:
                return record
        return None

    def _finish(self, trial: optuna.Trial, accuracy: float, latency_ms: float, status: Status) -> Outcome:
        trial.set_constraint(BUDGET_CONSTRAINT, latency_ms - self.config.budget_ms)
        return Outcome(accuracy, latency_ms, status)


__all__ = ["BUDGET_CONSTRAINT", "Outcome", "TrialEvaluator", "record_spec"]
