"""The measurement agent: a device serves latency requests that workers leave in a shared database.

Against a real PostgreSQL server (the ``postgres_url`` fixture), with real agent
processes (``python -m archsearch agent``) where a measurement is involved.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import TINY_SPACE
from sqlalchemy import select

from archsearch.db import NetworkLatency, Store
from archsearch.db.models import MeasurementAgent, MeasurementRequest
from archsearch.latency import LatencyError, LatencyResult
from archsearch.latency import agent as agent_module
from archsearch.latency.agent import AgentFailedError, AgentMeasure, AgentTimeoutError, serve
from archsearch.latency.agent_queue import PENDING, RUNNING, claim_next, reclaim_orphans
from archsearch.latency.hostload import busy_fraction, cpu_times
from archsearch.spec import NetworkSpec, parse_spec, spec_hash, spec_to_dict

PASSWORD = "agent-s3cret"


def tiny_spec(name: str, size: int = 64, stem: int = 8) -> NetworkSpec:
    """A MobileNetV3-like network small enough to convert in seconds."""
    data = copy.deepcopy(TINY_SPACE["base"])
    data.update(name=name, classes=10)
    data["input"]["size"] = size
    data["stem"]["channels"] = stem
    return parse_spec(data)


def measure_failing_on(name: str, error: Exception, result: LatencyResult):  # type: ignore[no-untyped-def]
    """A stand-in for the agent's ``measure_latency``: raises ``error`` for the spec named ``name``, else ``result``."""

    def measure(spec, backend, threads, storage=None):  # type: ignore[no-untyped-def]
        if spec.name == name:
            raise error
        return result

    return measure


def device_name() -> str:
    return f"board-{uuid.uuid4().hex[:8]}"


def requests_of(url: str, device: str) -> list[MeasurementRequest]:
    with Store.at(url).session() as session:
        return list(session.scalars(select(MeasurementRequest).where(MeasurementRequest.device == device)
                                    .order_by(MeasurementRequest.id)))


def agents_of(url: str, device: str) -> list[MeasurementAgent]:
    with Store.at(url).session() as session:
        return list(session.scalars(select(MeasurementAgent).where(MeasurementAgent.device == device)))


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def agent_process(device: str, storage: str, cache: Path, *args: str) -> subprocess.Popen[str]:
    """``archsearch agent`` as a process of its own, its storage URL (with a password) in the environment."""
    env = {**os.environ, "ARCHSEARCH_STORAGE": storage, "ARCHSEARCH_CACHE_DIR": str(cache),
           "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "archsearch", "agent", "--device", device, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_an_agent_serves_workers_that_were_waiting_for_it(postgres_url, tmp_path):
    """Two workers ask before any agent runs: they say so and wait; an agent process then answers both."""
    url = postgres_url.replace("archsearch@", f"archsearch:{PASSWORD}@")  # trust auth: any password is accepted
    device = device_name()
    specs = [tiny_spec("tiny-a", size=64), tiny_spec("tiny-b", size=48, stem=16)]
    messages: list[str] = []
    results: dict[str, LatencyResult] = {}
    errors: list[BaseException] = []

    def ask(spec: NetworkSpec) -> None:
        try:
            results[spec.name] = AgentMeasure(url, device, on_wait=messages.append, poll_seconds=0.2)(spec)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=ask, args=(spec,)) for spec in specs]
    for worker in workers:
        worker.start()
    wait_for(lambda: len(messages) >= 2, 30, "both workers to say that no agent runs")
    assert {r.state for r in requests_of(url, device)} == {PENDING} and len(requests_of(url, device)) == 2
    message = messages[0]
    assert message.startswith(f"waiting for device '{device}': no measurement agent is running for it")
    assert "nothing is measured here" in message
    assert f"archsearch agent --device {device} --storage" in message
    assert "***" in message and PASSWORD not in message
    assert not results, "a worker measured without an agent"

    process = agent_process(device, url, tmp_path / "cache", "--max-requests", "2")
    try:
        for worker in workers:
            worker.join(timeout=240)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert not errors, errors
    assert process.returncode == 0, stderr
    assert PASSWORD not in stdout + stderr + "".join(messages)

    for spec in specs:
        result = results[spec.name]
        assert result.spec_hash == spec_hash(spec) and not result.cached
        assert result.backend == "litert" and result.threads == 1 and result.median_ms > 0
        assert result.input_shape == f"1x{spec.input.size}x{spec.input.size}x3"
        protocol = result.protocol
        assert protocol["device_name"] == device
        assert protocol["measured_by"].endswith(f":{process.pid}")
        assert "host_busy_fraction" in protocol  # a number on Linux
        assert isinstance(protocol["host_busy_fraction"], float) and 0 <= protocol["host_busy_fraction"] <= 1
        assert protocol["device"]["fingerprint"] and protocol["policy"] and protocol["backend_version"]
        assert f"{spec.name}: median {result.median_ms:.3f} ms" in stdout
    assert any(line.startswith(f"device '{device}': agent ") for line in messages)  # it told them the agent came
    assert stdout.splitlines()[0].startswith(f"agent for device '{device}' (litert")
    assert "stopped: 2 measured, 0 failed" in stdout

    done = requests_of(url, device)
    assert [r.state for r in done] == ["done", "done"]
    assert all(r.claimed_by.endswith(f":{process.pid}") and r.finished_at and r.claimed_at for r in done)
    assert agents_of(url, device) == []  # it unregistered on leaving
    with Store.at(url).session() as session:  # the figure is cached in the same database, with the device's name
        row = session.scalars(select(NetworkLatency).where(NetworkLatency.spec_hash == spec_hash(specs[0]))).first()
        assert json.loads(row.protocol)["device_name"] == device

    # Asked again with no agent running: the device's earlier answer, at once, and no new request.
    again = AgentMeasure(url, device, on_wait=messages.append, timeout_seconds=5)(specs[0])
    assert again.cached and again.median_ms == results["tiny-a"].median_ms
    assert len(requests_of(url, device)) == 2


def test_with_no_agent_a_worker_keeps_saying_so_and_gives_up_only_at_its_timeout(postgres_url):
    device = device_name()
    with Store.at(postgres_url).session() as session:  # an agent that died an hour ago
        ago = datetime.now(UTC) - timedelta(hours=1)
        session.add(MeasurementAgent(device=device, name="ghost:1", host="ghost", pid=1, backend="litert",
                                     backend_version="x", threads=1, fingerprint="f", heartbeat_seconds=5.0,
                                     started_at=ago, last_seen=ago))
    messages: list[str] = []
    measure = AgentMeasure(postgres_url, device, on_wait=messages.append, poll_seconds=0.05, timeout_seconds=1.0,
                           message_every_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(AgentTimeoutError, match=f"no answer from device '{device}' within 1 s"):
        measure(tiny_spec("tiny-a"))
    assert time.monotonic() - started >= 1.0
    assert len(messages) >= 3, messages
    assert "last seen 60 min ago: ghost:1" in messages[0]
    assert messages[-1].startswith(f"still waiting for device '{device}' after ")
    assert all(f"archsearch agent --device {device} --storage {postgres_url}" in m for m in messages)
    assert requests_of(postgres_url, device) == []  # the unclaimed request was taken back


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_two_agents_never_take_the_same_request(database, request, tmp_path):
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else f"sqlite:///{tmp_path / 'q.db'}"
    device, store = device_name(), Store.at(url)
    spec = tiny_spec("tiny-a")
    with store.session() as session:
        session.add_all([MeasurementRequest(device=device, spec_hash=spec_hash(spec), spec_json="{}", backend="litert",
                                            threads=1, state=PENDING, requested_by="test:0") for _ in range(60)])
    claimed: dict[str, list[int]] = {f"agent{i}:{i}": [] for i in range(6)}
    start = threading.Barrier(len(claimed))

    def take(name: str) -> None:
        start.wait()
        while (row := claim_next(store, name, device, "litert", 1)) is not None:
            claimed[name].append(row.id)

    threads = [threading.Thread(target=take, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    taken = [request_id for ids in claimed.values() for request_id in ids]
    assert len(taken) == 60 and len(set(taken)) == 60
    holder = {request_id: name for name, ids in claimed.items() for request_id in ids}
    rows = requests_of(url, device)
    assert all(r.state == RUNNING and r.claimed_by == holder[r.id] for r in rows)


def test_two_agent_processes_split_a_queue_and_fail_bad_requests_with_their_reason(postgres_url, tmp_path):
    """Bad specs fail without measuring anything, so two real agents go through a queue in seconds."""
    device = device_name()
    processes = [agent_process(device, postgres_url, tmp_path / "cache", "--idle-exit", "3") for _ in range(2)]
    try:
        wait_for(lambda: len(agents_of(postgres_url, device)) == 2, 60, "both agents to register")
        with Store.at(postgres_url).session() as session:
            session.add_all([MeasurementRequest(device=device, spec_hash="0" * 64, spec_json=json.dumps({"name": f"bad{i}"}),
                                                backend="litert", threads=1, state=PENDING, requested_by="test:0")
                             for i in range(30)])
        outputs = [process.communicate(timeout=90) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in processes] == [0, 0], outputs
    rows = requests_of(postgres_url, device)
    assert [r.state for r in rows] == ["failed"] * 30
    assert all(r.error.startswith(f"request {r.id}: ") and "stages: Field required" in r.error for r in rows)  # the spec's problem
    by_agent = {p.pid: [r.id for r in rows if r.claimed_by.endswith(f":{p.pid}")] for p in processes}
    assert sum(len(ids) for ids in by_agent.values()) == 30
    for process, (stdout, _) in zip(processes, outputs):
        failed_lines = [line for line in stdout.splitlines() if ": failed (" in line]
        assert len(failed_lines) == len(by_agent[process.pid])  # each request reported by the agent that took it
        assert f"stopped: 0 measured, {len(by_agent[process.pid])} failed" in stdout
    assert agents_of(postgres_url, device) == []


def test_a_request_the_agent_cannot_measure_fails_with_its_reason_and_the_agent_goes_on(postgres_url, monkeypatch):
    device = device_name()
    fake = LatencyResult(1.5, 1.4, 1.6, 50, "litert", "v", 1, "1x64x64x3", "", False, {"device": {}})
    broken = LatencyError("broken: ConverterError: 'tfl.conv_2d' op is neither a custom op nor a flex op")
    monkeypatch.setattr(agent_module, "measure_latency", measure_failing_on("broken", broken, fake))
    events: list[str] = []
    agent = threading.Thread(target=serve, args=(postgres_url, device),
                             kwargs={"max_requests": 2, "on_event": events.append, "poll_seconds": 0.05})
    agent.start()
    measure_on_device = AgentMeasure(postgres_url, device, poll_seconds=0.05, timeout_seconds=60)
    with pytest.raises(AgentFailedError, match=f"broken: device '{device}' could not measure it: broken: "
                                               f"ConverterError: 'tfl.conv_2d' op is neither"):
        measure_on_device(tiny_spec("broken"))
    result = measure_on_device(tiny_spec("fine", size=32))
    agent.join(timeout=30)
    assert result.median_ms == 1.5 and result.protocol["device_name"] == device
    assert any(line.startswith("broken: failed (broken: ConverterError") for line in events)
    assert events[-1].endswith("stopped: 1 measured, 1 failed")
    assert [r.state for r in requests_of(postgres_url, device)] == ["failed", "done"]


def test_an_agent_stopped_mid_measurement_hands_its_request_back(postgres_url, monkeypatch):
    device = device_name()

    def measure(spec, backend, threads, storage=None):
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which the command turns into it) while timing

    monkeypatch.setattr(agent_module, "measure_latency", measure)
    spec = tiny_spec("tiny-a")
    with Store.at(postgres_url).session() as session:
        session.add(MeasurementRequest(device=device, spec_hash=spec_hash(spec), spec_json=json.dumps(spec_to_dict(spec)),
                                       backend="litert", threads=1, state=PENDING, requested_by="test:0"))
    events: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        serve(postgres_url, device, on_event=events.append, poll_seconds=0.05)
    assert [(r.state, r.claimed_by) for r in requests_of(postgres_url, device)] == [(PENDING, None)]
    assert agents_of(postgres_url, device) == []
    assert events[-1].endswith("stopped: 0 measured, 0 failed")


def test_requests_left_running_by_a_dead_agent_are_pending_again(postgres_url):
    device, store = device_name(), Store.at(postgres_url)
    now = datetime.now(UTC)
    with store.session() as session:
        for name, seen in (("dead:1", now - timedelta(seconds=60)), ("alive:2", now)):
            session.add(MeasurementAgent(device=device, name=name, host=name.split(":")[0], pid=int(name[-1]),
                                         backend="litert", backend_version="x", threads=1, fingerprint="f",
                                         heartbeat_seconds=5.0, started_at=seen, last_seen=seen))
            session.add(MeasurementRequest(device=device, spec_hash="0" * 64, spec_json="{}", backend="litert",
                                           threads=1, state=RUNNING, claimed_by=name, requested_by="test:0"))
    assert reclaim_orphans(store, device) == 1
    rows = {r.claimed_by or "": r.state for r in requests_of(postgres_url, device)}
    assert rows == {"": PENDING, "alive:2": RUNNING}


def test_the_agent_command_reports_an_unreachable_database_in_one_line(tmp_path):
    url = f"postgresql://archsearch:{PASSWORD}@127.0.0.1:1/studies"
    (tmp_path / "storage").write_text(url + "\n")
    env = {**os.environ, "ARCHSEARCH_STORAGE": ""}
    done = subprocess.run([sys.executable, "-m", "archsearch", "agent", "--device", "pi", "--storage",
                           f"@{tmp_path / 'storage'}"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot open storage 'postgresql://archsearch:***@127.0.0.1:1/studies'")
    assert len(done.stderr.strip().splitlines()) == 1 and PASSWORD not in done.stderr + done.stdout
    missing = subprocess.run([sys.executable, "-m", "archsearch", "agent", "--device", "pi"], capture_output=True,
                             text=True, env={k: v for k, v in os.environ.items() if k != "ARCHSEARCH_STORAGE"},
                             timeout=120)
    assert missing.returncode == 2 and missing.stderr.startswith("error: give --storage URL")
    bad_name = subprocess.run([sys.executable, "-m", "archsearch", "agent", "--device", "my board", "--storage",
                               f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True, text=True, timeout=120)
    assert bad_name.returncode == 2 and bad_name.stderr.startswith("error: device name 'my board'")


def test_host_busy_fraction_counts_only_the_other_cores():
    before = {0: (100, 1000), 1: (500, 1000)}
    after = {0: (175, 1100), 1: (600, 1100)}  # core 0: 75 of 100 busy; core 1 (measuring): all busy
    assert busy_fraction(before, after, exclude={1}) == pytest.approx(0.75)
    assert busy_fraction(before, after, exclude={0, 1}) is None
    assert busy_fraction(None, after, exclude=set()) is None
    here = cpu_times()
    assert here is not None and len(here) == os.cpu_count()
    assert all(0 <= busy <= total for busy, total in here.values())


def test_a_worker_refuses_a_bad_device_name_or_backend(postgres_url):
    from archsearch.errors import ArchsearchError

    with pytest.raises(ArchsearchError, match="device name"):
        AgentMeasure(postgres_url, "")
    with pytest.raises(ArchsearchError, match="unknown latency backend 'tpu'"):
        AgentMeasure(postgres_url, "pi", backend="tpu")
