"""A device's profile built through its measurement agent, and found by the device's name.

The end-to-end test runs a real agent process (``archsearch agent``) that reports
itself as another board (its CPU model patched before anything reads it, so its
fingerprint differs from this machine's) and a real ``archsearch profile build
--device`` process on the tiny space: the profile must describe the agent's board, not
this machine, and every network must have gone through the requests table. The rest
uses a fake measuring function or synthetic profiles, and runs in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import write_tiny_inputs
from sqlalchemy import select
from test_agent import measure_failing_on, requests_of, tiny_spec
from test_cli import run
from test_profile import synthetic_costs, synthetic_profile

import archsearch.latency.profile_build as profile_build
from archsearch.db import NetworkLatency, Store
from archsearch.db.models import MeasurementAgent, MeasurementRequest
from archsearch.errors import ArchsearchError
from archsearch.latency import LatencyResult, device_info, get_backend
from archsearch.latency import agent as agent_module
from archsearch.latency.agent import AgentFailedError, AgentMeasure, AgentTimeoutError, serve
from archsearch.latency.agent_queue import DONE
from archsearch.latency.kernels import spec_features
from archsearch.latency.profile import (
    DeviceProfile,
    device_profile,
    store_profile,
    stored_profiles,
    this_device_profile,
)
from archsearch.latency.profile_build import build_profile

BOARD = "Test Board (agent)"
AGENT = f"""
import sys
import archsearch.latency.device as device
device._cpu_model = lambda: {BOARD!r}  # before anything reads it: the agent's fingerprint is another machine's
from archsearch.cli import main
sys.argv = ["archsearch", *sys.argv[1:]]
main()
"""


def board_agent(device: str, storage: str, cache, *args: str) -> subprocess.Popen[str]:
    """``archsearch agent`` in a process of its own that describes itself as ``BOARD``; its output goes to
    ``<cache>.log`` (a file: a pipe nobody reads would fill and stall it)."""
    env = {**os.environ, "ARCHSEARCH_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    log = open(f"{cache}.log", "w")  # noqa: SIM115 - the child holds it
    return subprocess.Popen([sys.executable, "-c", AGENT, "agent", "--device", device, "--storage", storage, *args],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env)


def test_a_profile_built_through_the_agent_describes_the_board_and_is_found_by_its_name(tmp_path):
    root = write_tiny_inputs(tmp_path)
    url, device = f"sqlite:///{tmp_path / 'shared.db'}", f"board-{uuid.uuid4().hex[:8]}"
    here = {"ARCHSEARCH_CACHE_DIR": str(tmp_path / "cache-here"), "ARCHSEARCH_STORAGE": ""}
    agent = board_agent(device, url, tmp_path / "cache-board", "--idle-exit", "600")  # ended below
    try:
        built = subprocess.run([sys.executable, "-m", "archsearch", "profile", "build", "--device", device, "--storage",
                                url, "--space", str(root / "tiny_space.yaml"), "--networks", "10", "--minutes", "5"],
                               capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **here},
                               timeout=600)
    finally:
        agent.terminate()
        agent.wait(timeout=60)
    agent_log = (tmp_path / "cache-board.log").read_text()
    assert built.returncode == 0, built.stderr + agent_log
    assert "nothing is timed here" in built.stdout and "round 2: 10 networks measured" in built.stdout
    assert f"device '{device}': {BOARD} x" in built.stdout and "profile stored: 10 networks" in built.stdout

    [profile] = stored_profiles(url)
    rows = requests_of(url, device)
    assert {r.state for r in rows} == {DONE} and len(rows) == 10  # every network went through the queue
    assert {r.spec_hash for r in rows} == set(profile.training_hashes)
    assert all(r.claimed_by.endswith(f":{agent.pid}") for r in rows)
    assert profile.device_name == device and profile.device["cpu_model"] == BOARD
    assert {r.fingerprint for r in rows} == {profile.fingerprint} and profile.fingerprint != device_info().fingerprint
    assert {r.backend_version for r in rows} == {profile.backend_version} and profile.backend == "litert"
    assert profile.protocol["device_name"] == device and profile.protocol["device"]["cpu_model"] == BOARD
    assert profile.build["networks"] == 10 and profile.build["measured_by"] == [rows[0].claimed_by]
    assert profile.accuracy.networks == 10
    with Store.at(url).session() as session:  # the agent cached its figures; nothing was timed on this machine
        fingerprints = [row.fingerprint for row in session.scalars(select(NetworkLatency))]
    assert fingerprints and set(fingerprints) == {profile.fingerprint}
    assert not (tmp_path / "cache-here").exists()

    assert device_profile(device, "litert", 1, url) == profile
    assert device_profile("another-board", "litert", 1, url) is None
    assert device_profile(device, "litert", 2, url) is None
    assert this_device_profile("litert", 1, (url,)) is None  # the board's costs never screen a study measured here

    shown = run("profile", "show", "--storage", url, env=here)
    assert f"device '{device}': {BOARD} x" in shown.stdout and "ANOTHER device" in shown.stdout
    exported = tmp_path / "board.json"
    assert run("profile", "export", str(exported), "--device", device, "--storage", url, env=here).returncode == 0
    assert json.loads(exported.read_text())["device_name"] == device
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    imported = run("profile", "import", str(exported), "--storage", elsewhere, env=here)
    assert imported.returncode == 0 and f"device '{device}'" in imported.stdout
    assert device_profile(device, "litert", 1, elsewhere) == profile


def test_profile_build_with_a_device_but_no_agent_says_so_and_measures_nothing(tmp_path):
    url, device = f"sqlite:///{tmp_path / 'shared.db'}", f"board-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "ARCHSEARCH_CACHE_DIR": str(tmp_path / "cache-here"), "PYTHONUNBUFFERED": "1",
           "COLUMNS": "400"}
    process = subprocess.Popen([sys.executable, "-m", "archsearch", "profile", "build", "--device", device,
                                "--storage", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()
        assert "nothing is timed here" in first, first
        waiting = process.stdout.readline()
        assert len(requests_of(url, device)) == 8  # one round asked at once
        process.terminate()  # like Ctrl-C: the requests no agent has taken are withdrawn
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert waiting.startswith(f"waiting for device '{device}': no measurement agent is running for it")
    assert f"archsearch agent --device {device} --storage {url}" in waiting
    assert requests_of(url, device) == [] and not (tmp_path / "cache-here").exists()
    missing = run("profile", "build", "--device", device, env={"ARCHSEARCH_STORAGE": ""})
    assert missing.returncode == 2 and missing.stderr.startswith("error: give --storage URL")


# ----- the build with a measuring function, without TensorFlow -----


BOARD_DEVICE = {"cpu_model": "Other Board", "logical_cores": 4, "machine": "aarch64", "system": "Linux",
                "fingerprint": "0123456789abcdef"}


def fake_result(spec, ms: float, device: dict | None = None) -> LatencyResult:
    protocol = {"backend": "litert", "backend_version": "ai-edge-litert 9.9", "threads": 1, "input_shape": "1x8x8x3",
                "device": device or BOARD_DEVICE, "device_name": "pi", "measured_by": "pi:7",
                "host_busy_fraction": 0.25, "policy": {"runs": None}}
    return LatencyResult(ms, ms, ms, 50, "litert", "ai-edge-litert 9.9", 1, "1x8x8x3", "", False, protocol)


@pytest.fixture()
def nothing_local(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("measured on this machine")

    monkeypatch.setattr(profile_build, "measure_latencies", refuse)
    monkeypatch.setattr(profile_build, "persistent_worker", refuse)
    monkeypatch.setattr(profile_build, "get_backend", refuse)


def test_build_profile_takes_its_device_and_versions_from_the_measurements(nothing_local):
    costs = synthetic_costs()
    asked: list[int] = []

    def measure(specs):
        asked.append(len(specs))
        return [AgentFailedError(f"{spec.name}: out of memory") if index == 0 and len(asked) <= 2  # 2 skipped
                else fake_result(spec, float(sum(f * c for f, c in zip(spec_features(spec), costs))))
                for index, spec in enumerate(specs)]

    progress = []
    profile = build_profile(spaces=("mobilenetv3",), max_networks=12, batch=6, minutes=5, measure=measure,
                            on_progress=progress.append)
    assert profile.device == BOARD_DEVICE and profile.device_name == "pi"  # named by the measurements
    assert profile.backend_version == "ai-edge-litert 9.9" and profile.protocol["input_shape"] == "per network"
    assert "host_busy_fraction" not in profile.protocol and "measured_by" not in profile.protocol
    assert profile.build["networks"] == 12 and profile.build["failed"] == progress[-1].failed == 2
    assert asked == [6, 6, 2] and profile.accuracy.networks == 12
    assert profile.build["measured_by"] == ["pi:7"] and profile.build["host_busy_fraction"]["max"] == 0.25
    assert build_profile(spaces=("mobilenetv3",), max_networks=10, batch=10, measure=measure,
                         device_name="pi-renamed").device_name == "pi-renamed"

    with pytest.raises(ArchsearchError, match="0 fitted .* 8 could not be measured, the first: .*: unplugged"):
        build_profile(spaces=("mobilenetv3",), measure=lambda specs: [AgentFailedError(f"{s.name}: unplugged")
                                                                      for s in specs])
    with pytest.raises(ArchsearchError, match="at least 10"):
        build_profile(max_networks=5, measure=measure)


def test_device_profiles_are_stored_apart_and_found_by_name_and_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    version = get_backend("litert").version()

    def named(name: str | None, fingerprint: str, created: str, backend_version: str = version) -> DeviceProfile:
        return replace(synthetic_profile(fingerprint=fingerprint, version=backend_version), device_name=name,
                       created_at=created)

    old_board = named("pi", "aaaaaaaaaaaaaaaa", "2026-01-01T00:00:00+00:00")
    new_board = named("pi", "bbbbbbbbbbbbbbbb", "2026-02-01T00:00:00+00:00")
    twin = named("pi-twin", "aaaaaaaaaaaaaaaa", "2026-03-01T00:00:00+00:00")  # a second board of the same model
    on_the_board = named(None, "cccccccccccccccc", "2026-01-01T00:00:00+00:00")  # built on a board, imported
    for profile in (old_board, new_board, twin, on_the_board, synthetic_profile()):
        store_profile(profile, url)
    assert len(stored_profiles(url)) == 5  # same fingerprints, other names: none replaced another
    assert DeviceProfile.from_json(twin.to_json()) == twin
    legacy = json.loads(twin.to_json())
    del legacy["device_name"]
    assert DeviceProfile.from_dict(legacy).device_name is None

    assert device_profile("pi", storage=url) == new_board  # no measurement yet: the newest of the name
    assert device_profile("pi-twin", storage=url) == twin
    assert device_profile("pi", threads=2, storage=url) is None and device_profile("nano", storage=url) is None

    def measured(device: str, fingerprint: str, backend_version: str = version, minutes_ago: int = 0) -> None:
        with Store.at(url).session() as session:
            session.add(MeasurementRequest(device=device, spec_hash="0" * 64, spec_json="{}", backend="litert",
                                           threads=1, state=DONE, fingerprint=fingerprint,
                                           backend_version=backend_version, requested_by="test:0",
                                           finished_at=datetime.now(UTC) - timedelta(minutes=minutes_ago)))

    measured("pi", "aaaaaaaaaaaaaaaa")  # the device as it is now: the older board's fingerprint
    measured("pi", "bbbbbbbbbbbbbbbb", minutes_ago=10)
    assert device_profile("pi", storage=url) == old_board
    measured("nano", "cccccccccccccccc")  # no profile of its name: the one built on the same hardware
    assert device_profile("nano", storage=url) == on_the_board
    with Store.at(url).session() as session:  # a running agent says what the device is now, before any figure
        now = datetime.now(UTC)
        session.add(MeasurementAgent(device="pi", name="pi:1", host="pi", pid=1, backend="litert",
                                     backend_version=version, threads=1, fingerprint="bbbbbbbbbbbbbbbb",
                                     heartbeat_seconds=60.0, started_at=now, last_seen=now))
    assert device_profile("pi", storage=url) == new_board
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    store_profile(twin, elsewhere)
    assert device_profile("pi-twin", storage=(elsewhere, url)) == twin
    assert device_profile("pi", storage=(elsewhere, url)) == new_board  # its agent is looked up in the first only
    store_profile(replace(synthetic_profile(), device_name="agent-here"), url)  # an agent ran on this machine
    assert len(stored_profiles(url)) == 6 and stored_profiles(url)[0].device_name == "agent-here"
    local = this_device_profile("litert", 1, (url,))
    assert local is not None and local.device_name is None and local.key == synthetic_profile().key


# ----- measure_many: a batch asked of the agent at once -----


def test_measure_many_asks_a_batch_at_once_and_answers_each_network(tmp_path, monkeypatch):
    url, device = f"sqlite:///{tmp_path / 'queue.db'}", f"board-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(agent_module, "measure_latency",
                        measure_failing_on("broken", ArchsearchError("broken: cannot convert"), fake_result(None, 1.5)))
    messages: list[str] = []
    agent = AgentMeasure(url, device, on_wait=messages.append, poll_seconds=0.05)
    a, b, broken = tiny_spec("a"), tiny_spec("b", size=32), tiny_spec("broken", size=48)
    answers: list = []
    asking = threading.Thread(target=lambda: answers.extend(agent.measure_many([a, broken, b, a])))
    asking.start()
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while len(requests_of(url, device)) < 3 or not messages:
        assert datetime.now(UTC) < deadline, "the batch was not asked"
        time.sleep(0.05)
    assert len(messages) == 1 and messages[0].startswith(f"waiting for device '{device}'")  # once for the batch
    assert len(requests_of(url, device)) == 3  # the repeated network is asked once
    serve(url, device, max_requests=3, poll_seconds=0.05)
    asking.join(timeout=30)
    assert [type(x).__name__ for x in answers] == ["LatencyResult", "AgentFailedError", "LatencyResult",
                                                   "LatencyResult"]
    assert "broken: cannot convert" in str(answers[1]) and answers[0] == answers[3]
    assert all(m.startswith(f"device '{device}': agent ") for m in messages[1:])  # at most one: "agent is running"

    again = AgentMeasure(url, device, poll_seconds=0.05, timeout_seconds=0.5)
    with pytest.raises(AgentTimeoutError, match=r"1 network\(s\) \(broken\): no answer"):
        again.measure_many([a, b, broken])  # a and b answered earlier; broken is asked again, and no agent runs
    assert len(requests_of(url, device)) == 3  # its request was taken back
    assert all(result.cached for result in again.measure_many([b, a]))
