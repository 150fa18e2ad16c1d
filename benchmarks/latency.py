"""How good is the latency predictor, and how repeatable is a measurement?

    python benchmarks/latency.py [--samples 40] [--space mobilenetv3] [--threads 1] [--out benchmarks/results/latency.json]

Takes ``--samples`` specs from a search space plus every reference network, measures
each whole network (LiteRT, the standard protocol), builds the per-part table, and
predicts each network with a calibration fitted on all *other* networks (leave one
out), so no prediction has seen its own measurement. Measurement repeatability is the
coefficient of variation of the median over three repeated measurements of each network.

Writes JSON and prints: share of predictions within +/-10%, RMSPE, Spearman rank
correlation, repeatability, and seconds per measurement vs per prediction.
Run it on an otherwise idle machine: it is a timing benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path
from scipy.stats import spearmanr

import archsearch
from archsearch.latency import LatencyPredictor, device_info, measure_latencies
from archsearch.spec import spec_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-references", action="store_true", help="only the sampled specs")
    parser.add_argument("--cache-dir", help="cache directory (default: a fresh temporary one, so every cost is paid)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latency.json"))
    parser.add_argument("--recalibrate", metavar="CACHE_DIR",
                        help="re-predict from the measurements of an earlier run (its cache dir and --out JSON), "
                             "e.g. after changing the calibration; measurements and their figures are kept")
    args = parser.parse_args()
    if args.recalibrate:
        recalibrate(args)
        return

    os.environ["ARCHSEARCH_CACHE_DIR"] = args.cache_dir or tempfile.mkdtemp(prefix="archsearch-bench-")
    space = archsearch.load_space(args.space)
    specs = {f"sample{i:02d}": spec for i, spec in enumerate(archsearch.sample_specs(space, args.samples, args.seed))}
    if not args.no_references:
        specs.update({name: archsearch.load_reference(name) for name in archsearch.reference_names()})
    names = list(specs)
    print(f"{len(names)} networks; cache {os.environ['ARCHSEARCH_CACHE_DIR']}", flush=True)

    # 1. Whole networks: first measurement (conversion included), then repeats.
    started = time.perf_counter()
    first = measure_latencies(list(specs.values()), threads=args.threads)
    measure_seconds = (time.perf_counter() - started) / len(names)
    print(f"measured {len(names)} networks, {measure_seconds:.1f} s each (conversion, worker and timing)", flush=True)
    repeats = [first] + [measure_latencies(list(specs.values()), threads=args.threads, fresh=True)
                         for _ in range(args.repeats - 1)]
    medians = np.array([[result.median_ms for result in run] for run in repeats])  # repeats x networks
    measured = medians.mean(axis=0)
    cv = medians.std(axis=0, ddof=1) / measured if args.repeats > 1 else np.zeros(len(names))
    # The last repeat's figures are the ones the cache (and the calibration) hold.

    # 2. The part table, built as a search would build it.
    predictor = LatencyPredictor(threads=args.threads)
    started = time.perf_counter()
    parts_measured = sum(predictor.predict(spec).parts_measured for spec in specs.values())
    table_seconds = time.perf_counter() - started
    print(f"part table: {parts_measured} distinct parts in {table_seconds:.0f} s", flush=True)

    # 3. Leave-one-out predictions with the table warm, timed as a user calls them.
    predicted, predict_seconds = [], []
    for spec in specs.values():
        calibration = predictor.calibration(exclude_hash=spec_hash(spec))
        started = time.perf_counter()
        prediction = predictor.predict(spec, measure_missing=False, calibration=calibration)
        predict_seconds.append(time.perf_counter() - started)
        predicted.append(prediction.latency_ms)
    # And the plain API call (its own calibration over all networks), for its cost.
    started = time.perf_counter()
    for spec in specs.values():
        predictor.predict(spec, measure_missing=False)
    api_predict_seconds = (time.perf_counter() - started) / len(names)

    final = medians[-1]
    predicted = np.array(predicted)
    error = (predicted - final) / final
    within = float(np.mean(np.abs(error) <= 0.10))
    rmspe = float(np.sqrt(np.mean(error ** 2)))
    rho = float(spearmanr(predicted, final).statistic)
    per_prediction = float(np.median(predict_seconds))
    summary = {
        "networks": len(names), "samples": args.samples, "space": args.space, "threads": args.threads,
        "seed": args.seed,
        "within_10_percent": within, "rmspe": rmspe, "spearman": rho,
        "repeatability_cv_median": float(np.median(cv)), "repeatability_cv_max": float(np.max(cv)),
        "repeatability_cv_mean": float(np.mean(cv)),
        "seconds_per_measurement": measure_seconds, "seconds_per_prediction": per_prediction,
        "seconds_per_prediction_api": api_predict_seconds,
        "prediction_speedup": measure_seconds / per_prediction,
        "part_table_seconds": table_seconds, "parts": parts_measured,
        "device": device_info().as_dict(), "backend_version": first[0].backend_version,
    }
    rows = [{"name": name, "spec_hash": spec_hash(specs[name]), "input_size": specs[name].input.size,
             "macs": archsearch.count_macs(specs[name]), "measured_ms": [float(m) for m in medians[:, i]],
             "cv": float(cv[i]), "predicted_ms": float(predicted[i]), "error": float(error[i])}
            for i, name in enumerate(names)]
    out = write_results(args.out, {"summary": summary, "networks": rows})

    print(f"\n{'network':22s} {'size':>4s} {'measured':>9s} {'cv':>6s} {'predicted':>9s} {'error':>7s}")
    for row in rows:
        print(f"{row['name']:22s} {row['input_size']:4d} {row['measured_ms'][-1]:8.2f}m {row['cv']:6.1%} "
              f"{row['predicted_ms']:8.2f}m {row['error']:+7.1%}")
    print(f"\nwithin +/-10%: {within:.1%}   RMSPE: {rmspe:.1%}   Spearman: {rho:.3f}")
    print(f"repeatability (CV of the median over {args.repeats} repeats): median {np.median(cv):.2%}, "
          f"max {np.max(cv):.2%}")
    print(f"seconds per measurement {measure_seconds:.2f}, per prediction {per_prediction * 1e3:.2f} ms "
          f"(API call {api_predict_seconds * 1e3:.1f} ms): {measure_seconds / per_prediction:,.0f}x cheaper")
    print(f"wrote {out}")


def loo_predictions(predictor: LatencyPredictor, specs: list) -> tuple[list[float], list[float]]:
    """Leave-one-out predictions with the table warm, and the seconds each prediction took."""
    predicted, seconds = [], []
    for spec in specs:
        calibration = predictor.calibration(exclude_hash=spec_hash(spec))
        started = time.perf_counter()
        predicted.append(predictor.predict(spec, measure_missing=False, calibration=calibration).latency_ms)
        seconds.append(time.perf_counter() - started)
    return predicted, seconds


def prediction_metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = (predicted - measured) / measured
    return {"within_10_percent": float(np.mean(np.abs(error) <= 0.10)), "rmspe": float(np.sqrt(np.mean(error ** 2))),
            "spearman": float(spearmanr(predicted, measured).statistic)}


def recalibrate(args: argparse.Namespace) -> None:
    os.environ["ARCHSEARCH_CACHE_DIR"] = args.recalibrate
    results = json.loads(Path(args.out).read_text())
    rows = results["networks"]
    specs = [archsearch.load_reference(r["name"]) if not r["name"].startswith("sample") else None for r in rows]
    space = archsearch.load_space(results["summary"]["space"])
    samples = archsearch.sample_specs(space, results["summary"]["samples"], results["summary"].get("seed", 0))
    specs = [spec if spec is not None else samples[int(r["name"].removeprefix("sample"))] for spec, r in zip(specs, rows)]
    assert all(spec_hash(s) == r["spec_hash"] for s, r in zip(specs, rows)), "specs differ from the earlier run"
    predictor = LatencyPredictor(threads=results["summary"]["threads"])
    predicted, seconds = loo_predictions(predictor, specs)
    measured = np.array([r["measured_ms"][-1] for r in rows])
    metrics = prediction_metrics(np.array(predicted), measured)
    results["summary"].update(metrics, seconds_per_prediction=float(np.median(seconds)),
                              prediction_speedup=results["summary"]["seconds_per_measurement"] / float(np.median(seconds)),
                              recalibrated=True)
    for row, value in zip(rows, predicted):
        row["predicted_ms"], row["error"] = float(value), float((value - row["measured_ms"][-1]) / row["measured_ms"][-1])
    write_results(args.out, results)
    print(json.dumps({k: results["summary"][k] for k in ("within_10_percent", "rmspe", "spearman",
                                                         "repeatability_cv_median", "prediction_speedup")}, indent=2))


if __name__ == "__main__":
    main()
