"""Search spaces as data: a base spec and the fields that may vary, with their choices."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field, PrivateAttr, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from archsearch.errors import SpecError
from archsearch.references import deep_merge, load_reference, reference_names
from archsearch.space.paths import Path, PathError, expand, format_path, set_path
from archsearch.spec import NetworkSpec, StrictModel, parse_spec, spec_hash, spec_to_dict

ChoiceValue = StrictBool | StrictInt | StrictFloat | StrictStr | None
Choices = Annotated[tuple[ChoiceValue, ...], Field(min_length=1)]

VALIDATION_SAMPLES = 32
"""Random points checked when a space loads, beyond every choice on its own."""


@dataclass(frozen=True)
class Parameter:
    """One searched field: its concrete path and its choices."""

    name: str
    path: Path
    choices: tuple[Any, ...]


class SearchSpace(StrictModel):
    """A base spec and ``choices``: path pattern -> allowed values.

    ``base`` is a reference name or inline spec data; ``overrides`` are merged into it.
    A pattern with ``[*]`` or a slice (``stages[1:].blocks[0].kernel``) makes one
    independent parameter per item it covers. Every point of the space is a valid
    ``NetworkSpec``: each choice is checked on its own when the space loads, and so
    are a few random points.
    """

    name: str
    description: str = ""
    family: str = Field(description="The reference family the space belongs to, e.g. mobilenet_v3.")
    references: tuple[str, ...] = Field(default=(), description="Reference networks trained as baselines.")
    base: str | dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict)
    choices: dict[str, Choices] = Field(min_length=1)

    _base_data: dict[str, Any] = PrivateAttr()
    _parameters: tuple[Parameter, ...] = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> SearchSpace:
        known = reference_names()
        for name in self.references:
            if name not in known:
                raise ValueError(f"references: unknown reference {name!r}")
        try:
            base = load_reference(self.base) if isinstance(self.base, str) else parse_spec(self.base)
            base = parse_spec(deep_merge(spec_to_dict(base), self.overrides)) if self.overrides else base
        except (SpecError, LookupError) as error:
            raise ValueError(f"base: {error}") from None
        self._base_data = spec_to_dict(base)

        parameters: list[Parameter] = []
        owner: dict[Path, str] = {}
        for pattern, values in self.choices.items():
            try:
                paths = expand(pattern, self._base_data)
            except PathError as error:
                raise ValueError(f"choices[{pattern!r}]: {error}") from None
            for path in paths:
                if path in owner:
                    raise ValueError(f"choices[{pattern!r}]: {format_path(path)} is already chosen by {owner[path]!r}")
                owner[path] = pattern
                parameters.append(Parameter(format_path(path), path, tuple(values)))
        self._parameters = tuple(parameters)

        for parameter in parameters:  # every value on its own
            for value in parameter.choices:
                self._validated({parameter.name: value}, f"choices[{owner[parameter.path]!r}] value {value!r}")
        generator = random.Random(0)
        for _ in range(VALIDATION_SAMPLES):  # and values together
            point = {p.name: generator.choice(p.choices) for p in parameters}
            self._validated(point, "a point of the space")
        return self

    def _validated(self, point: Mapping[str, Any], what: str) -> NetworkSpec:
        try:
            return self.spec_at(point)
        except SpecError as error:
            raise ValueError(f"{what}: {error}") from None

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """The searched fields, one per concrete path, in file order."""
        return self._parameters

    @property
    def size(self) -> int:
        """The number of points (distinct specs) in the space."""
        return math.prod(len(p.choices) for p in self._parameters)

    def base_spec(self) -> NetworkSpec:
        return parse_spec(self._base_data)

    def spec_at(self, point: Mapping[str, Any]) -> NetworkSpec:
        """The spec at ``point`` (parameter name -> value); missing parameters keep the base value."""
        data = copy.deepcopy(self._base_data)
        by_name = {p.name: p for p in self._parameters}
        for name, value in point.items():
            if name not in by_name:
                raise SpecError(f"{self.name}: no parameter {name!r}")
            set_path(data, by_name[name].path, value)
        spec = parse_spec(data)
        return spec.model_copy(update={"name": f"{self.name}-{spec_hash(spec)[:10]}"})

    def sample_point(self, rng: random.Random | np.random.Generator) -> dict[str, Any]:
        """A uniformly random point."""
        if isinstance(rng, np.random.Generator):
            return {p.name: p.choices[int(rng.integers(len(p.choices)))] for p in self._parameters}
        return {p.name: rng.choice(p.choices) for p in self._parameters}

    def sample(self, rng: random.Random | np.random.Generator) -> NetworkSpec:
        """A uniformly random spec from the space."""
        return self.spec_at(self.sample_point(rng))

    def suggest(self, trial: Any) -> NetworkSpec:
        """The spec an Optuna trial chooses (one categorical parameter per searched field)."""
        return self.spec_at({p.name: trial.suggest_categorical(p.name, p.choices) for p in self._parameters})

    def with_overrides(self, **overrides: Any) -> SearchSpace:
        """The same space over a modified base (e.g. ``classes=10`` for a dataset)."""
        data = self.model_dump()
        data["overrides"] = deep_merge(self.overrides, overrides)
        return SearchSpace.model_validate(data)


def sample_specs(space: SearchSpace, n: int, seed: int = 0) -> list[NetworkSpec]:
    """``n`` random specs from ``space``, distinct as long as the space is large enough."""
    generator = random.Random(seed)
    specs: dict[str, NetworkSpec] = {}
    attempts = 0
    while len(specs) < n and attempts < 20 * n:
        spec = space.sample(generator)
        specs.setdefault(spec_hash(spec), spec)
        attempts += 1
    result = list(specs.values())
    while len(result) < n:  # a space smaller than n: repeats are unavoidable
        result.append(space.sample(generator))
    return result
