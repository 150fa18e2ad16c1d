"""Proxy training: a few epochs at the dataset's resolution, with BatchNorm handled on purpose.

Keras' MobileNets use BatchNorm momentum 0.99-0.999: over a handful of short epochs
their moving statistics never converge and validation accuracy sits at chance. Proxy
training therefore trains a copy of the spec whose only differences are the input size
(the dataset's), the classes (the dataset's) and the BatchNorm momentum (0.9 by
default). The searched spec, its hash, its latency and its MACs stay those of the
deployment network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from archsearch.data import Dataset
from archsearch.errors import ArchsearchError, SpecError
from archsearch.spec import NetworkSpec, parse_spec, spec_to_dict


class TrainingError(ArchsearchError):
    """Training could not run or diverged."""


@dataclass(frozen=True)
class TrainConfig:
    """How candidates are trained; part of a study's recorded configuration."""

    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    batchnorm_momentum: float = 0.9
    seed: int = 0


@dataclass
class TrainResult:
    accuracy: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    weights: bytes | None = None
    """The trained weights (``weights_to_bytes``) when training ran to the end."""


EpochHook = Callable[[int, dict[str, float]], bool]
"""Called after each epoch with (epochs done, metrics); returning False stops training."""


def training_spec(spec: NetworkSpec, dataset: Dataset, config: TrainConfig) -> NetworkSpec:
    """The copy of ``spec`` that is trained: dataset resolution and classes, proxy BatchNorm momentum."""
    data = spec_to_dict(spec)
    data["input"]["size"] = dataset.image_size
    data["classes"] = dataset.classes
    data["batchnorm"]["momentum"] = config.batchnorm_momentum
    try:
        return parse_spec(data)
    except SpecError as error:
        raise TrainingError(f"cannot train at {dataset.image_size}x{dataset.image_size}: {error}") from None


def model_inputs(spec: NetworkSpec, images: np.ndarray) -> np.ndarray:
    """Images in [0, 255] as the spec expects them (``preprocessing: none`` wants [-1, 1])."""
    return images / 127.5 - 1.0 if spec.input.preprocessing == "none" else images


def train_spec(spec: NetworkSpec, dataset: Dataset, config: TrainConfig = TrainConfig(),
               on_epoch: EpochHook | None = None) -> TrainResult:
    """Train ``spec`` (via ``training_spec``) and return validation accuracy per epoch."""
    import keras

    from archsearch.compile import compile_model, weights_to_bytes

    trained = training_spec(spec, dataset, config)
    keras.utils.set_random_seed(config.seed)
    model = compile_model(trained)
    steps = math.ceil(len(dataset.x_train) / config.batch_size) * config.epochs
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train, x_val = model_inputs(trained, dataset.x_train), model_inputs(trained, dataset.x_val)

    result = TrainResult(accuracy=0.0, epochs=0)
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        fit = model.fit(x_train, dataset.y_train, batch_size=config.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                        shuffle=True, verbose=0)
        loss = float(fit.history["loss"][-1])
        if not math.isfinite(loss):
            raise TrainingError(f"loss became {loss} in epoch {epoch}")
        val_loss, val_accuracy = model.evaluate(x_val, dataset.y_val, batch_size=256, verbose=0)
        metrics = {"epoch": epoch, "loss": loss, "accuracy": float(fit.history["accuracy"][-1]),
                   "val_loss": float(val_loss), "val_accuracy": float(val_accuracy),
                   "seconds": time.perf_counter() - started}
        result.history.append(metrics)
        result.accuracy, result.epochs = float(val_accuracy), epoch
        if on_epoch is not None and epoch < config.epochs and not on_epoch(epoch, metrics):
            result.stopped_early = True
            break
    result.seconds = time.perf_counter() - started
    if not result.stopped_early:
        result.weights = weights_to_bytes(model)
    keras.backend.clear_session()
    return result
