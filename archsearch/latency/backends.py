"""Latency backends: how a model becomes something to time.

A backend is one entry in ``BACKENDS``: its name, the packages it needs, and what runs
it in the worker process. ``make_runner(job, artifact_dir, threads)`` turns a job (a
spec, a part of one, or a TFLite file) into a zero-argument callable that runs one
batch-1 inference, plus the input shape; the optional ``configure(threads)`` sets the
worker process up once, before its first job. ``litert`` (the default) converts to a
TFLite flatbuffer and runs it in the LiteRT interpreter with XNNPACK; ``keras`` runs the
model as a compiled ``tf.function``.

The parent process only reads the registry (names, packages, versions) and sends the
worker the import paths of the entry's functions (``function_path``), so those must be
module-level functions of an importable module; they import TensorFlow / LiteRT
inside, never at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, UnknownNameError


class BackendUnavailableError(ArchsearchError):
    """A backend's package is not installed."""


Runner = Callable[[], Any]
# Worker side: (job, artifact_dir, threads) -> (runner, input shape).
MakeRunner = Callable[[dict[str, Any], Path, int], tuple[Runner, tuple[int, ...]]]


@dataclass(frozen=True)
class BackendInfo:
    """A backend: its name, the packages (distribution, module) whose versions it depends on, what runs it.

    ``make_runner`` and ``configure`` run in the worker process, which imports them by
    ``function_path``; ``configure(threads)`` is called once per worker process before
    its first job.
    """

    name: str
    packages: tuple[tuple[str, str], ...]
    description: str
    make_runner: MakeRunner
    configure: Callable[[int], None] | None = None

    def check_available(self) -> None:
        for distribution, module in self.packages:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise BackendUnavailableError(
                    f"latency backend {self.name!r} needs the package {distribution!r} (pip install {distribution})"
                )

    def version(self) -> str:
        """Versions of the backend's packages, e.g. ``ai-edge-litert 2.3.0; tensorflow 2.21.0``."""
        parts = []
        for distribution, _ in self.packages:
            try:
                parts.append(f"{distribution} {metadata.version(distribution)}")
            except metadata.PackageNotFoundError:
                parts.append(f"{distribution} ?")
        return "; ".join(parts)


def get_backend(name: str) -> BackendInfo:
    """The registered backend ``name``, checked to be installed."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise UnknownNameError("latency backend", name, sorted(BACKENDS)) from None
    backend.check_available()
    return backend


def function_path(function: Callable[..., Any]) -> str:
    """``module:qualname`` of a module-level function, for the worker process to import."""
    module, name = function.__module__, function.__qualname__
    if module == "__main__" or "<" in name:  # <locals>, <lambda>
        raise ArchsearchError(f"a latency backend's functions must be module-level functions of an importable "
                              f"module (the worker imports them), not {module}:{name}")
    return f"{module}:{name}"


def resolve_function(path: str) -> Callable[..., Any]:
    """The function named by ``function_path``."""
    module, _, name = path.partition(":")
    found: Any = importlib.import_module(module)
    for attribute in name.split("."):
        found = getattr(found, attribute)
    return found


# ----- worker side: these functions import TensorFlow / LiteRT -----


def job_model(job: dict[str, Any]) -> Any:
    """The Keras model of a job: its whole spec, or the part ``job["part"]`` of it."""
    from archsearch.compile import compile_model
    from archsearch.compile.parts import build_part_model
    from archsearch.spec import parse_spec

    spec = parse_spec(job["spec"])
    return build_part_model(spec, job["part"]) if job.get("part") else compile_model(spec)


def job_flatbuffer(job: dict[str, Any], artifact_dir: Path) -> Path:
    """A job's TFLite file: the one it names, or its model converted once and kept in ``artifact_dir``."""
    if job.get("tflite"):
        return Path(job["tflite"])
    path = artifact_dir / f"{job['artifact']}.tflite"
    if not path.is_file():
        flatbuffer = convert_to_tflite(job_model(job))
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(flatbuffer)
        partial.replace(path)  # atomic: a reader never sees half a file
    return path


def convert_to_tflite(model: Any) -> bytes:
    """A float32, batch-1 TFLite flatbuffer of a Keras model."""
    import tensorflow as tf

    shape = (1, *model.input.shape[1:])
    function = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])
    # No trackable object: the converter then freezes the weights into constants (with
    # one, it keeps them as resource variables and the model runs several times slower).
    # Its deprecation warning about exactly that choice is silenced for this call only.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    finally:
        absl_logger.setLevel(level)
    return converter.convert()


def litert_runner(flatbuffer_path: Path, threads: int, seed: int = 0) -> tuple[Runner, tuple[int, ...]]:
    """Load a flatbuffer in LiteRT (XNNPACK on by default), set a random input, return ``invoke``."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(flatbuffer_path), num_threads=threads)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    shape = tuple(int(d) for d in detail["shape"])
    interpreter.set_tensor(detail["index"], np.random.default_rng(seed).uniform(0, 1, shape).astype(detail["dtype"]))
    return interpreter.invoke, shape


def keras_runner(model: Any, threads: int, seed: int = 0) -> tuple[Runner, tuple[int, ...]]:
    """A compiled ``tf.function`` of the model on a random batch-1 input."""
    import numpy as np
    import tensorflow as tf

    shape = (1, *(int(d) for d in model.input.shape[1:]))
    x = tf.constant(np.random.default_rng(seed).uniform(0, 1, shape).astype("float32"))
    function = tf.function(lambda inputs: model(inputs, training=False), jit_compile=False)

    def run() -> Any:
        return function(x).numpy()  # .numpy() waits for the result

    return run, shape


def litert_job_runner(job: dict[str, Any], artifact_dir: Path, threads: int) -> tuple[Runner, tuple[int, ...]]:
    """``litert``: the job's flatbuffer (converted once, cached) in the LiteRT interpreter."""
    return litert_runner(job_flatbuffer(job, artifact_dir), threads)


def keras_job_runner(job: dict[str, Any], artifact_dir: Path, threads: int) -> tuple[Runner, tuple[int, ...]]:
    """``keras``: the job's Keras model as a compiled ``tf.function``."""
    return keras_runner(job_model(job), threads)


def configure_keras(threads: int) -> None:
    """``keras``: TensorFlow's thread pools, set before TensorFlow runs anything."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


BACKENDS: dict[str, BackendInfo] = {
    "litert": BackendInfo("litert", (("ai-edge-litert", "ai_edge_litert"), ("tensorflow", "tensorflow")),
                          "TFLite flatbuffer in the LiteRT interpreter (XNNPACK, float32)", litert_job_runner),
    "keras": BackendInfo("keras", (("keras", "keras"), ("tensorflow", "tensorflow")),
                         "the Keras model as a compiled tf.function", keras_job_runner, configure_keras),
}
