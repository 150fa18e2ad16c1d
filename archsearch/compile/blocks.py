"""One builder per block type of the schema."""

from __future__ import annotations

from typing import Any

import keras

from archsearch.compile.context import BuildContext
from archsearch.compile.layers import ChannelShuffle, ChannelSplit, SqueezeExcite
from archsearch.compile.registry import register_builder
from archsearch.spec import ResolvedBlock


@register_builder("conv")
def build_conv(x: Any, rb: ResolvedBlock, ctx: BuildContext) -> Any:
    b = rb.block
    return ctx.conv_bn_act(x, b.channels, b.kernel, b.stride, b.activation, rb.name)


@register_builder("dsconv")
def build_dsconv(x: Any, rb: ResolvedBlock, ctx: BuildContext) -> Any:
    b = rb.block
    x = ctx.dw_bn_act(x, b.kernel, b.stride, b.activation, f"{rb.name}_dw")
    return ctx.conv_bn_act(x, b.channels, 1, 1, b.activation, f"{rb.name}_pw")


@register_builder("mbconv")
def build_mbconv(x: Any, rb: ResolvedBlock, ctx: BuildContext) -> Any:
    b = rb.block
    shortcut = x
    if b.expansion != 1:
        x = ctx.conv_bn_act(x, rb.widths["expanded"], 1, 1, b.activation, f"{rb.name}_expand")
    x = ctx.dw_bn_act(x, b.kernel, b.stride, b.activation, f"{rb.name}_dw")
    if "se" in rb.widths:
        se = ctx.squeeze_excite
        x = SqueezeExcite(rb.widths["se"], activation=se.activation or b.activation, gate=se.gate,
                          name=f"{rb.name}_se")(x)
    x = ctx.conv_bn_act(x, b.channels, 1, 1, None, f"{rb.name}_project")
    if b.skip and b.stride == 1 and rb.in_channels == b.channels:
        if rb.drop_rate > 0:
            # Stochastic depth: drop the whole residual branch per sample.
            x = keras.layers.Dropout(rb.drop_rate, noise_shape=(None, 1, 1, 1), name=f"{rb.name}_drop")(x)
        x = keras.layers.Add(name=f"{rb.name}_add")([shortcut, x])
    return x


@register_builder("shuffle")
def build_shuffle(x: Any, rb: ResolvedBlock, ctx: BuildContext) -> Any:
    b = rb.block
    branch = rb.widths["branch"]
    if b.stride == 1:
        left, right = ChannelSplit(2, name=f"{rb.name}_split")(x)
    else:
        left = ctx.dw_bn_act(x, b.kernel, b.stride, None, f"{rb.name}_left_dw")
        left = ctx.conv_bn_act(left, branch, 1, 1, b.activation, f"{rb.name}_left_pw")
        right = x
    right = ctx.conv_bn_act(right, branch, 1, 1, b.activation, f"{rb.name}_right_pw1")
    right = ctx.dw_bn_act(right, b.kernel, b.stride, None, f"{rb.name}_right_dw")
    right = ctx.conv_bn_act(right, branch, 1, 1, b.activation, f"{rb.name}_right_pw2")
    x = keras.layers.Concatenate(name=f"{rb.name}_concat")([left, right])
    return ChannelShuffle(2, name=f"{rb.name}_shuffle")(x)
