"""Search spaces: which parts of a spec vary, over what values. Built-ins by name.

Built-in spaces are the YAML files of the repository's ``search_spaces/`` folder,
shipped inside the package (``archsearch/search_spaces`` points there) so names
resolve after a plain install too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from archsearch.errors import ArchsearchError, UnknownNameError
from archsearch.space.paths import expand, format_path
from archsearch.space.schema import Parameter, SearchSpace, sample_specs
from archsearch.spec import format_validation_error, read_document

_BUILTIN = resources.files("archsearch") / "search_spaces"


class SpaceError(ArchsearchError, ValueError):
    """A search-space file is malformed or describes invalid networks."""


def space_names() -> list[str]:
    """Names of the built-in search spaces."""
    return sorted(e.name.removesuffix(".yaml") for e in _BUILTIN.iterdir() if e.name.endswith(".yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A built-in space by name, or a space from a YAML/JSON file."""
    text = str(name_or_path)
    path = Path(text)
    if text in space_names() and not path.exists():
        source, data = f"space {text}", read_document(Path(str(_BUILTIN / f"{text}.yaml")))
    elif path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        source = str(path)
        try:
            data = read_document(path)
        except ArchsearchError as error:
            raise SpaceError(str(error)) from None
    else:
        raise UnknownNameError("search space (and no such file)", text, space_names())
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: a search space must be a mapping of fields")
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as error:
        raise SpaceError(f"{source}: {format_validation_error(error)}") from None


__all__ = ["Parameter", "SearchSpace", "SpaceError", "expand", "format_path", "load_space", "sample_specs",
           "space_names"]
