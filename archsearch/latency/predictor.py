"""Per-part latency lookup table and calibrated prediction (FBNet / nn-Meter style).

A spec is cut into parts (stem, each block repeat at its input shape, head). Each
distinct part is measured once on the target backend, in the worker process, and
stored. A prediction sums the parts and corrects the sum with a power law fitted on
whole networks measured on the same device and backend (see ``Calibration``).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from archsearch.db import NetworkLatency, PartLatency, Store
from archsearch.latency.backends import get_backend
from archsearch.latency.client import run_worker
from archsearch.latency.measure import LatencyError, check_settings, protocol_record, setup_key
from archsearch.latency.timing import TimingPolicy
from archsearch.spec import NetworkSpec, parse_spec, resolve, spec_to_dict

PART_POLICY = TimingPolicy(warmup_seconds=0.1, min_seconds=0.2)
"""Parts run for a fraction of a millisecond: 0.2 s of timed runs is hundreds of runs."""


@dataclass(frozen=True)
class Part:
    """One separately measurable part of a network, identified by what it computes."""

    name: str
    key: str
    description: dict[str, Any]


def _key(description: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def decompose(spec: NetworkSpec) -> list[Part]:
    """The parts of ``spec``, each keyed by its computation (type, widths, input shape)."""
    net = resolve(spec)
    stem = net.stem
    stem_description = {
        "part": "stem", "input": spec.input.model_dump(mode="json"), "channels": stem.channels,
        "kernel": stem.kernel, "stride": stem.stride, "activation": stem.activation,
        "pool": stem.pool.model_dump(mode="json") if stem.pool else None,
    }
    parts = [Part("stem", _key(stem_description), stem_description)]
    for rb in net.blocks:
        description = {
            "part": "block", "block": rb.block.model_dump(mode="json"), "in_channels": rb.in_channels,
            "in_size": rb.in_size, "widths": rb.widths,
            "squeeze_excite": spec.squeeze_excite.model_dump(mode="json") if "se" in rb.widths else None,
        }
        parts.append(Part(rb.name, _key(description), description))
    head = net.head
    head_description = {
        "part": "head", "in_channels": head.in_channels, "in_size": head.in_size,
        "conv": [head.conv_channels, head.conv_activation], "pooling": head.pooling,
        "hidden": [[d.channels, d.activation] for d in head.hidden], "classes": head.classes,
        "classifier_activation": head.classifier_activation,
    }
    parts.append(Part("head", _key(head_description), head_description))
    return parts


@dataclass(frozen=True)
class Calibration:
    """measured ~= scale * parts_sum ** exponent, fitted on ``points`` whole networks.

    Fitted in log space, so every network counts by its relative error: a linear fit
    in milliseconds lets a 1-second EfficientNet-B7 decide the correction of a 2 ms
    MobileNet (and can predict negative times). With fewer than three networks it is a
    plain ratio; with none, the identity.
    """

    scale: float = 1.0
    exponent: float = 1.0
    points: int = 0

    def apply(self, parts_sum: float) -> float:
        return self.scale * parts_sum ** self.exponent

    @classmethod
    def fit(cls, sums: np.ndarray, measured: np.ndarray) -> Calibration:
        n = len(measured)
        if n == 0:
            return cls()
        if n < 3 or np.ptp(np.log(sums)) < 1e-6:
            return cls(float(np.exp(np.median(np.log(measured / sums)))), 1.0, n)
        exponent, intercept = np.polyfit(np.log(sums), np.log(measured), 1)
        return cls(float(np.exp(intercept)), float(exponent), n)


@dataclass(frozen=True)
class Prediction:
    latency_ms: float
    parts_sum_ms: float
    parts: int
    parts_measured: int
    calibration: Calibration
    seconds: float


class LatencyPredictor:
    """Predicts latency on one backend and thread count from the part table in ``store``."""

    def __init__(self, backend: str = "litert", threads: int = 1, storage: str | None = None) -> None:
        check_settings(threads, None)
        self.info = get_backend(backend)
        self.threads = threads
        self.store = Store.at(storage)
        self.setup = setup_key(self.info, threads)

    def table(self, parts: list[Part]) -> dict[str, float]:
        with self.store.session() as session:
            return PartLatency.lookup(session, sorted({p.key for p in parts}), self.setup)

    def measure_parts(self, spec: NetworkSpec, parts: list[Part]) -> int:
        """Measure the parts missing from the table (one worker process for all); return how many."""
        known = self.table(parts)
        missing = {p.key: p for p in parts if p.key not in known}
        if not missing:
            return 0
        policy = PART_POLICY
        data = spec_to_dict(spec)
        jobs = [{"id": key, "spec": data, "part": part.name, "artifact": f"part-{key}"}
                for key, part in missing.items()]
        results = run_worker(jobs, self.info, self.threads, policy)
        failed = [results[key]["error"] for key in missing if not results[key]["ok"]]
        with self.store.session() as session:
            for key, part in missing.items():
                result = results[key]
                if not result["ok"]:
                    continue
                stats = result["stats"]
                shape = "x".join(map(str, result["input_shape"]))
                session.add(PartLatency(
                    part_key=key, description=json.dumps(part.description, sort_keys=True), **self.setup,
                    input_shape=shape, median_ms=stats["median_ms"], p10_ms=stats["p10_ms"], p90_ms=stats["p90_ms"],
                    runs=stats["runs"],
                    protocol=json.dumps(protocol_record(self.info, self.threads, shape, policy, stats)),
                ))
        if failed:
            raise LatencyError(f"{spec.name}: {len(failed)} part(s) could not be measured: {failed[0]}")
        return len(missing)

    def calibration(self, exclude_hash: str | None = None) -> Calibration:
        """Fit on every whole network measured with this setup whose parts are all in the table."""
        with self.store.session() as session:
            rows = session.scalars(select(NetworkLatency).filter_by(**self.setup)).all()
            for row in rows:
                if row.parts_sum_ms is None:
                    parts = decompose(parse_spec(json.loads(row.spec_json)))
                    known = PartLatency.lookup(session, [p.key for p in parts], self.setup)
                    if all(p.key in known for p in parts):
                        row.parts_sum_ms = sum(known[p.key] for p in parts)
            points = [(r.parts_sum_ms, r.median_ms) for r in rows
                      if r.parts_sum_ms is not None and r.spec_hash != exclude_hash]
        if not points:
            return Calibration()
        sums, measured = (np.asarray(column, dtype=float) for column in zip(*points))
        return Calibration.fit(sums, measured)

    def predict(self, spec: NetworkSpec, measure_missing: bool = True,
                calibration: Calibration | None = None) -> Prediction:
        """Predict ``spec``'s latency; parts not yet in the table are measured first (unless told not to)."""
        started = time.perf_counter()
        parts = decompose(spec)
        measured = self.measure_parts(spec, parts) if measure_missing else 0
        table = self.table(parts)
        missing = [p.name for p in parts if p.key not in table]
        if missing:
            raise LatencyError(f"{spec.name}: parts not in the latency table: {', '.join(missing[:5])}")
        parts_sum = sum(table[p.key] for p in parts)
        calibration = calibration if calibration is not None else self.calibration()
        latency = calibration.apply(parts_sum)
        return Prediction(latency, parts_sum, len(parts), measured, calibration, time.perf_counter() - started)


def predict_latency(spec: NetworkSpec, backend: str = "litert", threads: int = 1, storage: str | None = None) -> float:
    """Predicted batch-1 latency of ``spec`` in milliseconds (see ``LatencyPredictor``)."""
    return LatencyPredictor(backend, threads, storage).predict(spec).latency_ms
