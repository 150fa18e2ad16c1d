"""Which Optuna sampler finds the better accuracy-latency front for the same number of trials?

    python benchmarks/samplers.py [--samplers tpe nsga2 random] [--trials 16] [--epochs 4] [--budget-ms 20]

Runs the real study (real training on the digits, real LiteRT latency) once per sampler
with the same space, budget, seed and trial count, and compares the hypervolume of the
feasible front (reference point: accuracy 0, the budget), the share of trials that were
feasible, and how many were rejected as over budget before training. All studies share one
database, so the latency tables built by the first are reused by the others: compare
the fronts, not the wall time.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch.study import StudyConfig, hypervolume, pareto_front, run_study, search_trials
from archsearch.study.record import TrialRecord


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "random"])
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "samplers.json"))
    args = parser.parse_args()
    storage = f"sqlite:///{tempfile.mkdtemp(prefix='archsearch-samplers-')}/samplers.db"

    rows = []
    for sampler in args.samplers:
        config = StudyConfig(name=f"sampler-{sampler}", space=args.space, budget_ms=args.budget_ms,
                             trials=args.trials, epochs=args.epochs, seed=args.seed, sampler=sampler,
                             storage=storage, references=False)
        started = time.perf_counter()
        study = run_study(config)
        seconds = time.perf_counter() - started
        trials = search_trials(study)
        statuses = [TrialRecord.of(t).label for t in trials]
        front = pareto_front(study)
        row = {"sampler": sampler, "trials": len(trials), "seconds": seconds,
               "hypervolume": hypervolume(front, args.budget_ms), "front_size": len(front),
               "feasible_share": statuses.count("complete") / len(trials),
               "rejected_predicted": statuses.count("rejected_predicted"),
               "rejected_measured": statuses.count("rejected_measured"),
               "stopped_early": statuses.count("stopped_early"), "failed": statuses.count("failed"),
               "best_accuracy": max((p.accuracy for p in front), default=0.0)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = write_results(args.out, {"settings": vars(args), "rows": rows})
    print(f"\n{'sampler':8s} {'hypervolume':>11s} {'front':>5s} {'feasible':>8s} {'rejected':>8s} {'best acc':>8s}")
    for row in rows:  # rejected: before training, on a predicted or a measured latency
        print(f"{row['sampler']:8s} {row['hypervolume']:11.3f} {row['front_size']:5d} {row['feasible_share']:8.0%} "
              f"{row['rejected_predicted'] + row['rejected_measured']:8d} {row['best_accuracy']:8.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
