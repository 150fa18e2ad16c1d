"""Serializable custom layers: hard activations, squeeze-and-excitation, channel ops.

Registered under the ``archsearch`` package name, so a saved ``.keras`` model loads
back wherever ``archsearch.compile`` has been imported (``archsearch.load_keras_model``
does that for you).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from archsearch.compile.activations import activation_fn

_register = keras.saving.register_keras_serializable(package="archsearch")


@_register
class HardSigmoid(keras.layers.Layer):
    """``relu6(x + 3) / 6``, the piecewise-linear sigmoid of MobileNetV3."""

    def call(self, inputs: Any) -> Any:
        return activation_fn("hsigmoid")(inputs)


@_register
class HardSwish(keras.layers.Layer):
    """``x * relu6(x + 3) / 6``; LiteRT fuses it into a single HARD_SWISH op."""

    def call(self, inputs: Any) -> Any:
        return activation_fn("hswish")(inputs)


@_register
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation: global average, reduce, activate, expand, gate, rescale.

    Weights are ``[reduce_kernel, reduce_bias, expand_kernel, expand_bias]``, the same
    numbers (and order) as Keras applications' pair of 1x1 convolutions.
    """

    def __init__(self, reduced: int, activation: str = "relu", gate: str = "hsigmoid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduced = int(reduced)
        self.activation = activation
        self.gate = gate

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = int(input_shape[-1])
        init = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
        self.reduce_kernel = self.add_weight(name="reduce_kernel", shape=(channels, self.reduced), initializer=init)
        self.reduce_bias = self.add_weight(name="reduce_bias", shape=(self.reduced,), initializer="zeros")
        self.expand_kernel = self.add_weight(name="expand_kernel", shape=(self.reduced, channels), initializer=init)
        self.expand_bias = self.add_weight(name="expand_bias", shape=(channels,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        # Kept 4-D as 1x1 convolutions: LiteRT/XNNPACK runs this graph faster than dense
        # layers on a squeezed vector followed by a broadcasting multiply.
        squeezed = ops.mean(inputs, axis=(1, 2), keepdims=True)
        hidden = ops.conv(squeezed, ops.reshape(self.reduce_kernel, (1, 1, -1, self.reduced))) + self.reduce_bias
        hidden = activation_fn(self.activation)(hidden)
        scale = ops.conv(hidden, ops.reshape(self.expand_kernel, (1, 1, self.reduced, -1))) + self.expand_bias
        return inputs * activation_fn(self.gate)(scale)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def multiply_accumulates(self) -> int:
        """MACs of the two dense layers (the rescale multiply is not a MAC)."""
        channels = int(self.reduce_kernel.shape[0])
        return 2 * channels * self.reduced

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reduced": self.reduced, "activation": self.activation, "gate": self.gate}


@_register
class ChannelSplit(keras.layers.Layer):
    """Split the channels into ``parts`` equal groups (ShuffleNetV2's stride-1 unit)."""

    def __init__(self, parts: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parts = int(parts)

    def call(self, inputs: Any) -> list[Any]:
        return ops.split(inputs, self.parts, axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> list[tuple[int | None, ...]]:
        part = (*input_shape[:-1], input_shape[-1] // self.parts)
        return [part] * self.parts

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "parts": self.parts}


@_register
class ChannelShuffle(keras.layers.Layer):
    """Interleave ``groups`` channel groups (reshape, transpose, reshape)."""

    def __init__(self, groups: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, inputs: Any) -> Any:
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        if height is None or width is None:
            height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        grouped = ops.reshape(inputs, (-1, height, width, self.groups, channels // self.groups))
        shuffled = ops.transpose(grouped, (0, 1, 2, 4, 3))
        return ops.reshape(shuffled, (-1, height, width, channels))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups}


CUSTOM_LAYERS: dict[str, type[keras.layers.Layer]] = {
    cls.__name__: cls for cls in (HardSigmoid, HardSwish, SqueezeExcite, ChannelSplit, ChannelShuffle)
}
