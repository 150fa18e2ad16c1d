"""A latency backend that needs no package: it times a small sum. For tests of the backend registry.

Its functions live at module level here so the worker process can import them (the
test puts this folder on the worker's ``PYTHONPATH``), as it imports the real backends'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIGURED: list[int] = []  # threads, once per process, before the first job


def configure(threads: int) -> None:
    CONFIGURED.append(threads)


def make_runner(job: dict[str, Any], artifact_dir: Path, threads: int) -> tuple[Any, tuple[int, ...]]:
    if CONFIGURED != [threads]:
        raise RuntimeError(f"configure(threads) ran {CONFIGURED}, not once with {threads} before the first job")
    size, channels = job["spec"]["input"]["size"], job["spec"]["input"]["channels"]
    return (lambda: sum(range(1000))), (1, size, size, channels)
