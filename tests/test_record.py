"""The trial record: one declaration of what a trial stores, read and written through it."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.study.record import INTERRUPTED, Status, TrialRecord, TrialRecorder


def test_recorder_writes_attributes_under_their_historic_names_and_records_read_them_back():
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    recorder = TrialRecorder.running(trial)
    recorder.set(spec_name="net", param_count=1234, macs=5678, status=Status.COMPLETE, duplicate_of=3,
                 history=[{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.75}],
                 latency_protocol={"p10_ms": 1.0, "p90_ms": 2.0})
    trial.set_constraint("latency_budget", -1.0)
    study.tell(trial, [0.75, 1.5])
    frozen = study.trials[0]
    # Plain Optuna sees the names every archsearch study has used (optuna-dashboard reads them).
    assert frozen.user_attrs["params"] == 1234 and frozen.user_attrs["status"] == "complete"
    record = TrialRecord.of(frozen)
    assert (record.param_count, record.macs, record.spec_name, record.duplicate_of) == (1234, 5678, "net", 3)
    assert record.is_duplicate and record.feasible and record.is_complete and not record.is_reference
    assert record.accuracy_at(2) == 0.75 and record.accuracy_at(3) is None
    assert record.latency_spread == (1.0, 2.0) and record.label == "complete"


def test_a_misspelt_field_is_an_error_not_a_new_attribute():
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    with pytest.raises(TypeError, match="duplicateof"):
        TrialRecorder.running(trial).set(duplicateof=1)
    assert trial.user_attrs == {}


def test_records_of_foreign_and_interrupted_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={
        "failure_reason": INTERRUPTED, "some_other_tool": 1}))
    record = TrialRecord.of(study.trials[0])
    assert record.interrupted and not record.counts_as_search_trial and record.label == "fail"
