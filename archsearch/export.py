"""Take a study's result home: a trial as a spec (YAML), a ``.keras`` model, a ``.tflite`` or an ``.onnx`` file.

Model exports carry the weights the study trained (stored beside the study when the
trial finished), not a retrained copy: retraining would cost minutes and, on a
multi-threaded CPU, need not reproduce the accuracy the front shows. Those are proxy
weights, trained at the candidate's training resolution, so the network is compiled at
that resolution (where it works as the study measured it), and each file gets a card
(``export_card``): what it is, what the searched network at its deployment input is,
and the accuracy of the file itself on the study's validation set. A YAML export is the
searched spec at its deployment input (a spec carries no weights).

Only trials that are complete and within the budget export: failed, stopped-early,
rejected and over-budget trials raise ``ExportError`` naming why.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.errors import ArchsearchError, UnknownNameError
from archsearch.export_card import ExportCard, card_path, deployment_note, embed_in_tflite, file_accuracy
from archsearch.output_files import safe_filename, written_atomically
from archsearch.spec import NetworkSpec, parse_spec, spec_hash, spec_to_yaml
from archsearch.study import load_existing_study, pareto_front
from archsearch.study.protocol import AccuracyProtocol
from archsearch.study.record import TrialRecord, recorded_config, records
from archsearch.study.weights import DroppedWeightsError, MissingWeightsError, TrialWeightStore

FORMATS: dict[str, str] = {"yaml": ".yaml", "keras": ".keras", "tflite": ".tflite", "onnx": ".onnx"}
"""Export format -> file suffix."""


class ExportError(ArchsearchError):
    """A trial that cannot be exported (absent, failed, infeasible, no weights) or an unwritable path."""


@dataclass(frozen=True)
class Exported:
    """One written file, with its card for model formats (what it is, its accuracy measured on it)."""

    trial: int
    format: str
    path: Path
    card: ExportCard | None = None


def exportable_trial(study: optuna.Study, number: int) -> TrialRecord:
    """The trial ``number`` of ``study`` if it can be exported, else ``ExportError`` saying why."""
    by_number = {r.number: r for r in records(study)}
    if number not in by_number:
        span = f"trials 0-{len(by_number) - 1}" if by_number else "no trials"
        raise ExportError(f"study {study.study_name!r} has no trial {number} ({span})")
    record = by_number[number]
    if record.state == TrialState.FAIL:
        raise ExportError(f"trial {number} failed ({record.reason or 'no reason recorded'}); "
                          "nothing to export")
    if record.state == TrialState.PRUNED:
        raise ExportError(f"trial {number} was stopped early and never fully trained; nothing to export")
    if not record.is_complete:
        raise ExportError(f"trial {number} is {record.state.name.lower()}; only complete trials export")
    if record.spec is None:
        raise ExportError(f"trial {number} was not made by archsearch (no spec recorded)")
    over = max(record.constraints.values(), default=0.0)
    if over > 0:
        latency = record.values[1] if record.values else float("nan")
        raise ExportError(f"trial {number} is infeasible: {latency:.2f} ms is over the {latency - over:g} ms budget"
                          f" ({record.status or 'over budget'}); only trials within the budget export")
    return record


def trial_spec(record: TrialRecord | FrozenTrial, study_name: str) -> NetworkSpec:
    """The trial's spec as searched (same hash as recorded), named after the study and trial."""
    if isinstance(record, FrozenTrial):
        record = TrialRecord.of(record)
    data = dict(record.spec or {})
    data["name"] = f"{study_name}-trial{record.number}"
    spec = parse_spec(data, source=f"trial {record.number}")
    if spec_hash(spec) != record.spec_hash:
        raise ExportError(f"trial {record.number}: the stored spec does not match its recorded hash")
    return spec


def _trained_weights(study: optuna.Study, record: TrialRecord, url: str) -> bytes:
    # A duplicate reused an earlier trial's training: its weights are that trial's.
    owner = record.duplicate_of if record.duplicate_of is not None else record.number
    repeats = f"trial {record.number} repeats trial {owner}: " if owner != record.number else ""
    try:
        return TrialWeightStore.of_study(study, url).load(owner, record.spec_hash or "")
    except DroppedWeightsError as error:  # removed when the trial left the front: the message says what to do
        raise ExportError(f"{repeats}{error}") from None
    except MissingWeightsError as error:
        raise ExportError(f"{repeats}{error}; export it as yaml, or run the spec again") from None


def trained_model(spec: NetworkSpec, weights: bytes) -> Any:
    """``spec`` compiled at its own input size, with trained ``weights`` loaded (no weight depends on the size)."""
    from archsearch.compile import compile_model, load_weights_from_bytes

    model = compile_model(spec)
    load_weights_from_bytes(model, weights)
    return model


def _write_keras(model: Any, path: Path) -> None:
    model.save(path)


def _write_tflite(model: Any, path: Path) -> None:
    from archsearch.latency.backends import convert_to_tflite

    path.write_bytes(convert_to_tflite(model))


def _write_onnx(model: Any, path: Path) -> None:
    import numpy as np

    try:
        import tf2onnx  # noqa: F401  (Keras' ONNX export for TensorFlow runs on it)
    except ImportError:
        raise ExportError("ONNX export needs tf2onnx: pip install tf2onnx") from None
    model(np.zeros((1, *model.input_shape[1:]), dtype="float32"))  # Keras exports only called models
    # tf2onnx logs recovered optimizer failures as tracebacks; they are not errors.
    quiet = logging.getLogger("tf2onnx")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras' numpy-2 patch of tf2onnx probes np.object
            model.export(str(path), format="onnx", verbose=False)
    finally:
        quiet.setLevel(level)


MODEL_WRITERS: dict[str, Callable[[Any, Path], None]] = {
    "keras": _write_keras, "tflite": _write_tflite, "onnx": _write_onnx}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UnknownNameError("export format", fmt, list(FORMATS))
    return fmt


def default_path(study_name: str, number: int, fmt: str, folder: str | Path = "exports") -> Path:
    return Path(folder) / safe_filename(study_name) / f"trial{number}{FORMATS[fmt]}"


class _Validation:
    """The study's validation set, loaded once per export call and resized per training resolution."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._dataset: Any = None
        self.problem: str | None = None

    def dataset(self) -> Any:
        from archsearch.data import load_dataset

        if self._dataset is None and self.problem is None:
            try:
                self._dataset = load_dataset(str(self.config.get("dataset", "digits")),
                                             seed=int(self.config.get("seed", 0)))
            except ArchsearchError as error:
                self.problem = f"the study's dataset is not available here: {error}"
        return self._dataset

    def trained_resolution(self, record: TrialRecord) -> int:
        """The input size the trial's weights were trained at (recorded; older studies: their fixed size)."""
        if record.train_size is not None:
            return record.train_size
        if self.config.get("train_size"):
            return int(self.config["train_size"])
        dataset = self.dataset()
        if dataset is None:
            raise ExportError(f"trial {record.number}: its training resolution was not recorded and {self.problem}")
        return dataset.image_size


def _export_one(study: optuna.Study, url: str, trial: TrialRecord, fmt: str, path: Path,
                validation: _Validation) -> Exported:
    spec = trial_spec(trial, study.study_name)
    if fmt == "keras" and path.suffix != ".keras":
        raise ExportError(f"{path}: a Keras model file must end in .keras")
    if fmt == "yaml":  # the searched architecture at its deployment input: a spec has no weights
        with written_atomically(path, ExportError) as temporary:
            temporary.write_text(spec_to_yaml(spec), encoding="utf-8")
        return Exported(trial.number, fmt, path)
    from archsearch.train import model_inputs, proxy_spec

    weights = _trained_weights(study, trial, url)
    size = validation.trained_resolution(trial)
    file_spec = proxy_spec(spec, size, spec.classes, spec.batchnorm.momentum).model_copy(update={"name": spec.name})
    model = trained_model(file_spec, weights)
    protocol = AccuracyProtocol.of_study(study)
    dataset = validation.dataset()
    card = ExportCard(
        study=study.study_name, trial=trial.number, format=fmt, input_size=size,
        deployment_input_size=spec.input.size, searched_latency_ms=trial.values[1] if trial.values else None,
        stored_accuracy=trial.accuracy if trial.accuracy is not None else (trial.values or [None])[0],
        file_accuracy=None, validation_images=len(dataset.y_val) if dataset is not None else None,
        measured_with=validation.problem or "", protocol=protocol.summary() if protocol else "proxy accuracy",
        note=deployment_note(size, spec.input.size, trial.values[1] if trial.values else None))
    with written_atomically(path, ExportError) as temporary:
        MODEL_WRITERS[fmt](model, temporary)
        if dataset is not None:
            data = dataset.at_size(size)
            accuracy, how = file_accuracy(temporary, fmt, model_inputs(file_spec, data.x_val), data.y_val)
            card = replace(card, file_accuracy=accuracy, measured_with=how)
        if fmt == "tflite":  # the card inside the file; the interpreter ignores metadata
            temporary.write_bytes(embed_in_tflite(temporary.read_bytes(), card))
        with written_atomically(card_path(path), ExportError) as card_file:
            card_file.write_text(json.dumps(card.as_dict(), indent=2) + "\n", encoding="utf-8")
    return Exported(trial.number, fmt, path, card)


def export_trial(study_name: str, number: int, fmt: str, storage: str | None = None,
                 output: str | Path | None = None) -> Exported:
    """Write trial ``number`` of ``study_name`` as ``fmt`` to ``output`` (default ``exports/STUDY/trialN.EXT``)."""
    check_format(fmt)
    study, url = load_existing_study(study_name, storage)
    trial = exportable_trial(study, number)
    path = Path(output) if output is not None else default_path(study_name, number, fmt)
    return _export_one(study, url, trial, fmt, path, _Validation(recorded_config(study)))


def export_front(study_name: str, fmt: str, storage: str | None = None,
                 output: str | Path | None = None) -> list[Exported]:
    """Write every member of the study's Pareto front into the folder ``output`` (default ``exports/STUDY``)."""
    check_format(fmt)
    study, url = load_existing_study(study_name, storage)
    members = pareto_front(study)
    if not members:
        raise ExportError(f"study {study_name!r} has no feasible trial yet: its front is empty")
    folder = Path(output) if output is not None else Path("exports") / safe_filename(study_name)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder}: --front writes one file per member, so -o must be a folder")
    validation = _Validation(recorded_config(study))
    return [_export_one(study, url, exportable_trial(study, point.number), fmt,
                        folder / f"trial{point.number}{FORMATS[fmt]}", validation) for point in members]


__all__ = ["Exported", "ExportError", "FORMATS", "check_format", "export_front", "export_trial",
           "exportable_trial", "trained_model", "trial_spec"]
