"""Compiled references are exact twins of keras.applications models.

Same ``count_params()``, and after ``transfer_weights`` the same outputs on the same
random batch, with every source weight and batch-norm statistic randomised first.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_same_predictions, randomize_weights

keras = pytest.importorskip("keras")

import archsearch  # noqa: E402
from archsearch.compile import count_model_macs  # noqa: E402
from archsearch.compile.transfer import refresh_derived_state  # noqa: E402

apps = keras.applications

# EfficientNet-B1..B3 take 10-13 s each: they run in CI's slow suite (-m slow), B0 here.
LARGE = pytest.mark.slow

CASES = [
    pytest.param("mobilenet_v1", {}, apps.MobileNet, {"alpha": 1.0}, id="mobilenet_v1-1.0"),
    pytest.param("mobilenet_v1", {"width_multiplier": 0.5}, apps.MobileNet, {"alpha": 0.5}, id="mobilenet_v1-0.5"),
    pytest.param("mobilenet_v2", {}, apps.MobileNetV2, {"alpha": 1.0}, id="mobilenet_v2-1.0"),
    pytest.param("mobilenet_v2", {"width_multiplier": 0.35}, apps.MobileNetV2, {"alpha": 0.35}, id="mobilenet_v2-0.35"),
    pytest.param("mobilenet_v3_small", {}, apps.MobileNetV3Small, {}, id="mobilenet_v3_small-1.0"),
    pytest.param("mobilenet_v3_large", {}, apps.MobileNetV3Large, {}, id="mobilenet_v3_large-1.0"),
    pytest.param("efficientnet_b0", {}, apps.EfficientNetB0, {}, id="efficientnet_b0-1.0"),
    pytest.param("efficientnet_b1", {}, apps.EfficientNetB1, {}, id="efficientnet_b1-1.0", marks=LARGE),
    pytest.param("efficientnet_b2", {}, apps.EfficientNetB2, {}, id="efficientnet_b2-1.0", marks=LARGE),
    pytest.param("efficientnet_b3", {}, apps.EfficientNetB3, {}, id="efficientnet_b3-1.0", marks=LARGE),
]


def _pair(name, overrides, application, kwargs):
    spec = archsearch.load_reference(name, **overrides)
    size = spec.input.size
    source = application(weights=None, include_top=True, classes=1000, input_shape=(size, size, 3), **kwargs)
    return spec, source, archsearch.compile_model(spec)


@pytest.mark.parametrize(("name", "overrides", "application", "kwargs"), CASES)
def test_reference_matches_keras_application(name, overrides, application, kwargs):
    spec, source, twin = _pair(name, overrides, application, kwargs)

    assert twin.count_params() == source.count_params()
    assert archsearch.count_params(spec) == source.count_params()
    assert archsearch.count_macs(spec) == count_model_macs(source) == count_model_macs(twin)

    randomize_weights(source, seed=1)
    archsearch.transfer_weights(source, twin)
    batch = np.random.default_rng(2).uniform(0, 255, (2, spec.input.size, spec.input.size, 3)).astype("float32")
    if spec.input.preprocessing == "none":
        batch = batch / 127.5 - 1.0  # what keras.applications' preprocess_input does for V1/V2
    assert_same_predictions(source.predict(batch, verbose=0), twin.predict(batch, verbose=0))


WIDTH_GRID = [
    ("mobilenet_v1", apps.MobileNet, [0.25, 0.75]),
    ("mobilenet_v2", apps.MobileNetV2, [0.5, 0.75, 1.3, 1.4]),
    ("mobilenet_v3_small", apps.MobileNetV3Small, [0.35, 0.75, 1.1]),
    ("mobilenet_v3_large", apps.MobileNetV3Large, [0.5, 1.25]),
]


@pytest.mark.parametrize(("name", "application", "alpha"),
                         [(n, a, alpha) for n, a, alphas in WIDTH_GRID for alpha in alphas],
                         ids=[f"{n}-{alpha}" for n, _, alphas in WIDTH_GRID for alpha in alphas])
def test_width_multipliers_match_keras_param_counts(name, application, alpha):
    spec = archsearch.load_reference(name, width_multiplier=alpha)
    source = application(weights=None, input_shape=(224, 224, 3), alpha=alpha)
    assert archsearch.count_params(spec) == source.count_params()
    assert archsearch.count_macs(spec) == count_model_macs(source)


def test_comparison_catches_a_wrong_batchnorm_epsilon():
    """The equivalence check is sharp enough to see an epsilon of 1e-5 instead of 1e-3."""
    spec = archsearch.load_reference("mobilenet_v3_small", batchnorm={"epsilon": 1e-5})
    source = apps.MobileNetV3Small(weights=None, input_shape=(224, 224, 3))
    twin = archsearch.compile_model(spec)
    randomize_weights(source, seed=1)
    archsearch.transfer_weights(source, twin)
    batch = np.random.default_rng(2).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    with pytest.raises(AssertionError):
        assert_same_predictions(source.predict(batch, verbose=0), twin.predict(batch, verbose=0))


def test_transfer_refuses_a_mismatched_model_before_writing_anything():
    source = apps.MobileNetV3Small(weights=None, input_shape=(224, 224, 3))
    twin = archsearch.compile_model(archsearch.load_reference("mobilenet_v3_small", classes=10))
    before = [w.copy() for w in twin.get_weights()]
    with pytest.raises(archsearch.WeightTransferError, match=r"does not fit: source .*\(1, 1, 1024, 1000\).*\(1024, 10\)"):
        archsearch.transfer_weights(source, twin)
    assert all(np.array_equal(a, b) for a, b in zip(before, twin.get_weights()))


def test_transfer_reports_missing_weights():
    source = apps.MobileNetV2(weights=None, input_shape=(224, 224, 3), alpha=1.0)
    shallower = archsearch.load_reference("mobilenet_v2").model_dump()
    shallower["stages"] = shallower["stages"][:-1]
    shallower["stages"][-1]["blocks"][-1]["channels"] = 96
    twin = archsearch.compile_model(archsearch.parse_spec(shallower))
    with pytest.raises(archsearch.WeightTransferError):
        archsearch.transfer_weights(source, twin)


def test_imagenet_rescale_after_normalization_is_folded_into_the_variance():
    """Keras' ImageNet EfficientNets divide by sqrt(std) in an extra layer; the twin folds it in."""
    spec = archsearch.parse_spec({
        "input": {"size": 16, "preprocessing": "imagenet"},
        "stem": {"channels": 8},
        "stages": [{"blocks": [{"type": "conv", "channels": 8}]}],
        "classes": 4,
    })
    twin = archsearch.compile_model(spec)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Normalization(axis=-1)(x)
    x = keras.layers.Rescaling([1 / np.sqrt(0.229), 1 / np.sqrt(0.224), 1 / np.sqrt(0.225)])(x)
    for layer in twin.layers[3:]:
        x = layer.__class__.from_config(layer.get_config())(x)
    source = keras.Model(inputs, x)
    randomize_weights(source, seed=3)
    source.get_layer(index=2).set_weights([np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]), np.array(0)])
    refresh_derived_state(source)
    archsearch.transfer_weights(source, twin)
    batch = np.random.default_rng(4).uniform(0, 255, (3, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(twin.predict(batch, verbose=0), source.predict(batch, verbose=0), atol=1e-6)
