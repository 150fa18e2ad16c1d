"""Loading saved models that use archsearch's custom layers."""

from __future__ import annotations

from pathlib import Path

import keras

from archsearch.compile.layers import CUSTOM_LAYERS
from archsearch.errors import ArchsearchError


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file saved from a compiled spec (custom layers resolved)."""
    path = Path(path)
    if not path.is_file():
        raise ArchsearchError(f"{path}: no such file")
    return keras.models.load_model(path, custom_objects=CUSTOM_LAYERS)
