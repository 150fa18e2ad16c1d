"""Opening Optuna storage with one-line errors, and finding studies."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from archsearch.errors import ArchsearchError
from archsearch.urls import scrubbed, shown_url


class StudyError(ArchsearchError):
    """A study that cannot be created, opened, resumed or found."""


ARCHSEARCH_DIRECTIONS = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
"""Every archsearch study: maximise validation accuracy, minimise latency."""


def _prepare_sqlite(url: str) -> None:
    """Create the folder of a SQLite file (``studies/`` by default) and check it is writable."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StudyError(scrubbed(f"not a storage URL: {url!r} ({error})", url)) from None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StudyError(f"cannot create {path.parent} for storage {shown_url(url)!r}: {error.strerror}") from None
    if path.exists() and not path.is_file():
        raise StudyError(f"storage {shown_url(url)!r}: {path} is not a file")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


class SqliteLock:
    """One process per SQLite study file: an advisory lock on ``<file>.lock`` for the runner's lifetime.

    SQLite serialises writers but gives Optuna no heartbeat, and a second runner on the
    same file would take the first one's running trial for an interrupted one. The lock
    is the kernel's (``flock``): it goes with the process, so a killed run never leaves a
    stale one behind. Server storage (PostgreSQL) and in-memory SQLite need none.
    """

    _held: dict[Path, list[Any]] = {}  # lock file -> [open handle, holders in this process]

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.path = (Path(f"{parsed.database}.lock").resolve() if parsed.get_backend_name() == "sqlite"
                     and parsed.database and parsed.database != ":memory:" else None)
        self.url = url
        self._holding = False

    def acquire(self) -> SqliteLock:
        """Take the lock (shared by every runner of this process); ``StudyError`` if another process has it."""
        if self.path is None or self._holding:
            return self
        if self.path in self._held:  # this process already runs on the file: one process is the rule
            self._held[self.path][1] += 1
            self._holding = True
            return self
        import fcntl
        import os

        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise StudyError(
                f"storage {shown_url(self.url)!r} is in use by another archsearch process (pid {holder}): a SQLite "
                f"file serves one process; to run several workers on one study, put it on PostgreSQL "
                f"(--storage postgresql://...)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._held[self.path] = [handle, 1]
        self._holding = True
        return self

    def release(self) -> None:
        if not self._holding or self.path is None:
            return
        self._holding = False
        entry = self._held[self.path]
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[self.path]
            entry[0].close()  # closing drops the flock


HEARTBEAT_ENV = "ARCHSEARCH_HEARTBEAT_SECONDS"
"""Seconds between a worker's heartbeats on server storage (default 60); a trial is stale after 3 of them."""


def heartbeat_seconds() -> int:
    """The heartbeat interval (``ARCHSEARCH_HEARTBEAT_SECONDS``, default 60)."""
    text = os.environ.get(HEARTBEAT_ENV, "60")
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise StudyError(f"{HEARTBEAT_ENV} must be a whole number of seconds >= 1, got {text!r}")
    return value


class RetryOnce(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a trial whose worker died (no heartbeat), once, and as a fresh start.

    The retry keeps the trial's parameters (the same network) and which reference it
    trains, not what the dead attempt had recorded of its progress. A retry that dies
    too is not retried again: the candidate kills its worker (out of memory, a crash in a
    runtime), and the record says so (``TrialRecord.reason``).
    """

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(max_retry=1)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        attempt = copy.copy(trial)
        attempt.user_attrs = {k: v for k, v in trial.user_attrs.items() if k == "reference"}
        super().__call__(study, attempt)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at ``url``; unreachable or unwritable storage raises ``StudyError``.

    Server databases get Optuna's heartbeat, so a worker that dies leaves trials that
    other workers recognise as stale and retry once (``RetryOnce``); a SQLite file serves
    one process at a time.
    """
    _prepare_sqlite(url)
    heartbeat: dict[str, Any] = {}
    if not is_sqlite(url):
        interval = heartbeat_seconds()
        heartbeat = {"heartbeat_interval": interval, "grace_period": 3 * interval,
                     "heartbeat_stale_trial_callback": RetryOnce()}
    try:
        with warnings.catch_warnings():  # the heartbeat arguments are "experimental": not our users' concern
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **heartbeat)
    except (ArgumentError, ValueError, ImportError) as error:
        raise StudyError(scrubbed(f"cannot use storage {url!r}: {str(error).splitlines()[0]}", url)) from None
    except Exception as error:  # SQLAlchemy OperationalError and friends: unreachable, unwritable
        cause = getattr(error, "orig", None) or error
        raise StudyError(scrubbed(f"cannot open storage {url!r}: {str(cause).strip().splitlines()[0]}", url)) from None


def study_files(folder: str | Path = "studies") -> list[Path]:
    """SQLite study files in ``folder`` (where studies live by default)."""
    return sorted(Path(folder).glob("*.db"))


def list_studies(storage: str | None = None) -> list[tuple[str, optuna.study.StudySummary]]:
    """(storage URL, summary) for every study in ``storage``, or in every ``studies/*.db``."""
    urls = [storage] if storage else [f"sqlite:///{path}" for path in study_files()]
    found = []
    for url in urls:
        for summary in optuna.get_all_study_summaries(open_storage(url), include_best_trial=False):
            found.append((url, summary))
    return found


def load_existing_study(name: str, storage: str | None = None) -> tuple[optuna.Study, str]:
    """A study by name (searching ``studies/*.db`` when no storage is given) and its storage URL."""
    candidates = [storage] if storage else [f"sqlite:///{Path('studies') / f'{name}.db'}"] + [
        f"sqlite:///{path}" for path in study_files()]
    for url in candidates:
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            continue
        rdb = open_storage(url)
        names = [s.study_name for s in optuna.get_all_study_summaries(rdb, include_best_trial=False)]
        if name in names:
            study = optuna.load_study(study_name=name, storage=rdb)
            if study.directions != ARCHSEARCH_DIRECTIONS:
                directions = ", ".join(d.name.lower() for d in study.directions)
                raise StudyError(f"study {name!r} in {shown_url(url)} is not an archsearch study (its objectives: "
                                 f"{directions}; archsearch's: maximize accuracy, minimize latency)")
            return study, url
    where = shown_url(storage) if storage else "studies/*.db"
    raise StudyError(f"no study named {name!r} in {where}")
