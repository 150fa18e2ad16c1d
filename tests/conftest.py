"""Shared fixtures and helpers. TensorFlow is imported only by tests that build models."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Published multiply-accumulates at 224x224 (DESIGN.md section 4 and the papers).
PUBLISHED_MACS = {
    "mobilenet_v1": 569e6,
    "mobilenet_v2": 300e6,
    "mobilenet_v3_large": 219e6,
    "mobilenet_v3_small": 56e6,
    "efficientnet_b0": 390e6,
    "shufflenet_v2_x0_5": 41e6,
    "shufflenet_v2_x1_0": 146e6,
    "shufflenet_v2_x1_5": 299e6,
    "shufflenet_v2_x2_0": 591e6,
}


def randomize_weights(model, seed: int = 0) -> None:
    """Give every weight, batch-norm statistic included, a random but well-scaled value.

    With Keras' initial values the outputs are nearly uniform, and a wrong batch-norm
    epsilon or padding would still pass a probability-only comparison.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for weight in layer.weights:
            shape = tuple(int(d) for d in weight.shape)
            name = weight.name
            if "int" in str(weight.dtype):
                continue
            if name == "gamma":
                value = rng.uniform(0.5, 1.5, shape)
            elif name in ("beta", "moving_mean", "mean"):
                value = rng.normal(0.0, 0.2, shape)
            elif name in ("moving_variance", "variance"):
                value = rng.uniform(0.5, 2.0, shape)
            elif "bias" in name:
                value = rng.normal(0.0, 0.1, shape)
            else:
                fan_in = int(np.prod(shape[:2])) if len(shape) == 4 and "depthwise" in name else int(np.prod(shape[:-1]))
                value = rng.normal(0.0, 1.5 / np.sqrt(max(fan_in, 1)), shape)
            weight.assign(value.astype("float32"))
    from archsearch.compile.transfer import refresh_derived_state

    refresh_derived_state(model)


def assert_same_predictions(expected: np.ndarray, actual: np.ndarray) -> None:
    """Probabilities within 1e-5; centred log-probabilities within 1e-4 of their own spread."""
    assert expected.shape == actual.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)
    log_expected = np.log(expected)
    log_actual = np.log(actual)
    log_expected -= log_expected.mean(axis=1, keepdims=True)
    log_actual -= log_actual.mean(axis=1, keepdims=True)
    spread = log_expected.std(axis=1, keepdims=True)
    assert float(spread.min()) > 0.05, "outputs are nearly uniform: the comparison would prove little"
    relative = np.abs(log_actual - log_expected) / spread
    assert float(relative.max()) <= 1e-4, f"log-probabilities differ by {relative.max():.2e} of their spread"


@pytest.fixture(scope="session")
def keras_module():
    import keras

    return keras
