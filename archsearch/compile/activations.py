"""Activation names of the schema, as tensor functions and as Keras layers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from archsearch.errors import UnknownNameError


def _hard_sigmoid(x: Any) -> Any:
    return ops.relu6(x + 3.0) * (1.0 / 6.0)


def _hard_swish(x: Any) -> Any:
    return x * _hard_sigmoid(x)


ACTIVATION_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "relu": ops.relu,
    "relu6": ops.relu6,
    "hswish": _hard_swish,
    "hsigmoid": _hard_sigmoid,
    "swish": ops.silu,
    "sigmoid": ops.sigmoid,
    "gelu": ops.gelu,
    "linear": lambda x: x,
}


def activation_fn(name: str) -> Callable[[Any], Any]:
    """The tensor function for an activation name of the schema."""
    try:
        return ACTIVATION_FUNCTIONS[name]
    except KeyError:
        raise UnknownNameError("activation", name, sorted(ACTIVATION_FUNCTIONS)) from None


def activation_layer(name: str, layer_name: str) -> keras.layers.Layer:
    """A Keras layer applying an activation, using built-in layers where Keras has them."""
    from archsearch.compile.layers import HardSigmoid, HardSwish

    if name == "hswish":
        return HardSwish(name=layer_name)
    if name == "hsigmoid":
        return HardSigmoid(name=layer_name)
    if name == "relu":
        return keras.layers.ReLU(name=layer_name)
    if name == "relu6":
        return keras.layers.ReLU(6.0, name=layer_name)
    activation_fn(name)  # validates the name
    return keras.layers.Activation(name, name=layer_name)
