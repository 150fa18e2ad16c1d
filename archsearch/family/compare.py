"""Family members against the references, both trained with the same final recipe and seeds.

A member *beats* a reference when it is at no more latency and more accurate, on mean
over seeds, by more than the noise; *loses* when it is less accurate by more than the
noise; otherwise it *matches*. The noise is two sources combined in quadrature: the
validation set (the 95% band of a difference of two proportions on ``n`` images, as the
study's verdicts use) and the seeds (the larger of the two networks' seed-to-seed
ranges, max - min over seeds: a difference inside it is one a change of seed could
make). Never less than one validation image. With one seed the seed spread is unknown,
and the sentence says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["beats", "matches", "loses"]


@dataclass(frozen=True)
class Trained:
    """A network as the family measured it: latency of its exported file, accuracy per seed on it."""

    label: str
    latency_ms: float
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    @property
    def seed_range(self) -> float | None:
        return max(self.accuracies) - min(self.accuracies) if len(self.accuracies) > 1 else None


@dataclass(frozen=True)
class Verdict:
    """A member against a reference it is no slower than."""

    reference: str
    outcome: Outcome
    difference: float
    """Member mean - reference mean (accuracy, 0-1)."""
    margin: float
    beyond_seed_spread: bool
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_margin(a: Trained, b: Trained, validation_images: int) -> tuple[float, float | None]:
    """(margin a difference of means must exceed, the seed spread it includes or None with one seed)."""
    n = max(1, validation_images)
    images = 1.96 * math.sqrt((a.mean * (1 - a.mean) + b.mean * (1 - b.mean)) / n)
    ranges = [r for r in (a.seed_range, b.seed_range) if r is not None]
    spread = max(ranges) if ranges else None
    return max(1.0 / n, math.sqrt(images ** 2 + (spread or 0.0) ** 2)), spread


def _figure(network: Trained) -> str:
    seeds = len(network.accuracies)
    return (f"{network.mean:.3f} ± {network.std:.3f} over {seeds} seeds" if seeds > 1
            else f"{network.mean:.3f} (one seed)")


def compare(member: Trained, reference: Trained, validation_images: int) -> Verdict:
    """``member`` against ``reference`` (the caller checks the member is no slower)."""
    margin, spread = noise_margin(member, reference, validation_images)
    difference = member.mean - reference.mean
    outcome: Outcome = "beats" if difference > margin else "loses" if difference < -margin else "matches"
    beyond = spread is not None and abs(difference) > spread
    if spread is None:
        noise = f"seed spread unknown with one seed; validation band of {validation_images} images"
    else:
        noise = (f"{'beyond' if beyond else 'within'} the seed-to-seed spread of {spread * 100:.1f} points; "
                 f"margin {margin * 100:.1f} points with the {validation_images}-image validation band")
    sentence = (f"{member.label} ({member.latency_ms:.2f} ms) {outcome} {reference.label} "
                f"({reference.latency_ms:.2f} ms): {_figure(member)} against {_figure(reference)}, "
                f"{difference * 100:+.1f} points ({noise})")
    return Verdict(reference.label, outcome, difference, margin, beyond, sentence)


def member_verdicts(member: Trained, references: Sequence[Trained], validation_images: int) -> list[Verdict]:
    """``member`` against every reference at least as slow as it."""
    return [compare(member, ref, validation_images) for ref in references if member.latency_ms <= ref.latency_ms]


def reference_verdict(reference: Trained, members: Sequence[tuple[float, Trained]],
                      validation_images: int) -> dict[str, Any]:
    """The reference against the most accurate member at no more latency (``members``: (rung, member))."""
    eligible = [(rung, m) for rung, m in members if m.latency_ms <= reference.latency_ms]
    if not eligible:
        sentence = f"no family member is as fast as {reference.label} ({reference.latency_ms:.2f} ms)"
        if members:  # the nearest thing to a verdict: the fastest member's figures beside the reference's
            rung, fastest = min(members, key=lambda item: item[1].latency_ms)
            sentence += (f": the fastest, rung {rung:g} ms ({fastest.latency_ms:.2f} ms), scores "
                         f"{_figure(fastest)} against {_figure(reference)}, "
                         f"{(fastest.mean - reference.mean) * 100:+.1f} points")
        return {"reference": reference.label, "member_rung_ms": None, "outcome": "unmatched", "sentence": sentence}
    rung, best = max(eligible, key=lambda item: (item[1].mean, -item[1].latency_ms))
    verdict = compare(best, reference, validation_images)
    return {"reference": reference.label, "member_rung_ms": rung, "outcome": verdict.outcome,
            "difference": verdict.difference, "margin": verdict.margin,
            "beyond_seed_spread": verdict.beyond_seed_spread, "sentence": verdict.sentence}


__all__ = ["Outcome", "Trained", "Verdict", "compare", "member_verdicts", "noise_margin", "reference_verdict"]
