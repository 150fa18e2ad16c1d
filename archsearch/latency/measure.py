"""Measuring whole networks (through the worker), with the cache: ``measure_latency``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archsearch.db import NetworkLatency, Store
from archsearch.errors import ArchsearchError
from archsearch.latency.backends import BackendInfo, get_backend
from archsearch.latency.client import run_worker
from archsearch.latency.device import device_info
from archsearch.latency.timing import TimingPolicy
from archsearch.spec import NetworkSpec, canonical_json, spec_hash, spec_to_dict


class LatencyError(ArchsearchError):
    """A model could not be converted or timed."""


@dataclass(frozen=True)
class LatencyResult:
    """A measured latency with the protocol that produced it."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    backend: str
    backend_version: str
    threads: int
    input_shape: str
    spec_hash: str
    cached: bool
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def spread_ms(self) -> float:
        return self.p90_ms - self.p10_ms

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spread_ms": self.spread_ms}


def check_settings(threads: int, runs: int | None) -> None:
    if threads < 1:
        raise ArchsearchError(f"threads must be at least 1, got {threads}")
    if runs is not None and runs < 1:
        raise ArchsearchError(f"runs must be at least 1, got {runs}")


def input_shape_of(spec: NetworkSpec) -> str:
    return f"1x{spec.input.size}x{spec.input.size}x{spec.input.channels}"


def setup_key(backend: BackendInfo, threads: int) -> dict[str, Any]:
    """The columns (besides what was measured) that a cached latency must match."""
    return {"fingerprint": device_info().fingerprint, "backend": backend.name,
            "backend_version": backend.version(), "threads": threads}


def protocol_record(backend: BackendInfo, threads: int, input_shape: str, policy: TimingPolicy,
                    stats: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to interpret (and repeat) a figure."""
    return {
        "backend": backend.name, "backend_version": backend.version(), "description": backend.description,
        "threads": threads, "input_shape": input_shape, "precision": "float32", "batch": 1,
        "statistic": "median of single-invoke times", "anchor": None,
        "device": device_info().as_dict(), "policy": policy.as_dict(),
        "warmup_runs": stats.get("warmup_runs"), "stable": stats.get("stable"),
        "other_statistics": {k: stats[k] for k in ("min_ms", "p20_ms", "iqm_ms") if k in stats},
    }


def _result_from_row(row: NetworkLatency, cached: bool) -> LatencyResult:
    return LatencyResult(row.median_ms, row.p10_ms, row.p90_ms, row.runs, row.backend, row.backend_version,
                         row.threads, row.input_shape, row.spec_hash, cached, json.loads(row.protocol))


def measure_latency(spec: NetworkSpec, backend: str = "litert", threads: int = 1, runs: int | None = None,
                    fresh: bool = False, storage: str | None = None) -> LatencyResult:
    """Measure ``spec``'s batch-1 latency on ``backend`` in a separate process, or answer from the cache.

    The cache key is the spec hash, device fingerprint, backend and its version,
    threads and input shape. ``fresh`` measures again and replaces the cached figure.
    ``runs`` fixes the number of timed runs; by default timing goes on until the
    median is stable. ``storage`` is a SQLAlchemy URL (default: the user cache).
    """
    return measure_latencies([spec], backend, threads, runs, fresh, storage)[0]


def measure_latencies(specs: list[NetworkSpec], backend: str = "litert", threads: int = 1,
                      runs: int | None = None, fresh: bool = False, storage: str | None = None) -> list[LatencyResult]:
    """``measure_latency`` for many specs, measured one after another in a single worker process.

    Every successful measurement is stored even if another spec fails; a failure then
    raises ``LatencyError`` naming the first spec that failed.
    """
    check_settings(threads, runs)
    info = get_backend(backend)
    store = Store.at(storage)
    setup = setup_key(info, threads)
    digests = [spec_hash(spec) for spec in specs]
    results: dict[str, LatencyResult] = {}
    if not fresh:
        with store.session() as session:
            for spec, digest in zip(specs, digests):
                row = NetworkLatency.find(session, digest, {**setup, "input_shape": input_shape_of(spec)})
                if row is not None:
                    results[digest] = _result_from_row(row, cached=True)

    todo = {digest: spec for spec, digest in zip(specs, digests) if digest not in results}
    if todo:
        policy = TimingPolicy(runs=runs)
        jobs = [{"id": digest, "spec": spec_to_dict(spec), "artifact": f"network-{digest}"}
                for digest, spec in todo.items()]
        measured = run_worker(jobs, info, threads, policy)
        with store.session() as session:
            for digest, spec in todo.items():
                if measured[digest]["ok"]:
                    results[digest] = _store(session, spec, digest, {**setup, "input_shape": input_shape_of(spec)},
                                             measured[digest]["stats"], info, threads, policy)
        failed = [(todo[d].name, measured[d]["error"]) for d in todo if not measured[d]["ok"]]
        if failed:
            raise LatencyError(f"{failed[0][0]}: {failed[0][1]}")
    return [results[digest] for digest in digests]


def remeasure_latency(spec: NetworkSpec, backend: str = "litert", threads: int = 1) -> LatencyResult:
    """Measure ``spec`` again now, bypassing and leaving untouched the cache (a canary; drift checks).

    The converted flatbuffer is reused when one exists; only the timing is repeated.
    """
    check_settings(threads, None)
    info = get_backend(backend)
    digest = spec_hash(spec)
    policy = TimingPolicy()
    job = {"id": digest, "spec": spec_to_dict(spec), "artifact": f"network-{digest}"}
    result = run_worker([job], info, threads, policy)[digest]
    if not result["ok"]:
        raise LatencyError(f"{spec.name}: {result['error']}")
    stats, shape = result["stats"], input_shape_of(spec)
    return LatencyResult(stats["median_ms"], stats["p10_ms"], stats["p90_ms"], stats["runs"], info.name,
                         info.version(), threads, shape, digest, False,
                         protocol_record(info, threads, shape, policy, stats))


def _store(session: Any, spec: NetworkSpec, digest: str, setup: dict[str, Any], stats: dict[str, Any],
           info: BackendInfo, threads: int, policy: TimingPolicy) -> LatencyResult:
    row = NetworkLatency.find(session, digest, setup)
    if row is None:
        row = NetworkLatency(spec_hash=digest, **setup)
        session.add(row)
    row.spec_json = canonical_json(spec)
    row.median_ms, row.p10_ms, row.p90_ms = stats["median_ms"], stats["p10_ms"], stats["p90_ms"]
    row.runs = stats["runs"]
    row.protocol = json.dumps(protocol_record(info, threads, setup["input_shape"], policy, stats))
    row.parts_sum_ms = None  # recomputed by the predictor against the current table
    session.flush()
    return _result_from_row(row, cached=False)


def measure_tflite(path: str | Path, threads: int = 1, runs: int | None = None) -> dict[str, Any]:
    """Time an existing ``.tflite`` file in LiteRT under the same protocol (not cached)."""
    check_settings(threads, runs)
    path = Path(path)
    if not path.is_file():
        raise ArchsearchError(f"{path}: no such file")
    info = get_backend("litert")
    policy = TimingPolicy(runs=runs)
    result = run_worker([{"id": "file", "tflite": str(path.resolve())}], info, threads, policy)["file"]
    if not result["ok"]:
        raise LatencyError(f"{path}: {result['error']}")
    shape = "x".join(map(str, result["input_shape"]))
    return {**result["stats"], "protocol": protocol_record(info, threads, shape, policy, result["stats"])}
