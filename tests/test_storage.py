"""Studies on a live PostgreSQL server, and read by optuna-dashboard with no archsearch code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from archsearch.study import StudyConfig, run_study, search_trials


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_optuna_dashboard_serves_an_archsearch_study(trained_study):
    """`optuna-dashboard sqlite:///studies/NAME.db` (as the README says) shows the study and its attributes."""
    port = _free_port()
    executable = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen([str(executable), trained_study.storage, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
            except OSError:
                time.sleep(0.5)
        summary = next(s for s in studies if s["study_name"] == trained_study.name)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0",
                                    timeout=30) as response:
            detail = json.load(response)
        trials = detail["trials"]
        assert trials and detail["directions"] == ["maximize", "minimize"]
        keys = {attr["key"] for trial in trials for attr in trial["user_attrs"]}
        assert {"spec", "spec_hash", "params", "macs", "status", "reference"} <= keys
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_study_on_postgresql_runs_resumes_lists_and_exports(postgres_url, tmp_path, monkeypatch):
    """The same study on PostgreSQL: trials, our tables (latency, weights) and resume all live on the server."""
    from conftest import write_tiny_inputs

    root = write_tiny_inputs(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(root / "cache"))
    settings = StudyConfig(name="served", space=str(root / "tiny_space.yaml"), dataset=str(root / "tiny.npz"),
                           budget_ms=50.0, trials=2, epochs=1, references=False, seed=5, storage=postgres_url)
    run_study(settings)
    study = run_study(settings.model_copy(update={"trials": 3}))  # resumes: one more trial
    assert len(search_trials(study)) == 3
    assert not list(Path("studies").glob("*.db"))  # nothing went to a SQLite file (weights: studies/served.artifacts)

    env = {**os.environ, "COLUMNS": "200"}
    listed = subprocess.run([sys.executable, "-m", "archsearch", "studies", "--storage", postgres_url, "--json"],
                            capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and {"study": "served"} .items() <= json.loads(listed.stdout)[0].items()
    trained = next(t for t in study.best_trials if t.user_attrs.get("trained"))  # off the front: weights not kept
    exported = subprocess.run([sys.executable, "-m", "archsearch", "export", "served", "--trial", str(trained.number),
                               "--format", "keras", "--storage", postgres_url, "-o", "served.keras"],
                              capture_output=True, text=True, env=env)
    assert exported.returncode == 0, exported.stderr
    from archsearch.compile import load_keras_model

    assert load_keras_model(root / "served.keras").count_params() == trained.user_attrs["params"]
    # Plain Optuna on the server sees the same study.
    assert optuna.load_study(study_name="served", storage=postgres_url).trials[0].user_attrs["spec_hash"]


def test_a_second_process_on_a_sqlite_study_is_refused(tmp_path):
    """One process per SQLite file (no heartbeat there): the second is told to use PostgreSQL; nothing is lost."""
    import subprocess
    import sys

    import optuna

    url = f"sqlite:///{tmp_path / 'one.db'}"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from archsearch.study.optuna_storage import SqliteLock\n"
        f"SqliteLock({url!r}).acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        optuna.create_study(study_name="kept", storage=url, directions=["maximize", "minimize"])
        result = subprocess.run([sys.executable, "-m", "archsearch", "run", "--budget-ms", "20", "--storage", url],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert f"in use by another archsearch process (pid {holder.pid})" in result.stderr
        assert "PostgreSQL" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["kept"]
    # The lock goes with the process: once it is gone (even killed), the file is free again.
    from archsearch.study.optuna_storage import SqliteLock

    SqliteLock(url).acquire().release()
