"""Every reference against its golden numbers, driven by the registry of names (no TensorFlow)."""

from __future__ import annotations

import pytest
from conftest import PUBLISHED_MACS

import archsearch
from archsearch.errors import UnknownNameError

# keras.applications count_params() (weights=None, include_top=True, 1000 classes, default
# resolution, Keras 3.15); ShuffleNetV2: trainable parameters of the paper architecture.
GOLDEN_PARAMS = {
    "mobilenet_v1": 4_253_864,
    "mobilenet_v2": 3_538_984,
    "mobilenet_v3_small": 2_554_968,
    "mobilenet_v3_large": 5_507_432,
    "efficientnet_b0": 5_330_571,
    "efficientnet_b1": 7_856_239,
    "efficientnet_b2": 9_177_569,
    "efficientnet_b3": 12_320_535,
    "efficientnet_b4": 19_466_823,
    "efficientnet_b5": 30_562_527,
    "efficientnet_b6": 43_265_143,
    "efficientnet_b7": 66_658_687,
}
GOLDEN_TRAINABLE = {
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
}
# EfficientNet paper FLOPs for B1-B7, given to two significant figures. Our count equals
# the count over Keras' layers (see test_compile); B4 and B5 sit 4.6% and 3.7% above the
# rounded paper figures, so they are checked at 5%.
PAPER_MACS = {
    "efficientnet_b1": (0.70e9, 0.03), "efficientnet_b2": (1.0e9, 0.03), "efficientnet_b3": (1.8e9, 0.03),
    "efficientnet_b4": (4.2e9, 0.05), "efficientnet_b5": (9.9e9, 0.05), "efficientnet_b6": (19e9, 0.03),
    "efficientnet_b7": (37e9, 0.03),
}


def test_the_shipped_references_are_the_documented_ones():
    assert set(archsearch.reference_names()) == set(GOLDEN_PARAMS) | set(GOLDEN_TRAINABLE)


@pytest.mark.parametrize("name", archsearch.reference_names())
def test_reference_golden_numbers(name):
    spec = archsearch.load_reference(name)
    assert spec.name == name
    if name in GOLDEN_PARAMS:
        assert archsearch.count_params(spec) == GOLDEN_PARAMS[name]
    else:
        assert archsearch.count_params(spec, trainable_only=True) == GOLDEN_TRAINABLE[name]
    macs = archsearch.count_macs(spec)
    published, tolerance = (PUBLISHED_MACS[name], 0.03) if name in PUBLISHED_MACS else PAPER_MACS[name]
    assert abs(macs - published) / published <= tolerance, f"{macs / 1e6:.1f}M vs published {published / 1e6:.0f}M"


def test_design_figures_for_macs_over_keras_layers():
    """DESIGN.md: counting over the Keras models gives 568.7M, 300.8M, 216.6M, 56.5M, 385.8M."""
    expected = {"mobilenet_v1": 568.7, "mobilenet_v2": 300.8, "mobilenet_v3_large": 216.6,
                "mobilenet_v3_small": 56.5, "efficientnet_b0": 385.8}
    for name, millions in expected.items():
        assert round(archsearch.count_macs(archsearch.load_reference(name)) / 1e6, 1) == millions


def test_overrides_merge_into_the_reference():
    spec = archsearch.load_reference("mobilenet_v2", width_multiplier=0.35, input={"size": 96}, classes=10)
    assert (spec.width_multiplier, spec.input.size, spec.input.preprocessing, spec.classes) == (0.35, 96, "none", 10)
    assert spec.stages == archsearch.load_reference("mobilenet_v2").stages


def test_efficientnet_b1_to_b7_extend_b0_by_compound_scaling():
    b0 = archsearch.load_reference("efficientnet_b0")
    b5 = archsearch.load_reference("efficientnet_b5")
    assert b5.stages == b0.stages
    assert (b5.width_multiplier, b5.depth_multiplier, b5.input.size, b5.head.dropout) == (1.6, 2.2, 456, 0.4)


def test_unknown_reference_and_bad_override():
    with pytest.raises(UnknownNameError, match="unknown reference 'mobilenet_v4'.*mobilenet_v3_small"):
        archsearch.load_reference("mobilenet_v4")
    with pytest.raises(archsearch.SpecError, match="width_multiplier: Input should be greater than 0"):
        archsearch.load_reference("mobilenet_v2", width_multiplier=-1)
