"""Warm start: begin a search from the references' configurations rather than from random points.

A space lists reference networks (``references:``) that are known to be good designs.
When a reference's configuration is a point of the space, the study can enqueue it
(Optuna's ``enqueue_trial``) so its first search trials are known-good points; when it
is not, the nearest point is the next best start. This module finds those points
(stages matched by output channels, ``aligned_stages``) and says honestly how far each
is from its reference: a reference whose blocks vary within a stage (MobileNetV3-Large's
80-channel blocks expand by 6, 2.5 and 2.3 where the space has one expansion per stage)
can only be approximated.

Whether this helps the search is measured by ``benchmarks/warm_start.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archsearch.errors import SpecError
from archsearch.references import load_reference
from archsearch.space import Parameter, SearchSpace
from archsearch.space.paths import Path, format_path
from archsearch.spec import spec_hash, spec_to_dict
from archsearch.spec.io import IDENTITY_EXCLUDES

SHOWN_DIFFERENCES = 3
"""Differences named by ``WarmPoint.describe``; the rest are counted."""

_MISSING = object()
"""A path the data does not have (distinct from a field set to ``None``)."""


@dataclass(frozen=True)
class WarmPoint:
    """A reference's configuration as a point of a space (parameter name -> chosen value)."""

    reference: str
    params: dict[str, Any]
    exact: bool
    """The point's spec is the reference's network (same ``spec_hash``)."""
    differences: tuple[str, ...]
    """Where the point's spec differs from the reference: ``path reference-value -> point-value``."""

    def describe(self) -> str:
        """One line for a person, e.g. ``mobilenet_v3_small projected onto the space (differs in: ...)``."""
        if self.exact:
            return f"{self.reference}'s configuration, exactly a point of the space"
        if not self.differences:  # only possible if the hash sees what the field comparison does not
            return f"{self.reference} projected onto the space (not the same network)"
        shown = ", ".join(self.differences[:SHOWN_DIFFERENCES])
        rest = len(self.differences) - SHOWN_DIFFERENCES
        more = f" and {rest} more" if rest > 0 else ""
        return f"{self.reference} projected onto the space (differs in: {shown}{more})"


def warm_start_points(space: SearchSpace, classes: int) -> list[WarmPoint]:
    """The point of ``space`` nearest to each of its references, in the order the space lists them.

    ``classes`` is the dataset's: the references are loaded with it, as the study trains
    them, so a space already given ``classes`` (``with_overrides``) can hold them exactly.
    A reference whose projection is the same point as an earlier reference's is left out
    (the study would only reuse that trial's result), and so is one whose projection is
    not a valid network (possible only where the space's own validation did not look).
    """
    points: list[WarmPoint] = []
    for name in space.references:
        point = project_reference(space, name, classes)
        if point is not None and all(point.params != earlier.params for earlier in points):
            points.append(point)
    return points


def project_reference(space: SearchSpace, name: str, classes: int) -> WarmPoint | None:
    """Reference ``name`` projected onto ``space``: per parameter, the choice nearest to its value there.

    ``None`` when the projected point is not a valid network.
    """
    reference = load_reference(name, classes=classes)
    reference_data = spec_to_dict(reference)
    base_data = spec_to_dict(space.base_spec())
    aligned = aligned_stages(reference_data, base_data)
    params = {p.name: _nearest_choice(p, _get(aligned, p.path), _get(base_data, p.path))
              for p in space.parameters}
    try:
        projected = space.spec_at(params)
    except SpecError:
        return None
    exact = spec_hash(projected) == spec_hash(reference)  # the hash leaves the name out, as a network's identity
    differences = tuple(spec_differences(reference_data, spec_to_dict(projected)))
    return WarmPoint(name, params, exact, differences)


def aligned_stages(reference: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The reference's data with its stages regrouped in the shape of the space's base: one block per base
    stage, matched by output channels rather than by position.

    References group blocks differently from a space (MobileNetV3-Large keeps its 80- and
    112-channel blocks in one stage; the space has a stage for each), so position would
    put one stage's settings on another. A base stage takes the reference's blocks with
    its channel count: the first one's kernel, expansion, squeeze-excite, activation and
    stride, and their repeats summed (the stage's depth). A base stage whose channels the
    reference does not have takes the reference block nearest in channels, once (the
    lightest stand-in for a stage the reference does not have).
    """
    blocks = [block for stage in reference.get("stages", []) for block in stage.get("blocks", [])]
    if not blocks or not base.get("stages"):
        return reference
    stages = []
    for stage in base["stages"]:
        channels = stage["blocks"][0].get("channels")
        same = [b for b in blocks if b.get("channels") == channels]
        if same:
            block = {**same[0], "repeats": sum(int(b.get("repeats", 1)) for b in same)}
        elif _is_number(channels):
            block = {**min(blocks, key=lambda b: abs(float(b.get("channels") or 0) - channels)), "repeats": 1}
        else:
            block = dict(stage["blocks"][0])
        stages.append({**stage, "blocks": [block]})
    return {**reference, "stages": stages}


def _nearest_choice(parameter: Parameter, value: Any, base_value: Any) -> Any:
    """The choice equal to ``value``, else the numerically nearest (ties: the choice listed first), else
    the base's value if it is a choice, else the first choice."""
    equal = _matching_choice(parameter, value)
    if equal is not _MISSING:
        return equal
    numbers = [c for c in parameter.choices if _is_number(c)]
    if _is_number(value) and numbers:
        return min(numbers, key=lambda c: abs(c - value))  # min keeps the first of equally near choices
    fallback = _matching_choice(parameter, base_value)
    return parameter.choices[0] if fallback is _MISSING else fallback


def _matching_choice(parameter: Parameter, value: Any) -> Any:
    """The choice equal to ``value`` (the space's own object, as Optuna compares it), or ``_MISSING``."""
    return next((choice for choice in parameter.choices if _same(choice, value)), _MISSING)


def spec_differences(reference: Any, point: Any, path: Path = ()) -> list[str]:
    """Where two specs' data differ, as ``path reference-value -> point-value`` (the name left out).

    Lists of different lengths are reported once, by length, and their common items are
    compared too: a reference with a stage more than the space still shows which of the
    stages they share agree.
    """
    if isinstance(reference, dict) and isinstance(point, dict):
        keys = [*reference, *(key for key in point if key not in reference)]
        found: list[str] = []
        for key in keys:
            if not path and key in IDENTITY_EXCLUDES:
                continue
            found += spec_differences(reference.get(key, _MISSING), point.get(key, _MISSING), (*path, key))
        return found
    if isinstance(reference, list) and isinstance(point, list):
        found = [] if len(reference) == len(point) else [f"{format_path(path)} {_show(reference)} -> {_show(point)}"]
        for index, (a, b) in enumerate(zip(reference, point, strict=False)):
            found += spec_differences(a, b, (*path, index))
        return found
    return [] if _same(reference, point) else [f"{format_path(path)} {_show(reference)} -> {_show(point)}"]


def _get(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``, or ``_MISSING`` where the data has no such field or item."""
    node = data
    for item in path:
        if isinstance(item, int) and isinstance(node, list) and -len(node) <= item < len(node):
            node = node[item]
        elif isinstance(item, str) and isinstance(node, dict) and item in node:
            node = node[item]
        else:
            return _MISSING
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal values, with booleans never equal to numbers (``True == 1`` in Python)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _show(value: Any) -> str:
    """A value in a difference line: short, whatever its type."""
    if value is _MISSING:
        return "absent"
    if isinstance(value, list):
        return f"{len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


__all__ = ["WarmPoint", "aligned_stages", "project_reference", "spec_differences", "warm_start_points"]
