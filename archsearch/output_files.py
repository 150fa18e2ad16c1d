"""Writing user-facing files (exports, dashboards) so a failure never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from archsearch.errors import ArchsearchError


def safe_filename(name: str) -> str:
    """``name`` usable as one path component: anything but letters, digits, ``_ . - +`` becomes ``_``.

    Study names come from Optuna storage, where any client may have written ``../x``.
    """
    cleaned = re.sub(r"[^A-Za-z0-9_.+\-]", "_", name).lstrip(".")
    return cleaned or "_"


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def written_atomically(path: str | Path, error: type[ArchsearchError] = ArchsearchError) -> Iterator[Path]:
    """A temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The folder is created; an unwritable location raises ``error`` naming the path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
        os.close(handle)
    except OSError as failure:
        raise error(f"cannot write {path}: {failure.strerror or failure}") from None
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _default_mode())  # mkstemp makes files private; exports are ordinary files
        os.replace(temporary, path)
    except OSError as failure:
        raise error(f"cannot write {path}: {failure.strerror or failure}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


__all__ = ["safe_filename", "written_atomically"]
