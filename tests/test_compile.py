"""Compiling specs: every reference builds small, costs agree with the built layers, saving round-trips."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from test_spec import TINY  # noqa: E402

import archsearch  # noqa: E402
from archsearch.compile import BUILDERS, CUSTOM_LAYERS, activation_fn, count_model_macs  # noqa: E402
from archsearch.spec import ACTIVATIONS, BLOCK_CLASSES, parse_spec  # noqa: E402


def test_every_block_type_has_a_builder_and_every_activation_an_implementation():
    assert set(BUILDERS) == set(BLOCK_CLASSES)
    for name in ACTIVATIONS:
        assert callable(activation_fn(name))


@pytest.mark.parametrize("name", archsearch.reference_names())
def test_reference_compiles_small_and_matches_its_cost(name):
    spec = archsearch.load_reference(name, input={"size": 64}, classes=7)
    model = archsearch.compile_model(spec)
    assert model.count_params() == archsearch.count_params(spec)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == archsearch.count_params(spec, trainable_only=True)
    assert count_model_macs(model) == archsearch.count_macs(spec)
    output = model(np.zeros((1, 64, 64, 3), "float32"), training=False)
    assert output.shape == (1, 7)
    np.testing.assert_allclose(float(np.sum(output)), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_model():
    spec = parse_spec(TINY)
    return spec, archsearch.compile_model(spec)


def test_tiny_spec_with_every_block_type_compiles(tiny_model):
    spec, model = tiny_model
    assert model.count_params() == archsearch.count_params(spec)
    assert count_model_macs(model) == archsearch.count_macs(spec)
    names = {layer.name for layer in model.layers}
    assert {"stage2_block1a_se", "stage3_block1b_shuffle", "stage2_block1b_add"} <= names
    assert "stage2_block1a_add" not in names  # stride 2: no residual


def test_saved_model_loads_back_with_identical_outputs(tiny_model, tmp_path):
    spec, model = tiny_model
    from conftest import randomize_weights

    randomize_weights(model, seed=5)
    batch = np.random.default_rng(6).normal(size=(3, 32, 32, 3)).astype("float32")
    expected = model.predict(batch, verbose=0)
    path = tmp_path / "tiny.keras"
    model.save(path)
    loaded = archsearch.load_keras_model(path)
    np.testing.assert_array_equal(loaded.predict(batch, verbose=0), expected)
    # Plain Keras loads it too once archsearch's layers are registered.
    plain = keras.models.load_model(path)
    assert {type(layer).__name__ for layer in plain.layers} & set(CUSTOM_LAYERS)


def test_imagenet_preprocessing_normalises_inside_the_model():
    spec = archsearch.load_reference("efficientnet_b0", input={"size": 32})
    model = archsearch.compile_model(spec)
    normalized = keras.Model(model.input, model.get_layer("normalize").output)
    pixel = np.array([0.485, 0.456, 0.406]) * 255 + np.array([0.229, 0.224, 0.225]) * 255
    out = normalized.predict(np.broadcast_to(pixel, (1, 32, 32, 3)).astype("float32"), verbose=0)
    np.testing.assert_allclose(out, 1.0, atol=1e-4)  # one standard deviation above the mean


def test_channel_shuffle_interleaves_groups():
    from archsearch.compile import ChannelShuffle

    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)
    assert ChannelShuffle(2)(x).numpy().ravel().tolist() == [0, 3, 1, 4, 2, 5]


def test_drop_connect_only_on_residual_blocks():
    spec = archsearch.load_reference("efficientnet_b0", input={"size": 32})
    model = archsearch.compile_model(spec)
    drops = [layer for layer in model.layers if layer.name.endswith("_drop")]
    assert len(drops) == 9  # 16 blocks, 7 of which change shape
    assert drops[-1].rate == pytest.approx(0.2 * 14 / 16)  # block 15 of 16 (index 14); the last one widens


def test_initial_weights_follow_the_seed_and_kernels_start_distinct(keras_module):
    """A seeded trial is reproducible: initial weights depend on set_random_seed, not on import time."""
    from archsearch import compile_model, load_reference

    spec = load_reference("mobilenet_v3_small", input={"size": 32}, classes=10)

    def weights(seed):
        keras_module.utils.set_random_seed(seed)
        return [w.numpy() for w in compile_model(spec).weights]

    first, again, other = weights(0), weights(0), weights(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    kernels = [w for w in first if w.ndim == 4 and w.std() > 0]
    shapes = {}
    for kernel in kernels:
        shapes.setdefault(kernel.shape, []).append(kernel)
    for same in shapes.values():
        assert all(not np.array_equal(same[0], k) for k in same[1:])
