"""The steps of one trial, each on its own: screening decisions, kept weights, spec facts, training with halving."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from conftest import TINY_SPACE

from archsearch.space import SearchSpace
from archsearch.study.fidelity import RungEntry, SuccessiveHalving
from archsearch.study.record import TrialRecord, TrialRecorder
from archsearch.study.screening import Screening
from archsearch.study.trial import record_spec
from archsearch.study.weights import DatabaseWeights, MissingWeightsError


def test_a_prediction_gets_the_margin_a_measurement_does_not():
    assert not Screening(10.9, "predicted").rejects(10.0, 0.1)
    assert Screening(11.1, "predicted").rejects(10.0, 0.1)
    assert Screening(10.1, "measured").rejects(10.0, 0.1)
    assert not Screening(10.0, "measured").rejects(10.0, 0.1)


def test_database_weights_of_older_studies_are_guarded_by_the_spec_hash(tmp_path):
    from archsearch.db import Store, TrialWeights

    url = f"sqlite:///{tmp_path / 'w.db'}"
    with Store.at(url).session() as session:  # as studies wrote them before the artifact store
        session.add(TrialWeights(study_name="study", trial_number=3, spec_hash="abc", weights=b"weights"))
    store = DatabaseWeights(url, "study")
    assert store.load(3, "abc") == b"weights"
    with pytest.raises(MissingWeightsError):
        store.load(3, "another network")  # a study recreated under the same name
    with pytest.raises(MissingWeightsError):
        store.load(4, "abc")


def _tiny_spec():
    space = SearchSpace.model_validate(TINY_SPACE).with_overrides(classes=10)
    return space.sample(np.random.default_rng(0))


def test_record_spec_stores_the_network_and_its_costs():
    from archsearch.cost import network_cost
    from archsearch.spec import spec_hash

    spec = _tiny_spec()
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    assert record_spec(TrialRecorder.running(trial), spec) == spec_hash(spec)
    study.tell(trial, [0.0, 1.0])
    record = TrialRecord.of(study.trials[0])
    assert record.param_count == network_cost(spec).params and record.input_size == spec.input.size
    assert record.spec_hash == spec_hash(spec) and record.spec["stages"]


def test_training_stops_a_candidate_dominated_at_its_rung_and_keeps_its_history():
    from archsearch.data import load_dataset
    from archsearch.study.training import StoppedEarly, train_candidate
    from archsearch.train import TrainConfig

    data = load_dataset("digits").at_size(16)
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    strong = [RungEntry(1.0, 0.1), RungEntry(1.0, 0.2), RungEntry(1.0, 0.3)]  # better in both, at epoch 2
    with pytest.raises(StoppedEarly, match="dominated at epoch 2"):
        train_candidate(_tiny_spec(), data, TrainConfig(epochs=3, batch_size=128), TrialRecorder.running(trial),
                        screen_latency_ms=5.0, halving=SuccessiveHalving(epochs=6), population=lambda epoch: strong)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    record = TrialRecord.of(study.trials[0])
    assert record.trained and record.epochs_trained == 2 and [row["epoch"] for row in record.history] == [1, 2]
