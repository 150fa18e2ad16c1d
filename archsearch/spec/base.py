"""Shared building blocks of the schema: strict models and the vocabularies of names."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

Activation = Literal["relu", "relu6", "hswish", "hsigmoid", "swish", "sigmoid", "gelu", "linear"]
"""Activation names as users know them (``swish`` is SiLU, ``hswish`` is hard-swish)."""

ACTIVATIONS: tuple[str, ...] = get_args(Activation)

WidthScaling = Literal["always", "grow_only", "never"]
"""How the network's ``width_multiplier`` applies to a layer's channels.

``always`` scales and rounds; ``grow_only`` scales only when the multiplier exceeds 1
(MobileNetV2's last conv, MobileNetV3's last dense); ``never`` keeps the count as is
(MobileNetV3's stem).
"""


class StrictModel(BaseModel):
    """Immutable model that rejects unknown keys, so a typo in YAML fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be odd")
    return value


Kernel = Annotated[int, Field(ge=1, le=15), AfterValidator(_odd)]
"""A square kernel size: odd, so 'same' padding is symmetric at stride 1."""

Stride = Literal[1, 2]
Channels = Annotated[int, Field(gt=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
