"""A device profile: per-kernel-type cost regressors that predict any network without measuring it.

In the spirit of nn-Meter and LitePred, a network's latency is the sum of its kernels'
costs (``archsearch.latency.kernels``), and each kernel type's cost is a regressor over
its configuration: a fixed cost plus costs per MAC and per element read and written,
with depthwise convolutions split by kernel size and stride and 1x1 convolutions by
width. Unlike nn-Meter, the regressors are fitted on *whole networks* measured on the
device: kernels timed alone run 0.64-1.72x their cost inside a network (measured on the
part table this replaces), while a whole network's time is exactly what a study needs.
Because a network's features are sums of its kernels', the fit is linear; it is solved
with non-negative least squares on relative error (every cost positive; a 2 ms network
counts as much as a 1 s one).

A profile names its device (fingerprint and description), backend with versions, thread
count and measurement protocol; it is stored in the cache database, can be exported to
a JSON file and imported on another machine, and says so when used on a device it was
not built on. A profile built through a device's measurement agent (``archsearch profile
build --device NAME``) also carries the device's name, and describes the agent's machine;
``device_profile`` finds it for a study on that device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.latency.kernels import feature_names, spec_features
from archsearch.spec import NetworkSpec

PROFILE_FORMAT = 1


class ProfileError(ArchsearchError):
    """A profile is missing, malformed, or for another device or setup."""


@dataclass(frozen=True)
class ProfileAccuracy:
    """How well a profile predicts: relative errors on networks it was not fitted on."""

    networks: int
    within_10pct: float
    rmspe: float
    median_abs_pct: float
    max_abs_pct: float
    p95_abs_pct: float = float("nan")

    @classmethod
    def of(cls, predicted: Sequence[float], measured: Sequence[float]) -> ProfileAccuracy:
        errors = np.asarray(predicted, dtype=float) / np.asarray(measured, dtype=float) - 1.0
        if errors.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        return cls(int(errors.size), float(np.mean(np.abs(errors) <= 0.10)), float(np.sqrt(np.mean(errors ** 2))),
                   float(np.median(np.abs(errors))), float(np.max(np.abs(errors))),
                   float(np.percentile(np.abs(errors), 95)))

    @property
    def band(self) -> float:
        """The relative error a prediction is trusted within (95th percentile of held-out errors; 10% floor)."""
        return max(0.10, self.p95_abs_pct if self.p95_abs_pct == self.p95_abs_pct else self.max_abs_pct)

    def sentence(self) -> str:
        return (f"{self.within_10pct:.0%} of {self.networks} held-out networks within +/-10%, "
                f"RMSPE {self.rmspe:.1%}, median |error| {self.median_abs_pct:.1%}, worst {self.max_abs_pct:.1%}")


def fit_coefficients(features: np.ndarray, measured_ms: np.ndarray) -> np.ndarray:
    """Non-negative per-feature costs minimising the relative error of ``features @ costs``.

    Columns are scaled to unit norm before solving (MAC counts are 1e8 times a kernel
    count), and columns no training network exercises get a zero cost.
    """
    from scipy.optimize import nnls

    rows = features / measured_ms[:, None]  # relative error: each row divided by its target
    scale = np.linalg.norm(rows, axis=0)
    used = scale > 0
    solution, _ = nnls(rows[:, used] / scale[used], np.ones(len(measured_ms)), maxiter=50 * rows.shape[1])
    coefficients = np.zeros(features.shape[1])
    coefficients[used] = solution / scale[used]
    return coefficients


def cross_validated(features: np.ndarray, measured_ms: np.ndarray, folds: int = 5,
                    seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions: each network predicted by a fit that did not see it."""
    order = np.random.default_rng(seed).permutation(len(measured_ms))
    predicted = np.empty(len(measured_ms))
    for fold in range(folds):
        held = order[fold::folds]
        kept = np.setdiff1d(order, held)
        predicted[held] = features[held] @ fit_coefficients(features[kept], measured_ms[kept])
    return predicted


@dataclass(frozen=True)
class DeviceProfile:
    """Kernel-type costs for one device, backend and thread count, and how well they predict."""

    device: dict[str, Any]
    backend: str
    backend_version: str
    threads: int
    protocol: dict[str, Any]
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    accuracy: ProfileAccuracy
    training_hashes: tuple[str, ...] = ()
    build: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    device_name: str | None = None
    """The device's name (``StudyConfig.device``) when built through its measurement agent; None when built here."""

    @property
    def fingerprint(self) -> str:
        return str(self.device.get("fingerprint", ""))

    @property
    def stored_fingerprint(self) -> str:
        """The fingerprint column it is stored under: a named device's profile has a row of its own.

        Two boards of one model share a fingerprint, and an agent may run on a machine
        that also has a profile of its own; neither replaces the other. The column holds
        32 characters: the fingerprint, then a digest of the device's name.
        """
        if self.device_name is None:
            return self.fingerprint
        digest = hashlib.sha256(self.device_name.encode()).hexdigest()
        return f"{self.fingerprint[:16]}@{digest[:32 - 1 - len(self.fingerprint[:16])]}"

    @property
    def key(self) -> dict[str, Any]:
        """What a profile is for: the columns it is stored and looked up under."""
        return {"fingerprint": self.fingerprint, "backend": self.backend, "backend_version": self.backend_version,
                "threads": self.threads}

    def predict_features(self, features: Sequence[float]) -> float:
        names = feature_names()
        if tuple(names) != self.features:
            raise ProfileError("this profile was built with another kernel decomposition "
                               "(an older archsearch): build it again with `archsearch profile build`")
        return float(np.dot(features, self.coefficients))

    def predict(self, spec: NetworkSpec) -> float:
        """Predicted batch-1 latency of ``spec`` in milliseconds; nothing is converted or run."""
        return self.predict_features(spec_features(spec))

    def kernel_costs(self) -> dict[str, dict[str, float]]:
        """Non-zero costs by kernel type: ``{type: {feature: ms per unit}}``."""
        table: dict[str, dict[str, float]] = {}
        for name, value in zip(self.features, self.coefficients):
            if value > 0:
                kind, _, feature = name.partition(".")
                table.setdefault(kind, {})[feature or "ms"] = value
        return table

    def as_dict(self) -> dict[str, Any]:
        return {"format": PROFILE_FORMAT, "kind": "archsearch device profile", "device": self.device,
                "backend": self.backend, "backend_version": self.backend_version, "threads": self.threads,
                "protocol": self.protocol, "features": list(self.features), "coefficients": list(self.coefficients),
                "accuracy": asdict(self.accuracy), "training_hashes": list(self.training_hashes),
                "build": self.build, "created_at": self.created_at, "device_name": self.device_name}

    @classmethod
    def from_dict(cls, data: Any, source: str = "profile") -> DeviceProfile:
        if not isinstance(data, dict) or data.get("kind") != "archsearch device profile":
            raise ProfileError(f"{source}: not an archsearch device profile")
        if data.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"{source}: profile format {data.get('format')!r}, this archsearch reads "
                               f"{PROFILE_FORMAT}")
        try:
            features, coefficients = tuple(data["features"]), tuple(float(c) for c in data["coefficients"])
            if len(features) != len(coefficients):
                raise ValueError("features and coefficients differ in length")
            return cls(device=dict(data["device"]), backend=str(data["backend"]),
                       backend_version=str(data["backend_version"]), threads=int(data["threads"]),
                       protocol=dict(data["protocol"]), features=features, coefficients=coefficients,
                       accuracy=ProfileAccuracy(**data["accuracy"]),
                       training_hashes=tuple(data.get("training_hashes", ())), build=dict(data.get("build", {})),
                       created_at=str(data.get("created_at", "")),
                       device_name=None if data.get("device_name") is None else str(data["device_name"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileError(f"{source}: malformed profile ({error})") from None

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "profile") -> DeviceProfile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ProfileError(f"{source}: not JSON ({error.msg} at line {error.lineno})") from None
        return cls.from_dict(data, source)


# ----- storage: the cache database (or any SQLAlchemy URL) -----


def store_profile(profile: DeviceProfile, storage: str | None = None) -> None:
    """Store ``profile`` under its device (and device name), backend, version and threads, replacing any for the
    same key."""
    from sqlalchemy import select

    from archsearch.db import DeviceProfileRecord, Store

    key = {**profile.key, "fingerprint": profile.stored_fingerprint}
    with Store.at(storage).session() as session:
        row = session.scalars(select(DeviceProfileRecord).filter_by(**key)).first()
        if row is None:
            row = DeviceProfileRecord(**key, profile="")
            session.add(row)
        row.profile = profile.to_json()
        row.created_at = datetime.now(UTC)


def stored_profiles(storage: str | None = None) -> list[DeviceProfile]:
    """Every stored profile, newest first."""
    from sqlalchemy import select

    from archsearch.db import DeviceProfileRecord, Store

    with Store.at(storage).session() as session:
        rows = session.scalars(select(DeviceProfileRecord).order_by(DeviceProfileRecord.created_at.desc())).all()
        return [DeviceProfile.from_json(row.profile, f"stored profile {row.id}") for row in rows]


@dataclass(frozen=True)
class ProfileChoice:
    """The profile a prediction uses, and why it may not describe this machine."""

    profile: DeviceProfile
    caveat: str | None


def find_profile(backend: str, backend_version: str, threads: int, storage: str | None = None) -> ProfileChoice | None:
    """This device's profile for the setup; else one built elsewhere (with a caveat saying so); else None.

    A profile measured with other package versions is used only with a caveat too: a new
    LiteRT can change kernel costs.
    """
    from archsearch.latency.device import device_info

    here = device_info().fingerprint
    candidates = [p for p in stored_profiles(storage) if p.backend == backend and p.threads == threads]
    candidates.sort(key=lambda p: (p.fingerprint != here, p.backend_version != backend_version))
    if not candidates:
        return None
    best = candidates[0]
    caveats = []
    if best.fingerprint != here:
        caveats.append(f"profile built on another device ({best.device.get('cpu_model', '?')}, "
                       f"fingerprint {best.fingerprint}; this machine is {here}): predictions are that device's")
    if best.backend_version != backend_version:
        caveats.append(f"profile measured with {best.backend_version}, installed: {backend_version}")
    return ProfileChoice(best, "; ".join(caveats) or None)


def require_profile(backend: str = "litert", threads: int = 1, storage: str | None = None) -> ProfileChoice:
    """The profile to predict with (``find_profile``), or a ``ProfileError`` saying how to get one."""
    from archsearch.latency.backends import get_backend

    info = get_backend(backend)
    choice = find_profile(info.name, info.version(), threads, storage)
    if choice is None:
        raise ProfileError(f"no device profile for {backend} with {threads} thread(s) in this cache: build one "
                           f"with `archsearch profile build --threads {threads}` (about 15 minutes) or import "
                           f"a team's with `archsearch profile import FILE`")
    return choice


def this_device_profile(backend: str, threads: int, storages: tuple[str | None, ...] = (None,)) -> DeviceProfile | None:
    """The profile measured on this very machine with the installed backend, from the first storage holding one.

    Profiles of other devices or versions are never used to screen a study measured here:
    their predictions describe another runtime. Nor are named devices' profiles (built
    through an agent, ``device_profile``), even when that agent ran on this machine.
    """
    from archsearch.latency.backends import get_backend
    from archsearch.latency.device import device_info

    info = get_backend(backend)
    key = {"fingerprint": device_info().fingerprint, "backend": info.name, "backend_version": info.version(),
           "threads": threads}
    for storage in storages:
        for profile in stored_profiles(storage):
            if profile.key == key and profile.device_name is None:
                return profile
    return None


def device_setups(device_name: str, backend: str, threads: int,
                  storage: str | None = None) -> set[tuple[str | None, str | None]]:
    """(fingerprint, backend version) of ``device_name`` as it is now: its live agents', else its latest figure's.

    Empty when the device has neither a running agent nor a measurement in ``storage``.
    """
    from sqlalchemy import select

    from archsearch.db import Store
    from archsearch.db.models import MeasurementRequest
    from archsearch.latency.agent_queue import DONE, live_agents

    with Store.at(storage).session() as session:
        setups: set[tuple[str | None, str | None]] = {
            (agent.fingerprint, agent.backend_version) for agent in live_agents(session, device_name, backend, threads)}
        if not setups:
            latest = session.execute(
                select(MeasurementRequest.fingerprint, MeasurementRequest.backend_version)
                .where(MeasurementRequest.device == device_name, MeasurementRequest.backend == backend,
                       MeasurementRequest.threads == threads, MeasurementRequest.state == DONE)
                .order_by(MeasurementRequest.finished_at.desc(), MeasurementRequest.id.desc()).limit(1)).first()
            if latest is not None:
                setups = {(latest[0], latest[1])}
    return setups


def device_profile(device_name: str, backend: str = "litert", threads: int = 1,
                   storage: str | None | tuple[str | None, ...] = None) -> DeviceProfile | None:
    """The profile of the named device (built through its agent) for ``backend`` and ``threads``, or None.

    ``storage`` is the database the device's agent serves (a study's), or a tuple of
    databases searched together (the first preferred on a tie). Of several profiles
    with the device's name, the one whose fingerprint matches the device as it is now
    (its running agent's, else its latest measurement's in the first storage: a board
    replaced or upgraded keeps its name) is preferred, then the one whose backend
    version matches too, then the newest. A profile built without a name (on the board
    itself, then imported) is used when its fingerprint matches the device's and no
    named profile does. The installed backend is not consulted: the device's is what counts.
    """
    from archsearch.latency.agent_queue import check_device_name

    check_device_name(device_name)
    storages = storage if isinstance(storage, tuple) else (storage,)
    setups = device_setups(device_name, backend, threads, storages[0])
    fingerprints = {fingerprint for fingerprint, _ in setups}
    candidates: list[tuple[tuple[bool, bool, bool, int, int], DeviceProfile]] = []
    for place, url in enumerate(storages):
        for age, profile in enumerate(stored_profiles(url)):  # newest first
            if profile.backend != backend or profile.threads != threads:
                continue
            named = profile.device_name == device_name
            same_hardware = profile.fingerprint in fingerprints
            if not named and not (same_hardware and profile.device_name is None):
                continue
            rank = (bool(fingerprints) and not same_hardware, not named,
                    bool(setups) and (profile.fingerprint, profile.backend_version) not in setups, place, age)
            candidates.append((rank, profile))
    if not candidates:
        return None
    return min(candidates, key=lambda item: item[0])[1]
