"""What a study's accuracy figures are: a proxy, and the protocol that produced them.

Candidates are not trained as they would be deployed (that costs 13-37 s per epoch at
224x224 here), so the accuracy a study stores is a *proxy*: the validation accuracy of
a short training run on the study's data at a stated resolution. Every place that
shows it says so; this module words it once, from what the study recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna

from archsearch.study.record import PROTOCOL_ATTR, recorded_config
from archsearch.train import TrainConfig

LABEL = "proxy accuracy"
"""How the accuracy axis, columns and fields are labelled wherever they are shown."""


@dataclass(frozen=True)
class AccuracyProtocol:
    """How a study's accuracies were obtained."""

    dataset: str
    validation_images: int | None
    train_images: int | None
    resolution: str
    """How each candidate's training resolution was chosen, e.g. ``0.25 x input size``."""
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    batchnorm_momentum: float
    seed: int
    kind: str = "proxy"

    @classmethod
    def of_run(cls, config: Any, dataset: Any) -> AccuracyProtocol:
        """The protocol of a study about to run with ``config`` (a ``StudyConfig``) on ``dataset``."""
        recipe: TrainConfig = config.train_config()
        return cls(dataset=dataset.name, validation_images=len(dataset.y_val), train_images=len(dataset.y_train),
                   resolution=_resolution(config.model_dump(), dataset.image_size), epochs=recipe.epochs,
                   batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
                   weight_decay=recipe.weight_decay, batchnorm_momentum=recipe.batchnorm_momentum, seed=recipe.seed)

    @classmethod
    def of_study(cls, study: optuna.Study) -> AccuracyProtocol | None:
        """The protocol the study recorded; for studies made before it was recorded, derived from their settings."""
        stored = study.user_attrs.get(PROTOCOL_ATTR)
        if stored:
            return cls(**{k: v for k, v in stored.items() if k in cls.__dataclass_fields__})
        config = recorded_config(study)
        if not config:
            return None
        recipe = TrainConfig()
        return cls(dataset=str(config.get("dataset", "?")), validation_images=None, train_images=None,
                   resolution=_resolution({"train_scale": None, **config}, None),
                   epochs=int(config.get("epochs", recipe.epochs)),
                   batch_size=int(config.get("batch_size", recipe.batch_size)),
                   learning_rate=float(config.get("learning_rate", recipe.learning_rate)),
                   weight_decay=recipe.weight_decay, batchnorm_momentum=recipe.batchnorm_momentum,
                   seed=int(config.get("seed", recipe.seed)))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}

    def summary(self) -> str:
        """One line, e.g. ``proxy accuracy: 360 validation images of digits, 6 epochs at 0.25 x input size, ...``."""
        images = f"{self.validation_images} validation images of " if self.validation_images else ""
        epochs = f"{self.epochs} epoch" + ("s" if self.epochs != 1 else "")
        return (f"{LABEL}: {images}{self.dataset}, after {epochs} at {self.resolution} "
                f"(AdamW {self.learning_rate:g}, batch {self.batch_size}, BatchNorm momentum "
                f"{self.batchnorm_momentum:g}, seed {self.seed}); not the accuracy of the network trained at its "
                "deployment input")


def _resolution(config: dict[str, Any], dataset_size: int | None) -> str:
    if config.get("train_scale") is not None:
        return f"{config['train_scale']:g} x input size (multiple of 8)"
    size = config.get("train_size") or dataset_size
    return f"{size}x{size} for every input size" if size else "the dataset's resolution for every input size"


def record_protocol(study: optuna.Study, protocol: AccuracyProtocol) -> None:
    """Store ``protocol`` in the study (once: a resumed study keeps the protocol it started with)."""
    if PROTOCOL_ATTR not in study.user_attrs:
        study.set_user_attr(PROTOCOL_ATTR, protocol.as_dict())


__all__ = ["LABEL", "AccuracyProtocol", "record_protocol"]
