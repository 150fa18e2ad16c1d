"""How much a change of training seed moves a proxy accuracy, for protocols where it was measured.

A proxy trained with another seed scores differently; a verdict such as "reference X is
dominated by trial N" must survive that as well as the noise of a finite validation set.
The seed noise of a protocol is measured by ``benchmarks/proxy_fidelity.py`` (the same
networks trained with two seeds) and kept as data in ``data/seed_noise.yaml``: the 95%
band of the difference between two single-seed accuracies, ``1.96 * rms(seed 0 - seed 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

MATCHED_FIELDS = ("dataset", "resolution", "epochs", "batch_size", "learning_rate", "validation_images")
"""A measurement applies to a study whose protocol agrees on all of these."""


@dataclass(frozen=True)
class SeedNoise:
    """The seed band of one protocol and where it was measured."""

    band: float
    networks: int
    source: str


@cache
def _measured() -> tuple[tuple[dict[str, Any], SeedNoise], ...]:
    text = resources.files("archsearch.study").joinpath("data/seed_noise.yaml").read_text()
    entries = yaml.safe_load(text) or []
    return tuple((dict(e["protocol"]), SeedNoise(float(e["band"]), int(e["networks"]), str(e["source"])))
                 for e in entries)


def seed_noise(protocol: dict[str, Any]) -> SeedNoise | None:
    """The measured seed band of ``protocol`` (an ``AccuracyProtocol`` as a dict), or None if never measured."""
    for fields, noise in _measured():
        if all(protocol.get(name) == fields.get(name) for name in MATCHED_FIELDS):
            return noise
    return None


__all__ = ["MATCHED_FIELDS", "SeedNoise", "seed_noise"]
