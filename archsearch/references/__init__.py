"""Reference networks as YAML data, loadable by name with overrides.

A reference file may ``extends:`` another and override fields (EfficientNet-B1..B7
are B0 plus their compound-scaling coefficients). Overrides passed to
``load_reference`` are merged the same way, so ``input={"size": 96}`` keeps the
input's other fields.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

from archsearch.errors import UnknownNameError
from archsearch.spec import NetworkSpec, parse_spec

_DATA = resources.files(__package__) / "data"


def reference_names() -> list[str]:
    """Names of the shipped reference networks, sorted."""
    return sorted(entry.name.removesuffix(".yaml") for entry in _DATA.iterdir() if entry.name.endswith(".yaml"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``; nested mappings merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@cache
def _document(name: str) -> dict[str, Any]:
    if name not in reference_names():
        raise UnknownNameError("reference", name, reference_names())
    data = yaml.safe_load((_DATA / f"{name}.yaml").read_text(encoding="utf-8"))
    parent = data.pop("extends", None)
    return deep_merge(_document(parent), data) if parent else data


def reference_document(name: str) -> dict[str, Any]:
    """The plain data of a reference, with ``extends`` applied."""
    return copy.deepcopy(_document(name))


def load_reference(name: str, **overrides: Any) -> NetworkSpec:
    """The reference network ``name`` as a spec, with fields overridden.

    >>> load_reference("mobilenet_v2", width_multiplier=0.35, classes=10).classes
    10
    """
    data = deep_merge(reference_document(name), overrides)
    return parse_spec(data, source=f"reference {name}")
