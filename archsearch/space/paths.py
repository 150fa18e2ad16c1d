"""Paths into spec data: ``stages[1:].blocks[0].kernel`` names fields of a spec.

A pattern may hold ``[*]`` (every item) or a slice ``[a:b]``; it expands, against a
concrete spec's data, into the concrete paths it covers (``stages[1].blocks[0].kernel``,
``stages[2].blocks[0].kernel``, ...), each of which becomes one search parameter.
"""

from __future__ import annotations

import re
from typing import Any

Path = tuple[str | int, ...]

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\*|-?\d+|-?\d*:-?\d*)\]")


class PathError(ValueError):
    """A path pattern that does not parse or does not match the data."""


def _tokens(pattern: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(pattern):
        match = _TOKEN.match(pattern, position)
        if not match or (position == 0 and match.group(0).startswith(".")):
            raise PathError(f"cannot parse path {pattern!r} at {pattern[position:]!r}")
        tokens.append(("key", match.group(1)) if match.group(1) else ("index", match.group(2)))
        position = match.end()
    if not tokens:
        raise PathError("empty path")
    return tokens


def format_path(path: Path) -> str:
    """``("stages", 1, "blocks", 0, "kernel")`` -> ``stages[1].blocks[0].kernel``."""
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else item)
    return text


def expand(pattern: str, data: Any) -> list[Path]:
    """The concrete paths in ``data`` that ``pattern`` covers (the last key may be a field not yet set)."""
    paths: list[tuple[Path, Any]] = [((), data)]
    tokens = _tokens(pattern)
    for position, (kind, value) in enumerate(tokens):
        last = position == len(tokens) - 1
        following: list[tuple[Path, Any]] = []
        for path, node in paths:
            where = format_path(path) or "the spec"
            if kind == "key":
                if not isinstance(node, dict):
                    raise PathError(f"{pattern!r}: {where} has no field {value!r}")
                if value not in node and not last:
                    raise PathError(f"{pattern!r}: {where} has no field {value!r}")
                following.append(((*path, value), node.get(value)))
            else:
                if not isinstance(node, list):
                    raise PathError(f"{pattern!r}: {where} is not a list")
                indices = range(len(node))
                if value == "*":
                    chosen = list(indices)
                elif ":" in value:
                    start, stop = (int(part) if part else None for part in value.split(":"))
                    chosen = list(indices[slice(start, stop)])
                else:
                    index = int(value)
                    if not -len(node) <= index < len(node):
                        raise PathError(f"{pattern!r}: {where} has {len(node)} items, no [{index}]")
                    chosen = [indices[index]]
                following.extend(((*path, i), node[i]) for i in chosen)
        paths = following
    if not paths:
        raise PathError(f"{pattern!r} matches nothing")
    return [path for path, _ in paths]


def set_path(data: Any, path: Path, value: Any) -> None:
    """Set ``value`` at ``path`` inside ``data`` (in place)."""
    node = data
    for item in path[:-1]:
        node = node[item]
    node[path[-1]] = value
