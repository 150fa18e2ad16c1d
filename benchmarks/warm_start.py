"""Does starting the search from the references' configurations find a better front in N trials? (warm start)

    python benchmarks/warm_start.py [--seeds 0 1 2] [--trials 12] [--budget-ms 20] [--epochs E] [--space mobilenetv3]
                                    [--workdir /tmp/archsearch-bench/warm_start] [--out RESULT.json] [--summary-only]

Runs the real study (real training on the default data, real LiteRT latency) with
``warm_start=True`` and ``warm_start=False``, once per seed, each a fresh study in a
SQLite file of its own (each pays for its own latency measurements). The references are
trained in both arms, as baselines; the warm arm spends its first search trials on the
references' projections onto the space (``archsearch.study.warm_start``), the cold arm
lets the sampler choose from the first trial.

Per study: the hypervolume of the feasible search points (not the references;
reference point: accuracy 0, the budget) after the N search trials, and after each
k = 1..N in trial order (the curve); the hypervolume of the front a user sees (search
points and references together: the warm arm's first points are near-copies of the
references, which the cold arm trains too); the best accuracy, and the time. Summary: per arm,
the mean and per-seed hypervolume; the paired difference (warm - cold) per seed; and a
verdict, by the rule in ``VERDICT_RULE``. Each study is written to the result file as it
ends and skipped when the script is started again; a study stopped midway resumes from
its database in ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch.study import StudyConfig, hypervolume, run_study, search_points, search_trials
from archsearch.study.front import reference_points
from archsearch.study.record import TrialRecord

ARMS = ("warm", "cold")
STUDY_SETTINGS = ("space", "budget_ms", "trials", "epochs")
"""The settings that make two studies comparable: the result file's rows are kept only under the same."""
VERDICT_RULE = ("warm start helps only if the paired difference in hypervolume after N trials (warm - cold, "
                "same seed) is positive on every seed, and so its mean")


def study_config(arm: str, seed: int, args: argparse.Namespace) -> StudyConfig:
    """The study of one (arm, seed): everything equal but ``warm_start``, in a database of its own."""
    # The settings are in the file name: a run with other settings starts afresh rather than extending
    # (a trial count) or being refused (epochs, budget) by a study of the same name.
    key = f"{args.space}-b{args.budget_ms:g}-t{args.trials}-e{args.epochs}"
    storage = f"sqlite:///{Path(args.workdir) / f'{arm}-seed{seed}-{key}.db'}"
    return StudyConfig(name=f"warm-start-{arm}-seed{seed}", space=args.space, budget_ms=args.budget_ms,
                       trials=args.trials, epochs=args.epochs, seed=seed, storage=storage, references=True,
                       warm_start=arm == "warm")


def hypervolume_curve(study: Any, budget_ms: float) -> list[float]:
    """The hypervolume of the feasible search points among the first k search trials, for k = 1..N."""
    order = sorted(t.number for t in search_trials(study))
    points = search_points(study)
    curve = []
    for k in range(1, len(order) + 1):
        first = set(order[:k])
        curve.append(hypervolume([p for p in points if p.number in first], budget_ms))
    return curve


def front_hypervolume(study: Any, budget_ms: float) -> float:
    """The hypervolume of the front a user sees: the search points and the references together.

    The warm arm's first points are projections of the references, which the cold arm also
    trains (as references, left out of ``hypervolume``): counted here, near-copies of a
    reference add little, so this says whether warm start found anything the references
    did not already give."""
    return hypervolume(search_points(study) + reference_points(study), budget_ms)


def warm_trials(study: Any) -> list[dict[str, Any]]:
    """The search trials started from a reference's projection, and what became of them."""
    found = []
    for trial in search_trials(study):
        record = TrialRecord.of(trial)
        if record.warm_start is not None:
            found.append({"trial": record.number, "reference": record.warm_start, "status": record.label,
                          "accuracy": record.accuracy, "latency_ms": record.measured_latency_ms,
                          "feasible": record.feasible})
    return found


def study_minutes(study: Any) -> float:
    """From the first trial's start to the last one's end (a resumed study counts its pause too)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not trials:
        return 0.0
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    return (last - first).total_seconds() / 60


def run_one(arm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run (or resume) the study of one (arm, seed) and read its result."""
    config = study_config(arm, seed, args)
    started = time.perf_counter()
    study = run_study(config)
    seconds = time.perf_counter() - started
    curve = hypervolume_curve(study, args.budget_ms)
    points = search_points(study)
    references = [TrialRecord.of(t) for t in study.get_trials(deepcopy=False) if "reference" in t.user_attrs]
    return {"arm": arm, "seed": seed, "study": config.name, "storage": config.storage,
            "search_trials": len(curve), "hypervolume": curve[-1] if curve else 0.0, "hypervolume_curve": curve,
            "hypervolume_with_references": front_hypervolume(study, args.budget_ms),
            "best_accuracy": max((p.accuracy for p in points), default=None), "feasible_points": len(points),
            "warm_trials": warm_trials(study), "seconds_this_run": seconds, "study_minutes": study_minutes(study),
            "references": [{"reference": r.reference, "status": r.label, "accuracy": r.accuracy,
                            "latency_ms": r.measured_latency_ms} for r in references]}


def summarise(rows: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Per arm the mean and per-seed hypervolume, the paired differences, and the verdict."""
    by_key = {(row["arm"], row["seed"]): row for row in rows}
    arms = {}
    for arm in ARMS:
        done = {seed: by_key[arm, seed] for seed in seeds if (arm, seed) in by_key}
        volumes = {seed: row["hypervolume"] for seed, row in done.items()}
        curves = [row["hypervolume_curve"] for row in done.values()]
        length = min((len(curve) for curve in curves), default=0)
        arms[arm] = {"seeds_done": len(done), "hypervolume_per_seed": volumes,
                     "hypervolume_mean": statistics.fmean(volumes.values()) if volumes else None,
                     "curve_mean": [statistics.fmean(curve[k] for curve in curves) for k in range(length)],
                     "best_accuracy_per_seed": {seed: row["best_accuracy"] for seed, row in done.items()},
                     "study_minutes_mean": statistics.fmean(r["study_minutes"] for r in done.values()) if done else None}
    def paired_by(field: str) -> dict[int, float]:
        return {seed: by_key["warm", seed][field] - by_key["cold", seed][field]
                for seed in seeds if ("warm", seed) in by_key and ("cold", seed) in by_key}

    paired, with_references = paired_by("hypervolume"), paired_by("hypervolume_with_references")
    for arm in ARMS:
        arms[arm]["hypervolume_with_references_per_seed"] = {
            row["seed"]: row["hypervolume_with_references"] for row in rows if row["arm"] == arm}
    return {"arms": arms, "paired_difference_per_seed": paired,
            "mean_paired_difference": statistics.fmean(paired.values()) if paired else None,
            "verdict": verdict(paired, len(seeds)), "rule": VERDICT_RULE,
            "paired_difference_with_references_per_seed": with_references,
            "verdict_with_references": verdict(with_references, len(seeds))}


def verdict(paired: dict[int, float], seeds: int) -> str:
    """The verdict of ``VERDICT_RULE`` on the paired differences (incomplete until every seed has both arms)."""
    if len(paired) < seeds:
        return f"incomplete: {len(paired)} of {seeds} seeds have both arms"
    helps = all(difference > 0 for difference in paired.values()) and statistics.fmean(paired.values()) > 0
    return "warm start helps on this evidence" if helps else "warm start does not help on this evidence"


def print_summary(summary: dict[str, Any]) -> None:
    """The summary as a small table: hypervolume per seed and arm, the paired difference, the verdict."""
    arms, paired = summary["arms"], summary["paired_difference_per_seed"]
    seeds = sorted({seed for arm in ARMS for seed in arms[arm]["hypervolume_per_seed"]})
    print(f"\n{'seed':>4s} {'warm':>9s} {'cold':>9s} {'warm-cold':>9s}")
    for seed in seeds:
        cells = [arms[arm]["hypervolume_per_seed"].get(seed) for arm in ARMS] + [paired.get(seed)]
        print(f"{seed:4d} " + " ".join(_cell(value) for value in cells))
    means = [arms[arm]["hypervolume_mean"] for arm in ARMS] + [summary["mean_paired_difference"]]
    print("mean " + " ".join(_cell(value) for value in means))
    print(f"{summary['verdict']} (rule: {summary['rule']})")
    with_references = summary["paired_difference_with_references_per_seed"]
    print("with the references on the front, warm - cold per seed: "
          + ", ".join(f"{seed}: {value:+.3f}" for seed, value in sorted(with_references.items()))
          + f"; {summary['verdict_with_references']}")


def _cell(value: float | None) -> str:
    return f"{'-':>9s}" if value is None else f"{value:9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    # 12, not 8: the study's TPE draws its first 8 trials at random (n_startup_trials), so with 8
    # both arms would be random search apart from the warm arm's enqueued points.
    parser.add_argument("--trials", type=int, default=12, help="search trials per study (references not counted)")
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--epochs", type=int, default=StudyConfig.model_fields["epochs"].default,
                        help="training epochs per candidate (default: the study's)")
    parser.add_argument("--space", default=StudyConfig.model_fields["space"].default)
    parser.add_argument("--workdir", default="/tmp/archsearch-bench/warm_start", help="where the study databases go")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "warm_start.json"))
    parser.add_argument("--summary-only", action="store_true",
                        help="recompute the summary of the studies in --out without running anything")
    args = parser.parse_args()
    out = Path(args.out)
    if args.summary_only:
        stored = json.loads(out.read_text())
        summary = summarise(stored["runs"], stored["settings"]["seeds"])
        write_results(out, {**stored, "summary": summary})
        print_summary(summary)
        return

    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    rows: list[dict[str, Any]] = previous.get("runs", [])
    if rows and any(previous["settings"].get(k) != getattr(args, k) for k in STUDY_SETTINGS):
        print(f"{out} holds studies of other settings: starting afresh (it will be overwritten)", flush=True)
        rows = []
    done = {(row["arm"], row["seed"]) for row in rows}
    for seed in args.seeds:  # seed by seed, both arms: a partial result already pairs them
        for arm in ARMS:
            if (arm, seed) in done:
                continue
            rows.append(run_one(arm, seed, args))
            row = rows[-1]
            print(f"{arm} seed {seed}: hypervolume {row['hypervolume']:.3f} after {row['search_trials']} trials, "
                  f"best accuracy {row['best_accuracy']}, {row['study_minutes']:.1f} min", flush=True)
            write_results(out, {"settings": vars(args), "runs": rows, "summary": summarise(rows, args.seeds)})
    summary = summarise(rows, args.seeds)
    write_results(out, {"settings": vars(args), "runs": rows, "summary": summary})
    print_summary(summary)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
