"""Reading, writing and identifying specs: YAML/JSON I/O, canonical form and hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from archsearch.errors import SpecError
from archsearch.spec.blocks import BLOCK_CLASSES
from archsearch.spec.network import NetworkSpec

IDENTITY_EXCLUDES = frozenset({"name"})
"""Fields that label a spec without changing the network; left out of its hash."""


def format_location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a path: ``stages[3].blocks[0].kernel``.

    Discriminated-union tags that pydantic inserts (``...blocks[0].mbconv.kernel``)
    are dropped: users never wrote them.
    """
    path = ""
    previous: int | str | None = None
    for item in loc:
        if isinstance(item, int):
            path += f"[{item}]"
        elif isinstance(previous, int) and item in BLOCK_CLASSES:
            pass
        else:
            path += f".{item}" if path else str(item)
        previous = item
    return path


def format_validation_error(error: ValidationError) -> str:
    """One line naming every bad field and what is wrong with it."""
    details = error.errors(include_url=False)
    locations = [tuple(detail["loc"]) for detail in details]
    problems = []
    for detail in details:
        loc = tuple(detail["loc"])
        # A list whose bad item was dropped also reports being too short: noise.
        if detail["type"] == "too_short" and any(other[: len(loc)] == loc and other != loc for other in locations):
            continue
        message = detail["msg"].removeprefix("Value error, ")
        where = format_location(loc)
        if detail["type"] == "union_tag_invalid":
            ctx = detail.get("ctx", {})
            where = f"{where}.{ctx.get('discriminator', 'type').strip(chr(39))}"
            message = f"unknown block type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def parse_spec(data: Any, source: str | None = None) -> NetworkSpec:
    """Validate plain data (as read from YAML or JSON) into a ``NetworkSpec``.

    Raises ``SpecError`` with a one-line message naming each bad field's path.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise SpecError(f"{prefix}a spec must be a mapping of fields, got {type(data).__name__}")
    try:
        return NetworkSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(prefix + format_validation_error(error)) from None


def read_document(path: str | Path) -> Any:
    """Read a YAML or JSON file into plain data, with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"{path}: cannot read ({error})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise SpecError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None


def load_spec(path: str | Path) -> NetworkSpec:
    """Load a spec from a ``.yaml``/``.yml`` or ``.json`` file."""
    return parse_spec(read_document(path), source=str(path))


def spec_to_dict(spec: NetworkSpec) -> dict[str, Any]:
    """Every field, defaults included, as plain JSON-compatible data."""
    return spec.model_dump(mode="json")


def spec_to_yaml(spec: NetworkSpec) -> str:
    """The spec as YAML, fields in schema order, defaults written out."""
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=100)


def dump_spec(spec: NetworkSpec, path: str | Path) -> Path:
    """Write ``spec`` to ``path``: JSON if it ends in ``.json``, YAML otherwise."""
    path = Path(path)
    text = (json.dumps(spec_to_dict(spec), indent=2) + "\n") if path.suffix.lower() == ".json" else spec_to_yaml(spec)
    path.write_text(text, encoding="utf-8")
    return path


def canonical_json(spec: NetworkSpec) -> str:
    """The spec's identity as compact JSON: all fields but labels, keys sorted.

    Defaults are written out, so a spec that spells a default and one that omits it
    are the same network and serialise the same.
    """
    data = {k: v for k, v in spec_to_dict(spec).items() if k not in IDENTITY_EXCLUDES}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def spec_hash(spec: NetworkSpec) -> str:
    """A stable identifier of the network a spec describes (SHA-256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(spec).encode("ascii")).hexdigest()
