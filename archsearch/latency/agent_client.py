"""A worker's side of the measurement agent: ask the device's agent, wait for its answer.

``AgentMeasure`` is a drop-in for ``measure_latency`` (``spec -> LatencyResult``) whose
figures come from the target device: it leaves a request in the database and waits.
It never measures locally: with no agent running for the device it says so (through
``on_wait``) and goes on waiting, since a figure from this machine would silently
stand for another device's.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select

from archsearch.db import Store
from archsearch.db.models import MeasurementAgent, MeasurementRequest
from archsearch.errors import UnknownNameError
from archsearch.latency.agent_queue import (
    DONE,
    FAILED,
    agents_of,
    as_utc,
    check_device_name,
    earlier_answer,
    is_live,
    result_from_json,
    submit,
    withdraw,
)
from archsearch.latency.backends import BACKENDS
from archsearch.latency.measure import LatencyError, LatencyResult, check_settings
from archsearch.spec import NetworkSpec, spec_hash, spec_to_dict
from archsearch.urls import shown_url

MESSAGE_EVERY_SECONDS = 60.0


class AgentError(LatencyError):
    """A measurement asked of a device's agent did not come back."""


class AgentFailedError(AgentError):
    """The device's agent could not measure the network; the message carries its reason."""


class AgentTimeoutError(AgentError):
    """No answer from the device's agent within the time allowed."""


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _setup(backend: str, threads: int) -> str:
    return f"{backend}, {threads} thread{'s' if threads != 1 else ''}"


class AgentMeasure:
    """``measure(spec) -> LatencyResult`` answered by the measurement agent of ``device``.

    ``storage`` is the database the agent serves (a study's); ``on_wait`` receives a
    one-line message when no agent for the device is running, again every
    ``message_every_seconds`` while that lasts, and once more when an agent appears.
    ``timeout_seconds`` (default: wait for ever) gives up with ``AgentTimeoutError``,
    taking the request back if no agent has started on it. A request the agent could
    not measure raises ``AgentFailedError`` with its reason. Thread-safe: every call
    uses its own database session.
    """

    def __init__(self, storage: str, device: str, backend: str = "litert", threads: int = 1, *,
                 on_wait: Callable[[str], None] | None = None, poll_seconds: float = 0.5,
                 timeout_seconds: float | None = None,
                 message_every_seconds: float = MESSAGE_EVERY_SECONDS) -> None:
        check_device_name(device)
        check_settings(threads, None)
        if backend not in BACKENDS:  # names only: the backend's packages are the device's business
            raise UnknownNameError("latency backend", backend, sorted(BACKENDS))
        self.url, self.device, self.backend, self.threads = storage, device, backend, threads
        self.on_wait = on_wait or (lambda message: None)
        self.poll_seconds, self.timeout_seconds = poll_seconds, timeout_seconds
        self.message_every_seconds = message_every_seconds
        self.store = Store.at(storage)  # an unreachable database fails here, before any trial

    def __call__(self, spec: NetworkSpec) -> LatencyResult:
        return self.measure(spec)

    def measure(self, spec: NetworkSpec) -> LatencyResult:
        """``spec``'s latency on the device: an earlier answer of its agent for this network, or a new one."""
        digest = spec_hash(spec)
        with self.store.session() as session:
            earlier = earlier_answer(session, self.device, digest, self.backend, self.threads)
        if earlier is not None and earlier.result is not None:
            return result_from_json(earlier.result, cached=True)
        return self._ask(spec, digest, fresh=False)

    def measure_many(self, specs: Sequence[NetworkSpec]) -> list[LatencyResult | AgentError]:
        """Every spec's latency on the device, asked all at once; in order, a result or the reason it has none.

        A network the device answered earlier comes back at once (as ``measure``); the
        others are left as requests together, so several agents of the device share
        them, and waited for in one loop, with one set of waiting messages for the batch.
        A network the agent could not measure gets its ``AgentFailedError`` in its place
        and the others go on; ``timeout_seconds`` (for the whole batch) and interruptions
        raise, taking back the requests no agent has started on.
        """
        answers: list[LatencyResult | AgentError | None] = [None] * len(specs)
        digests = [spec_hash(spec) for spec in specs]
        with self.store.session() as session:
            for index, digest in enumerate(digests):
                earlier = earlier_answer(session, self.device, digest, self.backend, self.threads)
                if earlier is not None and earlier.result is not None:
                    answers[index] = result_from_json(earlier.result, cached=True)
        waiting: dict[int, list[int]] = {}  # request id -> the positions it answers (a spec may repeat)
        asked: dict[str, int] = {}
        try:
            for index, (spec, digest) in enumerate(zip(specs, digests)):
                if answers[index] is None:
                    if digest not in asked:
                        asked[digest] = submit(self.store, self.device, digest, json.dumps(spec_to_dict(spec)),
                                               self.backend, self.threads, False)
                    waiting.setdefault(asked[digest], []).append(index)
            self._wait_many(waiting, specs, answers)
        except BaseException:
            for request_id in waiting:
                try:
                    withdraw(self.store, request_id)
                except Exception:  # the database may be what failed: the first error is the one to raise
                    pass
            raise
        done = [answer for answer in answers if answer is not None]
        assert len(done) == len(specs)
        return done

    def _wait_many(self, waiting: dict[int, list[int]], specs: Sequence[NetworkSpec],
                   answers: list[LatencyResult | AgentError | None]) -> None:
        """Fill ``answers`` from the requests in ``waiting``, which is emptied as they are answered."""
        notes = _WaitNotes(self)
        while waiting:
            with self.store.session() as session:
                rows = {row.id: row for row in session.scalars(
                    select(MeasurementRequest).where(MeasurementRequest.id.in_(list(waiting))))}
                agents, now = agents_of(session, self.device)
            for request_id in list(waiting):
                name = specs[waiting[request_id][0]].name
                row = rows.get(request_id)
                answer: LatencyResult | AgentError
                if row is None:
                    answer = AgentError(f"{name}: request {request_id} to device {self.device!r} was removed from "
                                        f"the database before its agent answered")
                elif row.state == DONE and row.result is not None:
                    answer = result_from_json(row.result)
                elif row.state == FAILED:
                    answer = AgentFailedError(f"{name}: device {self.device!r} could not measure it: {row.error}")
                else:
                    continue
                for index in waiting.pop(request_id):
                    answers[index] = answer
            if not waiting:
                return
            left = [specs[indices[0]].name for indices in waiting.values()]
            serving = notes.update(agents, now, left[0] if len(left) == 1 else f"{len(left)} networks")
            if self.timeout_seconds is not None and notes.waited >= self.timeout_seconds:
                names = ", ".join(left[:3]) + (", ..." if len(left) > 3 else "")
                raise AgentTimeoutError(f"{len(left)} network(s) ({names}): no answer from device {self.device!r} "
                                        f"within {self.timeout_seconds:g} s"
                                        + ("" if serving else f" (no agent running: {self.start_command()})"))
            time.sleep(self.poll_seconds)

    def remeasure(self, spec: NetworkSpec) -> LatencyResult:
        """Time ``spec`` on the device again now, leaving its cached figure alone (the canary)."""
        return self._ask(spec, spec_hash(spec), fresh=True)

    def start_command(self) -> str:
        """The command that starts the missing agent (the storage URL shown without its password)."""
        words = ["archsearch", "agent", "--device", self.device, "--storage", shown_url(self.url)]
        if self.backend != "litert":
            words += ["--backend", self.backend]
        if self.threads != 1:
            words += ["--threads", str(self.threads)]
        return shlex.join(words)

    def agents_running(self) -> list[str]:
        """``host:pid`` of every live agent serving this device, backend and thread count."""
        with self.store.session() as session:
            agents, now = agents_of(session, self.device)
        return [agent.name for agent in agents if self._serves(agent, now)]

    def _serves(self, agent: MeasurementAgent, now: datetime) -> bool:
        return is_live(agent, now) and agent.backend == self.backend and agent.threads == self.threads

    def _ask(self, spec: NetworkSpec, digest: str, fresh: bool) -> LatencyResult:
        request_id = submit(self.store, self.device, digest, json.dumps(spec_to_dict(spec)), self.backend,
                            self.threads, fresh)
        try:
            return self._wait(request_id, spec)
        except BaseException:
            try:  # nobody waits for it any more: an agent need not measure it (once claimed, it finishes)
                withdraw(self.store, request_id)
            except Exception:  # the database may be what failed: the first error is the one to raise
                pass
            raise

    def _wait(self, request_id: int, spec: NetworkSpec) -> LatencyResult:
        notes = _WaitNotes(self)
        while True:
            with self.store.session() as session:
                row = session.get(MeasurementRequest, request_id)
                agents, now = agents_of(session, self.device)
            if row is None:
                raise AgentError(f"{spec.name}: request {request_id} to device {self.device!r} was removed from the "
                                 f"database before its agent answered")
            if row.state == DONE and row.result is not None:
                return result_from_json(row.result)
            if row.state == FAILED:
                raise AgentFailedError(f"{spec.name}: device {self.device!r} could not measure it: {row.error}")
            serving = notes.update(agents, now, spec.name)
            if self.timeout_seconds is not None and notes.waited >= self.timeout_seconds:
                raise AgentTimeoutError(f"{spec.name}: no answer from device {self.device!r} within "
                                        f"{self.timeout_seconds:g} s"
                                        + ("" if serving else f" (no agent running: {self.start_command()})"))
            time.sleep(self.poll_seconds)

    def _missing(self, agents: list[MeasurementAgent], now: datetime, waited: float | None) -> str:
        """One line: which device is missing its agent, since when (``waited``; None at first), how to start one."""
        head = (f"waiting for device {self.device!r}" if waited is None
                else f"still waiting for device {self.device!r} after {_duration(waited)}")
        live = [agent for agent in agents if is_live(agent, now)]
        if live:
            serving = ", ".join(sorted({_setup(agent.backend, agent.threads) for agent in live}))
            why = f"its running agent serves {serving}, not {_setup(self.backend, self.threads)}"
        elif agents:
            last = agents[0]
            ago = _duration((now - as_utc(last.last_seen)).total_seconds())
            why = f"no measurement agent is running for it (last seen {ago} ago: {last.name})"
        else:
            why = f"no measurement agent is running for it ({_setup(self.backend, self.threads)})"
        return f"{head}: {why}; nothing is measured here. Start one on the device: {self.start_command()}"


class _WaitNotes:
    """The waiting messages of one wait: while no agent serves the device, at first and every so often; once
    more when one appears."""

    def __init__(self, measure: AgentMeasure) -> None:
        self.measure = measure
        self.started = time.monotonic()
        self.told_at: float | None = None
        self.said = 0

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started

    def update(self, agents: list[MeasurementAgent], now: datetime, what: str) -> list[MeasurementAgent]:
        """Say what needs saying about the agents seen ``now`` (waiting to measure ``what``); the serving ones."""
        measure = self.measure
        serving = [agent for agent in agents if measure._serves(agent, now)]
        if not serving and (self.told_at is None or time.monotonic() - self.told_at >= measure.message_every_seconds):
            measure.on_wait(measure._missing(agents, now, self.waited if self.said else None))
            self.told_at, self.said = time.monotonic(), self.said + 1
        elif serving and self.told_at is not None:
            measure.on_wait(f"device {measure.device!r}: agent {serving[0].name} is running; waiting for its "
                            f"measurement of {what}")
            self.told_at = None
        return serving


__all__ = ["AgentError", "AgentFailedError", "AgentMeasure", "AgentTimeoutError", "MESSAGE_EVERY_SECONDS"]
