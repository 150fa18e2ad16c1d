"""Expand a spec into the concrete network it describes.

A pure step between schema and builders (timm's decode -> build split): it applies
the width and depth multipliers, channel rounding, repeats and the rule that only a
stage's first repeat strides, and yields immutable resolved parts whose numbers are
final. Builders and cost functions read these and nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archsearch.errors import SpecError
from archsearch.spec.blocks import Block, ResolveContext
from archsearch.spec.scaling import ChannelRules, round_repeats

if TYPE_CHECKING:
    from archsearch.spec.network import HeadConvSpec, NetworkSpec, PoolSpec


@dataclass(frozen=True)
class ResolvedStem:
    """The stem with its built width and the feature-map sizes around it."""

    channels: int
    kernel: int
    stride: int
    activation: str
    in_size: int
    conv_size: int
    out_size: int
    pool: PoolSpec | None


@dataclass(frozen=True)
class ResolvedBlock:
    """One repeat of one block: final widths, stride and feature-map sizes.

    ``block`` is the schema block with ``channels`` scaled, ``stride`` as applied to
    this repeat and ``repeats`` 1. ``name`` is the prefix of every layer built for it.
    """

    name: str
    path: str
    stage: int
    block: Block
    in_channels: int
    in_size: int
    out_size: int
    widths: dict[str, int] = field(default_factory=dict)
    drop_rate: float = 0.0

    @property
    def type(self) -> str:
        return self.block.type

    @property
    def out_channels(self) -> int:
        return self.block.channels


@dataclass(frozen=True)
class ResolvedDense:
    channels: int
    activation: str


@dataclass(frozen=True)
class ResolvedHead:
    """The head with built widths; ``features`` is the width entering the classifier."""

    in_channels: int
    in_size: int
    conv_channels: int | None
    conv_activation: str | None
    pooling: str
    hidden: tuple[ResolvedDense, ...]
    dropout: float
    classes: int
    classifier_activation: str

    @property
    def pooled_channels(self) -> int:
        return self.conv_channels or self.in_channels

    @property
    def features(self) -> int:
        return self.hidden[-1].channels if self.hidden else self.pooled_channels


@dataclass(frozen=True)
class ResolvedNetwork:
    """A spec expanded into stem, the flat sequence of blocks, and head."""

    spec: NetworkSpec
    stem: ResolvedStem
    blocks: tuple[ResolvedBlock, ...]
    head: ResolvedHead

    @property
    def input_size(self) -> int:
        return self.spec.input.size

    @property
    def input_channels(self) -> int:
        return self.spec.input.channels


def _strided(size: int, stride: int, path: str, input_size: int) -> int:
    """Feature-map size after a 'same'-padded layer, refusing to stride a map smaller than the stride."""
    if size < stride:
        raise SpecError(
            f"{path}: feature map collapses below 1x1 at input size {input_size} "
            f"(a stride-{stride} layer gets a {size}x{size} map)"
        )
    return math.ceil(size / stride)


def _head_conv_channels(conv: HeadConvSpec, in_channels: int, rules: ChannelRules) -> int:
    if conv.expansion is not None:
        return rules.round(in_channels * conv.expansion)
    assert conv.channels is not None  # guaranteed by HeadConvSpec's validator
    return rules.scale(conv.channels, conv.width_scaling)


def _repeat_suffix(index: int) -> str:
    letter = chr(ord("a") + index % 26)
    return letter if index < 26 else f"{letter}{index // 26}"


def resolve(spec: NetworkSpec) -> ResolvedNetwork:
    """Expand ``spec`` into final widths, strides and sizes; raise ``SpecError`` if impossible."""
    rules = ChannelRules(spec.width_multiplier, spec.divisor, spec.channel_rounding)
    context = ResolveContext(rules=rules, squeeze_excite=spec.squeeze_excite)
    input_size = spec.input.size

    stem_spec = spec.stem
    conv_size = _strided(input_size, stem_spec.stride, "stem.stride", input_size)
    size = conv_size
    if stem_spec.pool is not None:
        size = _strided(size, stem_spec.pool.stride, "stem.pool.stride", input_size)
    stem = ResolvedStem(
        channels=rules.scale(stem_spec.channels, stem_spec.width_scaling),
        kernel=stem_spec.kernel,
        stride=stem_spec.stride,
        activation=stem_spec.activation,
        in_size=input_size,
        conv_size=conv_size,
        out_size=size,
        pool=stem_spec.pool,
    )

    repeats_per_block = [
        [round_repeats(block.repeats, spec.depth_multiplier) for block in stage.blocks]
        for stage in spec.stages
    ]
    total_repeats = float(sum(map(sum, repeats_per_block)))

    blocks: list[ResolvedBlock] = []
    channels = stem.channels
    for si, stage in enumerate(spec.stages):
        for bi, block in enumerate(stage.blocks):
            path = f"stages[{si}].blocks[{bi}]"
            out_channels = rules.scale(block.channels)
            for repeat in range(repeats_per_block[si][bi]):
                stride = block.stride if repeat == 0 else 1
                resolved = block.model_copy(update={"channels": out_channels, "stride": stride, "repeats": 1})
                problem = resolved.check_input(channels)
                if problem:
                    field, message = problem
                    raise SpecError(f"{path}.{field}: {message}" if field else f"{path}: {message}")
                out_size = _strided(size, stride, f"{path}.stride", input_size)
                blocks.append(
                    ResolvedBlock(
                        name=f"stage{si + 1}_block{bi + 1}{_repeat_suffix(repeat)}",
                        path=path,
                        stage=si,
                        block=resolved,
                        in_channels=channels,
                        in_size=size,
                        out_size=out_size,
                        widths=resolved.inner_widths(channels, context),
                        # EfficientNet ramps the drop rate with the block's global index.
                        drop_rate=spec.drop_connect_rate * len(blocks) / total_repeats,
                    )
                )
                channels, size = out_channels, out_size

    head_spec = spec.head
    head = ResolvedHead(
        in_channels=channels,
        in_size=size,
        conv_channels=_head_conv_channels(head_spec.conv, channels, rules) if head_spec.conv else None,
        conv_activation=head_spec.conv.activation if head_spec.conv else None,
        pooling=head_spec.pooling,
        hidden=tuple(ResolvedDense(rules.scale(d.channels, d.width_scaling), d.activation) for d in head_spec.hidden),
        dropout=head_spec.dropout,
        classes=spec.classes,
        classifier_activation=head_spec.classifier_activation,
    )
    return ResolvedNetwork(spec=spec, stem=stem, blocks=tuple(blocks), head=head)
