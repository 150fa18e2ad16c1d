"""Block schemas: one class per block type, joined in a union discriminated on ``type``.

A block class declares its fields and its structural rules: which input it accepts
(``check_input``) and the widths of its inner layers (``inner_widths``). Builders
(``archsearch.compile``) and cost functions (``archsearch.cost``) read those, so the
three never disagree about what a block is. Adding a block type means one class here,
one builder and one cost function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import Field

from archsearch.spec.base import Activation, Channels, Kernel, Rate, StrictModel, Stride
from archsearch.spec.scaling import ChannelRules


class SqueezeExciteSpec(StrictModel):
    """The network-wide convention for squeeze-and-excitation layers.

    MobileNetV3 reduces from the expanded width, rounds with ``make_divisible`` and
    gates with hard-sigmoid after a ReLU; EfficientNet reduces from the block's input
    width, truncates, and gates with a sigmoid after the block's own activation.
    """

    reduce_from: Literal["expanded", "input"] = "expanded"
    rounding: Literal["make_divisible", "floor"] = "make_divisible"
    activation: Activation | None = Field(
        default="relu", description="Activation after the reduce layer; null = the block's."
    )
    gate: Activation = "hsigmoid"


@dataclass(frozen=True)
class ResolveContext:
    """What a block needs from its network to size its inner layers."""

    rules: ChannelRules
    squeeze_excite: SqueezeExciteSpec


class BlockBase(StrictModel):
    """Fields every block has. ``stride`` applies to the first repeat only."""

    channels: Channels = Field(description="Output channels, before the width multiplier.")
    repeats: Annotated[int, Field(ge=1)] = 1
    stride: Stride = 1
    kernel: Kernel = 3
    activation: Activation = "relu"

    summary_fields: ClassVar[tuple[str, ...]] = ("kernel", "stride", "channels", "activation")

    def check_input(self, in_channels: int) -> tuple[str, str] | None:
        """Why this block cannot follow ``in_channels`` channels, as (field or "", problem); None if it can."""
        return None

    def inner_widths(self, in_channels: int, context: ResolveContext) -> dict[str, int]:
        """Widths of the block's inner layers, by role (empty for plain blocks)."""
        return {}

    def summary(self) -> str:
        """A compact one-line description, e.g. ``mbconv k5 s2 e6 c40 se0.25 swish``."""
        parts = [self.type]  # type: ignore[attr-defined]
        for field in self.summary_fields:
            value = getattr(self, field)
            if field == "se_ratio" and not value:
                continue
            prefix = {"kernel": "k", "stride": "s", "channels": "c", "expansion": "e",
                      "se_ratio": "se"}.get(field, "")
            parts.append(f"{prefix}{value:g}" if isinstance(value, float) else f"{prefix}{value}")
        return " ".join(parts)


class ConvBlock(BlockBase):
    """Convolution, batch norm, activation."""

    type: Literal["conv"] = "conv"


class DSConvBlock(BlockBase):
    """Depthwise separable convolution (MobileNetV1): depthwise k x k, then pointwise 1x1."""

    type: Literal["dsconv"] = "dsconv"


class MBConvBlock(BlockBase):
    """Inverted residual with linear bottleneck (MobileNetV2/V3, EfficientNet).

    1x1 expansion (skipped when ``expansion`` is 1), depthwise k x k, optional
    squeeze-and-excitation, linear 1x1 projection; a residual connection when the
    stride is 1, input and output widths match and ``skip`` is true.
    """

    type: Literal["mbconv"] = "mbconv"
    expansion: Annotated[float, Field(gt=0.0, le=16.0)] = 6.0
    se_ratio: Rate = 0.0
    skip: bool = True

    summary_fields: ClassVar[tuple[str, ...]] = (
        "kernel", "stride", "expansion", "channels", "se_ratio", "activation",
    )

    def inner_widths(self, in_channels: int, context: ResolveContext) -> dict[str, int]:
        expanded = in_channels if self.expansion == 1 else context.rules.round(in_channels * self.expansion)
        widths = {"expanded": expanded}
        if self.se_ratio > 0:
            se = context.squeeze_excite
            base = expanded if se.reduce_from == "expanded" else in_channels
            if se.rounding == "floor":
                widths["se"] = max(1, int(base * self.se_ratio))
            else:
                widths["se"] = ChannelRules(divisor=context.rules.divisor).round(base * self.se_ratio)
        return widths


class ShuffleBlock(BlockBase):
    """ShuffleNetV2 unit.

    Stride 1 splits the channels in half, transforms one half (1x1, depthwise, 1x1)
    and shuffles; stride 2 transforms the whole input on two branches and doubles
    the width by concatenation.
    """

    type: Literal["shuffle"] = "shuffle"

    def check_input(self, in_channels: int) -> tuple[str, str] | None:
        if self.channels % 2:
            return "channels", f"a shuffle unit needs an even output width, got {self.channels}"
        if self.stride == 1 and in_channels != self.channels:
            return "channels", (f"a stride-1 shuffle unit keeps its width: input has {in_channels} channels, "
                                f"output {self.channels}")
        return None

    def inner_widths(self, in_channels: int, context: ResolveContext) -> dict[str, int]:
        return {"branch": self.channels // 2}


Block = Annotated[Union[ConvBlock, DSConvBlock, MBConvBlock, ShuffleBlock], Field(discriminator="type")]
"""Any block, chosen by its ``type`` key."""

BLOCK_CLASSES: dict[str, type[BlockBase]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Block)[0])
}
"""Block type name -> schema class, derived from the union so the two cannot drift."""
