"""A family from one ladder run on the default space and data: coverage, time of each step, verdicts.

    python benchmarks/family_ladder.py [--rungs 4] [--ladder 1.7,2.5,3.9,5.8] [--trials 20] [--seeds 2]
                                       [--epochs 8] [--jobs 1] [--single] [--work DIR] [--out RESULT.json]

Steps, each timed (wall clock, as a user would wait for it), each a real command in a
fresh working directory with its own latency cache:

1. measure MobileNetV3-Small and -Large here (the ladder spans their latencies: ``--rungs``
   budgets spaced geometrically from 1.05 x Small's to 1.05 x Large's, unless ``--ladder``
   gives them);
2. ``archsearch run --budget-ms LADDER --trials N`` (the default space, digits-clutter,
   references included);
3. ``archsearch family STUDY --seeds K --epochs E`` (every pick and both references
   trained at the deployment input, shipped, measured);
4. with ``--single``: the same search with the ladder's top rung as a single budget, to
   show which rungs a search that does not know the ladder fills by itself.

Each step's command, time and output tail go to the JSON, with the ladder's coverage
(which trials fill which rung, which were aimed at it), the family table and the
verdicts. A step already done (its study or family present in the work folder) is not
run again: the benchmark resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from results_file import write_results  # benchmarks/ is the script folder: on sys.path

RESULTS = Path(__file__).parent / "results" / "family_ladder.json"


def run_step(name: str, command: list[str], work: Path, log: dict[str, Any]) -> dict[str, Any]:
    """Run ``command`` in ``work``, timed; its record goes into ``log`` under ``name``."""
    print(f"[{name}] {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "archsearch", *command], cwd=work, capture_output=True, text=True,
                            env={**os.environ, "ARCHSEARCH_CACHE_DIR": str(work / "cache")})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    record = {"command": "archsearch " + " ".join(command), "seconds": round(seconds, 1),
              "output_tail": result.stdout.strip().splitlines()[-40:]}
    log[name] = record
    print(f"[{name}] {seconds / 60:.1f} min", flush=True)
    return record


def reference_latencies(work: Path) -> dict[str, float]:
    """MobileNetV3-Small and -Large measured here, in the work folder's latency cache."""
    os.environ["ARCHSEARCH_CACHE_DIR"] = str(work / "cache")
    from archsearch.latency import measure_latency
    from archsearch.references import load_reference

    return {name: measure_latency(load_reference(name, classes=10)).median_ms
            for name in ("mobilenet_v3_small", "mobilenet_v3_large")}


def geometric_ladder(low: float, high: float, rungs: int) -> list[float]:
    ratio = (high / low) ** (1 / (rungs - 1))
    return [round(low * ratio ** i, 2) for i in range(rungs)]


def study_summary(work: Path, study: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "archsearch", "show-study", study, "--json"], cwd=work,
                            capture_output=True, text=True,
                            env={**os.environ, "ARCHSEARCH_CACHE_DIR": str(work / "cache")})
    report = json.loads(result.stdout)
    return {key: report.get(key) for key in ("trials", "by_status", "front", "ladder", "reference_verdicts",
                                             "accuracy_protocol", "canary")}


def coverage_of(study_name: str, storage: str, ladder: list[float]) -> list[dict[str, Any]]:
    """For a single-budget study: which of the ladder's rungs its trained feasible trials happen to fill."""
    from archsearch.study import load_existing_study
    from archsearch.study.ladder import ladder_state
    from archsearch.study.record import records

    study, _ = load_existing_study(study_name, storage)
    return [state.as_dict() for state in ladder_state(records(study), ladder)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rungs", type=int, default=4)
    parser.add_argument("--ladder", default=None, help="explicit budgets, e.g. 1.7,2.5,3.9,5.8")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1, help="family trainings side by side (archsearch family --jobs)")
    parser.add_argument("--single", action="store_true", help="also run the top rung as a single budget")
    parser.add_argument("--work", default="/tmp/archsearch-bench/family_ladder")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    result: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    steps: dict[str, Any] = result.setdefault("steps", {})
    result["settings"] = vars(args)

    if "references" not in result:
        started = time.perf_counter()
        result["references"] = reference_latencies(work)
        steps["measure references"] = {"seconds": round(time.perf_counter() - started, 1)}
    refs = result["references"]
    ladder = ([float(b) for b in args.ladder.split(",")] if args.ladder else
              geometric_ladder(refs["mobilenet_v3_small"] * 1.05, refs["mobilenet_v3_large"] * 1.05, args.rungs))
    result["ladder_ms"] = ladder
    write_results(out, result)

    budgets = ",".join(f"{b:g}" for b in ladder)
    if "search" not in steps:
        run_step("search", ["run", "--budget-ms", budgets, "--study", "ladder", "--trials", str(args.trials)],
                 work, steps)
        write_results(out, result)
    result["study"] = study_summary(work, "ladder")
    if "family" not in steps:
        run_step("family", ["family", "ladder", "-o", "family", "--seeds", str(args.seeds),
                            "--epochs", str(args.epochs), "--jobs", str(args.jobs)], work, steps)
    result["family"] = json.loads((work / "family" / "family.json").read_text())
    write_results(out, result)

    if args.single and "single budget search" not in steps:
        run_step("single budget search", ["run", "--budget-ms", f"{ladder[-1]:g}", "--study", "single",
                                          "--trials", str(args.trials)], work, steps)
    if "single budget search" in steps:
        result["single_budget_coverage"] = coverage_of("single", f"sqlite:///{work / 'studies' / 'single.db'}",
                                                       ladder)

    searched = steps["search"]["seconds"] + steps.get("measure references", {}).get("seconds", 0.0)
    total = searched + steps["family"]["seconds"]
    members = result["family"]["members"]
    result["summary"] = {
        "ladder_ms": ladder,
        "rungs_filled": sum(1 for r in result["study"]["ladder"] or [] if r["filled"]),
        "rungs": len(ladder),
        "search_plus_family_minutes": round(total / 60, 1),
        "target_minutes": 60,
        "members": [{"rung_ms": m["rung_ms"], "trial": m["trial"], "latency_ms": round(m["latency_ms"], 3),
                     "accuracy": f"{m['accuracy_mean']:.4f} ± {m['accuracy_std']:.4f}"} for m in members],
        "references": [{"reference": r["reference"], "latency_ms": round(r["latency_ms"], 3),
                        "accuracy": f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f}"}
                       for r in result["family"]["references"]],
        "reference_verdicts": [v["sentence"] for v in result["family"]["reference_verdicts"]],
        "single_budget_rungs_filled": (sum(1 for r in result["single_budget_coverage"] if r["filled"])
                                       if "single_budget_coverage" in result else None),
    }
    write_results(out, result)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
