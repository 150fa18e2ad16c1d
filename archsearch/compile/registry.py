"""Block builders, looked up by the block's ``type``.

A builder turns one resolved block into layers: ``builder(x, block, ctx) -> x``. It
names every layer from ``block.name`` (so latency per block and weight transfer can
join back to the spec) and never mutates its input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archsearch.errors import UnknownNameError

if TYPE_CHECKING:
    from archsearch.compile.context import BuildContext
    from archsearch.spec import ResolvedBlock

Builder = Callable[[Any, "ResolvedBlock", "BuildContext"], Any]

BUILDERS: dict[str, Builder] = {}


def register_builder(block_type: str) -> Callable[[Builder], Builder]:
    """Register the builder of ``block_type``; one builder per type."""

    def decorator(builder: Builder) -> Builder:
        if block_type in BUILDERS:
            raise ValueError(f"a builder for block type {block_type!r} is already registered")
        BUILDERS[block_type] = builder
        return builder

    return decorator


def get_builder(block_type: str) -> Builder:
    """The builder registered for ``block_type``."""
    try:
        return BUILDERS[block_type]
    except KeyError:
        raise UnknownNameError("block type", block_type, sorted(BUILDERS)) from None
