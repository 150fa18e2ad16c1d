"""The architecture schema. Imports no TensorFlow: validate and cost specs anywhere."""

from archsearch.spec.base import ACTIVATIONS, Activation, StrictModel, WidthScaling
from archsearch.spec.blocks import (
    BLOCK_CLASSES,
    Block,
    BlockBase,
    ConvBlock,
    DSConvBlock,
    MBConvBlock,
    ShuffleBlock,
    SqueezeExciteSpec,
)
from archsearch.spec.io import (
    canonical_json,
    dump_spec,
    format_validation_error,
    load_spec,
    parse_spec,
    read_document,
    spec_hash,
    spec_to_dict,
    spec_to_yaml,
)
from archsearch.spec.network import (
    BatchNormSpec,
    DenseSpec,
    HeadConvSpec,
    HeadSpec,
    InputSpec,
    NetworkSpec,
    PoolSpec,
    StageSpec,
    StemSpec,
)
from archsearch.spec.resolve import ResolvedBlock, ResolvedHead, ResolvedNetwork, ResolvedStem, resolve
from archsearch.spec.scaling import ChannelRules, make_divisible, round_repeats

__all__ = [
    "ACTIVATIONS", "Activation", "BLOCK_CLASSES", "BatchNormSpec", "Block", "BlockBase", "ChannelRules",
    "ConvBlock", "DSConvBlock", "DenseSpec", "HeadConvSpec", "HeadSpec", "InputSpec", "MBConvBlock",
    "NetworkSpec", "PoolSpec", "ResolvedBlock", "ResolvedHead", "ResolvedNetwork", "ResolvedStem",
    "ShuffleBlock", "SqueezeExciteSpec", "StageSpec", "StemSpec", "StrictModel", "WidthScaling",
    "canonical_json", "dump_spec", "format_validation_error", "load_spec", "make_divisible", "parse_spec",
    "read_document", "resolve", "round_repeats", "spec_hash", "spec_to_dict", "spec_to_yaml",
]
