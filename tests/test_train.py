"""Proxy training: the per-epoch schedule, one trace per candidate, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_SPACE

from archsearch.data import Dataset
from archsearch.spec import parse_spec
from archsearch.train import TrainConfig, cosine_learning_rate, prepare_training, train_spec


def test_cosine_learning_rate_starts_at_initial_and_decays() -> None:
    rates = [cosine_learning_rate(0.01, epoch, 6) for epoch in range(1, 7)]
    assert rates[0] == pytest.approx(0.01)
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))


def test_prepared_model_traces_its_training_step_once(keras_module) -> None:
    keras = keras_module
    calls: list[bool | None] = []

    class Probe(keras.layers.Layer):
        def call(self, x, training=None):
            calls.append(training)  # runs only while TensorFlow traces
            return x

    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(Probe()(inputs)))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 6), dtype=np.float32), rng.integers(0, 3, 100)
    prepare_training(model, x, y)
    calls.clear()
    for epoch in (1, 2):  # 100 samples in batches of 32: the short last batch must not retrace either
        history = model.fit(x, y, batch_size=32, epochs=epoch, initial_epoch=epoch - 1, verbose=0)
    assert calls == [True]
    assert 0.0 <= history.history["accuracy"][-1] <= 1.0  # the metrics built early still report


def _tiny_dataset() -> Dataset:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 90)
    images = rng.normal(60.0, 20.0, (90, 16, 16, 3)).astype("float32")
    images[np.arange(90), 4:12, 4:12, labels] += 150.0  # a learnable signal: the class is the bright channel
    images = np.clip(images, 0, 255)
    return Dataset("tiny", images[:70], labels[:70], images[70:], labels[70:], 3)


def test_same_seed_same_training(keras_module) -> None:
    spec = parse_spec({**TINY_SPACE["base"], "name": "tiny", "classes": 3})
    dataset = _tiny_dataset()
    config = TrainConfig(epochs=3, batch_size=16, seed=3)
    first, second = train_spec(spec, dataset, config), train_spec(spec, dataset, config)
    assert [h["val_loss"] for h in first.history] == pytest.approx([h["val_loss"] for h in second.history], rel=1e-5)
    assert first.epochs == 3 and first.weights is not None
    other = train_spec(spec, dataset, TrainConfig(epochs=3, batch_size=16, seed=4))
    assert [h["loss"] for h in other.history] != pytest.approx([h["loss"] for h in first.history], rel=1e-5)


def test_validating_only_the_last_epoch_trains_the_same_network(keras_module) -> None:
    """The family skips intermediate evaluations; the weights and the reported accuracy must not change."""
    spec = parse_spec({**TINY_SPACE["base"], "name": "tiny", "classes": 3})
    dataset = _tiny_dataset()
    config = TrainConfig(epochs=3, batch_size=16, seed=3)
    every, last = train_spec(spec, dataset, config), train_spec(spec, dataset, config, validate_each_epoch=False)
    assert last.weights == every.weights and last.accuracy == every.accuracy
    assert ["val_accuracy" in h for h in last.history] == [False, False, True]
    stopped = train_spec(spec, dataset, config, on_epoch=lambda epoch, _: epoch < 2, validate_each_epoch=False)
    assert stopped.stopped_early and stopped.epochs == 2 and 0 < stopped.accuracy <= 1
