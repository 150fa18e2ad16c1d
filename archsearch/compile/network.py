"""Spec -> keras.Model: input and preprocessing, stem, blocks by registry, head."""

from __future__ import annotations

import re
from typing import Any

import keras
import numpy as np

import archsearch.compile.blocks  # noqa: F401  (registers the built-in builders)
from archsearch.compile.context import BuildContext, dense_initializer
from archsearch.compile.registry import get_builder
from archsearch.spec import NetworkSpec, ResolvedNetwork, resolve

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def build_preprocessing(x: Any, net: ResolvedNetwork) -> tuple[Any, keras.layers.Normalization | None]:
    """The input's preprocessing layers, and the Normalization layer whose weights need setting."""
    kind = net.spec.input.preprocessing
    if kind == "rescale":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x), None
    if kind == "imagenet":
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
        # Mean and variance as weights (not constants), as Keras' EfficientNet holds them.
        normalization = keras.layers.Normalization(axis=-1, name="normalize")
        return normalization(x), normalization
    return x, None


def build_stem(x: Any, net: ResolvedNetwork, ctx: BuildContext) -> Any:
    """The stem convolution, then the optional max pool."""
    stem = net.stem
    x = ctx.conv_bn_act(x, stem.channels, stem.kernel, stem.stride, stem.activation, "stem")
    if stem.pool is not None:
        x = keras.layers.MaxPooling2D(stem.pool.kernel, stem.pool.stride, padding="same", name="stem_pool")(x)
    return x


def build_head(x: Any, net: ResolvedNetwork, ctx: BuildContext) -> Any:
    """Final conv, pooling, hidden dense layers, dropout, classifier and its activation."""
    head = net.head
    if head.conv_channels is not None:
        x = ctx.conv_bn_act(x, head.conv_channels, 1, 1, head.conv_activation, "head")
    pool = keras.layers.GlobalAveragePooling2D if head.pooling == "avg" else keras.layers.GlobalMaxPooling2D
    x = pool(name="head_pool")(x)
    for i, dense in enumerate(head.hidden, start=1):
        x = keras.layers.Dense(dense.channels, kernel_initializer=dense_initializer(), name=f"head_dense{i}")(x)
        x = ctx.activation(x, dense.activation, f"head_dense{i}_act")
    if head.dropout > 0:
        x = keras.layers.Dropout(head.dropout, name="head_dropout")(x)
    x = keras.layers.Dense(head.classes, kernel_initializer=dense_initializer(), name="classifier")(x)
    return keras.layers.Activation(head.classifier_activation, name="predictions")(x)


def model_name(spec: NetworkSpec) -> str:
    """A Keras-safe model name derived from the spec's name."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", spec.name) or "network"


def compile_model(spec: NetworkSpec) -> keras.Model:
    """Build the Keras model a spec describes (functional API, freshly initialised)."""
    net = resolve(spec)
    ctx = BuildContext(batchnorm=spec.batchnorm, squeeze_excite=spec.squeeze_excite)
    inputs = keras.Input((net.input_size, net.input_size, net.input_channels), name="image")
    x, normalization = build_preprocessing(inputs, net)
    x = build_stem(x, net, ctx)
    for block in net.blocks:
        x = get_builder(block.type)(x, block, ctx)
    outputs = build_head(x, net, ctx)
    model = keras.Model(inputs, outputs, name=model_name(spec))
    if normalization is not None:
        normalization.set_weights([
            np.asarray(IMAGENET_MEAN_RGB, dtype="float32"),
            np.square(np.asarray(IMAGENET_STDDEV_RGB, dtype="float32")),
            np.asarray(0),
        ])
        normalization.finalize_state()  # set_weights alone leaves the layer's cached mean and variance
    return model
