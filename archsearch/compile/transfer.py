"""Copy weights between a Keras model and its compiled twin.

Weights are matched by position: the model's layers in order, each layer's weights
in order (kernels, biases, then batch-norm gamma, beta, moving mean and variance).
A twin built from a reference spec creates its layers in the order Keras
applications do, so ``keras.applications`` weights (ImageNet ones included, from
Keras' own cache) load into it. Where a 1x1 convolution on a pooled map meets a
dense layer, the kernel is reshaped. Any other mismatch raises before anything is
written.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from archsearch.errors import WeightTransferError


@dataclass
class _Slot:
    layer: str
    name: str
    variable: keras.Variable

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.variable.shape)

    def describe(self) -> str:
        return f"{self.layer}/{self.name} {self.shape}"


def _slots(model: keras.Model) -> list[_Slot]:
    return [_Slot(layer.name, weight.name, weight) for layer in model.layers for weight in layer.weights]


def _normalization_rescales(model: keras.Model) -> dict[str, np.ndarray]:
    """Scales of Rescaling layers that directly follow a Normalization layer.

    Keras' ImageNet EfficientNets store the channel standard deviation as the
    variance and divide again by its square root in an extra Rescaling layer. A twin
    normalises in one step, so the scale is folded into the variance.
    """
    folds: dict[str, np.ndarray] = {}
    layers = model.layers
    for current, following in zip(layers, layers[1:]):
        if (isinstance(current, keras.layers.Normalization) and isinstance(following, keras.layers.Rescaling)
                and following.input is current.output and not np.any(np.asarray(following.offset))):
            folds[current.name] = np.asarray(following.scale, dtype="float64")
    return folds


def _as_dense(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """A dense kernel's shape, or a 1x1 convolution kernel's as if it were dense."""
    if len(shape) == 2:
        return shape
    if len(shape) == 4 and shape[:2] == (1, 1):
        return shape[2:]
    return None


def _fit(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` shaped for ``shape``: as is, or a 1x1 conv kernel <-> dense kernel reshape."""
    if array.shape == shape:
        return array
    dense = _as_dense(array.shape)
    if dense is not None and dense == _as_dense(shape):
        return array.reshape(shape)
    return None


def transfer_weights(source: keras.Model, destination: keras.Model) -> None:
    """Copy every weight of ``source`` into ``destination`` (all or nothing).

    Raises ``WeightTransferError`` naming the first pair of weights that do not fit,
    or the counts when one model has weights the other lacks.
    """
    sources, destinations = _slots(source), _slots(destination)
    folds = _normalization_rescales(source)
    arrays: list[np.ndarray] = []
    for index, (src, dst) in enumerate(zip(sources, destinations)):
        array = keras.ops.convert_to_numpy(src.variable)
        if src.layer in folds and src.name == "variance":
            array = (array / np.square(folds[src.layer])).astype(array.dtype)
        fitted = _fit(array, dst.shape)
        if fitted is None:
            raise WeightTransferError(
                f"weight {index} does not fit: source {src.describe()} vs destination {dst.describe()}"
            )
        arrays.append(fitted)
    if len(sources) != len(destinations):
        longer, which = (sources, "source") if len(sources) > len(destinations) else (destinations, "destination")
        extra = longer[min(len(sources), len(destinations))]
        raise WeightTransferError(
            f"source has {len(sources)} weights, destination {len(destinations)}; "
            f"first unmatched in the {which}: {extra.describe()}"
        )
    for dst, array in zip(destinations, arrays):
        dst.variable.assign(array.astype(dst.variable.dtype) if array.dtype != dst.variable.dtype else array)
    refresh_derived_state(destination)


def refresh_derived_state(model: keras.Model) -> None:
    """Recompute state layers derive from their weights (Normalization's mean and variance).

    Keras does this when it loads weights from a file, but not on ``assign`` or
    ``set_weights``.
    """
    for layer in model.layers:
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize) and layer.built:
            finalize()
