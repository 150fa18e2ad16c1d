"""Keep TensorFlow's start-up lines (and its retracing warning) out of the terminal: ``quiet_tensorflow_startup()``.

``import tensorflow`` (2.21, CPU wheel) writes these to file descriptor 2, twice per
process: once when ``libtensorflow_framework.so.2`` loads and once when the profiler
plugin (``_pywrap_profiler_plugin.so``, with its own copy of absl) loads::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1795950165.191398    5551 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1795950165.192541    5551 cudart_stub.cc:31] Could not find cuda drivers on your machine, ...

They are INFO lines logged by C++ static initialisers while the libraries load, before
TensorFlow applies ``TF_CPP_MIN_LOG_LEVEL``, so that variable cannot hide them; neither
can ``GLOG_minloglevel`` or ``CUDA_VISIBLE_DEVICES=""``, and ``TF_ENABLE_ONEDNN_OPTS=0``
would silence the oneDNN notice only by changing the numerics. What works is catching
file descriptor 2 while ``tensorflow`` is first imported and writing back every line
that is not absl's banner or an INFO line (``I...`` in absl's or TensorFlow's format):
warnings, errors and anything else still reach stderr, in order, once the import ends.
``TF_CPP_MIN_LOG_LEVEL=0`` turns the filter off (you asked to see everything). If the
import itself kills the process, what it wrote meanwhile is lost: rerun with
``TF_CPP_MIN_LOG_LEVEL=0`` to see it.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: TensorFlow's C++ log level unless the user chose one: fatal messages only, as before. At 1 or 2
#: a CPU-only machine shows ``E... cuda_platform.cc:52] failed call to cuInit`` on first use.
DEFAULT_TF_CPP_MIN_LOG_LEVEL = "3"

_ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_INFO_LINE = re.compile(
    rb"^(I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\]"  # absl: I0000 00:00:1795950165.191398    5551 port.cc:153]
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: I [^\]\s]+:\d+\])"  # TensorFlow: 2025-01-01 12:00:00.000000: I x.cc:1]
)


def quiet_tensorflow_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with TensorFlow's C++ log level defaulted (for a child process that imports TensorFlow)."""
    return {**environ, "TF_CPP_MIN_LOG_LEVEL": environ.get("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_CPP_MIN_LOG_LEVEL)}


def quiet_tensorflow_startup() -> None:
    """Default ``TF_CPP_MIN_LOG_LEVEL`` and filter the first ``import tensorflow`` of this process.

    Call it early in a process's entry point (the CLI, the latency worker), before
    anything imports TensorFlow; it imports nothing heavy itself and is idempotent.
    """
    os.environ.update(quiet_tensorflow_env(os.environ))
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
    retracing = logging.getLogger("tensorflow")  # the logger TensorFlow's Python side writes to
    if not any(isinstance(f, _ExpectedRetracing) for f in retracing.filters):
        retracing.addFilter(_ExpectedRetracing())
    if not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


_XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
"""What LiteRT's interpreter prints when it is created: the normal case, not news."""


class _ExpectedRetracing(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls ... triggered tf.function retracing" warning.

    A study trains a new network per trial, and an epoch's last batch is smaller than the
    others: Keras' step function is traced again by design, and the warning (a paragraph
    of advice on tf.function) says nothing a user of archsearch can act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def is_startup_noise(line: bytes) -> bool:
    """absl's pre-initialisation banner, an INFO line from TensorFlow's C++ side, or LiteRT's XNNPACK notice."""
    line = line.rstrip(b"\r\n")
    return line in (_ABSL_BANNER, _XNNPACK_NOTICE) or _INFO_LINE.match(line) is not None


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Catch file descriptor 2 (C++ writes included), then write back all but start-up noise, in order."""
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            try:
                if sys.stderr is not None:
                    sys.stderr.flush()  # Python's own writes meanwhile belong before what follows
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            caught.seek(0)
            kept = memoryview(b"".join(line for line in caught if not is_startup_noise(line)))
            while kept:
                kept = kept[os.write(2, kept):]


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders, but runs its ``__init__`` inside ``filtered_stderr()``.

    It stays in ``sys.meta_path`` until TensorFlow is imported: a mere look-up
    (``importlib.util.find_spec("tensorflow")``, as a backend's availability check does)
    loads nothing and must not use it up.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            with filtered_stderr():
                execute(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's loader only
        return spec
