"""The final recipe: how a family's members and the references are trained before they are shipped.

Unlike the study's proxy (a few epochs at a fraction of each input), the final recipe
trains every network at its deployment input, for more epochs, over several seeds. Its
defaults are those of the deployment side of ``benchmarks/proxy_fidelity.py`` (8
epochs at the deployment input, the study's optimiser), so the family's figures and the
fidelity benchmark's describe the same training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from archsearch.train import TrainConfig


@dataclass(frozen=True)
class FinalRecipe:
    """Final training of a family member or a reference: every setting recorded with its results."""

    epochs: int = 8
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = TrainConfig.batch_size
    learning_rate: float = TrainConfig.learning_rate
    weight_decay: float = TrainConfig.weight_decay
    batchnorm_momentum: float = TrainConfig.batchnorm_momentum
    dataset: str = "digits-clutter"
    data_seed: int = 0
    """The seed the dataset was drawn or split with (the study's)."""

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {list(self.seeds)}")
        if self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("batch size and learning rate must be positive")

    def train_config(self, seed: int) -> TrainConfig:
        """The training recipe of one seed."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           weight_decay=self.weight_decay, batchnorm_momentum=self.batchnorm_momentum, seed=seed)

    def key(self) -> str:
        """What a trained run depends on, as a short hash (the seed is kept apart: each seed is one run)."""
        settings = {k: v for k, v in asdict(self).items() if k != "seeds"}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]

    def summary(self, validation_images: int | None = None) -> str:
        """One line, e.g. ``8 epochs at each network's deployment input, AdamW 0.003, batch 64, seeds 0, 1``."""
        images = f"; accuracy on {validation_images} validation images of {self.dataset}" if validation_images else ""
        return (f"final training: {self.epochs} epochs at each network's deployment input (AdamW "
                f"{self.learning_rate:g}, weight decay {self.weight_decay:g}, batch {self.batch_size}, BatchNorm "
                f"momentum {self.batchnorm_momentum:g}), seeds {', '.join(map(str, self.seeds))}{images}, measured "
                "on the exported .tflite in LiteRT")

    def as_dict(self, validation_images: int | None = None) -> dict[str, Any]:
        return {**asdict(self), "seeds": list(self.seeds), "resolution": "deployment input",
                "validation_images": validation_images, "summary": self.summary(validation_images)}


__all__ = ["FinalRecipe"]
