"""Multi-fidelity for a two-objective study: successive halving over epochs.

Optuna's pruners only serve single-objective studies. Here a candidate is checked at
rung epochs (``epochs / eta**k``, never before ``min_epoch``: after one epoch most
candidates still sit near chance and the comparison would be noise). At a rung it is compared with every other trial
that reached that epoch, by (validation accuracy at that epoch, latency as screened:
predicted or measured before training): if
at least ``max(1, population // eta)`` of them dominate it, it stops. The per-epoch
results come from the trials' stored histories, so the decision is the same after a
resume and across workers.

In a ladder study a candidate is compared only with trials screened inside its own
rung's band. The ladder promises every rung a network trained to the end inside its
band; compared across rungs, a rung's first candidates are stopped at epoch 2 by a
lower rung's networks, on an accuracy two epochs old (in an earlier run of
``benchmarks/family_ladder.py`` all three trials aimed at the top rung were, and the top
rung stayed empty). The family still picks, per budget, the best network at or under it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from archsearch.study.record import TrialRecord


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether (accuracy, latency) ``a`` dominates ``b``: no worse in both, better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


@dataclass(frozen=True)
class RungEntry:
    """Another trial's standing at a rung: its accuracy there and its latency."""

    accuracy: float
    latency_ms: float

    def dominates(self, other: RungEntry) -> bool:
        return dominates((self.accuracy, self.latency_ms), (other.accuracy, other.latency_ms))


@dataclass(frozen=True)
class SuccessiveHalving:
    epochs: int
    eta: int = 3
    min_population: int = 2
    min_epoch: int = 2

    @property
    def rungs(self) -> tuple[int, ...]:
        """Epochs at which candidates are compared, e.g. (2,) for 6 epochs and eta 3, (2, 3) for 9."""
        rungs, divisor = set(), self.eta
        while self.epochs // divisor >= 1:
            rungs.add(self.epochs // divisor)
            divisor *= self.eta
        return tuple(sorted(r for r in rungs if self.min_epoch <= r < self.epochs))

    def should_continue(self, epoch: int, accuracy: float, latency_ms: float, population: Iterable[RungEntry]) -> bool:
        """Whether a candidate with ``accuracy`` after ``epoch`` epochs goes on training."""
        if epoch not in self.rungs:
            return True
        entries = list(population)
        if len(entries) < self.min_population:
            return True
        candidate = RungEntry(accuracy, latency_ms)
        dominators = sum(1 for entry in entries if entry.dominates(candidate))
        return dominators < max(1, len(entries) // self.eta)


def rung_population(trials: Iterable[TrialRecord], epoch: int, exclude_number: int,
                    band: tuple[float, float] | None = None) -> list[RungEntry]:
    """Entries at ``epoch`` from trials that stored a history and a screening latency.

    Each network counts once: duplicates (which copy the history they reuse) and attempts
    whose worker died (their retry trains the same network again) are left out. With
    ``band`` (a ladder rung's ``(floor, budget]``, in ms) only trials screened inside it count.
    """
    entries = []
    for trial in trials:
        if (trial.number == exclude_number or trial.screen_latency_ms is None or trial.is_duplicate
                or trial.died_with_worker):
            continue
        if band is not None and not band[0] < trial.screen_latency_ms <= band[1]:
            continue
        accuracy = trial.accuracy_at(epoch)
        if accuracy is not None:
            entries.append(RungEntry(accuracy, float(trial.screen_latency_ms)))
    return entries
