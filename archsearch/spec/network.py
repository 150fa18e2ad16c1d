"""The network-level schema: input, stem, stages of blocks, head and scaling rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from archsearch.spec.base import Activation, Channels, Kernel, Rate, StrictModel, Stride, WidthScaling
from archsearch.spec.blocks import Block, SqueezeExciteSpec
from archsearch.spec.scaling import ChannelRounding

Preprocessing = Literal["none", "rescale", "imagenet"]
"""What the model does to its raw input before the stem.

``none``: the model expects inputs already scaled (Keras' MobileNet and MobileNetV2
expect [-1, 1]); ``rescale``: maps [0, 255] to [-1, 1] (MobileNetV3); ``imagenet``:
maps [0, 255] to [0, 1] then normalises with ImageNet's channel mean and variance, held
as (non-trainable) weights as in Keras' EfficientNet.
"""


class InputSpec(StrictModel):
    """The deployment input: a square image of ``size`` pixels."""

    size: Annotated[int, Field(ge=1, le=4096)] = 224
    channels: Channels = 3
    preprocessing: Preprocessing = "none"


class PoolSpec(StrictModel):
    """A max pool (ShuffleNetV2's stem)."""

    kernel: Kernel = 3
    stride: Stride = 2


class StemSpec(StrictModel):
    """The first convolution (conv, batch norm, activation), optionally max-pooled."""

    channels: Channels = 32
    kernel: Kernel = 3
    stride: Stride = 2
    activation: Activation = "relu"
    width_scaling: WidthScaling = "always"
    pool: PoolSpec | None = None


class StageSpec(StrictModel):
    """A run of blocks, usually at one resolution."""

    name: str | None = None
    blocks: Annotated[tuple[Block, ...], Field(min_length=1)]


class HeadConvSpec(StrictModel):
    """A 1x1 conv, batch norm and activation before pooling.

    Its width is either ``channels`` (scaled by ``width_scaling``) or ``expansion``
    times the incoming width, rounded (MobileNetV3's ``_depth(last_block * 6)``).
    """

    channels: Channels | None = None
    expansion: Annotated[float, Field(gt=0.0, le=16.0)] | None = None
    activation: Activation = "relu"
    width_scaling: WidthScaling = "always"

    @model_validator(mode="after")
    def _one_width(self) -> HeadConvSpec:
        if (self.channels is None) == (self.expansion is None):
            raise ValueError("give exactly one of channels and expansion")
        return self


class DenseSpec(StrictModel):
    """A dense layer with bias and activation after pooling (MobileNetV3's last 1280)."""

    channels: Channels
    activation: Activation = "relu"
    width_scaling: WidthScaling = "always"


class HeadSpec(StrictModel):
    """Final conv, global pooling, hidden dense layers, dropout and the classifier."""

    conv: HeadConvSpec | None = None
    pooling: Literal["avg", "max"] = "avg"
    hidden: tuple[DenseSpec, ...] = ()
    dropout: Rate = 0.0
    classifier_activation: Literal["softmax", "linear"] = "softmax"


class BatchNormSpec(StrictModel):
    """Batch-norm settings (Keras' MobileNetV2/V3 use momentum 0.999, torchvision eps 1e-5)."""

    momentum: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    epsilon: Annotated[float, Field(gt=0.0, lt=1.0)] = 1e-3


class NetworkSpec(StrictModel):
    """A whole network, as data. Compiles to Keras with ``archsearch.compile_model``.

    Validation covers the fields and the network as a whole: a shuffle unit that
    cannot follow its input, or a feature map that collapses below 1x1 at the declared
    input size, is reported with the path of the block at fault.
    """

    name: str = "custom"
    input: InputSpec = InputSpec()
    stem: StemSpec = StemSpec()
    stages: Annotated[tuple[StageSpec, ...], Field(min_length=1)]
    head: HeadSpec = HeadSpec()
    classes: Annotated[int, Field(ge=1)] = 1000
    width_multiplier: Annotated[float, Field(gt=0.0, le=8.0)] = 1.0
    depth_multiplier: Annotated[float, Field(gt=0.0, le=8.0)] = 1.0
    divisor: Annotated[int, Field(ge=1)] = 8
    channel_rounding: ChannelRounding = "make_divisible"
    batchnorm: BatchNormSpec = BatchNormSpec()
    squeeze_excite: SqueezeExciteSpec = SqueezeExciteSpec()
    drop_connect_rate: Rate = Field(
        default=0.0, description="Stochastic depth on residual blocks, ramped linearly (EfficientNet)."
    )

    @model_validator(mode="after")
    def _check_shapes(self) -> NetworkSpec:
        from archsearch.errors import SpecError
        from archsearch.spec.resolve import resolve

        if self.input.preprocessing == "imagenet" and self.input.channels != 3:
            raise SpecError(f"input.preprocessing: 'imagenet' normalises RGB, but the input has "
                            f"{self.input.channels} channels")
        resolve(self)  # raises SpecError naming the block at fault
        return self
