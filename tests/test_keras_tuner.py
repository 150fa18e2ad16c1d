"""Keras Tuner's own RandomSearch over a built-in archsearch space, under a measured latency budget."""

from __future__ import annotations

import keras_tuner
import pytest

from archsearch.data import load_dataset
from archsearch.errors import ArchsearchError
from archsearch.integrations.keras_tuner import OBJECTIVE, SpaceHyperModel
from archsearch.space import load_space


@pytest.mark.slow  # a real search, about 50 s: CI runs it with -m slow
def test_random_search_over_a_built_in_space_records_latency_and_respects_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    data = load_dataset("digits")
    budget = 5.0  # small mobilenetv3 points fit, most do not (host-dependent: both branches are checked)
    hypermodel = SpaceHyperModel("mobilenetv3", budget_ms=budget, image_size=data.image_size, classes=data.classes)
    tuner = keras_tuner.RandomSearch(hypermodel, objective=OBJECTIVE, max_trials=3, seed=11,
                                     directory=str(tmp_path / "kt"), project_name="search")
    tuner.search(data.x_train[:256], data.y_train[:256], validation_data=(data.x_val[:128], data.y_val[:128]),
                 epochs=1, batch_size=64, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 3 and all(t.status == "COMPLETED" for t in trials)
    space = load_space("mobilenetv3")
    for trial in trials:
        latency = trial.metrics.get_last_value("latency_ms")
        within = trial.metrics.get_last_value("within_budget")
        assert latency > 0 and within == float(latency <= budget)
        spec = hypermodel.spec(trial.hyperparameters)  # the hyperparameters name an archsearch spec
        assert spec.classes == data.classes and spec.input.size in space.parameters[0].choices
        if latency > budget:  # over budget: never trained, can never be best
            assert trial.metrics.get_last_value("epochs_trained") == 0 and trial.score == 0.0
        else:
            assert trial.metrics.get_last_value("epochs_trained") == 1
    best = tuner.oracle.get_best_trials(1)[0]
    if any(t.metrics.get_last_value("within_budget") for t in trials):
        assert best.metrics.get_last_value("within_budget") == 1.0


def test_hypermodel_rejects_a_nonsense_budget():
    with pytest.raises(ArchsearchError, match="budget_ms must be a positive number"):
        SpaceHyperModel("mobilenetv3", budget_ms=0, image_size=32, classes=10)


def test_a_network_over_budget_is_measured_but_never_trained(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    hypermodel = SpaceHyperModel("shufflenetv2", budget_ms=0.001, image_size=32, classes=10)
    hp = keras_tuner.HyperParameters()
    hypermodel.spec(hp)  # registers the space's parameters at their first values

    class Untrainable:
        def fit(self, *args, **kwargs):
            raise AssertionError("a network over the budget was trained")

    metrics = hypermodel.fit(hp, Untrainable(), None, None, epochs=1)
    assert metrics[OBJECTIVE] == 0.0 and metrics["within_budget"] == 0.0 and metrics["epochs_trained"] == 0
    assert metrics["latency_ms"] > 0.001
