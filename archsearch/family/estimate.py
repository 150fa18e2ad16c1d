"""How long a family's final training will take, said before the long part starts.

Training speed on a CPU is roughly proportional to MACs x images: the study's own proxy
trainings give this machine's rate (per-epoch time after the first epoch, whose extra
time is graph tracing, paid once per training), and each finished family run replaces
that guess by the rate measured at the deployment input.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from archsearch.study.record import TrialRecord


@dataclass(frozen=True)
class TrainingSpeed:
    """MAC-images per second, and the fixed cost of a training's first epoch beyond the others."""

    mac_images_per_second: float
    first_epoch_extra_seconds: float
    source: str

    def seconds(self, macs: int, images: int, epochs: int) -> float:
        """Estimated training time of a network of ``macs`` for ``epochs`` over ``images`` images."""
        return self.first_epoch_extra_seconds + epochs * macs * images / self.mac_images_per_second


def speed_from_study(all_records: Sequence[TrialRecord], train_images: int) -> TrainingSpeed | None:
    """This machine's training speed, from the study's proxy trainings (MACs scaled to the training size)."""
    rates: list[float] = []
    extras: list[float] = []
    for record in all_records:
        history, macs = record.history, record.macs
        if len(history) < 2 or not macs or not record.train_size or not record.input_size:
            continue
        times = [float(row["seconds"]) for row in history]
        epochs = [b - a for a, b in zip(times, times[1:])]
        per_epoch = statistics.median(epochs)
        if per_epoch <= 0:
            continue
        train_macs = macs * (record.train_size / record.input_size) ** 2
        rates.append(train_macs * train_images / per_epoch)
        extras.append(max(0.0, times[0] - per_epoch))
    if not rates:
        return None
    return TrainingSpeed(statistics.median(rates), statistics.median(extras),
                         f"this study's {len(rates)} proxy trainings")


def speed_from_runs(runs: Sequence[tuple[int, int, int, float]]) -> TrainingSpeed | None:
    """The rate measured by finished family runs: (MACs, images, epochs, seconds) each."""
    work = sum(macs * images * epochs for macs, images, epochs, _ in runs)
    seconds = sum(s for *_, s in runs)
    if not runs or seconds <= 0:
        return None
    return TrainingSpeed(work / seconds, 0.0, f"{len(runs)} finished final training(s)")


__all__ = ["TrainingSpeed", "speed_from_runs", "speed_from_study"]
