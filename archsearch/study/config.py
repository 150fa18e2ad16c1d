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
RESUMABLE_CHANGES = frozenset({"trials", "timeout_minutes", "storage", "keep_weights", "artifacts", "warm_start"})
# (``keep_weights`` is a retention policy, not part of what is measured; ``artifacts`` is checked
# against the location the study recorded, by ``study.artifacts``, with its own message;
# ``warm_start`` only decides how a study begins: its points are enqueued before the first
# search trial, never later, and each warm-started trial says so itself.)
# What a setting meant in studies recorded before it existed.
LEGACY_SETTINGS: dict[str, Any] = {"train_scale": None, "device": None, "ladder_ms": None}
# (``dataset`` was always recorded: studies made when the default was ``digits`` say so.)


class StudyConfig(StrictModel):
    """Everything that defines a study. Recorded in the study; a resume must match it."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")] = "default"
    space: str = "mobilenetv3"
    budget_ms: float = Field(gt=0, description="Hard latency budget (measured median, ms): the ladder's top rung.")
    ladder_ms: tuple[Annotated[float, Field(gt=0)], ...] | None = None
    """A ladder of budgets, ascending (``--budget-ms 2,5,10,20``): one search fills every rung, and
    ``archsearch family`` picks one network per rung. ``None``: a single budget. The largest rung
    is ``budget_ms``, the study's hard constraint."""
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
    warm_start: bool = True
    """Begin the search from the space's references (their configurations, projected onto the space,
    enqueued as the first search trials). On by default since the warm-start benchmark measured a
    larger hypervolume after 12 trials on each of three seeds (README)."""

    @model_validator(mode="before")
    @classmethod
    def _ladder_from_budgets(cls, data: Any) -> Any:
        """``budget_ms`` given as several budgets is a ladder: its largest is the hard budget."""
        if isinstance(data, dict) and isinstance(data.get("budget_ms"), (list, tuple)):
            budgets = list(data["budget_ms"])
            if not budgets:
                raise ValueError("budget_ms: give at least one budget")
            if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in budgets):
                raise ValueError(f"budget_ms: every rung must be a number of milliseconds, got {budgets!r}")
            data = {**data, "budget_ms": max(budgets), "ladder_ms": budgets if len(budgets) > 1 else None}
        return data

    @field_validator("ladder_ms")
    @classmethod
    def _ascending(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        if any(not math.isfinite(v) for v in value):
            raise ValueError("every rung must be a finite number of milliseconds")
        if len(set(value)) != len(value):
            raise ValueError(f"the budgets {', '.join(f'{v:g}' for v in value)} repeat a rung")
        ordered = tuple(sorted(value))
        return ordered if len(ordered) > 1 else None

    @model_validator(mode="after")
    def _top_rung_is_the_budget(self) -> StudyConfig:
        if self.ladder_ms is not None and self.ladder_ms[-1] != self.budget_ms:
            raise ValueError(f"budget_ms ({self.budget_ms:g}) must be the ladder's largest rung "
                             f"({self.ladder_ms[-1]:g})")
        return self

    @property
    def rungs_ms(self) -> tuple[float, ...]:
        """The budgets this study answers, ascending: the ladder, or the single budget."""
        return self.ladder_ms or (self.budget_ms,)

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


def parse_budget_ms(text: str) -> float | list[float]:
    """A budget as typed on the command line: a finite number of milliseconds, or a ladder of them
    separated by commas (``2,5,10,20``)."""
    pieces = [piece.strip() for piece in text.split(",")]
    values = []
    for piece in pieces:
        try:
            value = float(piece)
        except ValueError:
            raise ArchsearchError(f"--budget-ms must be a number of milliseconds or a comma-separated ladder "
                                  f"of them (2,5,10,20), got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ArchsearchError(f"--budget-ms: every budget must be a positive, finite number of milliseconds, "
                                  f"got {piece!r} in {text!r}")
        values.append(value)
    if len(set(values)) != len(values):
        raise ArchsearchError(f"--budget-ms: the ladder {text!r} repeats a rung")
    return values[0] if len(values) == 1 else values


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
        raise ArchsearchError(where + format_validation_error(error).replace("budget_ms", "--budget-ms")
                             .replace("ladder_ms", "--budget-ms")) from None
