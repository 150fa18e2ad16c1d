"""Proxy training: a few epochs at the dataset's resolution, with BatchNorm handled on purpose.

Keras' MobileNets use BatchNorm momentum 0.99-0.999: over a handful of short epochs
their moving statistics never converge and validation accuracy sits at chance. Proxy
training therefore trains a copy of the spec whose only differences are the input size
(the dataset's), the classes (the dataset's) and the BatchNorm momentum (0.9 by
default). The searched spec, its hash, its latency and its MACs stay those of the
deployment network.

Most of a short proxy run used to be TensorFlow tracing the training step, twice:
Keras creates the optimizer, loss and metric variables inside the first trace, and
TensorFlow traces a function that created variables a second time. ``prepare_training``
creates them first, so the step is traced once; the learning rate is a plain value set
each epoch because Keras would evaluate a schedule once per variable inside the trace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from archsearch.data import Dataset
from archsearch.errors import ArchsearchError, SpecError
from archsearch.spec import NetworkSpec, parse_spec, spec_to_dict

if TYPE_CHECKING:
    import keras


class TrainingError(ArchsearchError):
    """Training could not run or diverged."""


@dataclass(frozen=True)
class TrainConfig:
    """The proxy-training recipe: the one source of its defaults (the study and Keras Tuner read them here)."""

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


def scaled_train_size(input_size: int, scale: float, multiple: int = 8) -> int:
    """``input_size * scale`` rounded to a multiple of ``multiple`` (at least ``multiple``): 224 x 0.25 -> 56."""
    return max(multiple, int(round(input_size * scale / multiple)) * multiple)


def proxy_spec(spec: NetworkSpec, image_size: int, classes: int, batchnorm_momentum: float) -> NetworkSpec:
    """The copy of ``spec`` that is trained: training resolution and classes, proxy BatchNorm momentum."""
    data = spec_to_dict(spec)
    data["input"]["size"] = image_size
    data["classes"] = classes
    data["batchnorm"]["momentum"] = batchnorm_momentum
    try:
        return parse_spec(data)
    except SpecError as error:
        raise TrainingError(f"cannot train at {image_size}x{image_size}: {error}") from None


def training_spec(spec: NetworkSpec, dataset: Dataset, config: TrainConfig) -> NetworkSpec:
    """``proxy_spec`` at the dataset's resolution and classes."""
    return proxy_spec(spec, dataset.image_size, dataset.classes, config.batchnorm_momentum)


def compile_for_training(model: keras.Model, config: TrainConfig) -> None:
    """Compile ``model`` with the recipe's optimizer, loss and metric (AdamW, sparse cross-entropy, accuracy).

    The learning rate is a plain value, not a LearningRateSchedule: Keras evaluates a
    schedule once per variable in the traced step (~3 s more tracing for a MobileNet).
    ``train_spec`` sets it per epoch (``cosine_learning_rate``).
    """
    import keras

    model.compile(optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def model_inputs(spec: NetworkSpec, images: np.ndarray) -> np.ndarray:
    """Images in [0, 255] as the spec expects them (``preprocessing: none`` wants [-1, 1])."""
    return images / 127.5 - 1.0 if spec.input.preprocessing == "none" else images


def cosine_learning_rate(initial: float, epoch: int, epochs: int) -> float:
    """Cosine decay by epoch: ``initial`` in epoch 1, falling toward 0 after the last."""
    return initial * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))


def prepare_training(model: keras.Model, x: Any, y: np.ndarray) -> None:
    """Create, eagerly, the variables a compiled ``model``'s first ``fit`` step would create.

    Without a distribution strategy Keras builds the optimizer, loss and metrics while
    tracing the first training step; TensorFlow must then trace the step again. Built
    here on two samples (metrics reset afterwards), the step is traced once.
    """
    model.optimizer.build(model.trainable_variables)
    predictions = model(x[:2], training=False)
    model.compute_loss(x[:2], y[:2], predictions)
    model.compute_metrics(x[:2], y[:2], predictions, sample_weight=None)
    model.reset_metrics()


def train_spec(spec: NetworkSpec, dataset: Dataset, config: TrainConfig = TrainConfig(),
               on_epoch: EpochHook | None = None, validate_each_epoch: bool = True) -> TrainResult:
    """Train ``spec`` (via ``training_spec``) and return its validation accuracy.

    The study validates after every epoch (its pruner reads each); a final training that
    only reports its last epoch passes ``validate_each_epoch=False`` and skips the others'
    evaluations (8 s of a 57-s epoch for MobileNetV3-Large at 224x224 here). Evaluating
    changes no weight, so both ways train the same network.
    """
    import keras
    import tensorflow as tf

    from archsearch.compile import compile_model, weights_to_bytes

    trained = training_spec(spec, dataset, config)
    keras.utils.set_random_seed(config.seed)
    model = compile_model(trained)
    compile_for_training(model, config)
    # Tensors once per training: given NumPy arrays, Keras copies them into a tensor on every ``fit``
    # and ``evaluate`` call (one per epoch here). The same batches, bit for bit, and less memory: peak
    # 4.7 GB instead of 5.3 GB for MobileNetV3-Small on the digits at 224x224, 3 epochs.
    x_train = tf.convert_to_tensor(model_inputs(trained, dataset.x_train))
    x_val = tf.convert_to_tensor(model_inputs(trained, dataset.x_val))
    prepare_training(model, x_train, dataset.y_train)

    result = TrainResult(accuracy=0.0, epochs=0)
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.optimizer.learning_rate = cosine_learning_rate(config.learning_rate, epoch, config.epochs)
        fit = model.fit(x_train, dataset.y_train, batch_size=config.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                        shuffle=True, verbose=0)
        loss = float(fit.history["loss"][-1])
        if not math.isfinite(loss):
            raise TrainingError(f"loss became {loss} in epoch {epoch}")
        metrics: dict[str, float] = {"epoch": epoch, "loss": loss, "accuracy": float(fit.history["accuracy"][-1])}
        if validate_each_epoch or epoch == config.epochs:
            val_loss, val_accuracy = model.evaluate(x_val, dataset.y_val, batch_size=256, verbose=0)
            metrics.update(val_loss=float(val_loss), val_accuracy=float(val_accuracy))
            result.accuracy = float(val_accuracy)
        metrics["seconds"] = time.perf_counter() - started
        result.history.append(metrics)
        result.epochs = epoch
        if on_epoch is not None and epoch < config.epochs and not on_epoch(epoch, metrics):
            result.stopped_early = True
            if "val_accuracy" not in metrics:  # a stopped training still reports where it stopped
                result.accuracy = float(model.evaluate(x_val, dataset.y_val, batch_size=256, verbose=0)[1])
            break
    result.seconds = time.perf_counter() - started
    if not result.stopped_early:
        result.weights = weights_to_bytes(model)
    keras.backend.clear_session()
    return result
