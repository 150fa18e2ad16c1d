"""Latency: measurement in a worker process, the cache, backends, and the per-part predictor.

Specs are small (32x32 inputs) so conversions and timings stay quick; everything runs
for real (TFLite conversion, the LiteRT interpreter, SQLite).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import toy_backend
from sqlalchemy import func, select
from test_cli import run

import archsearch
from archsearch.db import NetworkLatency, PartLatency, Store
from archsearch.latency import (
    BACKENDS,
    BackendUnavailableError,
    LatencyError,
    LatencyPredictor,
    decompose,
    measure_latency,
    measure_tflite,
    persistent_worker,
)
from archsearch.latency.backends import BackendInfo


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A private cache directory (database and flatbuffers) for one test; workers inherit it."""
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small(name: str = "mobilenet_v3_small", size: int = 32, **overrides):
    return archsearch.load_reference(name, input={"size": size}, classes=10, **overrides)


def test_measure_then_answer_from_the_cache(cache):
    spec = small()
    first = measure_latency(spec, runs=30)
    assert not first.cached and first.runs == 30 and first.median_ms > 0
    assert first.p10_ms <= first.median_ms <= first.p90_ms
    assert first.input_shape == "1x32x32x3" and first.backend == "litert" and "ai-edge-litert" in first.backend_version
    assert first.protocol["device"]["fingerprint"] and first.protocol["threads"] == 1
    again = measure_latency(spec)
    assert again.cached and again.median_ms == first.median_ms
    # Another thread count is another cache entry.
    assert not measure_latency(spec, threads=2, runs=30).cached
    fresh = measure_latency(spec, fresh=True, runs=30)
    assert not fresh.cached
    with Store().session() as session:
        assert session.scalar(select(func.count()).select_from(NetworkLatency)) == 2
    assert len(list((cache / "tflite").glob("*/network-*.tflite"))) == 1  # converted once


def test_keras_backend_is_pluggable(cache):
    result = measure_latency(small("mobilenet_v2"), backend="keras", runs=20)
    assert result.backend == "keras" and result.median_ms > 0 and "keras" in result.backend_version


def test_unknown_and_missing_backends(cache, monkeypatch):
    with pytest.raises(archsearch.UnknownNameError, match="unknown latency backend 'tpu'"):
        measure_latency(small(), backend="tpu")
    monkeypatch.setitem(BACKENDS, "npu", BackendInfo("npu", (("npu-runtime", "archsearch_no_such_module"),), "x",
                                                     toy_backend.make_runner))
    with pytest.raises(BackendUnavailableError, match="needs the package 'npu-runtime'"):
        measure_latency(small(), backend="npu")


def test_a_new_backend_is_one_entry(cache, monkeypatch):
    """An entry names what runs it; the worker process imports those functions and knows no backend by name."""
    tests = str(Path(toy_backend.__file__).parent)  # where the worker can import the toy backend from
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))
    monkeypatch.setitem(BACKENDS, "toy", BackendInfo("toy", (), "a sum in Python", toy_backend.make_runner,
                                                     toy_backend.configure))
    result = measure_latency(small(), backend="toy", runs=20)
    assert result.backend == "toy" and result.runs == 20 and result.median_ms > 0
    assert result.input_shape == "1x32x32x3" and result.protocol["description"] == "a sum in Python"
    assert measure_latency(small(), backend="toy").cached
    # A long-lived worker runs configure(threads) once, before its first job (the toy runner checks).
    with persistent_worker():
        sizes = [measure_latency(small(size=size), backend="toy", runs=20).input_shape for size in (48, 64)]
    assert sizes == ["1x48x48x3", "1x64x64x3"]


def test_backend_functions_must_be_importable_by_the_worker(cache, monkeypatch):
    monkeypatch.setitem(BACKENDS, "inline", BackendInfo("inline", (), "x", lambda job, artifact_dir, threads: None))
    with pytest.raises(archsearch.ArchsearchError, match="module-level functions of an importable module"):
        measure_latency(small(), backend="inline")


def test_a_model_that_cannot_be_loaded_fails_cleanly(cache, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(LatencyError, match="broken.tflite: "):
        measure_tflite(broken)
    result = run("latency", str(broken))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    if (cache / "latency.db").exists():  # nothing was written for it
        with Store().session() as session:
            assert session.scalar(select(func.count()).select_from(NetworkLatency)) == 0
    assert not list(cache.glob("tflite/*/*.partial"))


def test_independent_tflite_file_is_timed_under_the_same_protocol(cache, tmp_path):
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    function = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, 32, 32, 3))])
    path = tmp_path / "keras_v3small.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()]).convert())
    stats = measure_tflite(path, runs=25)
    assert stats["runs"] == 25 and stats["protocol"]["input_shape"] == "1x32x32x3"


@pytest.mark.slow
def test_predictor_sums_the_part_table_and_calibrates(cache):
    """Predictor arithmetic on a small space: the table, the sum, the calibration."""
    space = archsearch.load_space("mobilenetv3").with_overrides(classes=10)
    specs = [s.model_copy(update={"input": s.input.model_copy(update={"size": 32})})
             for s in archsearch.sample_specs(space, 3, seed=0)]
    specs = [archsearch.parse_spec(s.model_dump()) for s in specs]
    predictor = LatencyPredictor()
    first = predictor.predict(specs[0])
    assert first.parts == len(decompose(specs[0])) and first.parts_measured > 0
    assert first.calibration.points == 0 and math.isclose(first.latency_ms, first.parts_sum_ms)

    # The sum is exactly the table's entries for the spec's parts.
    parts = decompose(specs[0])
    with Store().session() as session:
        table = PartLatency.lookup(session, [p.key for p in parts], predictor.setup)
    assert math.isclose(first.parts_sum_ms, sum(table[p.key] for p in parts))

    # Shared parts are measured once: a second spec measures only what is new.
    repeat = predictor.predict(specs[0])
    assert repeat.parts_measured == 0 and repeat.latency_ms == first.latency_ms

    # Whole-network measurements calibrate later predictions.
    for spec in specs[1:]:
        predictor.predict(spec)
        measure_latency(spec, runs=30)
    calibrated = predictor.predict(specs[0])
    assert calibrated.calibration.points == 2 and calibrated.parts_measured == 0
    scale, exponent = calibrated.calibration.scale, calibrated.calibration.exponent
    assert exponent == 1.0  # two networks: a plain ratio
    assert math.isclose(calibrated.latency_ms, scale * calibrated.parts_sum_ms)
    assert 0.3 < scale < 3
    assert archsearch.predict_latency(specs[0]) == pytest.approx(calibrated.latency_ms)


def test_cli_latency_json_and_predict(cache):
    path = archsearch.dump_spec(small("mobilenet_v3_small"), cache.parent / "v3.yaml")
    result = run("latency", str(path), "--runs", "20", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"median_ms", "p90_ms", "runs", "backend", "threads", "cached"} <= set(data)
    assert data["cached"] is False and data["runs"] == 20
    assert json.loads(run("latency", str(path), "--json").stdout)["cached"] is True
    assert json.loads(run("latency", str(path), "--json", "--fresh", "--runs", "20").stdout)["cached"] is False
    # --predict needs a device profile and measures nothing without one (tests/test_profile.py has the rest).
    refused = run("latency", str(path), "--predict")
    assert refused.returncode == 2 and "no device profile" in refused.stderr and "profile build" in refused.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "tpu"], "unknown latency backend 'tpu'"),
    (["--threads", "0"], "threads must be at least 1"),
    (["--runs", "0"], "runs must be at least 1"),
    (["--storage", "nosuchdb://x"], "cannot use storage URL"),
])
def test_cli_latency_bad_input(cache, args, message):
    result = run("latency", "mobilenet_v3_small", *args)
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_timing_loop_follows_its_policy():
    from archsearch.latency import TimingPolicy, time_runs

    calls = []
    fixed = time_runs(lambda: calls.append(1), TimingPolicy(runs=40, warmup_runs=5, warmup_seconds=0))
    assert fixed.runs == 40 and len(calls) == 45 and fixed.warmup_runs == 5
    assert 0 <= fixed.p10_ms <= fixed.median_ms <= fixed.p90_ms
    adaptive = time_runs(lambda: sum(range(200)), TimingPolicy(min_runs=50, min_seconds=0.05, batch=25))
    assert adaptive.runs >= 50 and adaptive.runs % 25 == 0
