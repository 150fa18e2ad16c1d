"""Exports of a real study's trials: YAML, .keras, .tflite and .onnx round trips, and refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from archsearch.cost import network_cost
from archsearch.spec import load_spec, spec_hash


def _trials(trained_study):
    return optuna.load_study(study_name=trained_study.name, storage=trained_study.storage).get_trials()


@pytest.fixture(scope="module")
def exportable(trained_study):
    """A feasible, fully trained search trial (not a duplicate) of the shared study, its weights kept."""
    from archsearch.study.weights import TrialWeightStore

    study = optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)
    dropped = TrialWeightStore.of_study(study, trained_study.storage).dropped()  # off the front: not kept
    for trial in _trials(trained_study):
        if (trial.state == TrialState.COMPLETE and trial.user_attrs.get("weights_stored")
                and trial.number not in dropped
                and max(trial.constraints.values()) <= 0 and "reference" not in trial.user_attrs):
            return trial
    pytest.fail("the shared study has no feasible trained search trial")


@pytest.fixture(scope="module")
def trained_model(trained_study, exportable):
    """The trial's network with its stored weights, as the exports should carry it."""
    from archsearch.export import trained_model, trial_spec
    from archsearch.study.weights import TrialWeightStore

    study = optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)
    weights = TrialWeightStore.of_study(study, trained_study.storage).load(exportable.number,
                                                                          exportable.user_attrs["spec_hash"])
    return trained_model(_at_trained_size(trial_spec(exportable, trained_study.name), exportable), weights), weights


def _at_trained_size(spec, trial):
    from archsearch.train import proxy_spec

    return proxy_spec(spec, trial.user_attrs["train_size"], spec.classes, spec.batchnorm.momentum)


def _images(size: int, count: int = 4) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype("float32")


def test_stored_weights_are_the_trained_ones(trained_study, exportable, trained_model):
    """Loaded into the training-resolution network, the stored weights give the recorded accuracy."""
    from archsearch.compile import compile_model, load_weights_from_bytes
    from archsearch.data import load_dataset
    from archsearch.export import trial_spec
    from archsearch.train import TrainConfig, model_inputs, training_spec

    data = load_dataset(str(trained_study.root / "tiny.npz")).at_size(exportable.user_attrs["train_size"])
    spec = training_spec(trial_spec(exportable, trained_study.name), data, TrainConfig())
    model = compile_model(spec)
    load_weights_from_bytes(model, trained_model[1])
    predicted = model.predict(model_inputs(spec, data.x_val), verbose=0).argmax(axis=1)
    assert float(np.mean(predicted == data.y_val)) == pytest.approx(exportable.user_attrs["accuracy"], abs=1e-6)


def test_yaml_export_compiles_back_to_the_same_network(trained_study, exportable, tmp_path):
    from archsearch.export import export_trial

    written = export_trial(trained_study.name, exportable.number, "yaml", trained_study.storage, tmp_path / "t.yaml")
    spec = load_spec(written.path)
    assert spec_hash(spec) == exportable.user_attrs["spec_hash"]
    assert network_cost(spec).params == exportable.user_attrs["params"]
    from archsearch.compile import compile_model

    assert compile_model(spec).count_params() == exportable.user_attrs["params"]


def test_keras_export_loads_with_its_custom_layers_and_trained_weights(trained_study, exportable, trained_model,
                                                                       tmp_path):
    from archsearch.compile import load_keras_model
    from archsearch.export import export_trial

    written = export_trial(trained_study.name, exportable.number, "keras", trained_study.storage,
                           tmp_path / "t.keras")
    loaded = load_keras_model(written.path)
    size = exportable.user_attrs["train_size"]  # the resolution its weights were trained at
    assert loaded.input_shape == (None, size, size, 3)
    assert loaded.count_params() == exportable.user_attrs["params"]
    images = _images(size)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), trained_model[0].predict(images, verbose=0),
                               atol=1e-6)


def test_tflite_export_runs_in_litert_at_its_trained_input_shape(trained_study, exportable, trained_model, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from archsearch.export import export_trial

    written = export_trial(trained_study.name, exportable.number, "tflite", trained_study.storage,
                           tmp_path / "t.tflite")
    interpreter = Interpreter(model_path=str(written.path))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    size = exportable.user_attrs["train_size"]
    assert tuple(source["shape"]) == (1, size, size, 3)
    image = _images(size, 1)
    interpreter.set_tensor(source["index"], image)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(sink["index"]), trained_model[0].predict(image, verbose=0),
                               atol=1e-4)


def test_exported_tflite_scores_the_stored_accuracy_on_the_validation_set(trained_study, exportable, tmp_path):
    """What a user ships is what the study measured: the .tflite, run in LiteRT on the validation
    images, gets the trial's stored proxy accuracy back (within one image), and says so in its card."""
    from ai_edge_litert.interpreter import Interpreter

    from archsearch.data import load_dataset
    from archsearch.export import export_trial
    from archsearch.export_card import card_path, read_tflite_card
    from archsearch.train import model_inputs

    written = export_trial(trained_study.name, exportable.number, "tflite", trained_study.storage,
                           tmp_path / "shipped.tflite")
    size = exportable.user_attrs["train_size"]
    data = load_dataset(str(trained_study.root / "tiny.npz")).at_size(size)
    spec = load_spec(_yaml_of(trained_study, exportable, tmp_path))
    images = model_inputs(spec, data.x_val)
    interpreter = Interpreter(model_path=str(written.path))
    interpreter.allocate_tensors()
    (source,), (sink,) = interpreter.get_input_details(), interpreter.get_output_details()
    correct = 0
    for image, label in zip(images, data.y_val):
        interpreter.set_tensor(source["index"], image[None].astype("float32"))
        interpreter.invoke()
        correct += int(interpreter.get_tensor(sink["index"]).argmax() == label)
    accuracy = correct / len(data.y_val)
    assert abs(accuracy - exportable.user_attrs["accuracy"]) <= 1 / len(data.y_val) + 1e-9
    embedded = read_tflite_card(written.path)
    beside = json.loads(card_path(written.path).read_text())
    assert embedded == beside == written.card.as_dict()
    assert embedded["input_size"] == size and embedded["deployment_input_size"] == spec.input.size
    assert embedded["file_accuracy"] == pytest.approx(accuracy, abs=1 / len(data.y_val) + 1e-9)
    assert embedded["validation_images"] == len(data.y_val) and "proxy accuracy" in embedded["protocol"]
    assert "Proxy weights" in embedded["note"] or size == spec.input.size


def _yaml_of(trained_study, trial, folder):
    from archsearch.export import export_trial

    return export_trial(trained_study.name, trial.number, "yaml", trained_study.storage, folder / "spec.yaml").path


def test_onnx_export_runs_in_onnxruntime(trained_study, exportable, trained_model, tmp_path):
    import onnxruntime

    from archsearch.export import export_trial

    written = export_trial(trained_study.name, exportable.number, "onnx", trained_study.storage, tmp_path / "t.onnx")
    session = onnxruntime.InferenceSession(str(written.path), providers=["CPUExecutionProvider"])
    size = exportable.user_attrs["train_size"]
    images = _images(size, 2)
    (output,) = session.run(None, {session.get_inputs()[0].name: images})
    np.testing.assert_allclose(output, trained_model[0].predict(images, verbose=0), atol=1e-4)


def test_front_export_writes_every_member(trained_study, tmp_path):
    from archsearch.export import export_front
    from archsearch.study import pareto_front

    study = optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)
    written = export_front(trained_study.name, "yaml", trained_study.storage, tmp_path / "front")
    assert sorted(w.trial for w in written) == sorted(p.number for p in pareto_front(study))
    for item in written:
        assert item.path.parent == tmp_path / "front"
        assert spec_hash(load_spec(item.path)) == study.trials[item.trial].user_attrs["spec_hash"]


def _cli(trained_study, *args, cwd):
    return subprocess.run([sys.executable, "-m", "archsearch", "export", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200"})


def test_export_cli_writes_the_default_path(trained_study, exportable, tmp_path):
    result = _cli(trained_study, trained_study.name, "--trial", str(exportable.number), "--storage",
                  trained_study.storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "exports" / trained_study.name / f"trial{exportable.number}.yaml"
    assert path.is_file() and str(path.relative_to(tmp_path)) in result.stdout


def test_export_refuses_bad_requests_in_one_line(trained_study, tmp_path):
    study = optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)
    infeasible = next(t for t in study.trials if t.state == TrialState.COMPLETE and max(t.constraints.values()) > 0)
    failed = study.ask()  # a trial that failed, as a crashed worker leaves it (it stays in the shared study)
    study.tell(failed, state=TrialState.FAIL)
    feasible = next(t for t in study.trials if t.state == TrialState.COMPLETE and max(t.constraints.values()) <= 0)
    name, storage = trained_study.name, trained_study.storage
    cases = [
        ([name, "--trial", "999", "--storage", storage], "has no trial 999"),
        (["nosuchstudy", "--trial", "0", "--storage", storage], "no study named 'nosuchstudy'"),
        ([name, "--trial", str(failed.number), "--storage", storage], f"trial {failed.number} failed"),
        ([name, "--trial", str(infeasible.number), "--storage", storage], f"trial {infeasible.number} is infeasible"),
        ([name, "--trial", str(feasible.number), "--format", "pdf", "--storage", storage], "unknown export format 'pdf'"),
        ([name, "--trial", str(feasible.number), "--storage", storage, "-o", "/proc/archsearch/x.yaml"],
         "cannot write /proc/archsearch/x.yaml"),
        ([name, "--trial", str(feasible.number), "--format", "keras", "--storage", storage, "-o", "m.h5"],
         "must end in .keras"),
        ([name, "--storage", storage], "give either --trial N or --front"),
        ([name, "--trial", "0", "--front", "--storage", storage], "give either --trial N or --front"),
    ]
    for args, message in cases:
        result = _cli(trained_study, *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, (args, result.stderr)
    assert not (tmp_path / "m.h5").exists() and not list(tmp_path.glob("exports/**/*.*"))
