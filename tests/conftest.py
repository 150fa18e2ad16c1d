"""Shared fixtures and helpers. TensorFlow is imported only by tests that build models."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

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


# A space of small MobileNetV3-like networks: a study over it trains in seconds.
TINY_SPACE = {
    "name": "tinyspace",
    "family": "mobilenet_v3",
    "references": ["mobilenet_v3_small"],
    "base": {
        "input": {"size": 64, "preprocessing": "rescale"},
        "stem": {"channels": 8, "activation": "hswish"},
        "stages": [
            {"blocks": [{"type": "mbconv", "channels": 8, "expansion": 1}]},
            {"blocks": [{"type": "mbconv", "channels": 16, "stride": 2}]},
            {"blocks": [{"type": "mbconv", "channels": 24, "stride": 2}]},
        ],
        "head": {"conv": {"channels": 48}},
    },
    "choices": {
        "input.size": [64, 128],
        "width_multiplier": [0.5, 1.0],
        "stages[1:].blocks[0].kernel": [3, 5],
        "stages[1:].blocks[0].expansion": [3.0, 6.0],
    },
}


def write_tiny_inputs(root: Path) -> Path:
    """``tiny.npz`` (400 real digits at 32x32) and ``tiny_space.yaml`` in ``root``."""
    from archsearch.data import load_dataset

    digits = load_dataset("digits", size=32)
    np.savez(root / "tiny.npz", x_train=digits.x_train[:300], y_train=digits.y_train[:300],
             x_val=digits.x_val[:100], y_val=digits.y_val[:100])
    (root / "tiny_space.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    return root


@dataclass(frozen=True)
class TrainedStudy:
    root: Path
    name: str
    storage: str
    budget_ms: float


def budget_between_tiny_and_reference(space_path: Path, storage: str) -> float:
    """A budget that admits every network of the tiny space and keeps MobileNetV3-Small out, on this host.

    Both are measured here, in the study's own latency cache (the study then reuses the
    figures), and the budget is their geometric mean, so it holds on hosts of any speed.
    """
    from archsearch.latency import measure_latency
    from archsearch.references import load_reference
    from archsearch.space import load_space

    space = load_space(str(space_path)).with_overrides(classes=10)
    largest = space.spec_at({p.name: max(p.choices) for p in space.parameters})  # every choice at its largest
    tiny = measure_latency(largest, storage=storage).median_ms
    reference = measure_latency(load_reference("mobilenet_v3_small", classes=10), storage=storage).median_ms
    assert reference > 2 * tiny, f"MobileNetV3-Small ({reference:.3f} ms) is not clearly slower than the tiny space"
    return (tiny * reference) ** 0.5


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory) -> TrainedStudy:
    """A real study shared by the dashboard and export tests: the tiny space, a reference, trained trials.

    The budget lets every tiny network in and keeps the MobileNetV3-Small reference out
    (``budget_between_tiny_and_reference``), so the study has feasible and infeasible trials.
    """
    from archsearch.study import StudyConfig, run_study

    root = write_tiny_inputs(tmp_path_factory.mktemp("trained"))
    storage = f"sqlite:///{root / 'studies' / 'shop.db'}"
    (root / "studies").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHSEARCH_CACHE_DIR", str(root / "cache"))
        budget = budget_between_tiny_and_reference(root / "tiny_space.yaml", storage)
        settings = StudyConfig(name="shop", space=str(root / "tiny_space.yaml"), dataset=str(root / "tiny.npz"),
                               budget_ms=budget, trials=3, epochs=2, references=True, seed=3, storage=storage)
        run_study(settings)
    return TrainedStudy(root, "shop", storage, budget)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright. Missing Chromium fails (``.ci/run`` installs it), never skips."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "PostgreSQL is missing: apt-get install postgresql (.ci/run does)"
    return found[-1].parent


class PostgresServer:
    """A throwaway PostgreSQL server (Debian's binaries) on a free loopback port, in a temporary folder."""

    def __init__(self) -> None:
        import socket
        import tempfile

        self.binaries = _postgres_bin()
        # Not under pytest's tmp folder: its parents are private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="archsearch-postgres-"))
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.sockets.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._run("initdb", "-D", str(self.data), "-U", "archsearch", "--auth=trust")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "archsearch", "studies")
        self.url = f"postgresql://archsearch@127.0.0.1:{self.port}/studies"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.binaries / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "log"), "-o",
                  f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1", "start")
        deadline = time.monotonic() + 30
        while subprocess.run([*self.as_user, str(self.binaries / "pg_isready"), "-h", "127.0.0.1", "-p",
                              str(self.port)], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "PostgreSQL did not start"
            time.sleep(0.5)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "stop"], capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for the session (shared by tests that never stop it)."""
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.remove()


@pytest.fixture
def postgres_server():
    """A PostgreSQL server of this test's own, which it may stop and start."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.remove()
