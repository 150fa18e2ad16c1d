"""Building a device profile: sample networks, measure them whole, fit, resample where the error is high.

Networks are sampled from the built-in search spaces (never the references, which are
kept for checking) and measured whole on this device under the standard protocol (one
worker process for the whole build). After each round the profile is refitted and every
network predicted by a fit that did not see it (5-fold cross-validation); the next round
draws more networks from the strata (space x MAC range) where those held-out errors are
largest, until the time budget is spent. Measurements land in the latency cache as
usual, so a rebuild reuses them.

Given a measuring function (``measure``: a batch of specs in, a result or an error per
spec out), the networks are measured by it instead, and nothing is timed here: with
``AgentMeasure(storage, device).measure_many`` the device's measurement agent measures
them, and the profile describes the agent's machine (its fingerprint, CPU, backend
versions and protocol, as its results report them) under the device's name.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from archsearch.cost import count_macs
from archsearch.errors import ArchsearchError
from archsearch.latency.backends import get_backend
from archsearch.latency.client import persistent_worker
from archsearch.latency.device import device_info
from archsearch.latency.kernels import feature_names, spec_features
from archsearch.latency.measure import LatencyResult, check_settings, measure_latencies, protocol_record
from archsearch.latency.profile import DeviceProfile, ProfileAccuracy, cross_validated, fit_coefficients
from archsearch.latency.timing import TimingPolicy
from archsearch.spec import NetworkSpec, spec_hash

BUILD_SPACES = ("mobilenetv3", "efficientnet", "shufflenetv2")
MAX_BUILD_MACS = 4e9
"""Samples above this are skipped: each would take seconds per inference to time (EfficientNet-B7 is ~37e9)."""

MeasureMany = Callable[[list[NetworkSpec]], Sequence["LatencyResult | Exception"]]
"""Measures a batch of networks: per spec, in order, its result or the error that kept it from being measured."""

PER_MEASUREMENT = ("input_shape", "warmup_runs", "stable", "other_statistics", "host_busy_fraction", "measured_by")
"""Protocol entries that describe one measurement, not the setup a profile is for."""


@dataclass(frozen=True)
class BuildProgress:
    """After each round: how many networks, how long, and the held-out error so far."""

    round: int
    networks: int
    seconds: float
    accuracy: ProfileAccuracy | None
    failed: int = 0
    """Networks the measuring function could not measure so far (skipped; only with ``measure``)."""


def _band(macs: float) -> int:
    """A stratum's MAC range: [10**(band/2), 10**((band+1)/2)), half a decade wide."""
    return int(math.floor(2 * math.log10(max(macs, 1.0))))


class _Sampler:
    """Specs from the build spaces, drawn per stratum on demand, each spec at most once."""

    def __init__(self, spaces: tuple[str, ...], seed: int) -> None:
        from archsearch.space import load_space

        self.spaces = {name: load_space(name) for name in spaces}
        self.random = random.Random(seed)
        self.seen: set[str] = set()
        self.waiting: dict[tuple[str, int], list[NetworkSpec]] = {}

    def _draw(self, space: str) -> NetworkSpec | None:
        for _ in range(200):
            spec = self.spaces[space].sample(self.random)
            digest = spec_hash(spec)
            if digest in self.seen:
                continue
            self.seen.add(digest)
            macs = count_macs(spec)
            if macs <= MAX_BUILD_MACS:
                return spec
        return None

    def take(self, space: str, band: int | None) -> NetworkSpec | None:
        """A new spec from ``space``, in MAC band ``band`` if one turns up within a few draws."""
        if band is not None and self.waiting.get((space, band)):
            return self.waiting[(space, band)].pop()
        for _ in range(1 if band is None else 40):
            spec = self._draw(space)
            if spec is None:
                return None
            found = _band(count_macs(spec))
            if band is None or found == band:
                return spec
            self.waiting.setdefault((space, found), []).append(spec)
        queued = [s for (name, _), specs in self.waiting.items() if name == space for s in specs]
        if queued:
            spec = queued[0]
            self.waiting[(space, _band(count_macs(spec)))].remove(spec)
            return spec
        return self._draw(space)


def _next_batch(sampler: _Sampler, strata: list[tuple[str, int]], errors: np.ndarray, size: int,
                rng: random.Random) -> list[tuple[str, NetworkSpec]]:
    """``size`` new (space, spec) pairs: every space kept in play, the rest drawn toward high-error strata."""
    weights: dict[tuple[str, int], list[float]] = {}
    for stratum, error in zip(strata, errors):
        weights.setdefault(stratum, []).append(abs(float(error)))
    keys = list(weights)
    # Mean held-out error per stratum, floored so no stratum is ever abandoned.
    scores = [max(float(np.mean(weights[k])), 0.02) for k in keys]
    batch: list[tuple[str, NetworkSpec]] = []
    for index in range(size):
        if index < len(sampler.spaces) or not keys:
            space, band = list(sampler.spaces)[index % len(sampler.spaces)], None
        else:
            space, band = rng.choices(keys, weights=scores)[0]
        spec = sampler.take(space, band)
        if spec is not None:
            batch.append((space, spec))
    return batch


def build_profile(backend: str = "litert", threads: int = 1, storage: str | None = None, minutes: float = 15.0,
                  seed: int = 0, batch: int = 8, spaces: tuple[str, ...] = BUILD_SPACES,
                  max_networks: int | None = None,
                  on_progress: Callable[[BuildProgress], None] | None = None,
                  measure: MeasureMany | None = None, device_name: str | None = None) -> DeviceProfile:
    """Measure sampled networks on this device and fit a ``DeviceProfile`` within ``minutes``.

    ``storage`` is the latency cache the measurements go to (default: the user cache);
    ``max_networks`` stops earlier (tests). The profile is returned, not stored: see
    ``store_profile``.

    ``measure`` measures instead (``AgentMeasure(...).measure_many``: the device's agent),
    and nothing is converted or timed here; ``storage`` is then unused. The profile's
    device, backend, versions and protocol are those its results report, and
    ``device_name`` (default: the ``device_name`` in their protocol) names it. A network
    it could not measure is skipped (``BuildProgress.failed``); a round in which none
    could be measured ends the build.
    """
    check_settings(threads, None)
    if minutes <= 0:
        raise ArchsearchError(f"minutes must be positive, got {minutes:g}")
    if max_networks is not None and max_networks < 10:
        raise ArchsearchError(f"a profile needs at least 10 measured networks; max networks is {max_networks}")
    info = get_backend(backend) if measure is None else None  # the device's backend is the device's business
    sampler, rng = _Sampler(spaces, seed), random.Random(seed + 1)
    started = time.perf_counter()
    deadline = started + 60 * minutes
    specs: list[NetworkSpec] = []
    features: list[list[float]] = []
    measured: list[float] = []
    strata: list[tuple[str, int]] = []
    answers: list[LatencyResult] = []
    failures: list[str] = []
    errors = np.zeros(0)
    accuracy: ProfileAccuracy | None = None
    round_number = 0
    with persistent_worker() if measure is None else nullcontext():
        while True:
            remaining = deadline - time.perf_counter()
            per_network = (time.perf_counter() - started) / len(specs) if specs else 0.0
            limit = batch if max_networks is None else min(batch, max_networks - len(specs))
            if limit <= 0 or remaining <= 0 or (specs and per_network * limit > remaining):
                break
            todo = _next_batch(sampler, strata, errors, limit, rng)
            if not todo:
                break
            batch_specs = [spec for _, spec in todo]
            if measure is None:
                results: Sequence[LatencyResult | Exception] = measure_latencies(batch_specs, backend, threads,
                                                                                 storage=storage)
            else:
                results = measure(batch_specs)
                if len(results) != len(todo):
                    raise ArchsearchError(f"the measuring function answered {len(results)} of {len(todo)} networks")
            for (space, spec), result in zip(todo, results):
                if isinstance(result, BaseException):
                    failures.append(str(result))
                    continue
                specs.append(spec)
                features.append(spec_features(spec))
                measured.append(result.median_ms)
                strata.append((space, _band(count_macs(spec))))
                answers.append(result)
            round_number += 1
            if all(isinstance(result, BaseException) for result in results):
                break  # nothing measured in a whole round: more rounds would fail alike
            if len(specs) >= 10:
                x, y = np.asarray(features), np.asarray(measured)
                predicted = cross_validated(x, y, folds=5, seed=seed)
                errors = predicted / y - 1
                accuracy = ProfileAccuracy.of(predicted, y)
            if on_progress is not None:
                on_progress(BuildProgress(round_number, len(specs), time.perf_counter() - started, accuracy,
                                          len(failures)))
    if len(specs) < 10:
        why = f"; {len(failures)} could not be measured, the first: {failures[0]}" if failures else ""
        raise ArchsearchError(f"a profile needs at least 10 measured networks; {len(specs)} fitted in "
                              f"{minutes:g} minutes{why}")
    x, y = np.asarray(features), np.asarray(measured)
    coefficients = fit_coefficients(x, y)
    assert accuracy is not None
    build: dict[str, Any] = {
        "networks": len(specs), "rounds": round_number, "seconds": round(time.perf_counter() - started, 1),
        "spaces": list(spaces), "seed": seed, "cross_validation": "5-fold, out-of-fold relative errors"}
    if info is not None:
        policy = TimingPolicy()
        protocol = protocol_record(info, threads, "per network", policy, {})
        return DeviceProfile(
            device=device_info().as_dict(), backend=info.name, backend_version=info.version(), threads=threads,
            protocol=protocol, features=tuple(feature_names()), coefficients=tuple(float(c) for c in coefficients),
            accuracy=accuracy, training_hashes=tuple(spec_hash(s) for s in specs), build=build,
        )
    device, result = _measured_device(answers)
    protocol = {**{k: v for k, v in result.protocol.items() if k not in PER_MEASUREMENT}, "input_shape": "per network"}
    name = device_name or protocol.get("device_name")
    if name is not None:
        protocol["device_name"] = name
    measured_by = sorted({str(r.protocol["measured_by"]) for r in answers if r.protocol.get("measured_by")})
    busy = [float(r.protocol["host_busy_fraction"]) for r in answers
            if isinstance(r.protocol.get("host_busy_fraction"), (int, float))]
    build.update(failed=len(failures), measured_by=measured_by,
                 fingerprints=dict(Counter(str(r.protocol.get("device", {}).get("fingerprint")) for r in answers)),
                 host_busy_fraction=None if not busy else {"median": float(np.median(busy)), "max": max(busy)})
    return DeviceProfile(
        device=device, backend=result.backend, backend_version=str(protocol.get("backend_version",
                                                                                 result.backend_version)),
        threads=result.threads, protocol=protocol, features=tuple(feature_names()),
        coefficients=tuple(float(c) for c in coefficients), accuracy=accuracy,
        training_hashes=tuple(spec_hash(s) for s in specs), build=build,
        device_name=None if name is None else str(name),
    )


def _measured_device(results: list[LatencyResult]) -> tuple[dict[str, Any], LatencyResult]:
    """The device most of ``results`` were measured on (their protocol's ``device``), and its latest result.

    One device name may be served by boards of more than one kind; the profile then
    describes the kind that measured most of its networks (``build["fingerprints"]``
    counts them all).
    """
    described = [r for r in results if isinstance(r.protocol.get("device"), dict)
                 and r.protocol["device"].get("fingerprint")]
    if not described:
        raise ArchsearchError("the measurements carry no device description (protocol 'device'): an older agent? "
                              "update archsearch on the device")
    counts = Counter(r.protocol["device"]["fingerprint"] for r in described)
    fingerprint = counts.most_common(1)[0][0]
    latest = [r for r in described if r.protocol["device"]["fingerprint"] == fingerprint][-1]
    return dict(latest.protocol["device"]), latest

