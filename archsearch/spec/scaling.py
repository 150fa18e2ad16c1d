"""Width and depth scaling rules, shared by MobileNet and EfficientNet.

MobileNet's ``_make_divisible`` / ``_depth`` and EfficientNet's ``round_filters`` are
the same function; EfficientNet's ``round_repeats`` is a ceiling. They live here, in
the schema layer, so builders and the cost model only ever see resolved numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from archsearch.spec.base import WidthScaling

ChannelRounding = Literal["make_divisible", "floor"]


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never more than 10% down."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_multiplier: float) -> int:
    """EfficientNet's depth rule: ``ceil(depth_multiplier * repeats)``."""
    return int(math.ceil(depth_multiplier * repeats))


@dataclass(frozen=True)
class ChannelRules:
    """The network-wide rules that turn declared channel counts into built ones."""

    width_multiplier: float = 1.0
    divisor: int = 8
    rounding: ChannelRounding = "make_divisible"

    def round(self, value: float) -> int:
        """Round a (possibly fractional) channel count by the network's rule."""
        if self.rounding == "floor":
            # MobileNetV1 in Keras truncates: int(filters * alpha).
            return max(1, int(value))
        return make_divisible(value, self.divisor)

    def scale(self, channels: int, scaling: WidthScaling = "always") -> int:
        """Apply the width multiplier to a declared channel count."""
        if scaling == "never" or (scaling == "grow_only" and self.width_multiplier <= 1.0):
            return channels
        return self.round(channels * self.width_multiplier)
