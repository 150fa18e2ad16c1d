"""Keras Tuner on an archsearch space vs archsearch's own study: front hypervolume after equal wall time.

    python benchmarks/keras_tuner_vs_study.py [--minutes 12] [--space mobilenetv3] [--budget-ms 20] [--tuner random]

Both search the same space under the same measured latency budget, train on the same
data (the embedded digits) for the same epochs, and each pays for its own latency
measurements (a database of its own). archsearch runs its default study (TPE with the
constraint, references off, successive halving); Keras Tuner runs ``RandomSearch`` (or
``BayesianOptimization``) over ``SpaceHyperModel``, which measures each candidate and
trains only those within the budget. Reports trials, trained, feasible, and the
hypervolume of the feasible front (reference point: accuracy 0, the budget).
Keras Tuner reports each trial's best epoch; archsearch its last epoch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras_tuner
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch.data import load_dataset
from archsearch.integrations.keras_tuner import OBJECTIVE, SpaceHyperModel
from archsearch.study import Point, StudyConfig, hypervolume, pareto_front, run_study, search_trials
from archsearch.study.record import TrialRecord


def run_archsearch(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    config = StudyConfig(name="archsearch", space=args.space, budget_ms=args.budget_ms, trials=None,
                         timeout_minutes=args.minutes, epochs=args.epochs, seed=args.seed, references=False,
                         storage=f"sqlite:///{folder / 'archsearch.db'}")
    started = time.perf_counter()
    study = run_study(config)
    seconds = time.perf_counter() - started
    trials = search_trials(study)
    statuses = [TrialRecord.of(t).label for t in trials]
    front = pareto_front(study)
    return {"searcher": "archsearch (tpe + halving)", "seconds": seconds, "trials": len(trials),
            "trained": sum(1 for t in trials if TrialRecord.of(t).trained),
            "feasible": statuses.count("complete"), "front_size": len(front),
            "hypervolume": hypervolume(front, args.budget_ms),
            "best_accuracy": max((p.accuracy for p in front), default=0.0)}


def run_keras_tuner(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    data = load_dataset("digits", seed=args.seed)
    hypermodel = SpaceHyperModel(args.space, budget_ms=args.budget_ms, image_size=data.image_size,
                                 classes=data.classes, storage=f"sqlite:///{folder / 'keras_tuner.db'}",
                                 seed=args.seed)
    tuner_class = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization}[args.tuner]
    deadline = time.monotonic() + args.minutes * 60

    class TimedTuner(tuner_class):  # type: ignore[misc, valid-type]
        """Starts no trial after the deadline, as archsearch's --timeout does."""

        def on_trial_end(self, trial):  # type: ignore[no-untyped-def]
            super().on_trial_end(trial)
            if time.monotonic() >= deadline:
                self.oracle.max_trials = len(self.oracle.trials)

    tuner = TimedTuner(hypermodel, objective=OBJECTIVE, max_trials=999, seed=args.seed,
                       directory=str(folder / "kt"), project_name="search")
    started = time.perf_counter()
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=args.epochs,
                 batch_size=64, verbose=0)
    seconds = time.perf_counter() - started
    points = []
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    for trial in trials:
        latency = trial.metrics.get_last_value("latency_ms")
        feasible = bool(trial.metrics.get_last_value("within_budget"))
        points.append(Point(int(trial.trial_id), float(trial.score or 0.0), float(latency), None, None, None, None,
                            feasible))
    feasible = [p for p in points if p.feasible]
    front = [p for p in feasible if not any(q.dominates(p) for q in feasible)]
    return {"searcher": f"keras-tuner {args.tuner}", "seconds": seconds, "trials": len(tuner.oracle.trials),
            "trained": len(feasible), "feasible": len(feasible), "front_size": len(front),
            "hypervolume": hypervolume(points, args.budget_ms),
            "best_accuracy": max((p.accuracy for p in feasible), default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--tuner", choices=["random", "bayesian"], default="random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "keras_tuner_vs_study.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="archsearch-kt-"))

    rows = [run_archsearch(args, folder), run_keras_tuner(args, folder)]
    for row in rows:
        print(json.dumps(row), flush=True)
    ratio = rows[0]["hypervolume"] / rows[1]["hypervolume"] if rows[1]["hypervolume"] else None
    out = write_results(args.out, {"settings": vars(args), "rows": rows, "hypervolume_ratio": ratio})
    print(f"\n{'searcher':26s} {'trials':>6s} {'trained':>7s} {'front':>5s} {'hypervolume':>11s} {'best acc':>8s}")
    for row in rows:
        print(f"{row['searcher']:26s} {row['trials']:6d} {row['trained']:7d} {row['front_size']:5d} "
              f"{row['hypervolume']:11.3f} {row['best_accuracy']:8.3f}")
    print(f"hypervolume ratio archsearch / keras-tuner: {ratio if ratio is None else round(ratio, 3)}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
