"""Many workers on one study in a real PostgreSQL server: each piece of work once, faults survived.

Workers are real ``archsearch`` processes; the heartbeat is shortened (2 s, stale after
6 s) so a killed worker's trial is failed and retried within the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from conftest import write_tiny_inputs
from optuna.trial import TrialState

from archsearch.study import TrialRecord

STUDY = "fleet"
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _environment(root: Path) -> dict[str, str]:
    return {**os.environ, "ARCHSEARCH_CACHE_DIR": str(root / "cache"), "ARCHSEARCH_HEARTBEAT_SECONDS": "2",
            "PYTHONUNBUFFERED": "1"}


def _start(root: Path, args: list[str], log: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "archsearch", *args], cwd=root, env=_environment(root),
                            stdout=open(root / log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115


def _run_args(root: Path, url: str, trials: int) -> list[str]:
    return ["run", "--study", STUDY, "--space", str(root / "tiny_space.yaml"), "--dataset", str(root / "tiny.npz"),
            "--budget-ms", "1000", "--trials", str(trials), "--epochs", "1", "--storage", url]


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=STUDY, storage=url).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


def _wait(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _finish(workers: list[subprocess.Popen], root: Path, seconds: float = 900) -> None:
    deadline = time.monotonic() + seconds
    for worker in workers:
        try:
            worker.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.kill()
            logs = "\n".join(p.read_text()[-2000:] for p in sorted(root.glob("worker*.log")))
            pytest.fail(f"workers did not finish:\n{logs}")


@pytest.mark.slow
def test_three_workers_share_one_study_and_a_killed_workers_trial_is_retried(postgres_url, tmp_path):
    root = write_tiny_inputs(tmp_path)
    trials = 5
    first = _start(root, _run_args(root, postgres_url, trials), "worker-a.log")
    _wait(lambda: bool(_trials(postgres_url)), 120, "the study to exist")
    workers = {"a": first,
               "b": _start(root, _run_args(root, postgres_url, trials), "worker-b.log"),
               "c": _start(root, ["worker", "--study", STUDY, "--storage", postgres_url], "worker-c.log")}

    # Kill the worker of a search trial in the middle of its training, then start it again.
    def training_search_trial() -> TrialRecord | None:
        for trial in _trials(postgres_url):
            record = TrialRecord.of(trial)
            if trial.state == TrialState.RUNNING and not record.is_reference and record.train_size and record.worker:
                return record
        return None

    _wait(lambda: training_search_trial() is not None, 600, "a search trial in training")
    victim = training_search_trial()
    assert victim is not None and victim.worker is not None
    pid = int(victim.worker.rsplit(":", 1)[1])
    name = next(key for key, process in workers.items() if process.pid == pid)
    os.kill(pid, signal.SIGKILL)
    workers[name].wait()
    workers[name] = _start(root, ["worker", "--study", STUDY, "--storage", postgres_url], f"worker-{name}2.log")
    _finish(list(workers.values()), root)
    for process in workers.values():
        assert process.returncode == 0, (root / "worker-a.log").read_text()[-3000:]

    everything = [TrialRecord.of(t) for t in _trials(postgres_url)]
    assert not [r.number for r in everything if r.state in (TrialState.RUNNING, TrialState.WAITING)]
    # The study's count, not each worker's: exactly `trials` search trials count.
    assert sum(r.counts_as_search_trial for r in everything) == trials
    # Each reference trained once, whichever worker got there first.
    trained_references = Counter(r.reference for r in everything if r.is_reference and r.trained and
                                 not r.is_duplicate and r.state == TrialState.COMPLETE)
    assert trained_references == {"mobilenet_v3_small": 1}
    # No spec trained twice (a trial that trained recorded its history).
    trained = Counter(r.spec_hash for r in everything if r.history and not r.is_duplicate and
                      r.state != TrialState.FAIL)
    assert max(trained.values()) == 1, trained
    # The killed trial failed as stale, does not count, and was retried once, as the same network.
    killed = next(r for r in everything if r.number == victim.number)
    assert killed.state == TrialState.FAIL and killed.died_with_worker and not killed.counts_as_search_trial
    retries = [r for r in everything if r.retry_history == (victim.number,)]
    assert len(retries) == 1 and retries[0].state.is_finished()
    assert retries[0].spec_hash == victim.spec_hash or retries[0].params == victim.params


@pytest.mark.slow
def test_a_worker_that_loses_the_database_waits_says_so_and_goes_on(postgres_server, tmp_path):
    root = write_tiny_inputs(tmp_path)
    url = postgres_server.url
    worker = _start(root, [*_run_args(root, url, 3), "--no-references"], "worker-a.log")
    _wait(lambda: any(t.state.is_finished() for t in _trials(url)), 300, "a finished trial")
    done_before = [t.number for t in _trials(url) if t.state.is_finished()]
    postgres_server.stop()
    _wait(lambda: "unreachable" in (root / "worker-a.log").read_text(), 120, "the worker to say it lost the database")
    time.sleep(3)
    postgres_server.start()
    _finish([worker], root, 600)
    log = (root / "worker-a.log").read_text()
    assert worker.returncode == 0, log[-3000:]
    assert "retrying in" in log
    everything = [TrialRecord.of(t) for t in _trials(url)]
    assert all(any(r.number == n and r.state.is_finished() for r in everything) for n in done_before)
    assert sum(r.counts_as_search_trial for r in everything) == 3
    assert not [r for r in everything if r.state == TrialState.RUNNING]


@pytest.mark.slow
def test_a_study_with_a_device_waits_for_its_agent_which_serves_both_workers(postgres_url, tmp_path):
    root = write_tiny_inputs(tmp_path)
    study = "on-board"
    args = ["run", "--study", study, "--space", str(root / "tiny_space.yaml"), "--dataset", str(root / "tiny.npz"),
            "--budget-ms", "1000", "--trials", "3", "--epochs", "1", "--no-references", "--device", "board-7",
            "--storage", postgres_url]
    first = _start(root, args, "worker-a.log")
    _wait(lambda: "no agent" in (root / "worker-a.log").read_text() and "archsearch agent --device board-7"
          in (root / "worker-a.log").read_text(), 180, "the worker to say it waits for an agent")
    second = _start(root, ["worker", "--study", study, "--storage", postgres_url], "worker-b.log")
    time.sleep(8)  # both workers wait: nothing is measured on their machine
    assert not optuna.load_study(study_name=study, storage=postgres_url).get_trials(
        states=(TrialState.COMPLETE,))
    agent = _start(root, ["agent", "--device", "board-7", "--storage", postgres_url, "--idle-exit", "60"], "agent.log")
    _finish([first, second], root)
    agent.terminate()
    agent.wait(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, (root / "worker-b.log").read_text()[-3000:]
    everything = [TrialRecord.of(t) for t in optuna.load_study(study_name=study, storage=postgres_url).trials]
    measured = [r for r in everything if r.measured_latency_ms is not None and not r.is_duplicate]
    assert measured and all(r.latency_protocol["device_name"] == "board-7" for r in measured)
    workers = {r.worker for r in everything}
    assert len(workers) == 2, "both workers ran trials"
    assert "board-7" in (root / "agent.log").read_text()
    shown = subprocess.run([sys.executable, "-m", "archsearch", "show-study", study, "--storage", postgres_url],
                           capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert "latency from device 'board-7'; trials by worker:" in shown.stdout, shown.stdout + shown.stderr


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask() stands in for optimize() here, on purpose
def test_a_trial_whose_worker_dies_is_retried_once_and_a_second_death_is_its_failure(tmp_path):
    """Optuna's heartbeat and archsearch's RetryOnce, without processes: heartbeats that stop."""
    import warnings

    from archsearch.study.optuna_storage import RetryOnce

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'beats.db'}", heartbeat_interval=1,
                                             grace_period=1, heartbeat_stale_trial_callback=RetryOnce())
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])

    def start_and_die(trial: optuna.Trial) -> None:
        trial.suggest_categorical("width", [0.5, 1.0])
        trial.set_user_attr("history", [{"epoch": 1}])  # progress of the dead attempt: not carried over
        storage.record_heartbeat(trial._trial_id)

    first = study.ask()
    first.set_user_attr("reference", "mobilenet_v3_small")
    start_and_die(first)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs == {"reference": "mobilenet_v3_small"}
    assert waiting[0].params == study.trials[0].params
    dead = TrialRecord.of(study.trials[0])
    assert dead.died_with_worker and not dead.counts_as_search_trial and "retried once" in dead.reason

    retry = study.ask()  # Optuna hands out the waiting retry first
    assert retry.number == waiting[0].number
    start_and_die(retry)
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert not study.get_trials(states=(TrialState.WAITING,)), "a second death is not retried"
    again = TrialRecord.of(study.trials[retry.number])
    assert again.retry_history == (first.number,) and again.label == "failed"
    assert again.reason == f"killed its worker twice (trials {first.number}, {retry.number}): not retried again"


def test_successive_halving_counts_each_network_once():
    from archsearch.study.fidelity import rung_population

    def record(number: int, **facts) -> TrialRecord:  # type: ignore[no-untyped-def]
        state = facts.pop("state", TrialState.COMPLETE)
        return TrialRecord(number=number, state=state, values=None, constraints={}, screen_latency_ms=5.0,
                           history=[{"epoch": 2, "val_accuracy": 0.5 + number / 100}], **facts)

    trials = [record(0), record(1, duplicate_of=0), record(2, state=TrialState.FAIL), record(3), record(4)]
    assert [entry.accuracy for entry in rung_population(trials, 2, exclude_number=4)] == [0.5, 0.53]


def test_a_ladder_halves_each_rung_apart():
    """A candidate in an empty rung is not stopped by a faster rung's networks that dominate it."""
    from archsearch.study.fidelity import SuccessiveHalving, rung_population
    from archsearch.study.ladder import rung_holding

    def record(number: int, latency_ms: float, accuracy: float) -> TrialRecord:
        return TrialRecord(number=number, state=TrialState.COMPLETE, values=None, constraints={},
                           screen_latency_ms=latency_ms, history=[{"epoch": 2, "val_accuracy": accuracy}])

    ladder = (1.9, 2.8, 4.2, 6.3)
    trials = [record(0, 4.0, 0.9), record(1, 3.9, 0.85), record(2, 4.1, 0.88), record(3, 1.5, 0.6)]
    halving, candidate = SuccessiveHalving(epochs=6), (0.7, 5.2)
    assert not halving.should_continue(2, *candidate, rung_population(trials, 2, exclude_number=9))
    rung = rung_holding(ladder, candidate[1])
    assert rung is not None and (rung.floor_ms, rung.budget_ms) == (4.2, 6.3)
    alone = rung_population(trials, 2, exclude_number=9, band=(rung.floor_ms, rung.budget_ms))
    assert alone == [] and halving.should_continue(2, *candidate, alone)
    third = rung_holding(ladder, 4.0)
    assert third is not None and len(rung_population(trials, 2, 9, (third.floor_ms, third.budget_ms))) == 3
    assert rung_holding(ladder, 7.0) is None and rung_holding(ladder, 1.9) == rung_holding(ladder, 0.1)
