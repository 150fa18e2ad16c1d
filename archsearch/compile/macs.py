"""Multiply-accumulates counted over a built Keras model's layers.

An independent count to check ``archsearch.cost`` against, and to cost any Keras
model (``keras.applications`` included) the same way: convolutions, depthwise
convolutions and dense layers; pooling, activations and additions are not MACs.
"""

from __future__ import annotations

import math

import keras


def _spatial(shape: tuple[int | None, ...]) -> int:
    return math.prod(int(d) for d in shape[1:-1]) if len(shape) > 2 else 1


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of one layer at batch 1 (0 for layers without multiply-accumulates)."""
    custom = getattr(layer, "multiply_accumulates", None)
    if callable(custom):
        return int(custom())
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = layer.kernel.shape
        return kh * kw * channels * multiplier * _spatial(layer.output.shape)
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, cin, cout = layer.kernel.shape
        return kh * kw * cin * cout * _spatial(layer.output.shape)
    if isinstance(layer, keras.layers.Dense):
        cin, cout = layer.kernel.shape
        return cin * cout * _spatial(layer.output.shape)
    return 0


def count_model_macs(model: keras.Model) -> int:
    """Total MACs of a model at batch 1, summed over its layers."""
    return sum(layer_macs(layer) for layer in model.layers)
