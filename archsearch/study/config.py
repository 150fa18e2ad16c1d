"""A study written down: what is searched, on which data, under which budget and protocol."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from archsearch.spec import StrictModel

# Fields that may differ when a study is resumed: how long to go on, and where it lives.
RESUMABLE_CHANGES = frozenset({"trials", "timeout_minutes", "storage"})


class StudyConfig(StrictModel):
    """Everything that defines a study. Recorded in the study; a resume must match it."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")] = "default"
    space: str = "mobilenetv3"
    budget_ms: float = Field(gt=0, description="Hard latency budget (measured median, ms).")
    trials: Annotated[int, Field(ge=1)] | None = 20
    timeout_minutes: Annotated[float, Field(gt=0)] | None = None
    dataset: str = "digits"
    train_size: Annotated[int, Field(ge=8)] | None = None
    epochs: Annotated[int, Field(ge=1)] = 6
    batch_size: Annotated[int, Field(ge=1)] = 64
    learning_rate: Annotated[float, Field(gt=0)] = 3e-3
    storage: str | None = None
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] = 1
    backend: str = "litert"
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    multi_fidelity: bool = True
    eta: Annotated[int, Field(ge=2)] = 3
    reject_margin: Annotated[float, Field(ge=0)] = 0.1
    references: bool = True

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
