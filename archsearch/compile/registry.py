"""Block builders, looked up by the block's ``type``.

A builder turns one resolved block into layers: ``builder(x, block, ctx) -> x``. It
names every layer from ``block.name`` (so latency per block and weight transfer can
join back to the spec) and never mutates its input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archsearch.registry import BlockRegistry

if TYPE_CHECKING:
    from archsearch.compile.context import BuildContext
    from archsearch.spec import ResolvedBlock

Builder = Callable[[Any, "ResolvedBlock", "BuildContext"], Any]

_BUILDERS: BlockRegistry[Builder] = BlockRegistry("a builder")
BUILDERS = _BUILDERS.functions
register_builder = _BUILDERS.register
"""Register the builder of a block type (a decorator); one builder per type."""


def get_builder(block_type: str) -> Builder:
    """The builder registered for ``block_type``."""
    return _BUILDERS.get(block_type)
