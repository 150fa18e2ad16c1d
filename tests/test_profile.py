"""Device profiles: kernels at fusion boundaries, the fit, storage, export/import, the CLI, and screening.

The decomposition and the fit are checked without TensorFlow (MACs against the cost
model, coefficients recovered from known costs); storage, export and import on real
SQLite files through the real CLI; a profile built from real LiteRT measurements is in
the slow suite (``test_profile_built_on_this_device_predicts_held_out_networks``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import run

import archsearch
from archsearch import count_macs, load_reference, load_space, sample_specs
from archsearch.cost import COST_FUNCTIONS
from archsearch.latency import device_info, get_backend
from archsearch.latency.kernels import KERNEL_FUNCTIONS, feature_names, network_kernels, spec_features
from archsearch.latency.profile import (
    DeviceProfile,
    ProfileAccuracy,
    ProfileError,
    cross_validated,
    find_profile,
    fit_coefficients,
    store_profile,
    stored_profiles,
    this_device_profile,
)
from archsearch.references import reference_names
from archsearch.study.screening import ProfileScreen

SPACES = ("mobilenetv3", "efficientnet", "shufflenetv2")


def every_spec(per_space: int = 25, seed: int = 0) -> list:
    specs = [load_reference(name) for name in reference_names()]
    return specs + [s for name in SPACES for s in sample_specs(load_space(name), per_space, seed=seed)]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_every_block_type_decomposes_into_kernels():
    assert set(KERNEL_FUNCTIONS) == set(COST_FUNCTIONS)


def test_kernel_macs_add_up_to_the_cost_model():
    """Every convolution, depthwise, squeeze-excite and dense MAC is in exactly one kernel."""
    for spec in every_spec():
        kernels = network_kernels(spec)
        assert sum(k.numbers.get("macs", 0) for k in kernels) == count_macs(spec), spec.name


def test_activations_that_xnnpack_fuses_cost_no_kernel():
    v3 = network_kernels(load_reference("mobilenet_v3_large"))
    v2 = network_kernels(load_reference("mobilenet_v2"))
    assert any(k.type == "hswish" for k in v3) and any(k.type == "squeeze_excite" for k in v3)
    assert not any(k.type in ("hswish", "swish", "squeeze_excite") for k in v2)  # ReLU6 is fused
    b0 = network_kernels(load_reference("efficientnet_b0"))
    assert sum(k.type == "swish" for k in b0) > 30
    shuffle = network_kernels(load_reference("shufflenet_v2_x1_0"))
    assert {"maxpool", "split", "concat_shuffle"} <= {k.type for k in shuffle}


def test_features_follow_the_network():
    base = load_reference("mobilenet_v3_small", classes=10)
    names = feature_names()
    small, large = spec_features(base), spec_features(base.model_copy(update={"width_multiplier": 2.0}))
    assert len(small) == len(names) and small[names.index("invoke")] == 1.0
    assert large[names.index("conv1x1.macs")] > 3 * small[names.index("conv1x1.macs")]


def synthetic_costs(seed: int = 0) -> np.ndarray:
    """Positive costs for every feature: a fixed cost per kernel, per MAC and per element."""
    rng = np.random.default_rng(seed)
    costs = []
    for name in feature_names():
        feature = name.split(".")[-1]
        scale = {"invoke": 0.05, "count": 0.004, "macs": 2e-8, "in_elems": 2e-7, "out_elems": 2e-7,
                 "elems": 3e-7}[feature]
        costs.append(scale * rng.uniform(0.5, 2.0))
    return np.array(costs)


def test_fit_recovers_kernel_costs_from_whole_networks():
    """Known per-kernel costs generate whole-network times (2% noise); a fit on some predicts the others."""
    specs = every_spec(per_space=60)
    x = np.array([spec_features(s) for s in specs])
    truth = x @ synthetic_costs()
    noisy = truth * np.random.default_rng(1).normal(1.0, 0.02, len(truth))
    train = np.arange(len(specs)) % 4 != 0
    coefficients = fit_coefficients(x[train], noisy[train])
    assert (coefficients >= 0).all()
    held_out = ProfileAccuracy.of(x[~train] @ coefficients, truth[~train])
    assert held_out.within_10pct >= 0.95 and held_out.rmspe < 0.05, held_out
    out_of_fold = ProfileAccuracy.of(cross_validated(x, noisy), noisy)
    assert out_of_fold.networks == len(specs) and out_of_fold.within_10pct >= 0.9


def synthetic_profile(fingerprint: str | None = None, version: str | None = None) -> DeviceProfile:
    device = device_info().as_dict()
    if fingerprint:
        device = {**device, "fingerprint": fingerprint, "cpu_model": "Other Board"}
    info = get_backend("litert")
    return DeviceProfile(device=device, backend="litert", backend_version=version or info.version(), threads=1,
                         protocol={"statistic": "median"}, features=tuple(feature_names()),
                         coefficients=tuple(synthetic_costs()),
                         accuracy=ProfileAccuracy(90, 0.97, 0.04, 0.03, 0.12, 0.08))


def test_profile_json_round_trip_and_malformed_files():
    profile = synthetic_profile()
    again = DeviceProfile.from_json(profile.to_json())
    spec = load_reference("efficientnet_b0")
    assert again.predict(spec) == pytest.approx(profile.predict(spec)) and again.accuracy == profile.accuracy
    with pytest.raises(ProfileError, match="not JSON"):
        DeviceProfile.from_json("{", "x.json")
    with pytest.raises(ProfileError, match="not an archsearch device profile"):
        DeviceProfile.from_json('{"kind": "model"}', "x.json")
    data = profile.as_dict()
    data["coefficients"] = data["coefficients"][:-1]
    with pytest.raises(ProfileError, match="malformed"):
        DeviceProfile.from_dict(data, "x.json")
    data = profile.as_dict()
    data["features"] = [*data["features"][:-1], "warp.drive"]
    with pytest.raises(ProfileError, match="another kernel decomposition"):
        DeviceProfile.from_dict(data).predict(spec)


def test_stored_profiles_prefer_this_device(cache):
    foreign = synthetic_profile(fingerprint="0123456789abcdef")
    store_profile(foreign)
    info = get_backend("litert")
    choice = find_profile("litert", info.version(), 1)
    assert choice is not None and "another device" in choice.caveat and "Other Board" in choice.caveat
    assert this_device_profile("litert", 1) is None  # never used to screen a study measured here
    store_profile(synthetic_profile())
    choice = find_profile("litert", info.version(), 1)
    assert choice.caveat is None and choice.profile.fingerprint == device_info().fingerprint
    assert this_device_profile("litert", 1) is not None
    store_profile(synthetic_profile())  # the same key: replaced, not duplicated
    assert len(stored_profiles()) == 2
    assert find_profile("litert", info.version(), 2) is None


def test_cli_predict_export_import(cache, tmp_path):
    assert run("latency", "mobilenet_v2", "--predict").returncode == 2
    store_profile(synthetic_profile())
    predicted = run("latency", "efficientnet_b3", "--predict", "--json")
    assert predicted.returncode == 0, predicted.stderr
    data = json.loads(predicted.stdout)
    assert data["predicted_ms"] == pytest.approx(synthetic_profile().predict(load_reference("efficientnet_b3")))
    assert data["caveat"] is None
    assert not (cache / "tflite").exists() or not list((cache / "tflite").rglob("*.tflite"))  # nothing converted

    exported = tmp_path / "team.json"
    assert run("profile", "export", str(exported)).returncode == 0
    assert DeviceProfile.from_json(exported.read_text()).coefficients == synthetic_profile().coefficients
    text = exported.read_text().replace(device_info().fingerprint, "0123456789abcdef")
    foreign = tmp_path / "board.json"
    foreign.write_text(text)
    elsewhere = {"ARCHSEARCH_CACHE_DIR": str(tmp_path / "elsewhere")}
    imported = run("profile", "import", str(foreign), env=elsewhere)
    assert imported.returncode == 0 and "another device" in imported.stdout
    shown = run("latency", "mobilenet_v3_large", "--predict", env=elsewhere)
    assert shown.returncode == 0 and "note: profile built on another device" in shown.stdout
    listing = run("profile", "show", env=elsewhere)
    assert "ANOTHER device" in listing.stdout and "held-out" in listing.stdout

    for bad, message in ((tmp_path / "missing.json", "no such file"), (tmp_path / "team.json.bak", "not JSON")):
        if "bak" in bad.name:
            bad.write_text("{ not json")
        result = run("profile", "import", str(bad))
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1


def test_profile_screen_measures_only_near_the_budget():
    """Clearly under: train on the prediction; clearly over: reject unmeasured; near: measure now."""
    profile = synthetic_profile()
    specs = sorted(every_spec(per_space=10), key=profile.predict)
    measured: list[str] = []

    class Measured:
        def __init__(self, ms: float) -> None:
            self.median_ms = ms

    def measure(spec):
        measured.append(spec.name)
        return Measured(profile.predict(spec))

    middle = profile.predict(specs[len(specs) // 2])
    screen = ProfileScreen(profile, measure, budget_ms=middle)
    band = profile.accuracy.band
    for spec in specs:
        predicted = profile.predict(spec)
        screening = screen.screen(spec)
        near = abs(predicted / middle - 1) <= band
        assert (screening.source == "measured") == near and screening.predicted_ms == pytest.approx(predicted)
        assert screening.rejects(middle, 0.0) == (predicted > middle * (1 + band) or (near and predicted > middle))
    assert 0 < len(measured) < len(specs)
    assert screen.screen(specs[0], measure=True).source == "measured"  # references are always measured



@pytest.mark.slow
def test_profile_built_on_this_device_predicts_held_out_networks_and_screens_a_study(tmp_path, monkeypatch):
    """Real LiteRT throughout: build on part of the tiny space, predict the rest, then screen a study with it."""
    from conftest import write_tiny_inputs

    from archsearch.latency import measure_latency
    from archsearch.latency.profile_build import build_profile
    from archsearch.study import StudyConfig, StudyRunner
    from archsearch.study.record import Status, records

    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    root = write_tiny_inputs(tmp_path)
    space_path = str(root / "tiny_space.yaml")
    profile = build_profile(spaces=(space_path,), max_networks=24, batch=8, minutes=10)
    assert profile.build["networks"] == 24 and profile.accuracy.networks == 24
    store_profile(profile)

    seen = set(profile.training_hashes)
    unseen = [s for s in sample_specs(load_space(space_path), 64, seed=5) if archsearch.spec_hash(s) not in seen][:6]
    errors = [profile.predict(s) / measure_latency(s).median_ms - 1 for s in unseen]
    assert len(errors) == 6 and float(np.median(np.abs(errors))) < 0.20, errors

    space = load_space(space_path).with_overrides(classes=10)
    budget = float(np.median([profile.predict(s) for s in sample_specs(space, 64, seed=1)]))
    config = StudyConfig(name="screened", space=space_path, dataset=str(root / "tiny.npz"), budget_ms=budget,
                         trials=8, epochs=1, references=False, storage=f"sqlite:///{tmp_path / 'screened.db'}")
    runner = StudyRunner(config)
    assert runner.profile is not None and "device profile" in runner.latency_plan
    study = runner.run()
    trials = [r for r in records(study) if r.status != Status.DUPLICATE]
    assert all(r.predicted_latency_ms is not None for r in trials)
    rejected = [r for r in trials if r.status == Status.REJECTED_PREDICTED]
    for r in rejected:  # decided on the prediction alone: never converted or timed
        assert r.latency_source == "predicted" and r.measured_latency_ms is None
    for r in trials:
        if r.status == Status.COMPLETE:  # what the study records is the measurement
            assert r.measured_latency_ms is not None and r.values[1] == r.measured_latency_ms


def test_profile_screen_learns_the_host_speed_from_what_it_measures():
    """A profile from a host twice as fast: after one measured network the screen predicts this host's times."""
    profile = synthetic_profile()
    specs = sorted(every_spec(per_space=10), key=profile.predict)

    class Measured:
        def __init__(self, ms: float) -> None:
            self.median_ms = ms

    screen = ProfileScreen(profile, lambda spec: Measured(2 * profile.predict(spec)), budget_ms=1e9)
    reference = screen.screen(specs[0], measure=True)  # references are measured: a first pair
    assert reference.source == "measured" and reference.profile_ms == pytest.approx(profile.predict(specs[0]))
    screen.observe(reference.profile_ms, reference.latency_ms)
    later = screen.screen(specs[-1])
    assert screen.scale == pytest.approx(2.0) and later.predicted_ms == pytest.approx(2 * profile.predict(specs[-1]))
    resumed = ProfileScreen(profile, lambda spec: Measured(0.0), budget_ms=1e9, pairs=screen.pairs)
    assert resumed.scale == pytest.approx(2.0)  # a resumed study starts from what it measured
