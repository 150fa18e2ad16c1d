"""A network cut into the parts the latency predictor measures one at a time.

Each part (the stem with preprocessing, every block repeat at its input shape, the
head) is built by the same code as the whole network, as a model of its own with a
batch-1 input of the shape it sees inside the network.
"""

from __future__ import annotations

import keras

from archsearch.compile.context import BuildContext
from archsearch.compile.network import build_head, build_preprocessing, build_stem
from archsearch.compile.registry import get_builder
from archsearch.errors import UnknownNameError
from archsearch.spec import NetworkSpec, resolve


def build_part_model(spec: NetworkSpec, part: str) -> keras.Model:
    """The model of one part: ``"stem"``, ``"head"`` or a block name such as ``"stage2_block1a"``."""
    net = resolve(spec)
    ctx = BuildContext(batchnorm=spec.batchnorm, squeeze_excite=spec.squeeze_excite)
    if part == "stem":
        inputs = keras.Input((net.input_size, net.input_size, net.input_channels), batch_size=1)
        x, _ = build_preprocessing(inputs, net)
        return keras.Model(inputs, build_stem(x, net, ctx), name="stem")
    if part == "head":
        head = net.head
        inputs = keras.Input((head.in_size, head.in_size, head.in_channels), batch_size=1)
        return keras.Model(inputs, build_head(inputs, net, ctx), name="head")
    for block in net.blocks:
        if block.name == part:
            inputs = keras.Input((block.in_size, block.in_size, block.in_channels), batch_size=1)
            return keras.Model(inputs, get_builder(block.type)(inputs, block, ctx), name=part)
    raise UnknownNameError("part", part, ["stem", *(b.name for b in net.blocks), "head"])
