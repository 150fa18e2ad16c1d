"""Step 4 of a trial: proxy training, with successive halving deciding at each rung.

The per-epoch history is stored as soon as each epoch ends, because the rung decisions
of other trials (and of this study after a resume) read it from storage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from archsearch.data import Dataset
from archsearch.spec import NetworkSpec
from archsearch.study.fidelity import RungEntry, SuccessiveHalving
from archsearch.study.record import TrialRecorder
from archsearch.train import TrainConfig

if TYPE_CHECKING:
    from archsearch.train import TrainResult


class StoppedEarly(Exception):
    """The candidate was dominated at a rung and stopped (not a failure)."""


RungPopulation = Callable[[int], list[RungEntry]]
"""Epoch -> the other trials' standings at that epoch."""


def train_candidate(spec: NetworkSpec, dataset: Dataset, recipe: TrainConfig, recorder: TrialRecorder,
                    screen_latency_ms: float, halving: SuccessiveHalving | None = None,
                    population: RungPopulation | None = None) -> TrainResult:
    """Train ``spec``'s proxy copy, recording history and results; ``StoppedEarly`` when halving stops it.

    ``halving`` (with ``population``) compares the candidate at its rungs by (accuracy
    at that epoch, ``screen_latency_ms``); without it the candidate trains to the end.
    """
    from archsearch.train import train_spec

    history: list[dict[str, float]] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
        history.append(metrics)
        recorder.set(history=history)
        if halving is None or population is None:
            return True
        return halving.should_continue(epoch, metrics["val_accuracy"], screen_latency_ms, population(epoch))

    recorder.set(trained=True)
    result = train_spec(spec, dataset, recipe, on_epoch=on_epoch)
    recorder.set(history=result.history, accuracy=result.accuracy, train_seconds=result.seconds,
                 epochs_trained=result.epochs)
    if result.stopped_early:
        raise StoppedEarly(f"dominated at epoch {result.epochs} (accuracy {result.accuracy:.3f})")
    return result


__all__ = ["RungPopulation", "StoppedEarly", "train_candidate"]
