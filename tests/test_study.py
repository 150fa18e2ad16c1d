"""The study end to end on a tiny space and tiny data: trials, references, failures, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from conftest import TINY_SPACE, write_tiny_inputs
from optuna.trial import TrialState

from archsearch.study import StudyConfig, StudyError, pareto_front, run_study, search_trials, study_report
from archsearch.study.fidelity import RungEntry, SuccessiveHalving


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with a tiny dataset (.npz of real digits) and the tiny space."""
    return write_tiny_inputs(tmp_path_factory.mktemp("study"))


@pytest.fixture()
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(workdir / "cache"))
    return workdir


def config(workdir: Path, name: str, **changes) -> StudyConfig:
    settings = {"name": name, "space": str(workdir / "tiny_space.yaml"), "dataset": str(workdir / "tiny.npz"),
                "budget_ms": 1.0, "trials": 4, "epochs": 2, "references": False, "seed": 1}
    return StudyConfig(**{**settings, **changes})


@pytest.mark.slow
def test_small_study_end_to_end_with_a_reference(in_workdir):
    study = run_study(config(in_workdir, "e2e", references=True, trials=3))
    trials = study.get_trials()
    references = [t for t in trials if "reference" in t.user_attrs]
    assert [t.user_attrs["reference"] for t in references] == ["mobilenet_v3_small"]
    assert references[0].state == TrialState.COMPLETE and references[0].user_attrs["trained"] is True
    assert len(search_trials(study)) == 3
    for trial in trials:
        attrs = trial.user_attrs
        assert {"spec", "spec_hash", "params", "macs", "screen_latency_ms", "latency_source", "status"} <= set(attrs)
        if trial.state == TrialState.COMPLETE and attrs.get("trained"):
            assert {"measured_latency_ms", "latency_protocol", "accuracy", "history", "train_seconds"} <= set(attrs)
            assert trial.values[1] == attrs["measured_latency_ms"]
            assert len(attrs["history"]) == 2
            constraint = trial.constraints["latency_budget"]
            assert constraint == pytest.approx(attrs["measured_latency_ms"] - 1.0)
    # The front holds feasible trials only.
    for point in pareto_front(study):
        assert point.latency_ms <= 1.0 and point.feasible
    report = study_report(study, "sqlite:///studies/e2e.db")
    assert report["budget_ms"] == 1.0 and "mobilenet_v3_small" in report["dominated_references"]
    # Plain Optuna reads everything back, without archsearch.
    loaded = optuna.load_study(study_name="e2e", storage="sqlite:///studies/e2e.db")
    assert loaded.trials[0].user_attrs["reference"] == "mobilenet_v3_small"


def test_budget_binds_and_rejected_candidates_are_not_trained(in_workdir):
    study = run_study(config(in_workdir, "tight", budget_ms=0.001, trials=2))
    for trial in search_trials(study):
        # A fresh part table: measuring the whole network is cheaper than predicting it.
        assert trial.user_attrs["status"] == "rejected_measured" and trial.user_attrs["latency_source"] == "measured"
        assert trial.user_attrs["trained"] is False and "history" not in trial.user_attrs
        assert trial.constraints["latency_budget"] > 0
    assert pareto_front(study) == []


def test_prediction_screens_candidates_once_their_parts_are_known(in_workdir):
    """With the part table warm, a candidate clearly over budget is rejected on its prediction alone."""
    from archsearch.latency import LatencyPredictor
    from archsearch.space import SearchSpace

    one_point = {**TINY_SPACE, "name": "onepoint", "choices": {"input.size": [64]}}
    (in_workdir / "one_point.yaml").write_text(yaml.safe_dump(one_point))
    settings = config(in_workdir, "warm", space=str(in_workdir / "one_point.yaml"), budget_ms=0.001, trials=1)
    spec = SearchSpace.model_validate(one_point).with_overrides(classes=10).sample(np.random.default_rng(0))
    LatencyPredictor(storage=settings.storage_url()).predict(spec)  # fills the study's part table
    study = run_study(settings)
    (trial,) = search_trials(study)
    assert trial.user_attrs["latency_source"] == "predicted" and trial.user_attrs["status"] == "rejected_predicted"
    assert trial.user_attrs["predicted_latency_ms"] == trial.values[1] and "measured_latency_ms" not in trial.user_attrs


def test_a_trial_that_raises_is_stored_as_failed_and_the_study_goes_on(in_workdir):
    # A learning rate this large makes the loss non-finite: the trial fails with that reason.
    study = run_study(config(in_workdir, "diverge", budget_ms=1000.0, trials=2, learning_rate=1e12))
    failed = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert len(failed) == 2 and len(search_trials(study)) == 2
    assert all("loss became" in t.user_attrs["failure_reason"] for t in failed)


def test_resume_refuses_changed_settings(in_workdir):
    run_study(config(in_workdir, "fixed", budget_ms=0.001, trials=1))
    with pytest.raises(StudyError, match="was started with budget_ms=0.001"):
        run_study(config(in_workdir, "fixed", budget_ms=5.0, trials=1))
    study = run_study(config(in_workdir, "fixed", budget_ms=0.001, trials=2))  # more trials: allowed
    assert len(search_trials(study)) == 2


@pytest.mark.slow
def test_killed_run_resumes_without_losing_or_repeating_work(in_workdir):
    env = {**os.environ, "COLUMNS": "200"}
    settings = config(in_workdir, "killed", trials=4, budget_ms=50.0)
    config_path = in_workdir / "killed.yaml"
    config_path.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    command = [sys.executable, "-m", "archsearch", "run", "--config", str(config_path)]
    process = subprocess.Popen(command, cwd=in_workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = "sqlite:///studies/killed.db"
    deadline = time.monotonic() + 300
    completed_before: dict[int, tuple] = {}
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(1)
        try:
            trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
        except Exception:
            continue
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if done and any(t.state == TrialState.RUNNING for t in trials):
            completed_before = {t.number: (tuple(t.values), t.user_attrs["spec_hash"]) for t in done}
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert completed_before, "the run finished before it could be killed mid-trial"

    result = subprocess.run(command, cwd=in_workdir, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="killed", storage=storage)
    trials = {t.number: t for t in study.get_trials()}
    for number, (values, digest) in completed_before.items():  # nothing completed is lost or changed
        assert tuple(trials[number].values) == values and trials[number].user_attrs["spec_hash"] == digest
    interrupted = [t for t in trials.values() if t.user_attrs.get("failure_reason", "").startswith("interrupted")]
    assert len(interrupted) == 1 and interrupted[0].state == TrialState.FAIL
    assert len(search_trials(study)) == 4  # the study reached its trial count
    trained = [t.user_attrs["spec_hash"] for t in trials.values()
               if t.state == TrialState.COMPLETE and t.user_attrs.get("trained") and "duplicate_of" not in t.user_attrs]
    assert len(trained) == len(set(trained))  # no network trained twice
    assert "Pareto front of killed" in result.stdout and "database: sqlite:///studies/killed.db" in result.stdout
    assert "dashboard: dashboards/killed.html" in result.stdout and (in_workdir / "dashboards" / "killed.html").is_file()


def test_successive_halving_rungs_and_decisions():
    halving = SuccessiveHalving(epochs=6, eta=3)
    assert halving.rungs == (2,)
    population = [RungEntry(0.9, 5.0), RungEntry(0.8, 4.0), RungEntry(0.5, 1.0)]
    assert halving.should_continue(1, 0.1, 9.0, population)  # not a rung
    assert not halving.should_continue(2, 0.7, 6.0, population)  # dominated by two of three
    assert halving.should_continue(2, 0.95, 6.0, population)  # best accuracy: never dominated
    assert halving.should_continue(2, 0.6, 0.5, population)  # fastest: never dominated
    assert halving.should_continue(2, 0.1, 9.0, population[:1])  # too few to judge


@pytest.mark.parametrize(("args", "message"), [
    (["--budget-ms", "0"], "--budget-ms: every budget must be a positive, finite number of milliseconds"),
    (["--budget-ms", "-5"], "--budget-ms: every budget must be a positive, finite number of milliseconds"),
    (["--budget-ms", "fast"], "--budget-ms must be a number of milliseconds"),
    (["--budget-ms", "nan"], "must be a positive, finite number"),
    (["--budget-ms", "inf"], "must be a positive, finite number"),
    (["--budget-ms", "2,5,x"], "comma-separated ladder"),
    (["--budget-ms", "2,5,2"], "repeats a rung"),
    (["--budget-ms", "2,,5"], "--budget-ms must be a number"),
    (["--budget-ms", "20", "--space", "resnet"], "unknown search space"),
    (["--budget-ms", "20", "--dataset", "/no/such/data.npz"], "no such file"),
    (["--budget-ms", "20", "--dataset", "/no/such/folder"], "unknown dataset"),
    (["--budget-ms", "20", "--storage", "postgresql://nobody@127.0.0.1:9/none"], "cannot open storage"),
    (["--budget-ms", "20", "--storage", "sqlite:////proc/archsearch/x.db"], "cannot create /proc/archsearch"),
    (["--budget-ms", "20", "--storage", "notaurl"], "storage"),
    (["--budget-ms", "20", "--config", "/no/such/study.yaml"], "no such file"),
    (["--budget-ms", "20", "--train-size", "32"], "searches input.size, but training at a fixed resolution"),
    (["--budget-ms", "20", "--train-size", "32", "--train-scale", "0.5"], "not both"),
    (["--budget-ms", "20", "--train-scale", "0"], "train_scale"),
])
def test_run_bad_input(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "archsearch", "run", *args], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "ARCHSEARCH_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "studies").exists() or not list((tmp_path / "studies").iterdir()) or "storage" in message


def test_studies_and_show_study_cli(in_workdir):
    run_study(config(in_workdir, "listed", budget_ms=0.001, trials=1))
    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run([sys.executable, "-m", "archsearch", "studies", "--json"], cwd=in_workdir, env=env,
                            capture_output=True, text=True)
    assert "listed" in {row["study"] for row in json.loads(listed.stdout)}
    shown = subprocess.run([sys.executable, "-m", "archsearch", "show-study", "listed", "--json"], cwd=in_workdir,
                           env=env, capture_output=True, text=True)
    report = json.loads(shown.stdout)
    assert report["study"] == "listed" and report["by_status"] == {"rejected_measured": 1}
    missing = subprocess.run([sys.executable, "-m", "archsearch", "show-study", "nope"], cwd=in_workdir, env=env,
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no study named 'nope'" in missing.stderr


def test_hypervolume_of_a_front():
    from archsearch.study import Point, hypervolume

    def point(accuracy, latency, feasible=True):
        return Point(0, accuracy, latency, None, None, None, None, feasible)

    budget = 10.0
    assert hypervolume([], budget) == 0.0
    assert hypervolume([point(0.5, 2.0)], budget) == pytest.approx(0.5 * 8.0)
    # A dominated point adds nothing; an infeasible one neither.
    front = [point(0.5, 2.0), point(0.8, 6.0), point(0.4, 7.0), point(0.99, 12.0, feasible=False)]
    assert hypervolume(front, budget) == pytest.approx(0.5 * 8.0 + 0.3 * 4.0)


def test_candidates_train_at_a_resolution_that_follows_their_input(trained_study):
    """The proxy sees resolution: each trained trial's training size is 0.25 x its input size, and the
    study records the protocol that its accuracies follow."""
    from archsearch.study import TrialRecord
    from archsearch.study.protocol import AccuracyProtocol
    from archsearch.train import scaled_train_size

    study = optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)
    trained = [TrialRecord.of(t) for t in study.trials if t.user_attrs.get("trained")]
    assert trained and {r.input_size for r in trained} >= {224}  # the reference, at least
    for record in trained:
        assert record.train_size == scaled_train_size(record.input_size, 0.25)
    protocol = AccuracyProtocol.of_study(study)
    assert protocol.validation_images == 100 and protocol.resolution.startswith("0.25 x input size")
    assert study_report(study, trained_study.storage)["accuracy_protocol"]["summary"].startswith("proxy accuracy")
    one_epoch = AccuracyProtocol(**{**protocol.__dict__, "epochs": 1}).summary()
    assert ", after 1 epoch at 0.25 x input size" in one_epoch and f"after {protocol.epochs} epochs" in protocol.summary()
