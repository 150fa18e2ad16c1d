"""Writing benchmark results as JSON without machine paths.

Paths inside the repository are recorded relative to it; paths under the temporary
folder as ``$TMPDIR/...``: a result file reads the same on any machine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent


def portable(value: Any) -> Any:
    """``value`` with absolute repository and temporary-folder paths in its strings made machine-neutral."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item) for item in value]
    if isinstance(value, str):
        return (value.replace(f"{REPOSITORY}/", "").replace(str(REPOSITORY), ".")
                .replace(str(Path(tempfile.gettempdir())), "$TMPDIR"))
    return value


def write_results(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` (folders created), machine paths removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(portable(data), indent=2) + "\n")
    return path


if __name__ == "__main__":  # rewrite existing results in place: python benchmarks/results_file.py
    for existing in sorted((REPOSITORY / "benchmarks" / "results").glob("*.json")):
        write_results(existing, json.loads(existing.read_text()))
