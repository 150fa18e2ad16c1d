"""The measurement queue in the database: requests, agents' heartbeats, and the claim.

Shared by the agent (``archsearch.latency.agent``) and the workers that ask it
(``archsearch.latency.agent_client``). Every time written or compared is the
database's clock (``db_now``): a board without a real-time clock may be hours off
until NTP has run, and the workers' hosts may disagree with it.

Claiming is a compare-and-swap on ``state`` (``UPDATE ... WHERE id = :id AND state =
'pending'``, one row changed or none), which needs no row locks and behaves the same
on PostgreSQL and SQLite: of two agents claiming the same request, exactly one wins.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from archsearch.db import Store
from archsearch.db.models import MeasurementAgent, MeasurementRequest
from archsearch.errors import ArchsearchError
from archsearch.latency.measure import LatencyResult

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
HEARTBEAT_SECONDS = 5.0
STALE_BEATS = 3
"""An agent not seen for this many of its heartbeats is gone."""


_DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")


def check_device_name(device: str) -> str:
    """``device`` if it is a usable name (letters, digits, ``._:@+-``; up to 128 characters)."""
    if not _DEVICE_NAME.fullmatch(device or ""):
        raise ArchsearchError(f"device name {device!r}: use letters, digits and ._:@+- (up to 128 characters), "
                              f"starting with a letter or digit")
    return device


def this_process() -> str:
    """``host:pid``: who asked for a measurement, or which agent took it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def as_utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite gives back naive datetimes, written in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def db_now(session: Session) -> datetime:
    """The database's clock, in UTC. SQLite's database is a local file: its clock is this machine's."""
    if session.get_bind().dialect.name == "sqlite":
        return datetime.now(UTC)
    return as_utc(session.scalar(select(func.now())))


def is_live(agent: MeasurementAgent, now: datetime) -> bool:
    """Whether ``agent`` beat within ``STALE_BEATS`` of its own heartbeat intervals before ``now``."""
    return now - as_utc(agent.last_seen) <= timedelta(seconds=STALE_BEATS * agent.heartbeat_seconds)


def agents_of(session: Session, device: str) -> tuple[list[MeasurementAgent], datetime]:
    """Every registered agent of ``device`` (live or not), and the database's time now."""
    now = db_now(session)
    rows = session.scalars(select(MeasurementAgent).where(MeasurementAgent.device == device)
                           .order_by(MeasurementAgent.last_seen.desc())).all()
    return list(rows), now


def live_agents(session: Session, device: str, backend: str | None = None,
                threads: int | None = None) -> list[MeasurementAgent]:
    """Agents of ``device`` seen recently, optionally only those serving ``backend`` and ``threads``."""
    rows, now = agents_of(session, device)
    return [agent for agent in rows if is_live(agent, now)
            and (backend is None or agent.backend == backend) and (threads is None or agent.threads == threads)]


# --- the requests -------------------------------------------------------------------------------------------


def submit(store: Store, device: str, spec_hash: str, spec_json: str, backend: str, threads: int,
           fresh: bool) -> int:
    """Leave a pending request for ``device``'s agent; its id."""
    with store.session() as session:
        row = MeasurementRequest(device=device, spec_hash=spec_hash, spec_json=spec_json, backend=backend,
                                 threads=threads, fresh=fresh, state=PENDING, requested_by=this_process(),
                                 created_at=db_now(session))
        session.add(row)
        session.flush()
        return row.id


def withdraw(store: Store, request_id: int) -> bool:
    """Take back a request no agent has claimed yet (a worker that stops waiting); False once claimed."""
    with store.session() as session:
        gone = session.execute(delete(MeasurementRequest).where(
            MeasurementRequest.id == request_id, MeasurementRequest.state == PENDING)
            .execution_options(synchronize_session=False))
        return gone.rowcount == 1


def claim_next(store: Store, agent: str, device: str, backend: str, threads: int,
               attempts: int = 10) -> MeasurementRequest | None:
    """Claim the oldest pending request this agent can serve (compare-and-swap); None when there is none.

    Losing a race to another agent just moves on to the next oldest request.
    """
    for _ in range(attempts):
        with store.session() as session:
            candidate = session.scalar(
                select(MeasurementRequest.id).where(
                    MeasurementRequest.device == device, MeasurementRequest.backend == backend,
                    MeasurementRequest.threads == threads, MeasurementRequest.state == PENDING)
                .order_by(MeasurementRequest.id).limit(1))
            if candidate is None:
                return None
            claimed = session.execute(
                update(MeasurementRequest)
                .where(MeasurementRequest.id == candidate, MeasurementRequest.state == PENDING)
                .values(state=RUNNING, claimed_by=agent, claimed_at=db_now(session))
                .execution_options(synchronize_session=False)).rowcount == 1
        if claimed:
            with store.session() as session:
                return session.get(MeasurementRequest, candidate)
    return None


def finish(store: Store, request_id: int, agent: str, *, result: LatencyResult | None = None,
           error: str | None = None, fingerprint: str | None = None) -> bool:
    """Record the outcome of a request this agent holds; False if it no longer holds it (taken back)."""
    values: dict[str, Any] = {"state": DONE if result is not None else FAILED, "error": error,
                              "result": result_to_json(result) if result is not None else None,
                              "fingerprint": fingerprint,
                              "backend_version": result.backend_version if result is not None else None}
    with store.session() as session:
        values["finished_at"] = db_now(session)
        changed = session.execute(
            update(MeasurementRequest)
            .where(MeasurementRequest.id == request_id, MeasurementRequest.state == RUNNING,
                   MeasurementRequest.claimed_by == agent)
            .values(**values).execution_options(synchronize_session=False)).rowcount
        return changed == 1


def release(session: Session, device: str, keep: set[str]) -> int:
    """Return to pending the running requests of ``device`` held by no agent in ``keep``; how many."""
    condition = [MeasurementRequest.device == device, MeasurementRequest.state == RUNNING]
    if keep:
        condition.append(MeasurementRequest.claimed_by.notin_(sorted(keep)))
    return session.execute(update(MeasurementRequest).where(*condition)
                           .values(state=PENDING, claimed_by=None, claimed_at=None)
                           .execution_options(synchronize_session=False)).rowcount


def reclaim_orphans(store: Store, device: str) -> int:
    """Requests left running by agents of ``device`` that died (stale heartbeat) go back to pending."""
    with store.session() as session:
        return release(session, device, {agent.name for agent in live_agents(session, device)})


def release_own(store: Store, agent: str) -> int:
    """Requests this agent holds go back to pending (it stops, or lost the database mid-measurement)."""
    with store.session() as session:
        return session.execute(update(MeasurementRequest)
                               .where(MeasurementRequest.claimed_by == agent, MeasurementRequest.state == RUNNING)
                               .values(state=PENDING, claimed_by=None, claimed_at=None)
                               .execution_options(synchronize_session=False)).rowcount


def earlier_answer(session: Session, device: str, spec_hash: str, backend: str,
                   threads: int) -> MeasurementRequest | None:
    """The latest done (not fresh) request for the same network and setup, if it matches the device as it is now.

    The device as it is now: the fingerprint and backend version of its live agents,
    or, with none running, of its latest figure. An upgraded or replaced device thus
    measures again instead of repeating figures of what it was.
    """
    where = [MeasurementRequest.device == device, MeasurementRequest.backend == backend,
             MeasurementRequest.threads == threads, MeasurementRequest.state == DONE]
    setups = {(agent.fingerprint, agent.backend_version) for agent in live_agents(session, device, backend, threads)}
    if not setups:
        latest = session.execute(select(MeasurementRequest.fingerprint, MeasurementRequest.backend_version)
                                 .where(*where).order_by(MeasurementRequest.finished_at.desc()).limit(1)).first()
        if latest is None:
            return None
        setups = {tuple(latest)}
    rows = session.scalars(select(MeasurementRequest).where(
        *where, MeasurementRequest.spec_hash == spec_hash, MeasurementRequest.fresh.is_(False))
        .order_by(MeasurementRequest.id.desc()).limit(20))
    return next((row for row in rows if (row.fingerprint, row.backend_version) in setups), None)


# --- results as stored --------------------------------------------------------------------------------------


def result_to_json(result: LatencyResult) -> str:
    return json.dumps(asdict(result))


def result_from_json(text: str, cached: bool | None = None) -> LatencyResult:
    """A stored result; fields a newer agent added are ignored. ``cached`` overrides the stored flag."""
    data = json.loads(text)
    known = {field.name for field in fields(LatencyResult)}
    values = {key: value for key, value in data.items() if key in known}
    if cached is not None:
        values["cached"] = cached
    return LatencyResult(**values)


__all__ = ["DONE", "FAILED", "HEARTBEAT_SECONDS", "PENDING", "RUNNING", "STALE_BEATS", "agents_of", "as_utc",
           "check_device_name", "claim_next", "db_now", "earlier_answer", "finish", "is_live", "live_agents",
           "reclaim_orphans", "release", "release_own", "result_from_json", "result_to_json", "submit",
           "this_process", "withdraw"]
