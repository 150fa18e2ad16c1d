"""TensorFlow's start-up lines stay out of the terminal; everything else written to stderr stays in it.

The subprocesses run without ``TF_CPP_MIN_LOG_LEVEL`` (conftest sets one for the test
session), as a user's shell would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import write_tiny_inputs

import archsearch
from archsearch.latency import BACKENDS, TimingPolicy
from archsearch.latency.client import worker_request
from archsearch.spec import spec_to_dict

# What TensorFlow 2.21 writes while `import tensorflow` loads its libraries (twice per process).
STARTUP = ("absl::InitializeLog", "oneDNN custom operations are on", "Could not find cuda drivers",
           "cpu_feature_guard")


def user_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "COLUMNS": "200", **extra}


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=user_env(**env))


def startup_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(marker in line for marker in STARTUP)]


def test_the_filter_drops_only_startup_noise_and_keeps_the_order():
    result = python(r"""
        import os, sys
        from archsearch.quiet import filtered_stderr

        with filtered_stderr():
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
            os.write(2, b"I0000 00:00:1795950165.191398    5551 port.cc:153] oneDNN custom operations are on.\n")
            os.write(2, b"2025-01-01 12:00:00.000001: I tensorflow/core/platform/cpu_feature_guard.cc:182] AVX\n")
            os.write(2, b"W0000 00:00:1795950165.192541    5551 x.cc:1] a warning\n")
            sys.stderr.write("python says something\n")
            os.write(2, b"E0000 00:00:1795950165.192541    5551 y.cc:2] an error\n")
            os.write(2, b"INFO: not an absl line, kept\n")
        sys.stderr.write("after\n")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "W0000 00:00:1795950165.192541    5551 x.cc:1] a warning", "python says something",
        "E0000 00:00:1795950165.192541    5551 y.cc:2] an error", "INFO: not an absl line, kept", "after"]


@pytest.mark.parametrize("level", [None, "0"])
def test_importing_tensorflow_after_the_helper(level):
    """By default no start-up line; with TF_CPP_MIN_LOG_LEVEL=0 all of them (so the default case proves something).

    A look-up of the module first (as a backend's availability check does) must not use the filter up.
    """
    result = python("""
        import importlib.util
        from archsearch.quiet import quiet_tensorflow_startup

        quiet_tensorflow_startup()
        assert importlib.util.find_spec("tensorflow") is not None
        import tensorflow
        print(tensorflow.constant(2.0).numpy() * 2)
    """, **({"TF_CPP_MIN_LOG_LEVEL": level} if level else {}))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "4.0\n"
    if level is None:
        assert startup_lines(result.stderr) == [], result.stderr
    else:
        assert len(startup_lines(result.stderr)) >= 4, result.stderr


def test_a_study_from_the_cli_prints_no_tensorflow_startup_lines(tmp_path):
    """`archsearch run` imports TensorFlow in its own process (training) and in the latency worker."""
    write_tiny_inputs(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "archsearch", "run", "--space", "tiny_space.yaml", "--dataset", "tiny.npz",
         "--budget-ms", "50", "--trials", "1", "--epochs", "1", "--no-references", "--seed", "0", "--study", "q"],
        capture_output=True, text=True, cwd=tmp_path, env=user_env(ARCHSEARCH_CACHE_DIR=str(tmp_path / "cache")))
    assert result.returncode == 0, result.stderr
    assert "Pareto front of q" in result.stdout
    assert startup_lines(result.stdout + result.stderr) == [], result.stderr
    assert "A new study created" not in result.stderr  # Optuna's log is quiet before the study opens


def test_the_latency_worker_writes_no_tensorflow_startup_lines(tmp_path, monkeypatch):
    """The worker's stderr is captured by its parent, whose error message is its last line if the worker dies."""
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    spec = archsearch.load_reference("mobilenet_v3_small", input={"size": 32}, classes=10)
    jobs = [{"id": "a", "spec": spec_to_dict(spec), "artifact": "network-a"}]
    request = tmp_path / "request.json"
    request.write_text(json.dumps(worker_request(jobs, BACKENDS["litert"], 1, TimingPolicy(runs=5),
                                                 tmp_path / "results.json")))
    result = subprocess.run([sys.executable, "-m", "archsearch.latency.worker", str(request)], capture_output=True,
                            text=True, env=user_env())
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "results.json").read_text())[0]["ok"]
    assert startup_lines(result.stdout + result.stderr) == [], result.stderr


def test_the_expected_retracing_warning_is_dropped_and_other_warnings_kept():
    result = python("""
        from archsearch.quiet import quiet_tensorflow_startup
        quiet_tensorflow_startup()
        import tensorflow as tf
        logger = tf.get_logger()
        logger.warning("5 out of the last 13 calls to <function f> triggered tf.function retracing. Tracing is ...")
        logger.warning("a warning worth reading")
    """)
    assert "retracing" not in result.stderr and "a warning worth reading" in result.stderr, result.stderr
