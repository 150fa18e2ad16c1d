"""The network-wide settings builders share, with the conv/BN/activation primitives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from archsearch.compile.activations import activation_layer
from archsearch.spec import BatchNormSpec, SqueezeExciteSpec


# EfficientNet's initializers: He-style for convolutions, small uniform for dense. A new
# one per layer: an initializer made once at import takes a fixed seed from Python's
# unseeded ``random``, so ``keras.utils.set_random_seed`` would not change the weights and
# every kernel of one shape would start identical.
def conv_initializer() -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


def dense_initializer() -> keras.initializers.Initializer:
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform")


@dataclass(frozen=True)
class BuildContext:
    """What every builder needs beyond its own block: batch norm and SE conventions."""

    batchnorm: BatchNormSpec
    squeeze_excite: SqueezeExciteSpec

    def batch_norm(self, x: Any, name: str) -> Any:
        return keras.layers.BatchNormalization(
            momentum=self.batchnorm.momentum, epsilon=self.batchnorm.epsilon, name=name
        )(x)

    def activation(self, x: Any, activation: str | None, name: str) -> Any:
        if activation is None or activation == "linear":
            return x
        return activation_layer(activation, name)(x)

    def conv_bn_act(self, x: Any, filters: int, kernel: int, stride: int, activation: str | None, name: str) -> Any:
        """Convolution ('same' padding, no bias), batch norm, then the activation if any."""
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False,
            kernel_initializer=conv_initializer(), name=f"{name}_conv",
        )(x)
        x = self.batch_norm(x, f"{name}_bn")
        return self.activation(x, activation, f"{name}_act")

    def dw_bn_act(self, x: Any, kernel: int, stride: int, activation: str | None, name: str) -> Any:
        """Depthwise convolution ('same' padding, no bias), batch norm, activation if any."""
        x = keras.layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False,
            depthwise_initializer=conv_initializer(), name=f"{name}_dwconv",
        )(x)
        x = self.batch_norm(x, f"{name}_bn")
        return self.activation(x, activation, f"{name}_act")
