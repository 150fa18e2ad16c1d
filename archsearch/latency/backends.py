"""Latency backends: how a model becomes something to time.

A backend turns a Keras model into a zero-argument callable that runs one batch-1
inference. ``litert`` (the default) converts to a TFLite flatbuffer and runs it in
the LiteRT interpreter with XNNPACK; ``keras`` runs the model as a compiled
``tf.function``. The parent process only reads the registry (names, packages,
versions); the work happens in the worker process.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError, UnknownNameError


class BackendUnavailableError(ArchsearchError):
    """A backend's package is not installed."""


@dataclass(frozen=True)
class BackendInfo:
    """A backend's name and the packages (distribution, module) whose versions it depends on."""

    name: str
    packages: tuple[tuple[str, str], ...]
    description: str

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


BACKENDS: dict[str, BackendInfo] = {
    "litert": BackendInfo("litert", (("ai-edge-litert", "ai_edge_litert"), ("tensorflow", "tensorflow")),
                          "TFLite flatbuffer in the LiteRT interpreter (XNNPACK, float32)"),
    "keras": BackendInfo("keras", (("keras", "keras"), ("tensorflow", "tensorflow")),
                         "the Keras model as a compiled tf.function"),
}


def get_backend(name: str) -> BackendInfo:
    """The registered backend ``name``, checked to be installed."""
    try:
        backend = BACKENDS[name]
    except KeyError:
        raise UnknownNameError("latency backend", name, sorted(BACKENDS)) from None
    backend.check_available()
    return backend


# ----- worker side: these functions import TensorFlow / LiteRT -----

Runner = Callable[[], Any]


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
