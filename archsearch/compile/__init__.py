"""Spec -> Keras. Imports TensorFlow: keep it out of the schema and cost layers."""

from archsearch.compile.activations import activation_fn, activation_layer
from archsearch.compile.context import BuildContext
from archsearch.compile.layers import (
    CUSTOM_LAYERS,
    ChannelShuffle,
    ChannelSplit,
    HardSigmoid,
    HardSwish,
    SqueezeExcite,
)
from archsearch.compile.macs import count_model_macs, layer_macs
from archsearch.compile.network import compile_model
from archsearch.compile.registry import BUILDERS, get_builder, register_builder
from archsearch.compile.saving import load_keras_model, load_weights_from_bytes, weights_to_bytes
from archsearch.compile.transfer import transfer_weights

__all__ = [
    "BUILDERS", "BuildContext", "CUSTOM_LAYERS", "ChannelShuffle", "ChannelSplit", "HardSigmoid", "HardSwish",
    "SqueezeExcite", "activation_fn", "activation_layer", "compile_model", "count_model_macs", "get_builder",
    "layer_macs", "load_keras_model", "load_weights_from_bytes", "register_builder", "transfer_weights",
    "weights_to_bytes",
]
