"""Describing specs for people and programs: totals, per-block rows, per-stage sums (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archsearch.cost import Cost, network_cost
from archsearch.errors import UnknownNameError
from archsearch.references import load_reference, reference_names
from archsearch.spec import NetworkSpec, load_spec, resolve, spec_hash


def resolve_spec_argument(name_or_file: str) -> NetworkSpec:
    """A spec from a file path or a reference name, whichever ``name_or_file`` is."""
    path = Path(name_or_file)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        return load_spec(path)
    if name_or_file in reference_names():
        return load_reference(name_or_file)
    raise UnknownNameError("reference (and no such spec file)", name_or_file, reference_names())


def spec_totals(spec: NetworkSpec) -> dict[str, Any]:
    """Name, hash, input size and totals of a spec."""
    cost = network_cost(spec)
    return {
        "name": spec.name,
        "hash": spec_hash(spec),
        "input_size": spec.input.size,
        "params": cost.params,
        "trainable_params": cost.trainable_params,
        "macs": cost.macs,
    }


def spec_rows(spec: NetworkSpec) -> dict[str, Any]:
    """``spec_totals`` plus one row per declared block (repeats folded), stem and head."""
    cost = network_cost(spec)
    net = resolve(spec)
    rows: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    parts = {part.name: part for part in cost.parts}
    for rb in net.blocks:
        part = parts[rb.name]
        row = by_path.get(rb.path)
        if row is None:
            row = by_path[rb.path] = {
                "part": rb.path, "stage": rb.stage, "block": part.summary, "repeats": 0,
                "output": list(part.out_shape), "params": 0, "macs": 0,
            }
            rows.append(row)
        row["repeats"] += 1
        row["output"] = list(part.out_shape)
        row["params"] += part.cost.params
        row["macs"] += part.cost.macs
    for name in ("stem", "head"):
        part = parts[name]
        row = {"part": name, "stage": None, "block": part.summary, "repeats": 1, "output": list(part.out_shape),
               "params": part.cost.params, "macs": part.cost.macs}
        rows.insert(0, row) if name == "stem" else rows.append(row)
    return {**spec_totals(spec), "rows": rows}


def stage_totals(rows: list[dict[str, Any]]) -> dict[int, Cost]:
    """Parameters and MACs per stage from ``spec_rows`` rows."""
    totals: dict[int, Cost] = {}
    for row in rows:
        if row["stage"] is not None:
            totals[row["stage"]] = totals.get(row["stage"], Cost()) + Cost(row["params"], 0, row["macs"])
    return totals
