"""What an exported model file is, said in the file and beside it, with its accuracy measured on the file itself.

A study's weights are proxy weights: trained at the candidate's training resolution
(a fraction of its deployment input), not at the deployment input. A model file is
therefore written at the resolution its weights were trained for, where it works as
the study measured, and its *card* says so: the study and trial, the input size of the
file and of the searched network, the searched network's latency (at its own input),
the proxy protocol, and the accuracy of this very file on the study's validation set,
run in the file's own runtime (LiteRT for ``.tflite``, Keras for ``.keras``, ONNX
Runtime for ``.onnx`` when installed). The card is embedded in a ``.tflite`` (flatbuffer
metadata ``archsearch``) and written beside every file as ``<file>.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

TFLITE_METADATA = "archsearch"
"""Name of the flatbuffer metadata entry holding the card in an exported ``.tflite``."""


@dataclass(frozen=True)
class ExportCard:
    """The facts that travel with an exported model file."""

    study: str
    trial: int
    format: str
    input_size: int
    """The file's input (height = width): the resolution its weights were trained at."""
    deployment_input_size: int
    """The searched network's input, at which ``searched_latency_ms`` was measured."""
    searched_latency_ms: float | None
    stored_accuracy: float | None
    """The proxy accuracy the study recorded for the trial."""
    file_accuracy: float | None
    """Accuracy of this file on the validation set, measured by running the file."""
    validation_images: int | None
    measured_with: str
    protocol: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for the terminal."""
        accuracy = (f"proxy accuracy {self.file_accuracy:.4f} on {self.validation_images} validation images, "
                    f"measured on this file ({self.measured_with}); the study recorded {self.stored_accuracy:.4f}"
                    if self.file_accuracy is not None and self.stored_accuracy is not None
                    else f"accuracy not re-measured ({self.measured_with})")
        return f"input {self.input_size}x{self.input_size}; {accuracy}. {self.note}"


def deployment_note(input_size: int, deployment_size: int, latency_ms: float | None) -> str:
    """The loud part: what the file is and is not."""
    latency = f", timed at {latency_ms:.2f} ms" if latency_ms is not None else ""
    if input_size == deployment_size:
        return f"Weights trained at the searched input size ({deployment_size}x{deployment_size}{latency})."
    return (f"Proxy weights: trained at {input_size}x{input_size}, so the file takes {input_size}x{input_size} "
            f"inputs; the searched network is the same architecture at {deployment_size}x{deployment_size}"
            f"{latency}, and needs training at that size before deployment.")


def file_accuracy(path: Path, fmt: str, x: np.ndarray, y: np.ndarray) -> tuple[float | None, str]:
    """Top-1 accuracy of the model file at ``path`` on ``(x, y)``, run in the file's own runtime.

    ``x`` is already what the model takes (its preprocessing applied, NHWC float32).
    Returns (accuracy, how it was measured); accuracy is None when no runtime is installed.
    """
    if fmt == "tflite":
        return _tflite_accuracy(path, x, y), "LiteRT interpreter, this .tflite"
    if fmt == "keras":
        from archsearch.compile import load_keras_model

        model = load_keras_model(path)
        predictions = model.predict(x, batch_size=128, verbose=0)
        return float(np.mean(predictions.argmax(axis=1) == y)), "Keras, this .keras loaded back"
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            return None, "onnxruntime is not installed: pip install onnxruntime to check the file"
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outputs = np.concatenate([session.run(None, {name: x[i:i + 128]})[0] for i in range(0, len(x), 128)])
        return float(np.mean(outputs.argmax(axis=1) == y)), "ONNX Runtime, this .onnx"
    return None, f"no runtime for {fmt}"


def _tflite_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    from ai_edge_litert.interpreter import Interpreter

    from archsearch.quiet import filtered_stderr

    with filtered_stderr():  # LiteRT announces its XNNPACK delegate on stderr: the normal case
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for image, label in zip(x, y):  # batch 1: the file's own input shape
        interpreter.set_tensor(source["index"], image[None].astype(source["dtype"]))
        interpreter.invoke()
        correct += int(interpreter.get_tensor(target["index"])[0].argmax() == label)
    return correct / len(y)


def embed_in_tflite(flatbuffer: bytes, card: ExportCard | dict[str, Any]) -> bytes:
    """``flatbuffer`` with the card (an ``ExportCard`` or any JSON-able mapping, such as a family member's)
    added as metadata ``archsearch`` (the interpreter ignores it)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    buffer = schema.BufferT()
    data = card.as_dict() if isinstance(card, ExportCard) else card
    buffer.data = np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != TFLITE_METADATA.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_tflite_card(path: str | Path) -> dict[str, Any] | None:
    """The card embedded in a ``.tflite`` exported by archsearch (None if it has none)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    for entry in model.metadata or []:
        if entry.name in (TFLITE_METADATA, TFLITE_METADATA.encode()):
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return None


def card_path(path: Path) -> Path:
    """Where the card of ``path`` is written: ``<file>.json`` beside it."""
    return path.with_name(path.name + ".json")


__all__ = ["ExportCard", "TFLITE_METADATA", "card_path", "deployment_note", "embed_in_tflite", "file_accuracy",
           "read_tflite_card"]
