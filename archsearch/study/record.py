"""The trial record: every fact archsearch stores about a trial, declared once, with its type.

Facts live as Optuna user attributes, under the field names below, so optuna-dashboard
and any Optuna client read them with no archsearch code. This module is their only
owner: writers go through ``TrialRecorder`` (a misspelt field is an error, not a new
attribute), readers through ``TrialRecord.of(trial)``. Studies written before this
module existed used the same names, so they read unchanged.

The study's recorded configuration (``CONFIG_ATTR``) is a study user attribute and
lives here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

CONFIG_ATTR = "archsearch:config"
"""Study user attribute holding ``StudyConfig.identity()``: what a resume must match."""

PROTOCOL_ATTR = "archsearch:accuracy_protocol"
"""Study user attribute holding ``AccuracyProtocol.as_dict()``: what the stored accuracies are."""

INTERRUPTED = "interrupted: the process ended while this trial ran"
"""``failure_reason`` of a trial a killed process left running; it does not count."""

SURPLUS = "surplus: the study reached its trial count while this worker started the trial"
"""``failure_reason`` of a trial a worker started as another worker's filled the count; it does not count."""

FAMILY_ATTR = "archsearch:family"
"""Study user attribute holding the last ``archsearch family`` result (what ``family.build_family`` returns)."""

LADDER_ATTR = "archsearch:ladder_unreachable"
"""Study user attribute: rungs of the ladder no draw of the space was estimated to reach, with the figures."""

TRIALS_ATTR = "archsearch:trials"
"""Study user attribute holding the study's trial count: every worker stops at it."""


class Status(StrEnum):
    """How a trial ended, as archsearch sees it (Optuna's state is coarser)."""

    COMPLETE = "complete"
    OVER_BUDGET = "over_budget"
    REJECTED_PREDICTED = "rejected_predicted"
    REJECTED_MEASURED = "rejected_measured"
    STOPPED_EARLY = "stopped_early"
    DUPLICATE = "duplicate"
    FAILED = "failed"


@dataclass(frozen=True)
class TrialRecord:
    """A trial as archsearch reads it: Optuna's number, state, values, constraints, plus the stored facts."""

    number: int
    state: TrialState
    values: tuple[float, ...] | None
    constraints: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    """The sampler's parameters (Optuna's ``trial.params``); empty for references."""
    retry_history: tuple[int, ...] = ()
    """Earlier trials this one retries, oldest first: each died with its worker (Optuna's heartbeat)."""
    # ----- stored facts (user attributes), in the order a trial learns them -----
    worker: str | None = None
    """The worker that ran the trial (host:pid): studies on a server have several."""
    reference: str | None = None
    """The reference network this trial trained, for baseline trials."""
    aimed_at_ms: float | None = None
    """The ladder rung (its budget) this search trial was drawn for, when the ladder chose it (``study.ladder``)."""
    warm_start: str | None = None
    """The reference whose configuration, projected onto the space, this search trial was started from."""
    spec: dict[str, Any] | None = None
    """Canonical JSON of the deployment spec."""
    spec_hash: str | None = None
    spec_name: str | None = None
    param_count: int | None = None
    """Parameters of the deployment network (stored as ``params``)."""
    macs: int | None = None
    input_size: int | None = None
    duplicate_of: int | None = None
    """The earlier trial with the same spec whose result this trial reused."""
    latency_source: str | None = None
    """``predicted`` or ``measured``: how ``screen_latency_ms`` was obtained."""
    screen_latency_ms: float | None = None
    """The latency that decided whether the candidate was trained."""
    predicted_latency_ms: float | None = None
    profile_latency_ms: float | None = None
    """The device profile's own prediction, before this study's calibration (``ProfileScreen``)."""
    measured_latency_ms: float | None = None
    latency_protocol: dict[str, Any] | None = None
    """Backend, versions, threads, device, runs, p10/p90 of ``measured_latency_ms``."""
    trained: bool | None = None
    train_size: int | None = None
    """The resolution the candidate was trained at (its weights are for this input size)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: epoch, loss, accuracy, val_loss, val_accuracy, seconds."""
    accuracy: float | None = None
    train_seconds: float | None = None
    epochs_trained: int | None = None
    weights_stored: bool = False
    weights_artifact: str | None = None
    """Optuna artifact id of the trained weights (``study.weights``); absent: older studies kept them in the DB."""
    status: str | None = None
    failure_reason: str | None = None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        """Read a stored trial. Attributes archsearch does not know are ignored."""
        attrs = trial.user_attrs
        stored = {name: attrs[key] for key, name in _FIELD_BY_ATTR.items() if key in attrs}
        return cls(number=trial.number, state=trial.state,
                   values=tuple(trial.values) if trial.values is not None else None,
                   constraints=dict(trial.constraints), params=dict(trial.params),
                   retry_history=tuple(trial.system_attrs.get("retry_history", ())), **stored)

    @property
    def label(self) -> str:
        """The status shown to people: archsearch's, or Optuna's state when none was stored."""
        if self.died_with_worker:
            return "failed" if self.retry_history else "worker died"
        return self.status or self.state.name.lower()

    @property
    def died_with_worker(self) -> bool:
        """Failed with no reason of its own: Optuna's heartbeat found its worker gone (killed, out of memory)."""
        return self.state == TrialState.FAIL and self.failure_reason is None

    @property
    def reason(self) -> str | None:
        """Why the trial failed, in words (stored, or told by its retry history)."""
        if self.died_with_worker:
            if self.retry_history:
                tries = ", ".join(str(n) for n in (*self.retry_history, self.number))
                return f"killed its worker twice (trials {tries}): not retried again"
            return "its worker died during the trial (no heartbeat); retried once"
        return self.failure_reason

    @property
    def is_reference(self) -> bool:
        return self.reference is not None

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None

    @property
    def is_complete(self) -> bool:
        return self.state == TrialState.COMPLETE and self.values is not None and len(self.values) == 2

    @property
    def feasible(self) -> bool:
        """Within every constraint (Optuna's convention: a value <= 0 is satisfied)."""
        return all(value <= 0 for value in self.constraints.values())

    @property
    def interrupted(self) -> bool:
        """Ended without a result of its own that counts: interrupted, surplus, or died and retried."""
        return (self.failure_reason in (INTERRUPTED, SURPLUS)
                or (self.died_with_worker and not self.retry_history))

    @property
    def counts_as_search_trial(self) -> bool:
        """Finished, not a reference, not interrupted: what counts toward a study's ``trials``.

        A trial whose worker died is retried once and the retry counts instead; a retry that
        kills its worker again counts, as failed.
        """
        return self.state.is_finished() and not self.is_reference and not self.interrupted

    @property
    def latency_spread(self) -> tuple[float | None, float | None]:
        """(p10, p90) of the measured latency, when it was measured."""
        protocol = self.latency_protocol or {}
        return protocol.get("p10_ms"), protocol.get("p90_ms")

    def accuracy_at(self, epoch: int) -> float | None:
        """Validation accuracy after ``epoch`` epochs, from the stored history."""
        for row in self.history:
            if row.get("epoch") == epoch:
                return float(row["val_accuracy"])
        return None


_ATTR_BY_FIELD: dict[str, str] = {
    f.name: ("params" if f.name == "param_count" else f.name)
    for f in fields(TrialRecord)
    if f.name not in {"number", "state", "values", "constraints", "params", "retry_history"}
}
"""Record field -> user attribute name (``param_count`` is stored as ``params``, its name since the first study)."""
_FIELD_BY_ATTR = {attr: name for name, attr in _ATTR_BY_FIELD.items()}


class TrialRecorder:
    """Writes record fields as user attributes, as soon as each is known.

    ``TrialRecorder.running(trial)`` writes to a trial in progress;
    ``TrialRecorder.stored(storage, trial_id)`` to one already in storage (for example
    a trial a killed process left running).
    """

    def __init__(self, set_attr: Callable[[str, Any], None]) -> None:
        self._set_attr = set_attr

    @classmethod
    def running(cls, trial: optuna.Trial) -> TrialRecorder:
        return cls(trial.set_user_attr)

    @classmethod
    def stored(cls, storage: optuna.storages.BaseStorage, trial_id: int) -> TrialRecorder:
        return cls(lambda key, value: storage.set_trial_user_attr(trial_id, key, value))

    def set(self, **facts: Any) -> None:
        """Store each fact under its attribute name; an unknown field raises ``TypeError``."""
        for name, value in facts.items():
            try:
                key = _ATTR_BY_FIELD[name]
            except KeyError:
                raise TypeError(f"{name!r} is not a field of TrialRecord") from None
            self._set_attr(key, value.value if isinstance(value, StrEnum) else value)

    def copy_result(self, source: TrialRecord) -> None:
        """Store ``source``'s latency and training facts here (a trial that reuses an identical spec)."""
        self.set(**{name: getattr(source, name) for name in _REUSED_FIELDS if getattr(source, name) is not None})


_REUSED_FIELDS = ("predicted_latency_ms", "measured_latency_ms", "screen_latency_ms", "latency_source",
                  "latency_protocol", "accuracy", "history", "train_seconds", "trained", "train_size")


def records(study: optuna.Study, states: tuple[TrialState, ...] | None = None) -> list[TrialRecord]:
    """Every trial of ``study`` (optionally only those in ``states``) as a record, in trial order."""
    return [TrialRecord.of(t) for t in study.get_trials(deepcopy=False, states=states)]


def recorded_config(study: optuna.Study) -> dict[str, Any]:
    """The settings the study recorded when it started (empty for a study archsearch did not make)."""
    return dict(study.user_attrs.get(CONFIG_ATTR) or {})


__all__ = ["CONFIG_ATTR", "FAMILY_ATTR", "INTERRUPTED", "LADDER_ATTR", "PROTOCOL_ATTR", "SURPLUS", "TRIALS_ATTR",
           "Status", "TrialRecord", "TrialRecorder", "recorded_config", "records"]
