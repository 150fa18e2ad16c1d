"""archsearch's own tables. They live beside Optuna's in the same database and hold
facts Optuna does not model: latency measurements of whole networks and of parts, device
profiles (per-kernel latency regressors), the trained weights of study trials, which worker
does which piece of a study's work, and the latency requests that measurement agents on
target devices serve.

Table names carry an ``archsearch_`` prefix so they never collide with Optuna's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, LargeBinary, String, Text, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class _Measurement:
    """Columns every latency row has: where and how it was measured, and the figures."""

    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    backend_version: Mapped[str] = mapped_column(String(64))
    threads: Mapped[int] = mapped_column(Integer)
    input_shape: Mapped[str] = mapped_column(String(64))
    median_ms: Mapped[float] = mapped_column(Float)
    p10_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    runs: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(Text)  # JSON: versions, device, warm-up, stopping rule
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class NetworkLatency(_Measurement, Base):
    """A whole network's measured latency, keyed by spec hash and measurement setup."""

    __tablename__ = "archsearch_network_latency"
    __table_args__ = (UniqueConstraint("spec_hash", "fingerprint", "backend", "backend_version", "threads",
                                       "input_shape", name="uq_archsearch_network_latency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec_hash: Mapped[str] = mapped_column(String(64), index=True)
    spec_json: Mapped[str] = mapped_column(Text)
    # The predictor's raw sum over this network's parts, once all of them are in the table.
    parts_sum_ms: Mapped[float | None] = mapped_column(Float, nullable=True)

    @classmethod
    def find(cls, session: Session, spec_hash: str, setup: dict[str, object]) -> NetworkLatency | None:
        return session.scalars(select(cls).filter_by(spec_hash=spec_hash, **setup)).first()


class PartLatency(_Measurement, Base):
    """One part (stem, a block at its input shape, head) measured alone: a row of the lookup table."""

    __tablename__ = "archsearch_part_latency"
    __table_args__ = (UniqueConstraint("part_key", "fingerprint", "backend", "backend_version", "threads",
                                       name="uq_archsearch_part_latency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    part_key: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)

    @classmethod
    def lookup(cls, session: Session, keys: list[str], setup: dict[str, object]) -> dict[str, float]:
        """Median latency by part key, for the keys present."""
        setup = {k: v for k, v in setup.items() if k != "input_shape"}
        rows = session.execute(select(cls.part_key, cls.median_ms).where(cls.part_key.in_(keys)).filter_by(**setup))
        return {key: median for key, median in rows}


class TrialWeights(Base):
    """A study trial's trained weights, so an export carries them instead of retraining.

    Keyed by study name and trial number (what users name); the spec hash guards against
    a study deleted and recreated under the same name.
    """

    __tablename__ = "archsearch_trial_weights"

    study_name: Mapped[str] = mapped_column(String(512), primary_key=True)
    trial_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec_hash: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    @classmethod
    def get(cls, session: Session, study_name: str, trial_number: int) -> TrialWeights | None:
        return session.get(cls, (study_name, trial_number))


class WorkClaim(Base):
    """Who does a piece of a study's work (train a spec, train a reference): one row per piece.

    The primary key makes the claim atomic on any database: of several workers inserting
    the same key, exactly one succeeds, and the others wait for its trial's result.
    """

    __tablename__ = "archsearch_work_claims"

    study_name: Mapped[str] = mapped_column(String(512), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DeviceProfileRecord(Base):
    """A device profile (``archsearch.latency.profile.DeviceProfile``) as JSON, keyed by what it is for.

    One row per device fingerprint, backend (and version) and thread count: building or
    importing a profile for the same key replaces it.
    """

    __tablename__ = "archsearch_device_profile"
    __table_args__ = (UniqueConstraint("fingerprint", "backend", "backend_version", "threads",
                                       name="uq_archsearch_device_profile"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    backend_version: Mapped[str] = mapped_column(String(64))
    threads: Mapped[int] = mapped_column(Integer)
    profile: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class MeasurementRequest(Base):
    """A latency measurement asked of a device's agent (``archsearch.latency.agent``): one queue row.

    A worker inserts it ``pending``; an agent serving ``device`` claims it (``running``,
    by a compare-and-swap on ``state``, so two agents never take the same one) and
    leaves it ``done`` with the result (a ``LatencyResult`` as JSON) or ``failed`` with
    the reason. Times come from the database's clock, not the device's.
    """

    __tablename__ = "archsearch_measurement_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    spec_hash: Mapped[str] = mapped_column(String(64), index=True)
    spec_json: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(32))
    threads: Mapped[int] = mapped_column(Integer)
    fresh: Mapped[bool] = mapped_column(Boolean, default=False)  # time again now (the canary), not from a cache
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The measuring agent's setup, so a later answer from this row matches the agent now serving.
    fingerprint: Mapped[str | None] = mapped_column(String(32), nullable=True)
    backend_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requested_by: Mapped[str] = mapped_column(String(256))
    claimed_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MeasurementAgent(Base):
    """A running measurement agent: what it serves, and its heartbeat (``last_seen``, database clock)."""

    __tablename__ = "archsearch_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))  # host:pid, as in MeasurementRequest.claimed_by
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    backend: Mapped[str] = mapped_column(String(32))
    backend_version: Mapped[str] = mapped_column(String(64))
    threads: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(32))
    heartbeat_seconds: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    current_request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
