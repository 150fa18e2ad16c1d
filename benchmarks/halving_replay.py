"""Replay stopping rules over a study that trained every candidate fully.

    python benchmarks/halving_replay.py sqlite:///PATH/full.db [--study full] [--eta 3]

A study run with ``multi_fidelity: false`` stores every trained candidate's per-epoch
validation accuracy. Replaying a stopping rule over those histories, in trial order
and with the population each decision would have seen, tells what the rule would have
stopped, how much training time that saves, and which front members it would have
lost, on the very same candidates (the paired run in ``multifidelity.py`` cannot
separate the rule from the sampler's luck). Two rules are replayed:

- ``dominated`` (archsearch's ``SuccessiveHalving``): stop a candidate when at least
  ``population // eta`` others dominate it at the rung;
- ``rank``: stop it unless its non-dominated-sorting rank puts it in the best
  ``1/eta`` (the promotion rule of multi-objective ASHA, without tie-breaking).

Savings count training time only (a stopped candidate predicted feasible also skips
its final latency measurement, which is not counted).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

from archsearch.study import Point, hypervolume, trial_point
from archsearch.study.fidelity import RungEntry, SuccessiveHalving
from archsearch.study.record import TrialRecord, recorded_config

Rule = Callable[[RungEntry, list[RungEntry]], bool]
"""(candidate, population at the rung) -> whether the candidate goes on."""


def dominated_rule(eta: int, epochs: int) -> Rule:
    halving = SuccessiveHalving(epochs, eta)

    def rule(candidate: RungEntry, population: list[RungEntry]) -> bool:
        return halving.should_continue(halving.rungs[0], candidate.accuracy, candidate.latency_ms, population)

    return rule


def rank_rule(eta: int, min_population: int = 2) -> Rule:
    def rule(candidate: RungEntry, population: list[RungEntry]) -> bool:
        if len(population) < min_population:
            return True
        everyone = [*population, candidate]
        ahead, remaining = 0, everyone
        while remaining:  # peel non-dominated fronts until the candidate's
            front = [e for e in remaining if not any(o.dominates(e) for o in remaining)]
            if any(e is candidate for e in front):
                return ahead < math.ceil(len(everyone) / eta)
            ahead += len(front)
            remaining = [e for e in remaining if all(e is not f for f in front)]
        return True

    return rule


@dataclass
class Candidate:
    trial: FrozenTrial
    screen_ms: float
    history: list[dict[str, float]]
    reference: bool

    def at(self, epoch: int) -> RungEntry | None:
        row = next((r for r in self.history if r.get("epoch") == epoch), None)
        return None if row is None else RungEntry(float(row["val_accuracy"]), self.screen_ms)

    def point(self) -> Point:
        return trial_point(self.trial)


def replay(candidates: list[Candidate], rung: int, rule: Rule, budget_ms: float, total_seconds: float) -> dict:
    """Apply ``rule`` at ``rung`` to ``candidates`` in trial order: what it stops, saves and loses."""
    stopped: list[Candidate] = []
    saved = 0.0
    for i, candidate in enumerate(candidates):
        entry = candidate.at(rung)
        if candidate.reference or entry is None:
            continue
        population = [e for c in candidates[:i] if (e := c.at(rung)) is not None]
        if not rule(entry, population):
            stopped.append(candidate)
            saved += candidate.history[-1]["seconds"] - candidate.history[rung - 1]["seconds"]
    all_points = [c.point() for c in candidates if not c.reference]
    stopped_numbers = {c.trial.number for c in stopped}
    kept = [c.point() for c in candidates if not c.reference and c.trial.number not in stopped_numbers]
    front = {p.number for p in all_points if p.feasible and not any(o.feasible and o.dominates(p) for o in all_points)}
    volume, full_volume = hypervolume(kept, budget_ms), hypervolume(all_points, budget_ms)
    hours = (total_seconds - saved) / 3600
    return {"stopped": len(stopped), "stopped_trials": [c.trial.number for c in stopped],
            "front_members_stopped": sorted(front & stopped_numbers),
            "training_seconds_saved": saved, "share_of_wall_time_saved": saved / total_seconds,
            "hypervolume": volume, "hypervolume_full": full_volume,
            "hypervolume_per_hour": volume / hours, "hypervolume_per_hour_full": full_volume / (total_seconds / 3600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage")
    parser.add_argument("--study", default="full")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "halving_replay.json"))
    args = parser.parse_args()

    study = optuna.load_study(study_name=args.study, storage=args.storage)
    config = recorded_config(study)
    budget, epochs = float(config["budget_ms"]), int(config["epochs"])
    if config.get("multi_fidelity", True):
        raise SystemExit(f"study {args.study!r} stopped candidates early: replay needs one trained fully")
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    candidates = [Candidate(t, float(r.screen_latency_ms), r.history, r.is_reference)
                  for t in trials if (r := TrialRecord.of(t)).state == TrialState.COMPLETE and r.trained
                  and not r.is_duplicate and len(r.history) == epochs]
    total = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials
                if t.datetime_complete is not None and t.datetime_start is not None)
    rung = SuccessiveHalving(epochs, args.eta).rungs[0]
    rows = {"trained_candidates": sum(not c.reference for c in candidates), "rung_epoch": rung,
            "wall_seconds": total}
    for name, rule in (("dominated", dominated_rule(args.eta, epochs)), ("rank", rank_rule(args.eta))):
        rows[name] = replay(candidates, rung, rule, budget, total)
    out = write_results(args.out, {"settings": {**vars(args), "budget_ms": budget, "epochs": epochs}, **rows})
    print(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
