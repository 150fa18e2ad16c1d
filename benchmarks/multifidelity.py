"""Does successive halving find a better front per hour than training every candidate fully?

    python benchmarks/multifidelity.py [--minutes 15] [--budget-ms 20] [--epochs 6]

Runs the real study twice for the same wall time, same space, budget and seed: once
with successive halving (the default) and once training every feasible candidate for
all epochs. Each run has a database of its own, so each pays for its own latency
measurements. Reports trials finished, trained, stopped early, and the hypervolume of
the feasible front (reference point: accuracy 0, the budget), also per hour.
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
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "multifidelity.json"))
    parser.add_argument("--workdir", default=None, help="where the two study databases go (default: a new temp dir)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="archsearch-mf-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for multi_fidelity in (True, False):
        storage = f"sqlite:///{workdir / ('halving.db' if multi_fidelity else 'full.db')}"
        config = StudyConfig(name="halving" if multi_fidelity else "full", space=args.space,
                             budget_ms=args.budget_ms, trials=None, timeout_minutes=args.minutes,
                             epochs=args.epochs, seed=args.seed, storage=storage, multi_fidelity=multi_fidelity,
                             references=False)
        started = time.perf_counter()
        study = run_study(config)
        hours = (time.perf_counter() - started) / 3600
        trials = search_trials(study)
        statuses = [TrialRecord.of(t).label for t in trials]
        volume = hypervolume(pareto_front(study), args.budget_ms)
        row = {"multi_fidelity": multi_fidelity, "storage": storage, "hours": hours, "trials": len(trials),
               "trained_fully": statuses.count("complete") + statuses.count("over_budget"),
               "stopped_early": statuses.count("stopped_early"),
               "rejected_predicted": statuses.count("rejected_predicted"),
               "rejected_measured": statuses.count("rejected_measured"),
               "hypervolume": volume, "hypervolume_per_hour": volume / hours,
               "front_size": len(pareto_front(study))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = write_results(args.out, {"settings": vars(args), "rows": rows})
    print(f"\n{'mode':18s} {'trials':>6s} {'stopped':>7s} {'hypervolume':>11s} {'per hour':>9s}")
    for row in rows:
        mode = "successive halving" if row["multi_fidelity"] else "full training"
        print(f"{mode:18s} {row['trials']:6d} {row['stopped_early']:7d} {row['hypervolume']:11.3f} "
              f"{row['hypervolume_per_hour']:9.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
