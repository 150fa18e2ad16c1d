"""How well does this device's profile predict networks it never saw? (device profile accuracy)

    python benchmarks/profile_accuracy.py [--build] [--minutes 15] [--samples 22] [--seed 100]

With ``--build``, first builds this device's profile (``archsearch profile build``) and
records how long that took. Then, on networks the profile was not built from (the 16
references, plus ``--samples`` specs per built-in space drawn with a seed of their own,
any spec in the profile's training set dropped), compares its prediction with

* the measurement under the same protocol (``measure_latency``: converted, timed in a
  worker until the median settles, cached), and
* a plain independent LiteRT timing of the same flatbuffer (``measure_tflite``: a fresh
  process, a fixed number of runs after warm-up, median),

and reports the share within +/-10%, the RMSPE and the worst errors, overall and per
group, plus what a prediction costs next to a measurement (conversion and timing).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch import count_macs, load_reference, load_space, sample_specs, spec_hash
from archsearch.latency import device_info, measure_latency, measure_tflite, persistent_worker
from archsearch.latency.client import artifact_dir
from archsearch.latency.profile import DeviceProfile, ProfileAccuracy, store_profile, this_device_profile
from archsearch.latency.profile_build import BUILD_SPACES, MAX_BUILD_MACS, build_profile
from archsearch.references import reference_names
from archsearch.spec import NetworkSpec


def evaluation_networks(profile: DeviceProfile, samples: int, seed: int) -> list[tuple[str, NetworkSpec]]:
    """(group, spec): every reference, then ``samples`` unseen specs per space under the build's MAC cap."""
    seen = set(profile.training_hashes)
    chosen = [("reference", load_reference(name)) for name in reference_names()]
    for space in BUILD_SPACES:
        pool = [s for s in sample_specs(load_space(space), 4 * samples, seed=seed)
                if spec_hash(s) not in seen and count_macs(s) <= MAX_BUILD_MACS]
        chosen += [(space, spec) for spec in pool[:samples]]
    return chosen


def independent_runs(median_ms: float) -> int:
    """About 20 s of timed runs, between 10 and 300."""
    return int(max(10, min(300, 20_000 / max(median_ms, 1e-3))))


def summary(rows: list[dict[str, Any]], against: str) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {"all": rows}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    return {name: _accuracy(members, against) for name, members in groups.items()}


def _accuracy(rows: list[dict[str, Any]], against: str) -> dict[str, Any]:
    accuracy = ProfileAccuracy.of([r["predicted_ms"] for r in rows], [r[against] for r in rows])
    worst = sorted(rows, key=lambda r: -abs(r["predicted_ms"] / r[against] - 1))[:3]
    return {**accuracy.__dict__, "worst": [{"name": r["name"], "error": r["predicted_ms"] / r[against] - 1}
                                           for r in worst]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="build this device's profile first (timed)")
    parser.add_argument("--minutes", type=float, default=15.0, help="the build's time budget")
    parser.add_argument("--samples", type=int, default=22, help="unseen specs per built-in space")
    parser.add_argument("--seed", type=int, default=100, help="sampling seed (the build uses 0)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile_accuracy.json"))
    args = parser.parse_args()

    build: dict[str, Any] = {}
    if args.build:
        started = time.perf_counter()
        profile = build_profile(threads=args.threads, minutes=args.minutes,
                                on_progress=lambda step: print(f"build round {step.round}: {step.networks} networks, "
                                                               f"{step.seconds / 60:.1f} min", flush=True))
        store_profile(profile)
        build = {"wall_seconds": time.perf_counter() - started, **profile.build,
                 "cross_validated": profile.accuracy.__dict__}
        print(f"built in {build['wall_seconds'] / 60:.1f} min: {profile.accuracy.sentence()}", flush=True)
    found = this_device_profile("litert", args.threads)
    if found is None:
        raise SystemExit("no profile for this device: run with --build (or `archsearch profile build`) first")
    profile = found

    networks = evaluation_networks(profile, args.samples, args.seed)
    rows: list[dict[str, Any]] = []
    with persistent_worker():
        for group, spec in networks:
            started = time.perf_counter()
            predicted = profile.predict(spec)
            predict_seconds = time.perf_counter() - started
            started = time.perf_counter()
            measured = measure_latency(spec, threads=args.threads)
            measure_seconds = time.perf_counter() - started
            flatbuffer = artifact_dir() / f"network-{spec_hash(spec)}.tflite"
            plain = measure_tflite(flatbuffer, threads=args.threads, runs=independent_runs(measured.median_ms))
            rows.append({"group": group, "name": spec.name, "hash": spec_hash(spec), "macs": count_macs(spec),
                         "input_size": spec.input.size, "predicted_ms": predicted, "measured_ms": measured.median_ms,
                         "independent_ms": plain["median_ms"], "independent_runs": plain["runs"],
                         "predict_seconds": predict_seconds, "measure_seconds": measure_seconds,
                         "measure_was_cached": measured.cached})
            print(f"{group:12s} {spec.name:28s} predicted {predicted:9.3f} ms  measured {measured.median_ms:9.3f} "
                  f"({predicted / measured.median_ms - 1:+6.1%})  independent {plain['median_ms']:9.3f} "
                  f"({predicted / plain['median_ms'] - 1:+6.1%})", flush=True)
            write_results(Path(args.out), {"settings": vars(args), "machine": device_info().as_dict(),
                                           "profile": {"created_at": profile.created_at, "build": profile.build,
                                                       "cross_validated": profile.accuracy.__dict__},
                                           "build_run": build, "rows": rows})
    fresh = [r for r in rows if not r["measure_was_cached"]]
    cost = {"predict_seconds_mean": float(np.mean([r["predict_seconds"] for r in rows])),
            "measure_seconds_mean_uncached": float(np.mean([r["measure_seconds"] for r in fresh])) if fresh else None}
    if fresh:
        cost["measure_over_predict"] = cost["measure_seconds_mean_uncached"] / cost["predict_seconds_mean"]
    result = {"settings": vars(args), "machine": device_info().as_dict(),
              "profile": {"created_at": profile.created_at, "build": profile.build,
                          "cross_validated": profile.accuracy.__dict__},
              "build_run": build, "networks": len(rows),
              "against_protocol": summary(rows, "measured_ms"), "against_independent": summary(rows, "independent_ms"),
              "cost": cost, "rows": rows}
    write_results(Path(args.out), result)
    print(json.dumps({k: result[k] for k in ("networks", "cost")}, indent=1))
    for label in ("against_protocol", "against_independent"):
        print(label, json.dumps({g: {k: v for k, v in s.items() if k != "worst"} for g, s in result[label].items()},
                                indent=1))


if __name__ == "__main__":
    main()
