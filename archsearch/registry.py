"""One function per block type, looked up by the block's ``type``: the pattern builders, cost
functions and latency kernels share, so a new block type plugs into each the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from archsearch.errors import UnknownNameError

F = TypeVar("F", bound=Callable[..., object])


class BlockRegistry(Generic[F]):
    """``functions`` by block type; ``register(type)`` is a decorator that refuses a second registration."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.functions: dict[str, F] = {}

    def register(self, block_type: str) -> Callable[[F], F]:
        def decorator(function: F) -> F:
            if block_type in self.functions:
                raise ValueError(f"{self.what} for block type {block_type!r} is already registered")
            self.functions[block_type] = function
            return function

        return decorator

    def get(self, block_type: str) -> F:
        """The function registered for ``block_type``; ``UnknownNameError`` naming the known types otherwise."""
        try:
            return self.functions[block_type]
        except KeyError:
            raise UnknownNameError("block type", block_type, sorted(self.functions)) from None
