"""Latency from the target device: the measurement agent (``archsearch agent``) and the workers that ask it.

An agent runs on the device (a board with Python and LiteRT, or this machine) and
serves the measurement requests that workers leave in a shared database, one at a
time, through the usual measuring process (``measure_latency``: conversion and timing
in a worker process pinned to one core; results cached in the same database). Workers
anywhere wait for its answer (``AgentMeasure``, in ``agent_client``). Every figure
carries the device's name and the protocol, and how busy the host's other cores were
while it was taken (``host_busy_fraction``).

The queue itself (tables, claim, heartbeats) is ``agent_queue``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from archsearch.db import NetworkLatency, Store
from archsearch.db.models import MeasurementAgent, MeasurementRequest
from archsearch.errors import ArchsearchError
from archsearch.latency.agent_client import (
    AgentError,
    AgentFailedError,
    AgentMeasure,
    AgentTimeoutError,
)
from archsearch.latency.agent_queue import (
    HEARTBEAT_SECONDS,
    agents_of,
    check_device_name,
    claim_next,
    db_now,
    finish,
    is_live,
    reclaim_orphans,
    release_own,
    this_process,
)
from archsearch.latency.backends import BackendInfo, get_backend
from archsearch.latency.client import persistent_worker
from archsearch.latency.device import device_info
from archsearch.latency.hostload import busy_fraction, cpu_times, measuring_cores
from archsearch.latency.measure import (
    LatencyResult,
    check_settings,
    input_shape_of,
    measure_latency,
    remeasure_latency,
    setup_key,
)
from archsearch.spec import NetworkSpec, parse_spec, spec_hash
from archsearch.urls import scrubbed, shown_url

BUSY_WARNING = 0.5
"""Above this fraction of busy time on the other cores, a figure is reported as taken beside other work."""
RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class ServeSummary:
    """What an agent did before it stopped."""

    done: int
    failed: int


class _Heartbeat:
    """Keeps the agent's row fresh from a thread of its own, also while a measurement runs."""

    def __init__(self, store: Store, row: MeasurementAgent) -> None:
        self.store, self.agent_id, self.seconds = store, row.id, row.heartbeat_seconds
        self._columns = {column: getattr(row, column) for column in (
            "device", "name", "host", "pid", "backend", "backend_version", "threads", "fingerprint",
            "heartbeat_seconds", "started_at")}
        self.current: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archsearch-agent-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def beat(self) -> None:
        with self.store.session() as session:
            now = db_now(session)
            changed = session.execute(update(MeasurementAgent).where(MeasurementAgent.id == self.agent_id)
                                      .values(last_seen=now, current_request_id=self.current)
                                      .execution_options(synchronize_session=False)).rowcount
            if not changed:  # removed as stale by another agent while the database was out of reach
                row = MeasurementAgent(**self._columns, last_seen=now, current_request_id=self.current)
                session.add(row)
                session.flush()
                self.agent_id = row.id

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.beat()
            except SQLAlchemyError:
                pass  # the main loop reports a lost database; clients meanwhile see no agent


def _register(store: Store, device: str, info: BackendInfo, threads: int,
              heartbeat_seconds: float) -> tuple[MeasurementAgent, list[MeasurementAgent]]:
    """This agent's row, and the other live agents of the device. Dead agents' rows are removed."""
    with store.session() as session:
        others, now = agents_of(session, device)
        dead = [agent.id for agent in others if not is_live(agent, now)]
        if dead:
            session.execute(delete(MeasurementAgent).where(MeasurementAgent.id.in_(dead))
                            .execution_options(synchronize_session=False))
        row = MeasurementAgent(device=device, name=this_process(), host=socket.gethostname(), pid=os.getpid(),
                               backend=info.name, backend_version=info.version(), threads=threads,
                               fingerprint=device_info().fingerprint, heartbeat_seconds=heartbeat_seconds,
                               started_at=now, last_seen=now)
        session.add(row)
        session.flush()
        return row, [agent for agent in others if is_live(agent, now)]


def _unregister(store: Store, agent_id: int) -> None:
    with store.session() as session:
        session.execute(delete(MeasurementAgent).where(MeasurementAgent.id == agent_id)
                        .execution_options(synchronize_session=False))


def _reason(error: BaseException) -> str:
    """One line for the request's ``error`` column."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return (text if isinstance(error, ArchsearchError) else f"{type(error).__name__}: {text}")[:500]


class _Agent:
    """One agent's serving loop state: what it serves and how it reports."""

    def __init__(self, url: str, store: Store, device: str, info: BackendInfo, threads: int, name: str,
                 emit: Callable[[str], None], busy_warning: float) -> None:
        self.url, self.store, self.device, self.info, self.threads = url, store, device, info, threads
        self.name, self.emit, self.busy_warning = name, emit, busy_warning

    def serve_one(self, request: MeasurementRequest) -> bool:
        """Measure one claimed request and record the outcome; True if measured.

        A request that cannot be measured is marked failed and the agent goes on; a lost
        database (``DBAPIError``) propagates, and the request is released later.
        """
        label = f"request {request.id}"
        try:
            spec = parse_spec(json.loads(request.spec_json), source=label)
            label = spec.name
            if spec_hash(spec) != request.spec_hash:
                raise AgentError(f"this agent reads the spec as another network (hash {spec_hash(spec)[:12]}, "
                                 f"asked for {request.spec_hash[:12]}): the agent's and the worker's archsearch "
                                 f"versions differ")
            result = self._measure(spec, request.fresh)
        except DBAPIError:
            raise
        except Exception as error:  # anything about this request fails it alone
            reason = scrubbed(_reason(error), self.url)
            finish(self.store, request.id, self.name, error=reason)
            self.emit(f"{label}: failed ({reason}), for {request.requested_by}")
            return False
        if not finish(self.store, request.id, self.name, result=result, fingerprint=device_info().fingerprint):
            self.emit(f"{spec.name}: request {request.id} was taken back meanwhile; figure not delivered")
            return False
        busy = result.protocol.get("host_busy_fraction")
        self.emit(f"{spec.name}: median {result.median_ms:.3f} ms (p10 {result.p10_ms:.3f}, p90 {result.p90_ms:.3f}, "
                  f"{result.runs} runs){' [cached]' if result.cached else ''}{' [fresh]' if request.fresh else ''}, "
                  f"other cores {'?' if busy is None else f'{busy:.0%}'} busy; for {request.requested_by}")
        if busy is not None and busy > self.busy_warning and not result.cached:
            self.emit(f"warning: the other cores of this host were {busy:.0%} busy while {spec.name} was measured "
                      f"on {self.device!r}: its figure may be slow; run nothing else here while the agent serves")
        return True

    def _measure(self, spec: NetworkSpec, fresh: bool) -> LatencyResult:
        """Measure through the worker process, noting how busy the other cores were meanwhile."""
        exclude = measuring_cores(self.threads)
        before = cpu_times()
        if fresh:  # as the local canary does: time again now, leaving the cached figure alone
            result = remeasure_latency(spec, self.info.name, self.threads)
        else:
            result = measure_latency(spec, self.info.name, self.threads, storage=self.url)
        extra: dict[str, Any] = {"device_name": self.device, "measured_by": self.name}
        if result.cached:  # measured earlier: its own reading, if an agent took it
            extra["host_busy_fraction"] = result.protocol.get("host_busy_fraction")
        else:
            extra["host_busy_fraction"] = busy_fraction(before, cpu_times(), exclude)
            if not fresh:
                self._annotate_cache(spec, extra)
        return replace(result, protocol={**result.protocol, **extra})

    def _annotate_cache(self, spec: NetworkSpec, extra: dict[str, Any]) -> None:
        """The cached figure keeps the device name and busy fraction, for whoever reads it later."""
        setup = {**setup_key(self.info, self.threads), "input_shape": input_shape_of(spec)}
        with self.store.session() as session:
            row = NetworkLatency.find(session, spec_hash(spec), setup)
            if row is not None:
                row.protocol = json.dumps({**json.loads(row.protocol), **extra})


def serve(url: str, device: str, backend: str = "litert", threads: int = 1, *, max_requests: int | None = None,
          idle_exit_seconds: float | None = None, on_event: Callable[[str], None] | None = None,
          poll_seconds: float = 0.5, heartbeat_seconds: float = HEARTBEAT_SECONDS,
          busy_warning: float = BUSY_WARNING) -> ServeSummary:
    """Serve ``device``'s measurement requests in the database at ``url`` until stopped.

    Registers the agent and keeps its heartbeat; takes the oldest pending request for
    ``device``, ``backend`` and ``threads`` (a compare-and-swap: two agents never take
    the same one), measures it with ``measure_latency`` (cached in the same database;
    a fresh request is timed again with ``remeasure_latency``) and writes the result,
    its protocol naming the device (``device_name``) and how busy the other cores were
    (``host_busy_fraction``). One request at a time. Requests left running by a dead
    agent of the device go back to pending. Stops after ``max_requests`` requests, or
    after ``idle_exit_seconds`` without one; Ctrl-C stops it too, returning a request
    it holds to pending. ``on_event`` receives one line per measurement and notice.
    A database that cannot be opened raises ``StoreError``; one lost later is retried.
    """
    check_device_name(device)
    check_settings(threads, None)
    if max_requests is not None and max_requests < 1:
        raise ArchsearchError(f"max requests must be at least 1, got {max_requests}")
    info = get_backend(backend)
    emit = on_event or (lambda line: None)
    store = Store.at(url)
    row, others = _register(store, device, info, threads, heartbeat_seconds)
    heartbeat = _Heartbeat(store, row)
    heartbeat.start()
    agent = _Agent(url, store, device, info, threads, row.name, emit, busy_warning)
    emit(f"agent for device {device!r} ({info.name}: {row.backend_version}; {threads} thread(s)) on {row.name}, "
         f"serving requests in {shown_url(url)}")
    if any(other.host == row.host for other in others):
        emit(f"warning: another agent for {device!r} runs on this host ({', '.join(o.name for o in others)}): "
             f"their measurements will disturb each other")
    done = failed = 0
    idle_since = time.monotonic()
    lost_database = False
    try:
        with persistent_worker():  # one measuring process for the agent's life: TensorFlow is imported once
            while max_requests is None or done + failed < max_requests:
                try:
                    if lost_database:
                        release_own(store, row.name)
                        lost_database = False
                    reclaimed = reclaim_orphans(store, device)
                    if reclaimed:
                        emit(f"{reclaimed} request(s) left running by a stopped agent of {device!r} are pending again")
                    request = claim_next(store, row.name, device, info.name, threads)
                    if request is None:
                        if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
                            emit(f"no request for {idle_exit_seconds:g} s: stopping")
                            break
                        time.sleep(poll_seconds)
                        continue
                    heartbeat.current = request.id
                    try:
                        measured = agent.serve_one(request)
                    finally:
                        heartbeat.current = None
                except DBAPIError as error:
                    lost_database = True
                    emit(f"warning: database unreachable ({scrubbed(_reason(error), url)}); retrying in "
                         f"{RETRY_SECONDS:g} s")
                    time.sleep(RETRY_SECONDS)
                    continue
                done, failed = done + measured, failed + (not measured)
                idle_since = time.monotonic()
    finally:
        heartbeat.stop()
        try:
            release_own(store, row.name)  # interrupted mid-measurement: another agent may take it
            _unregister(store, heartbeat.agent_id)
        except SQLAlchemyError:
            pass  # its heartbeat goes stale, and the next agent releases what it held
        emit(f"agent for device {device!r} stopped: {done} measured, {failed} failed")
    return ServeSummary(done, failed)


__all__ = ["AgentError", "AgentFailedError", "AgentMeasure", "AgentTimeoutError", "BUSY_WARNING", "ServeSummary",
           "serve"]
