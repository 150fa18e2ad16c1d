"""Trained runs of a family: one network, one recipe, one seed each, kept on disk so nothing is trained twice.

Each run lives in ``<family folder>/.runs/<spec hash>-<recipe key>-seed<k>/``: the trained
weights, the ``.tflite`` and ``.keras`` files compiled from them at the deployment input,
and ``result.json``, written last. A folder without ``result.json`` is a run that was
interrupted and is done again; one with it is reused, by a restarted family run and by a
later one whose picks did not change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archsearch.data import Dataset
from archsearch.family.recipe import FinalRecipe
from archsearch.output_files import written_atomically
from archsearch.spec import NetworkSpec, spec_hash

RESULT = "result.json"

EpochProgress = Callable[[int, dict[str, float]], None]
"""Called after each epoch but the last with (epochs done, training metrics: loss, accuracy, seconds); only
the last epoch is validated, on the exported file."""


@dataclass(frozen=True)
class SeedRun:
    """One finished training at the deployment input, and its accuracy measured on its exported ``.tflite``."""

    spec_hash: str
    seed: int
    recipe_key: str
    tflite_accuracy: float
    """Top-1 on the validation set, running ``model.tflite`` in LiteRT (batch 1)."""
    keras_accuracy: float
    """Keras' validation accuracy after the last epoch (the same network before conversion)."""
    seconds: float
    """Training time (conversion and the LiteRT evaluation not included)."""
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    folder: str = ""

    @property
    def tflite(self) -> Path:
        return Path(self.folder) / "model.tflite"

    @property
    def keras(self) -> Path:
        return Path(self.folder) / "model.keras"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deployment_training_spec(spec: NetworkSpec, classes: int, recipe: FinalRecipe) -> NetworkSpec:
    """The network as trained and shipped: the searched spec at its own input, the data's classes, and the
    recipe's BatchNorm momentum (Keras' 0.99-0.999 leaves statistics unconverged in a few epochs)."""
    from archsearch.train import proxy_spec

    return proxy_spec(spec, spec.input.size, classes, recipe.batchnorm_momentum).model_copy(
        update={"name": spec.name})


class RunStore:
    """Finished runs under ``root`` (a family folder's ``.runs``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, spec: NetworkSpec, recipe: FinalRecipe, seed: int) -> Path:
        return self.root / f"{spec_hash(spec)[:16]}-{recipe.key()}-seed{seed}"

    def finished(self, spec: NetworkSpec, recipe: FinalRecipe, seed: int) -> SeedRun | None:
        """The stored run, if it ran to the end (``result.json`` present and its files with it)."""
        folder = self.folder(spec, recipe, seed)
        result = folder / RESULT
        if not result.is_file():
            return None
        run = SeedRun(**{**json.loads(result.read_text(encoding="utf-8")), "folder": str(folder)})
        return run if run.tflite.is_file() and run.keras.is_file() else None

    def train(self, spec: NetworkSpec, data: Dataset, recipe: FinalRecipe, seed: int,
              on_epoch: EpochProgress | None = None) -> SeedRun:
        """Train ``spec`` at ``data``'s size (its deployment input) with one seed of ``recipe``; write the
        run's files; measure the ``.tflite`` on the validation set in LiteRT."""
        from archsearch.export import trained_model
        from archsearch.export_card import file_accuracy
        from archsearch.latency.backends import convert_to_tflite
        from archsearch.train import TrainingError, model_inputs, train_spec

        if data.image_size != spec.input.size:
            raise ValueError(f"{spec.name}: data at {data.image_size}x{data.image_size}, input {spec.input.size}")

        def hook(epoch: int, metrics: dict[str, float]) -> bool:
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            return True

        result = train_spec(spec, data, recipe.train_config(seed), on_epoch=hook, validate_each_epoch=False)
        if result.weights is None:
            raise TrainingError(f"{spec.name}: training ended without weights")
        shipped = deployment_training_spec(spec, data.classes, recipe)
        model = trained_model(shipped, result.weights)
        folder = self.folder(spec, recipe, seed)
        if folder.exists():  # an interrupted run's leftovers
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / "weights.npz").write_bytes(result.weights)
        model.save(folder / "model.keras")
        (folder / "model.tflite").write_bytes(convert_to_tflite(model))
        accuracy, _ = file_accuracy(folder / "model.tflite", "tflite", model_inputs(shipped, data.x_val), data.y_val)
        assert accuracy is not None
        run = SeedRun(spec_hash(spec), seed, recipe.key(), accuracy, result.accuracy, result.seconds, result.epochs,
                      result.history, str(folder))
        with written_atomically(folder / RESULT) as temporary:
            temporary.write_text(json.dumps({k: v for k, v in run.as_dict().items() if k != "folder"}, indent=1),
                                 encoding="utf-8")
        import keras

        keras.backend.clear_session()
        return run


__all__ = ["EpochProgress", "RunStore", "SeedRun", "deployment_training_spec"]
