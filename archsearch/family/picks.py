"""One network per rung: the best feasible search trial within each budget of the ladder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archsearch.study.ladder import fills
from archsearch.study.record import TrialRecord


@dataclass(frozen=True)
class Pick:
    """The search trial chosen for a rung."""

    rung_ms: float
    trial: int
    spec: dict
    spec_hash: str
    name: str
    proxy_accuracy: float
    search_latency_ms: float
    macs: int
    params: int
    input_size: int
    same_as_rung_ms: float | None = None
    """A lower rung picked the same network (accuracy did not grow with the budget)."""


def pick_members(all_records: Sequence[TrialRecord], rungs_ms: Sequence[float]) -> tuple[list[Pick], list[float]]:
    """For each rung (ascending), the most accurate trained, feasible search trial measured within its
    budget; ties go to fewer MACs, then lower latency, then the earlier trial. Returns the picks and
    the rungs nothing fits in.

    A rung's pick may be a network from below the rung beneath it: when nothing in its own
    band is more accurate, the smaller network is the best this budget buys, and the pick
    says which lower rung has it already.
    """
    candidates = [r for r in all_records if fills(r) and r.spec is not None and r.spec_hash is not None]
    picks: list[Pick] = []
    empty: list[float] = []
    by_hash: dict[str, float] = {}
    for rung in sorted(rungs_ms):
        within = [r for r in candidates if float(r.measured_latency_ms or 0.0) <= rung]
        if not within:
            empty.append(rung)
            continue
        best = min(within, key=lambda r: (-float(r.values[0] if r.values else 0.0), int(r.macs or 0),
                                          float(r.measured_latency_ms or 0.0), r.number))
        assert best.values is not None and best.spec is not None and best.spec_hash is not None
        picks.append(Pick(rung, best.number, best.spec, best.spec_hash, best.spec_name or f"trial{best.number}",
                          float(best.values[0]), float(best.measured_latency_ms or best.values[1]),
                          int(best.macs or 0), int(best.param_count or 0), int(best.input_size or 0),
                          by_hash.get(best.spec_hash)))
        by_hash.setdefault(best.spec_hash, rung)
    return picks, empty


__all__ = ["Pick", "pick_members"]
