"""Trained weights in Optuna's artifact store: where they go, which are kept, and what still exports.

The real study (``trained_study``, shared with the export tests) shows where a run puts
its weights; small studies made here by hand (no training) pin the pruning rules, the
recorded location and the old database table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from conftest import TINY_SPACE
from optuna.trial import TrialState

from archsearch.space import SearchSpace
from archsearch.study.artifacts import ARTIFACTS_ATTR, ArtifactLocation, ArtifactLocationError, default_location
from archsearch.study.record import CONFIG_ATTR, PROTOCOL_ATTR, TrialRecord, TrialRecorder
from archsearch.study.trial import BUDGET_CONSTRAINT, record_spec
from archsearch.study.weights import KEEP_ATTR, DroppedWeightsError, TrialWeightStore

BUDGET = 10.0


def _table_rows(url: str) -> int:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        if "archsearch_trial_weights" not in inspect(engine).get_table_names():
            return 0
        with engine.connect() as connection:
            return connection.execute(text("select count(*) from archsearch_trial_weights")).scalar_one()
    finally:
        engine.dispose()


def _load(trained_study) -> optuna.Study:
    return optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)


# ----- the real run -------------------------------------------------------------------------------------------------

def test_a_run_keeps_weights_in_the_artifact_folder_not_the_database(trained_study):
    study = _load(trained_study)
    folder = trained_study.root / "studies" / "shop.artifacts"
    assert study.user_attrs[ARTIFACTS_ATTR] == "shop.artifacts"  # beside the file, moving with it
    assert _table_rows(trained_study.storage) == 0
    store = TrialWeightStore.of_study(study, trained_study.storage)
    dropped = store.dropped()
    stored = {r.number: r.weights_artifact for r in map(TrialRecord.of, study.get_trials()) if r.weights_artifact}
    assert stored, "no trial stored weights"
    kept = {number: artifact for number, artifact in stored.items() if number not in dropped}
    assert {p.name for p in folder.iterdir()} == set(kept.values())  # exactly the kept ones, nothing else
    assert all(path.stat().st_size > 1000 for path in folder.iterdir())
    storage = optuna.storages.RDBStorage(trained_study.storage)
    for trial in study.get_trials():
        if trial.number in stored:  # Optuna's own link to the artifact, which optuna-dashboard reads
            metas = optuna.artifacts.get_all_artifact_meta(trial, storage=storage)
            assert [m.artifact_id for m in metas] == [stored[trial.number]]
    # Kept: the feasible front; dropped: each dominated by the trial it names.
    front = {t.number: t.values for t in study.best_trials}
    assert set(kept) <= set(front)
    for number, by in dropped.items():
        values, better = study.trials[number].values, front[by]
        assert better[0] >= values[0] and better[1] <= values[1] and tuple(better) != tuple(values)


def test_a_keras_export_from_the_artifact_store_loads_and_predicts(trained_study, tmp_path):
    from archsearch.compile import load_keras_model
    from archsearch.data import load_dataset
    from archsearch.export import export_trial, trial_spec
    from archsearch.study import pareto_front
    from archsearch.train import model_inputs

    study = _load(trained_study)
    member = next(p for p in pareto_front(study) if p.reference is None)
    trial = study.trials[member.number]
    written = export_trial(trained_study.name, member.number, "keras", trained_study.storage, tmp_path / "m.keras")
    model = load_keras_model(written.path)
    data = load_dataset(str(trained_study.root / "tiny.npz")).at_size(trial.user_attrs["train_size"])
    inputs = model_inputs(trial_spec(trial, trained_study.name), data.x_val)
    accuracy = float(np.mean(model.predict(inputs, verbose=0).argmax(axis=1) == data.y_val))
    assert abs(accuracy - trial.user_attrs["accuracy"]) <= 1 / len(data.y_val) + 1e-9
    assert written.card.file_accuracy == pytest.approx(accuracy, abs=1 / len(data.y_val) + 1e-9)


def test_a_study_with_weights_in_the_database_still_exports(trained_study, tmp_path):
    """A study written before the artifact store: no artifact, a row in ``archsearch_trial_weights``."""
    from archsearch.compile import load_keras_model
    from archsearch.db import Store, TrialWeights
    from archsearch.export import export_trial
    from archsearch.study import pareto_front

    source = _load(trained_study)
    member = next(p for p in pareto_front(source) if p.reference is None)
    original = source.trials[member.number]
    weights = TrialWeightStore.of_study(source, trained_study.storage).load(member.number,
                                                                            original.user_attrs["spec_hash"])
    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = optuna.create_study(study_name="old", storage=url, directions=["maximize", "minimize"])
    for key in (CONFIG_ATTR, PROTOCOL_ATTR):
        study.set_user_attr(key, source.user_attrs[key])
    attrs = {k: v for k, v in original.user_attrs.items() if k != "weights_artifact"}
    study.add_trial(optuna.trial.create_trial(values=original.values, user_attrs=attrs,
                                              constraints=original.constraints))
    with Store.at(url).session() as session:  # as archsearch kept weights before the artifact store
        session.add(TrialWeights(study_name="old", trial_number=0, spec_hash=attrs["spec_hash"], weights=weights))

    old = export_trial("old", 0, "keras", url, tmp_path / "old.keras")
    new = export_trial(trained_study.name, member.number, "keras", trained_study.storage, tmp_path / "new.keras")
    images = np.random.default_rng(0).uniform(0, 255, (4, *load_keras_model(new.path).input_shape[1:]))
    np.testing.assert_allclose(load_keras_model(old.path).predict(images, verbose=0),
                               load_keras_model(new.path).predict(images, verbose=0), atol=1e-6)
    assert not (tmp_path / "old.artifacts").exists()  # reading a study writes nothing


# ----- the rules, on studies made by hand ---------------------------------------------------------------------------

def _spec(seed: int):
    return SearchSpace.model_validate(TINY_SPACE).with_overrides(classes=10).sample(np.random.default_rng(seed))


def _trial(study: optuna.Study, store: TrialWeightStore, accuracy: float, latency_ms: float) -> int:
    """A trained, feasible trial as the evaluator records it, with stand-in weights."""
    trial = study.ask()
    recorder = TrialRecorder.running(trial)
    digest = record_spec(recorder, _spec(trial.number))
    store.keep(trial, digest, f"weights of trial {trial.number}".encode() * 100)
    recorder.set(weights_stored=True, trained=True, accuracy=accuracy, status="complete")
    trial.set_constraint(BUDGET_CONSTRAINT, latency_ms - BUDGET)
    study.tell(trial, (accuracy, latency_ms))
    return trial.number


@pytest.fixture
def made(tmp_path, monkeypatch):
    """A SQLite study in ``studies/made.db`` and a function opening its runner's weight store."""
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///studies/made.db"
    (tmp_path / "studies").mkdir()
    study = optuna.create_study(study_name="made", storage=url, directions=["maximize", "minimize"])

    def runner(location: str | None = None, keep_weights: str | None = None) -> TrialWeightStore:
        return TrialWeightStore.for_run(study, url, location, keep_weights)  # type: ignore[arg-type]

    return study, url, runner


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_dominated_trial_loses_its_weights_and_says_so_on_export(made, tmp_path):
    from archsearch.export import ExportError, export_trial

    study, url, runner = made
    store = runner()
    folder = tmp_path / "studies" / "made.artifacts"
    a = _trial(study, store, 0.80, 5.0)
    b = _trial(study, store, 0.70, 6.0)  # slower and less accurate than a: never on the front again
    c = _trial(study, store, 0.90, 8.0)
    twin = _trial(study, store, 0.90, 8.0)  # the same point as c: neither dominates, both stay
    artifact = {r.number: r.weights_artifact for r in map(TrialRecord.of, study.get_trials())}
    assert _files(folder) == {artifact[n] for n in (a, b, c, twin)}
    assert _table_rows(url) == 0

    assert store.prune() == {b: a}
    assert _files(folder) == {artifact[n] for n in (a, c, twin)}
    assert store.prune() == {}  # once
    d = _trial(study, store, 0.85, 4.0)  # now a is dominated too
    assert store.prune() == {a: d}
    artifact[d] = TrialRecord.of(study.trials[d]).weights_artifact
    assert _files(folder) == {artifact[n] for n in (c, twin, d)}
    assert store.dropped() == {a: d, b: a}

    assert store.load(c, TrialRecord.of(study.trials[c]).spec_hash) == f"weights of trial {c}".encode() * 100
    with pytest.raises(DroppedWeightsError):
        store.load(b, TrialRecord.of(study.trials[b]).spec_hash)
    message = f"trial {b}'s weights were not kept (dominated by trial {a}); rerun with --keep-weights all"
    with pytest.raises(ExportError) as refused:
        export_trial("made", b, "tflite", url, tmp_path / "b.tflite")
    assert str(refused.value) == message
    result = subprocess.run([sys.executable, "-m", "archsearch", "export", "made", "--trial", str(b), "--format",
                             "keras", "--storage", url], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2 and result.stderr == f"error: {message}\n", result.stderr
    assert not (tmp_path / "exports").exists() and not (tmp_path / "b.tflite").exists()


def test_keep_all_keeps_every_trained_trial_and_is_the_study_policy(made, tmp_path):
    study, url, runner = made
    folder = tmp_path / "studies" / "made.artifacts"
    store = runner(keep_weights="all")
    numbers = [_trial(study, store, 0.80, 5.0), _trial(study, store, 0.70, 6.0), _trial(study, store, 0.60, 7.0)]
    assert store.prune() == {} and len(_files(folder)) == 3
    worker = runner()  # joins without a choice of its own: follows the study's policy
    assert study.user_attrs[KEEP_ATTR] == "all" and worker.prune() == {} and len(_files(folder)) == 3
    later = runner(keep_weights="front")  # a later run may change it
    assert later.prune() == {numbers[1]: numbers[0], numbers[2]: numbers[0]}
    assert len(_files(folder)) == 1 and store.keep_weights() == "front"


def test_the_location_is_recorded_and_a_different_one_is_refused(made, tmp_path):
    study, url, runner = made
    tmp_path = tmp_path.resolve()
    assert runner().location.folder == tmp_path / "studies" / "made.artifacts"
    assert study.user_attrs[ARTIFACTS_ATTR] == "made.artifacts"
    assert runner("studies/made.artifacts").location.folder == tmp_path / "studies" / "made.artifacts"  # the same
    with pytest.raises(ArtifactLocationError) as refused:
        runner(str(tmp_path / "elsewhere"))
    text = str(refused.value)
    assert "\n" not in text and str(tmp_path / "studies" / "made.artifacts") in text and "elsewhere" in text


def test_a_given_folder_is_recorded_absolute(tmp_path, monkeypatch):
    tmp_path = tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    study = optuna.create_study(study_name="x", storage=url, directions=["maximize", "minimize"])
    store = TrialWeightStore.for_run(study, url, "shared/weights")
    assert study.user_attrs[ARTIFACTS_ATTR] == str(tmp_path / "shared" / "weights")
    number = _trial(study, store, 0.5, 1.0)
    assert len(_files(tmp_path / "shared" / "weights")) == 1
    monkeypatch.chdir("/")  # an export from anywhere finds them
    reader = TrialWeightStore.of_study(optuna.load_study(study_name="x", storage=url), url)
    assert reader.load(number, TrialRecord.of(study.trials[number]).spec_hash).startswith(b"weights of trial 0")


def test_a_server_study_defaults_to_an_absolute_folder_that_every_worker_reads(postgres_url, tmp_path, monkeypatch):
    first, second = tmp_path.resolve() / "first", tmp_path.resolve() / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    assert default_location(postgres_url, "fleet") == str(first / "studies" / "fleet.artifacts")
    study = optuna.create_study(study_name="fleet", storage=postgres_url, directions=["maximize", "minimize"])
    store = TrialWeightStore.for_run(study, postgres_url)
    number = _trial(study, store, 0.5, 1.0)
    assert study.user_attrs[ARTIFACTS_ATTR] == str(first / "studies" / "fleet.artifacts")
    monkeypatch.chdir(second)  # another worker, elsewhere
    again = optuna.load_study(study_name="fleet", storage=postgres_url)
    assert TrialWeightStore.for_run(again, postgres_url).location.folder == first / "studies" / "fleet.artifacts"
    assert TrialWeightStore.of_study(again, postgres_url).load(number, TrialRecord.of(again.trials[0]).spec_hash)
    with pytest.raises(ArtifactLocationError):
        TrialWeightStore.for_run(again, postgres_url, str(second / "mine"))
    assert not (second / "studies").exists() and _table_rows(postgres_url) == 0


def test_s3_needs_boto3_and_keeps_its_prefix(monkeypatch, tmp_path):
    location = ArtifactLocation.parse("s3://bucket/runs/fleet/")
    assert (location.bucket, location.prefix, location.recorded) == ("bucket", "runs/fleet", "s3://bucket/runs/fleet")
    monkeypatch.setitem(sys.modules, "boto3", None)  # as when it is not installed
    with pytest.raises(ArtifactLocationError, match="pip install boto3"):
        location.open()
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="s", storage=url, directions=["maximize", "minimize"])
    with pytest.raises(ArtifactLocationError, match="pip install boto3"):  # at the start of a run, not per trial
        TrialWeightStore.for_run(study, url, "s3://bucket/runs")
    assert ARTIFACTS_ATTR not in study.user_attrs  # nothing recorded: the run may start again, boto3 installed
    with pytest.raises(ArtifactLocationError, match="give a folder or s3://"):
        ArtifactLocation.parse("gs://bucket/x")


def test_keep_weights_and_artifacts_may_change_on_resume_and_on_the_command_line(monkeypatch, capsys):
    from archsearch.cli import main
    from archsearch.study import StudyConfig

    base = StudyConfig(budget_ms=5)
    assert StudyConfig(budget_ms=5, keep_weights="all", artifacts="/x").identity() == base.identity()
    monkeypatch.setattr(sys, "argv", ["archsearch", "run", "--budget-ms", "5", "--keep-weights", "most"])
    with pytest.raises(SystemExit) as exited:
        main()
    error = capsys.readouterr().err
    assert exited.value.code == 2 and "keep_weights" in error and error.count("\n") == 1


def test_a_trial_record_reads_its_artifact_link():
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    TrialRecorder.running(trial).set(weights_artifact="abc")
    study.tell(trial, (0.5, 1.0))
    (frozen,) = study.get_trials(states=(TrialState.COMPLETE,))
    assert TrialRecord.of(frozen).weights_artifact == "abc" and json.dumps(frozen.user_attrs)
