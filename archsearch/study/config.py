"""A study written down: what is searched, on which data, under which budget and protocol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from archsearch.errors import ArchsearchError
from archsearch.spec import StrictModel, format_validation_error, read_document
from archsearch.train import TrainConfig, scaled_train_size

# Fields that may differ when a study is resumed: how long to go on, and where it lives.
RESUMABLE_CHANGES = frozenset({"trials", "timeout_minutes", "storage", "keep_weights", "artifacts"})
# (``keep_weights`` is a retention policy, not part of what is measured; ``artifacts`` is checked
# against the location the study recorded, by ``study.artifacts``, with its own message.)
# What a setting meant in studies recorded before it existed.
LEGACY_SETTINGS: dict[str, Any] = {"train_scale": None, "device": None}
# (``dataset`` was always recorded: studies made when the default was ``digits`` say so.)


class StudyConfig(StrictModel):
    """Everything that defines a study. Recorded in the study; a resume must match it."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")] = "default"
    space: str = "mobilenetv3"
    budget_ms: float = Field(gt=0, description="Hard latency budget (measured median, ms).")
    trials: Annotated[int, Field(ge=1)] | None = 20
    timeout_minutes: Annotated[float, Field(gt=0)] | None = None
    dataset: str = "digits-clutter"
    """The embedded default: procedural digits on cluttered 64x64 canvases. Plain ``digits``
    saturate once a network is trained at its deployment input (0.956-0.981 for seven
    networks at 224x224), so deployment training could not rank networks on them; how
    well each task separates networks beyond seed noise is in the README's benchmarks."""
    train_scale: Annotated[float, Field(gt=0, le=1)] | None = 0.25
    """Proxy training resolution as a fraction of each candidate's input size (rounded to a
    multiple of 8), so proxy accuracy responds to resolution. ``None``: a fixed size."""
    train_size: Annotated[int, Field(ge=8)] | None = None
    """A fixed proxy training resolution (``None`` with no ``train_scale``: the dataset's)."""
    epochs: Annotated[int, Field(ge=1)] = TrainConfig.epochs
    batch_size: Annotated[int, Field(ge=1)] = TrainConfig.batch_size
    learning_rate: Annotated[float, Field(gt=0)] = TrainConfig.learning_rate
    storage: str | None = None
    seed: int = TrainConfig.seed
    threads: Annotated[int, Field(ge=1)] = 1
    backend: str = "litert"
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    multi_fidelity: bool = True
    eta: Annotated[int, Field(ge=2)] = 3
    reject_margin: Annotated[float, Field(ge=0)] = 0.1
    references: bool = True
    device: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")] | None = None
    """The device the networks are meant for: its measurement agent (``archsearch agent --device``)
    measures every latency. ``None``: this machine measures, as a single-machine study does."""
    keep_weights: Literal["front", "all"] = "front"
    """Trained weights to keep: front members only (a dominated trial never returns), or every trained one."""
    artifacts: str | None = None
    """Where trained weights go: a folder or ``s3://bucket/prefix`` (default: beside a SQLite study)."""

    @model_validator(mode="after")
    def _one_training_resolution(self) -> StudyConfig:
        if self.train_size is not None and self.train_scale is not None:
            if "train_scale" in self.model_fields_set:
                raise ValueError("give train_size (a fixed training resolution) or train_scale (a fraction of "
                                 "each candidate's input size), not both")
            object.__setattr__(self, "train_scale", None)  # a fixed size asked for replaces the default scale
        return self

    @field_validator("budget_ms")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number of milliseconds")
        return value

    def storage_url(self) -> str:
        """``--storage``, or ``sqlite:///studies/<name>.db`` (relative to the working directory)."""
        return self.storage or f"sqlite:///{Path('studies') / f'{self.name}.db'}"

    def identity(self) -> dict[str, Any]:
        """The settings a resumed study must share with the one that started it."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in RESUMABLE_CHANGES}

    def training_size(self, input_size: int, dataset_size: int) -> int:
        """The proxy training resolution of a candidate whose deployment input is ``input_size``."""
        if self.train_scale is not None:
            return scaled_train_size(input_size, self.train_scale)
        return self.train_size or dataset_size

    def train_config(self) -> TrainConfig:
        """The proxy-training recipe of this study's candidates."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           seed=self.seed)


def parse_budget_ms(text: str) -> float:
    """A budget as typed on the command line: a finite number of milliseconds."""
    try:
        value = float(text)
    except ValueError:
        raise ArchsearchError(f"--budget-ms must be a number of milliseconds, got {text!r}") from None
    if not math.isfinite(value):
        raise ArchsearchError(f"--budget-ms must be a finite number of milliseconds, got {text!r}")
    return value


def load_study_config(config_file: str | Path | None = None, **overrides: Any) -> StudyConfig:
    """A study's settings from a YAML/JSON file (``--config``) with ``overrides`` on top (``None`` = not given).

    Errors name the file and the setting, as one line (``ArchsearchError``).
    """
    data: dict[str, Any] = {}
    if config_file:
        document = read_document(config_file)
        if not isinstance(document, dict):
            raise ArchsearchError(f"{config_file}: a study config must be a mapping of settings")
        data.update(document)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if "budget_ms" not in data:
        raise ArchsearchError("--budget-ms is required (or budget_ms in --config)")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as error:
        where = f"{config_file}: " if config_file else ""
        raise ArchsearchError(where + format_validation_error(error).replace("budget_ms", "--budget-ms")) from None
