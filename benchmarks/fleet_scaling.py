"""How many trials an hour do one and two workers finish on this machine, and what bounds N workers?

    python benchmarks/fleet_scaling.py [--throughput] [--round-trips] [--sampler]   (none given: all three)
        [--minutes 6] [--configs sqlite:1 postgresql:1 postgresql:2] [--space mobilenetv3] [--dataset digits]
        [--epochs 1] [--budget-ms 20] [--sizes 100 1000 5000] [--asks 3] [--quick] [--out FILE]

Three parts, each run on its own when its flag is given:

``throughput``: real ``archsearch worker`` processes on one study per configuration (by
default 1 worker on SQLite, 1 on PostgreSQL, 2 on PostgreSQL), each for ``--minutes`` of
wall time (``--timeout``: no trial starts after it, the running one finishes) with a trial
count too large to reach and no references, so every configuration spends its time on
search trials. The study is recorded first, in this process, exactly as ``archsearch run``
records it, then all of a configuration's workers start together. Each configuration has
its own fresh database and latency cache (``ARCHSEARCH_CACHE_DIR``), so what one
configuration measured does not speed up the next. Trials per hour = search trials that
count / wall time from the workers' launch to the last one's exit (start-up and the last
trial included); the figure over the busy span (first trial start to last trial end) is
given too.

``round_trips``: one small study in this process (the tiny space and dataset of
tests/conftest.py, 3 trials, 1 epoch, no references) on SQLite and on PostgreSQL, with a
SQLAlchemy ``before_cursor_execute`` listener on the ``Engine`` class: statements,
transactions, connection checkouts (each a pre-ping: ``pool_pre_ping``), time inside
statements and request bytes, per trial, split into Optuna's engine and archsearch's
(``Store``: latency tables, work claims). On PostgreSQL the server's own statement log
(``log_statement=all`` for that database) counts what reached the server, BEGIN, COMMIT
included; with one pre-ping per connection checkout, the round trips.

``sampler``: archsearch's TPE sampler (``make_sampler`` with the default ``StudyConfig``;
``shared=False`` as on SQLite, ``shared=True`` as on a server: constant liar, one other
worker's trial running) proposing one ``mobilenetv3`` candidate on studies that already
hold 100, 1,000 and 5,000 finished trials (synthetic, with params drawn from the space,
two objective values, the ``latency_budget`` constraint and user attributes of a real
trial's size), in memory, SQLite and PostgreSQL storage: median of ``--asks`` asks. Also
``study.get_trials()`` cold (a new process or storage object: every trial read) and warm
(Optuna's cache: only new and unfinished trials read, what a running worker pays), one
pass of ``TrialRecord.of`` over the study (the runner makes several per trial) and
``pareto_front``.

A private PostgreSQL server is started from Debian's binaries as tests/conftest.py's
``PostgresServer`` does (default settings, loopback TCP) and removed at the end.
Writes JSON (machine, settings, notes, one section per part), after each part.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from results_file import REPOSITORY, write_results  # benchmarks/ is the script folder: on sys.path

DEFAULT_OUT = Path(__file__).parent / "results" / "fleet_scaling.json"
STUDY = "fleet"
DEFAULT_CONFIGS = ["sqlite:1", "postgresql:1", "postgresql:2"]
TRIAL_CAP = 100_000
"""``--trials`` of the throughput studies: never reached, the timeout ends them."""
ROUND_TRIP_BUDGET_MS = 1000.0
"""Every network of the tiny space is within it: each round-trip trial is screened, trained and measured."""
PARTS = ("throughput", "round_trips", "sampler")


# ----- machine, environment, PostgreSQL -----


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = round(int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1]) / 2**20, 1)
    versions = {}
    for package in ("archsearch", "optuna", "sqlalchemy", "psycopg", "tensorflow", "keras", "ai-edge-litert"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {"cpu_model": cpu, "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_gib": memory, "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(), "temp_filesystem": filesystem_type(Path(tempfile.gettempdir())),
            "versions": versions, "loadavg_at_start": os.getloadavg()}


def filesystem_type(path: Path) -> str | None:
    """The mount type of ``path`` (tmpfs would make SQLite's fsync free): the longest matching mount."""
    best, kind = "", None
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and str(path.resolve()).startswith(fields[1]) and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


SCRATCH: list[Path] = []
"""Temporary folders this run made (databases, caches, worker logs): removed at the end unless --keep-files."""


def scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    SCRATCH.append(path)
    return path


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def conftest() -> Any:
    """tests/conftest.py as a module (``PostgresServer``, ``write_tiny_inputs``, ``TINY_SPACE``)."""
    sys.path.insert(0, str(REPOSITORY / "tests"))
    try:
        import conftest as module
    finally:
        sys.path.remove(str(REPOSITORY / "tests"))
    return module


class PrivatePostgres:
    """A throwaway PostgreSQL server (tests/conftest.py's ``PostgresServer``) with one database per use."""

    def __init__(self) -> None:
        self.server = conftest().PostgresServer()
        self.version = self.server.binaries.parent.name
        self.log = self.server.root / "log"

    def database(self, name: str, log_statements: bool = False) -> str:
        """A new, empty database ``name``; its URL. ``log_statements``: the server logs each of its statements."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.server.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
                if log_statements:
                    connection.execute(text(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'"))
        finally:
            engine.dispose()
        return f"{self.server.url.rsplit('/', 1)[0]}/{name}"

    def log_size(self) -> int:
        return self.log.stat().st_size

    def logged_statements(self, start: int, end: int | None = None) -> Counter:
        """Statements the server logged between two log offsets, by first word (BEGIN, SELECT, COMMIT...)."""
        with open(self.log, "rb") as handle:
            handle.seek(start)
            text = handle.read(None if end is None else end - start).decode(errors="replace")
        found: Counter = Counter()
        for match in re.finditer(r"LOG:\s+(?:statement|execute [^:]*):\s*(\w+)", text):
            found[match.group(1).upper()] += 1
        return found

    def remove(self) -> None:
        self.server.remove()


def start_postgres(needed: bool) -> tuple[PrivatePostgres | None, str | None]:
    if not needed:
        return None, None
    try:
        server = PrivatePostgres()
    except Exception as error:  # binaries missing, initdb failing: the PostgreSQL rows are left out, not faked
        print(f"PostgreSQL unavailable, its rows are skipped: {type(error).__name__}: {error}", flush=True)
        return None, f"{type(error).__name__}: {error}"
    print(f"PostgreSQL {server.version} started on 127.0.0.1:{server.server.port} (default settings)", flush=True)
    return server, None


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")  # ask/tell on server storage


# ----- part 1: throughput of real worker processes -----


def recipe(args: argparse.Namespace, tiny: Path | None) -> dict[str, Any]:
    """The study settings of the throughput part (the tiny space and dataset with ``--quick``)."""
    if tiny is not None:
        return {"space": str(tiny / "tiny_space.yaml"), "dataset": str(tiny / "tiny.npz"), "epochs": 1,
                "budget_ms": ROUND_TRIP_BUDGET_MS}
    return {"space": args.space, "dataset": args.dataset, "epochs": args.epochs, "budget_ms": args.budget_ms}


def record_study(url: str, root: Path, settings: dict[str, Any], seed: int) -> None:
    """Create the study as ``archsearch run --trials TRIAL_CAP --no-references`` would, and let it go."""
    from archsearch.study import StudyConfig, StudyRunner

    config = StudyConfig(name=STUDY, trials=TRIAL_CAP, references=False, seed=seed, storage=url,
                         artifacts=str(root / "artifacts"), **settings)
    with environment(ARCHSEARCH_CACHE_DIR=str(root / "cache")):
        StudyRunner(config).close()


def stop(process: subprocess.Popen) -> None:
    """End a worker this script started and its children (its own process group): TERM, then KILL."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
            return


def run_workers(url: str, root: Path, workers: int, minutes: float, grace_minutes: float
                ) -> tuple[list[subprocess.Popen], float, float]:
    """``workers`` ``archsearch worker`` processes started together; (processes, launch epoch, wall seconds)."""
    env = {**os.environ, "ARCHSEARCH_CACHE_DIR": str(root / "cache"), "PYTHONUNBUFFERED": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "archsearch", "worker", "--study", STUDY, "--storage", url,
               "--timeout", str(minutes)]
    processes: list[subprocess.Popen] = []
    launched, started = time.time(), time.monotonic()
    try:
        for index in range(workers):
            with open(root / f"worker{index + 1}.log", "w") as log:
                processes.append(subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))
        deadline = started + (minutes + grace_minutes) * 60
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            stop(process)  # the grace ran out (a hung worker), or the benchmark was interrupted
    return processes, launched, time.monotonic() - started


def throughput_config(engine: str, workers: int, args: argparse.Namespace, settings: dict[str, Any],
                      server: PrivatePostgres | None, index: int) -> dict[str, Any]:
    import optuna

    from archsearch.study import TrialRecord

    root = scratch(f"archsearch-fleet-{engine}{workers}-")
    if engine == "sqlite":
        url = f"sqlite:///{root / 'study.db'}"
    else:
        assert server is not None
        url = server.database(f"throughput_{index}_{engine}{workers}")
    record_study(url, root, settings, args.seed)
    load = os.getloadavg()
    processes, launched, wall = run_workers(url, root, workers, args.minutes, args.grace_minutes)

    study = optuna.load_study(study_name=STUDY, storage=url)
    trials = study.get_trials(deepcopy=False)
    counted = [(t, TrialRecord.of(t)) for t in trials if TrialRecord.of(t).counts_as_search_trial]
    seconds_by_status: dict[str, list[float]] = defaultdict(list)
    first_start: dict[str, float] = {}
    for trial, record in counted:
        if trial.datetime_start and trial.datetime_complete:
            seconds_by_status[record.label].append((trial.datetime_complete - trial.datetime_start).total_seconds())
            start = trial.datetime_start.timestamp()  # naive local time, as time.time() reads it
            first_start[record.worker or "?"] = min(first_start.get(record.worker or "?", start), start)
    starts = [t.datetime_start for t, _ in counted if t.datetime_start]
    ends = [t.datetime_complete for t, _ in counted if t.datetime_complete]
    busy = (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0
    trained = [r for _, r in counted if r.trained and not r.is_duplicate]  # a duplicate copies its source's record
    row = {
        "engine": engine, "workers": workers, "timeout_minutes": args.minutes, "storage": url,
        "wall_seconds": round(wall, 1), "search_trials": len(counted),
        "trials_per_hour": round(len(counted) / wall * 3600, 1) if wall else 0.0,
        "busy_seconds": round(busy, 1),
        "trials_per_hour_busy": round(len(counted) / busy * 3600, 1) if busy else 0.0,
        "statuses": dict(Counter(r.label for _, r in counted)),
        "not_counted": dict(Counter(TrialRecord.of(t).label for t in trials
                                    if not TrialRecord.of(t).counts_as_search_trial)),
        "mean_seconds_by_status": {k: round(statistics.mean(v), 1) for k, v in sorted(seconds_by_status.items())},
        "per_worker": dict(Counter(r.worker or "?" for _, r in counted)),
        "first_trial_after_seconds": sorted(round(start - launched, 1) for start in first_start.values()),
        "trained": len(trained),
        "mean_trained_mmacs": round(statistics.mean(r.macs for r in trained if r.macs) / 1e6, 1)
        if any(r.macs for r in trained) else None,
        "mean_trained_input_size": round(statistics.mean(r.input_size for r in trained if r.input_size), 1)
        if any(r.input_size for r in trained) else None,
        "failure_reasons": dict(Counter((r.failure_reason or "")[:120] for _, r in counted if r.label == "failed")),
        "returncodes": [p.returncode for p in processes],
        "loadavg_before": load, "loadavg_after": os.getloadavg(),
    }
    if any(p.returncode != 0 for p in processes):
        row["log_tails"] = {log.name: log.read_text(errors="replace")[-2000:] for log in sorted(root.glob("worker*.log"))}
    return row


def throughput_part(args: argparse.Namespace, server: PrivatePostgres | None, tiny: Path | None) -> dict[str, Any]:
    settings = recipe(args, tiny)
    print(f"\n== throughput: {settings['space']} on {settings['dataset']}, {settings['epochs']} epoch(s), budget "
          f"{settings['budget_ms']} ms, {args.minutes} min per configuration (+ start-up and the last trial) ==",
          flush=True)
    print(f"{'engine':10s} {'workers':>7s} {'trials':>6s} {'wall s':>7s} {'trials/h':>8s} {'busy/h':>7s} "
          f"{'trained':>7s}  statuses", flush=True)
    rows, skipped = [], []
    for index, text in enumerate(args.configs):
        engine, _, count = text.partition(":")
        workers = int(count or 1)
        if engine != "sqlite" and server is None:
            skipped.append(text)
            continue
        if engine == "sqlite" and workers > 1:
            skipped.append(f"{text} (a SQLite study serves one process)")
            continue
        row = throughput_config(engine, workers, args, settings, server, index)
        rows.append(row)
        print(f"{engine:10s} {workers:7d} {row['search_trials']:6d} {row['wall_seconds']:7.0f} "
              f"{row['trials_per_hour']:8.1f} {row['trials_per_hour_busy']:7.1f} {row['trained']:7d}  "
              f"{json.dumps(row['statuses'])}{'  (a worker failed: see log_tails)' if 'log_tails' in row else ''}",
              flush=True)

    def rate(engine: str, workers: int) -> float | None:
        return next((r["trials_per_hour"] for r in rows if r["engine"] == engine and r["workers"] == workers), None)

    summary: dict[str, Any] = {}
    sqlite1, pg1, pg2 = rate("sqlite", 1), rate("postgresql", 1), rate("postgresql", 2)
    if sqlite1 and pg1:
        summary["postgresql_over_sqlite_1_worker"] = round(pg1 / sqlite1, 3)
    if pg1 and pg2:
        summary["speedup_2_workers"] = round(pg2 / pg1, 3)
        summary["scaling_efficiency_2_workers"] = round(pg2 / pg1 / 2, 3)
    return {"recipe": settings, "rows": rows, "skipped": skipped, "summary": summary}


# ----- part 2: database statements per trial -----


class StatementCounter:
    """Counts what SQLAlchemy sends, for every engine of the process (class-level events)."""

    def __init__(self) -> None:
        self.counts: dict[Any, Counter] = defaultdict(Counter)
        self.engines: dict[int, Any] = {}
        self._listeners: list[tuple[Any, str, Callable[..., None]]] = []

    def _key(self, connection: Any) -> int:
        engine = connection.engine
        self.engines.setdefault(id(engine), engine)
        return id(engine)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        counts = self.counts[self._key(conn)]
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        counts["statements"] += 1
        counts[verb if verb in ("SELECT", "INSERT", "UPDATE", "DELETE") else "other_sql"] += 1
        if executemany:
            counts["executemany"] += 1
        counts["request_bytes"] += len(statement.encode()) + len(repr(parameters).encode())
        conn.info.setdefault("fleet_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        started = conn.info.get("fleet_started")
        if started:
            self.counts[self._key(conn)]["statement_seconds"] += time.perf_counter() - started.pop()

    def _event(self, name: str) -> Callable[..., None]:
        def count(conn: Any, *rest: Any) -> None:
            self.counts[self._key(conn)][name] += 1

        return count

    def _checkout(self, dbapi_connection, record, proxy) -> None:  # type: ignore[no-untyped-def]
        self.counts[("pool", id(proxy._pool))]["checkouts"] += 1  # pool_pre_ping: one ping each

    def install(self) -> StatementCounter:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        self._listeners = [(Engine, "before_cursor_execute", self._before),
                           (Engine, "after_cursor_execute", self._after),
                           (Engine, "begin", self._event("begins")), (Engine, "commit", self._event("commits")),
                           (Engine, "rollback", self._event("rollbacks")), (Pool, "checkout", self._checkout)]
        for target, name, function in self._listeners:
            event.listen(target, name, function)
        return self

    def remove(self) -> None:
        from sqlalchemy import event

        for target, name, function in self._listeners:
            event.remove(target, name, function)
        self._listeners = []

    def snapshot(self) -> dict[Any, Counter]:
        return copy.deepcopy(dict(self.counts))

    def by_category(self, snapshot: dict[Any, Counter], optuna_engine: Any) -> dict[str, Counter]:
        """A snapshot's counts as Optuna's engine, archsearch's (``Store``) and any other."""
        from archsearch.db.engine import Store

        ours = {id(store.engine) for store in Store._open.values()}
        pools = {id(engine.pool): key for key, engine in self.engines.items()}
        pools.update({id(store.engine.pool): id(store.engine) for store in Store._open.values()})
        pools[id(optuna_engine.pool)] = id(optuna_engine)
        result: dict[str, Counter] = defaultdict(Counter)
        for key, counts in snapshot.items():
            engine_key = pools.get(key[1], key) if isinstance(key, tuple) else key
            name = "optuna" if engine_key == id(optuna_engine) else "archsearch" if engine_key in ours else "other"
            result[name].update(counts)
        return result


def _difference(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(after) | set(before)):
        counts = {k: after.get(name, Counter())[k] - before.get(name, Counter())[k]
                  for k in set(after.get(name, Counter())) | set(before.get(name, Counter()))}
        counts = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in sorted(counts.items()) if v}
        if counts:
            out[name] = counts
    return out


def _total(parts: dict[str, dict[str, float]], key: str) -> float:
    return sum(counts.get(key, 0) for counts in parts.values())


def round_trip_study(engine: str, args: argparse.Namespace, tiny: Path, server: PrivatePostgres | None,
                     counter: StatementCounter) -> dict[str, Any]:
    from archsearch.study import StudyConfig, StudyRunner

    root = scratch(f"archsearch-fleet-roundtrips-{engine}-")
    url = (f"sqlite:///{root / 'study.db'}" if engine == "sqlite"
           else server.database(f"round_trips_{len(counter.engines)}_{int(time.time())}", log_statements=True))
    config = StudyConfig(name="roundtrips", space=str(tiny / "tiny_space.yaml"), dataset=str(tiny / "tiny.npz"),
                         budget_ms=ROUND_TRIP_BUDGET_MS, trials=args.round_trip_trials, epochs=1, references=False,
                         seed=args.seed, storage=url, artifacts=str(root / "artifacts"))
    marks: list[tuple[str, dict[Any, Counter], int | None, float]] = []

    def mark(label: str) -> None:
        marks.append((label, counter.snapshot(), server.log_size() if server and engine != "sqlite" else None,
                      time.perf_counter()))

    statuses: list[str] = []

    def progress(study: Any, report: Any) -> None:
        statuses.append(report.status)
        mark(f"trial {report.number}")

    with environment(ARCHSEARCH_CACHE_DIR=str(root / "cache")):
        mark("start")
        runner = StudyRunner(config, progress)
        mark("setup")
        runner.run()
        mark("end")
    optuna_engine = runner.study._storage._backend.engine
    phases = []
    for (_, before, log_before, t0), (label, after, log_after, t1) in zip(marks, marks[1:]):
        parts = _difference(counter.by_category(after, optuna_engine), counter.by_category(before, optuna_engine))
        phase: dict[str, Any] = {"phase": label, "seconds": round(t1 - t0, 2), "client": parts,
                                 "statements": int(_total(parts, "statements"))}
        if log_before is not None and server is not None:
            logged = server.logged_statements(log_before, log_after)
            phase["server_statements"] = sum(logged.values())
            phase["server_by_command"] = dict(logged)
        phases.append(phase)
    trials = [p for p in phases if p["phase"].startswith("trial ")]

    def per_trial(key: str, source: str = "client") -> float | None:
        if not trials:
            return None
        if source == "server":
            values = [p.get("server_statements") for p in trials]
            return None if None in values else round(statistics.mean(values), 1)  # type: ignore[arg-type]
        return round(statistics.mean(_total(p["client"], key) for p in trials), 4)

    summary = {
        "engine": engine, "trials": len(trials), "statuses": statuses,
        "statements_per_trial": per_trial("statements"),
        "optuna_statements_per_trial": round(statistics.mean(p["client"].get("optuna", {}).get("statements", 0)
                                                             for p in trials), 1) if trials else None,
        "archsearch_statements_per_trial": round(statistics.mean(
            p["client"].get("archsearch", {}).get("statements", 0) for p in trials), 1) if trials else None,
        "transactions_per_trial": per_trial("commits"),
        "checkouts_per_trial": per_trial("checkouts"),
        "statement_ms_per_trial": round(per_trial("statement_seconds") * 1000, 1) if trials else None,  # type: ignore[operator]
        "request_kib_per_trial": round(per_trial("request_bytes") / 1024, 1) if trials else None,  # type: ignore[operator]
        "trial_seconds_mean": round(statistics.mean(p["seconds"] for p in trials), 2) if trials else None,
        "server_statements_per_trial": per_trial("", "server") if engine != "sqlite" else None,
        "round_trips_per_trial": None,
        "setup_statements": phases[0]["statements"] if phases else None,
    }
    if summary["server_statements_per_trial"] is not None and summary["checkouts_per_trial"] is not None:
        # the pre-ping is an empty query (";"), which the server does not log: one round trip more per checkout
        summary["round_trips_per_trial"] = round(summary["server_statements_per_trial"]
                                                 + summary["checkouts_per_trial"], 1)
    return {"summary": summary, "phases": phases, "storage": url}


def round_trips_part(args: argparse.Namespace, server: PrivatePostgres | None, tiny: Path) -> dict[str, Any]:
    print(f"\n== round trips: tiny space, {args.round_trip_trials} trials, 1 epoch, in this process ==", flush=True)
    print(f"{'engine':10s} {'stmts/trial':>11s} {'optuna':>6s} {'archs.':>6s} {'commits':>7s} {'checkouts':>9s} "
          f"{'trips':>6s} {'sql ms':>6s} {'KiB':>5s} {'trial s':>7s}", flush=True)
    counter = StatementCounter().install()
    results = []
    try:
        for engine in ("sqlite", "postgresql"):
            if engine == "postgresql" and server is None:
                continue
            result = round_trip_study(engine, args, tiny, server, counter)
            results.append(result)
            s = result["summary"]
            logged = s["round_trips_per_trial"]
            print(f"{engine:10s} {s['statements_per_trial']:11.1f} {s['optuna_statements_per_trial']:6.1f} "
                  f"{s['archsearch_statements_per_trial']:6.1f} {s['transactions_per_trial']:7.1f} "
                  f"{s['checkouts_per_trial']:9.1f} {'-' if logged is None else f'{logged:.0f}':>6s} "
                  f"{s['statement_ms_per_trial']:6.1f} {s['request_kib_per_trial']:5.1f} {s['trial_seconds_mean']:7.1f}",
                  flush=True)
    finally:
        counter.remove()
    return {"studies": results,
            "legend": {"statements": "SQL statements SQLAlchemy executed (before_cursor_execute)",
                       "commits": "transactions committed (ConnectionEvents.commit)",
                       "checkouts": "connection checkouts from a pool; with pool_pre_ping each sends a ping first",
                       "server_statements": "statements the PostgreSQL server logged for the study's database "
                                            "(log_statement=all), BEGIN and COMMIT included; not the pre-ping, an "
                                            "empty query (';') the server does not log",
                       "round_trips": "server_statements + checkouts (one pre-ping each): messages that wait for "
                                      "the server's answer, each one network round trip",
                       "statement_seconds": "time inside cursor.execute (commit and ping not included)",
                       "request_bytes": "SQL text plus repr() of its parameters: an estimate of bytes sent"}}


# ----- part 3: the sampler as the study grows -----


def protocol_template() -> dict[str, Any]:
    """A ``latency_protocol`` user attribute shaped like a real measurement's."""
    from archsearch.latency.device import device_info
    from archsearch.latency.timing import TimingPolicy

    version = "unknown"
    with contextlib.suppress(metadata.PackageNotFoundError):
        version = metadata.version("ai-edge-litert")
    return {"backend": "litert", "backend_version": version, "description": "LiteRT CPU interpreter, XNNPACK",
            "threads": 1, "input_shape": "1x224x224x3", "precision": "float32", "batch": 1,
            "statistic": "median of single-invoke times", "anchor": None, "device": device_info().as_dict(),
            "policy": TimingPolicy().as_dict(), "warmup_runs": 10, "stable": True,
            "other_statistics": {"min_ms": 0.0, "p20_ms": 0.0, "iqm_ms": 0.0}}


class SyntheticTrials:
    """Finished trials of a ``mobilenetv3`` study, with what a real trial stores (params, values, the budget
    constraint, the user attributes a trained or rejected candidate records)."""

    def __init__(self, space: Any, budget_ms: float, epochs: int, seed: int) -> None:
        import optuna

        from archsearch.cost import network_cost
        from archsearch.study import StudyConfig

        self.space, self.budget, self.epochs = space, budget_ms, epochs
        self.rng = random.Random(seed)
        self.distributions = {p.name: optuna.distributions.CategoricalDistribution(p.choices)
                              for p in space.parameters}
        self.config = StudyConfig(budget_ms=budget_ms)
        self.template = protocol_template()
        self.network_cost = network_cost
        sample = [network_cost(space.spec_at(space.sample_point(self.rng))).macs for _ in range(50)]
        self.median_macs = statistics.median(sample)

    def point(self) -> dict[str, Any]:
        return self.space.sample_point(self.rng)

    def trial(self) -> Any:
        import optuna

        from archsearch.spec import canonical_json, spec_hash
        from archsearch.study.trial import BUDGET_CONSTRAINT

        point = self.point()
        spec = self.space.spec_at(point)
        cost = self.network_cost(spec)
        ratio = cost.macs / self.median_macs
        latency = 0.8 * self.budget * ratio * math.exp(self.rng.gauss(0, 0.15))  # about a third over budget
        attrs: dict[str, Any] = {
            "worker": "host:1234", "spec": json.loads(canonical_json(spec)), "spec_hash": spec_hash(spec),
            "spec_name": spec.name, "params": cost.params, "macs": cost.macs, "input_size": spec.input.size,
            "latency_source": "measured", "screen_latency_ms": latency}
        if latency > self.budget * 1.1:  # rejected before training, as the screen does
            accuracy, status = 0.0, "rejected_measured"
            attrs.update(trained=False, measured_latency_ms=latency)
        else:
            accuracy = min(0.99, max(0.1, 0.8 + 0.05 * math.log(ratio) + self.rng.gauss(0, 0.03)))
            status = "complete" if latency <= self.budget else "over_budget"
            history = [{"epoch": e + 1, "loss": 1.0 / (e + 1), "accuracy": accuracy, "val_loss": 1.1 / (e + 1),
                        "val_accuracy": accuracy, "seconds": 20.0} for e in range(self.epochs)]
            attrs.update(trained=True, train_size=self.config.training_size(spec.input.size, 32), history=history,
                         accuracy=accuracy, train_seconds=20.0 * self.epochs, epochs_trained=self.epochs,
                         measured_latency_ms=latency,
                         latency_protocol={**self.template, "p10_ms": latency * 0.97, "p90_ms": latency * 1.04,
                                           "runs": 200})
        attrs["status"] = status
        return optuna.trial.create_trial(
            params=point, distributions=self.distributions, values=[accuracy, latency], user_attrs=attrs,
            system_attrs={f"constraints:{BUDGET_CONSTRAINT}": latency - self.budget})

    def running(self) -> Any:
        """Another worker's trial in progress: parameters chosen, no values."""
        import optuna

        return optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=self.point(),
                                         distributions=self.distributions)


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 2)


def time_asks(study: Any, space: Any, sampler: Any, asks: int) -> dict[str, Any]:
    """``asks`` proposals of one candidate: ``study.ask()`` then ``space.suggest`` (TPE's relative sampling
    runs at the first parameter; each parameter is written to storage); each asked trial is then failed."""
    from optuna.trial import TrialState

    study.sampler = sampler
    ask, suggest = [], []
    for _ in range(asks):
        t0 = time.perf_counter()
        trial = study.ask()
        t1 = time.perf_counter()
        space.suggest(trial)
        t2 = time.perf_counter()
        study.tell(trial, state=TrialState.FAIL)
        ask.append(t1 - t0)
        suggest.append(t2 - t1)
    total = [a + s for a, s in zip(ask, suggest)]
    return {"median_ms": _median_ms(total), "ask_median_ms": _median_ms(ask), "suggest_median_ms": _median_ms(suggest),
            "all_ms": [round(t * 1000, 1) for t in total]}


def time_reads(study: Any, url: str | None, repeats: int) -> dict[str, Any]:
    """What a worker reads per trial: every trial (cold: a new storage object; warm: Optuna's cache),
    one ``TrialRecord.of`` pass, and the Pareto front."""
    import optuna

    from archsearch.study import TrialRecord, open_storage, pareto_front

    out: dict[str, Any] = {}
    if url is not None:
        cold = []
        for _ in range(repeats):
            storage = open_storage(url)
            fresh = optuna.load_study(study_name=study.study_name, storage=storage)
            t0 = time.perf_counter()
            fresh.get_trials(deepcopy=False)
            cold.append(time.perf_counter() - t0)
            storage.engine.dispose()
        out["get_trials_cold_ms"] = _median_ms(cold)
    warm, passes, fronts = [], [], []
    study.get_trials(deepcopy=False)
    for _ in range(repeats):
        t0 = time.perf_counter()
        trials = study.get_trials(deepcopy=False)
        t1 = time.perf_counter()
        sum(TrialRecord.of(t).counts_as_search_trial for t in trials)
        t2 = time.perf_counter()
        pareto_front(study)
        t3 = time.perf_counter()
        warm.append(t1 - t0)
        passes.append(t2 - t1)
        fronts.append(t3 - t2)
    out.update(get_trials_warm_ms=_median_ms(warm), records_pass_ms=_median_ms(passes),
               pareto_front_ms=_median_ms(fronts))
    return out


def sampler_part(args: argparse.Namespace, server: PrivatePostgres | None) -> dict[str, Any]:
    import optuna

    from archsearch.space import load_space
    from archsearch.study import StudyConfig, open_storage
    from archsearch.study.run import make_sampler

    space = load_space(args.sampler_space).with_overrides(classes=10)
    config = StudyConfig(budget_ms=args.budget_ms, seed=args.seed)  # the default study: TPE, multivariate
    sizes = sorted(set(args.sizes))
    print(f"\n== sampler: TPE proposing one {args.sampler_space} candidate ({len(space.parameters)} parameters), "
          f"median of {args.asks} asks ==", flush=True)
    print(f"{'storage':10s} {'trials':>6s} {'add ms/t':>8s} {'tpe ms':>8s} {'shared ms':>9s} {'suggest':>7s} "
          f"{'cold get':>8s} {'warm get':>8s} {'records':>7s} {'front':>6s}", flush=True)
    storages: list[tuple[str, str | None]] = [("memory", None)]
    folder = scratch("archsearch-fleet-sampler-")
    storages.append(("sqlite", f"sqlite:///{folder / 'sampler.db'}"))
    if server is not None:
        storages.append(("postgresql", server.database(f"sampler_{int(time.time())}")))
    storages = [(kind, url) for kind, url in storages if kind in args.sampler_storages]
    rows = []
    for kind, url in storages:
        storage = optuna.storages.InMemoryStorage() if url is None else open_storage(url)
        study = optuna.create_study(study_name="sampler", storage=storage, directions=["maximize", "minimize"])
        synthetic = SyntheticTrials(space, args.budget_ms, args.epochs, args.seed)
        have = 0
        for size in sizes:
            made = [synthetic.trial() for _ in range(size - have)]
            t0 = time.perf_counter()
            study.add_trials(made)
            add_seconds = time.perf_counter() - t0
            added = size - have
            have = size
            row: dict[str, Any] = {"storage": kind, "trials": size,
                                   "add_ms_per_trial": round(add_seconds / added * 1000, 2) if added else None}
            row["tpe"] = time_asks(study, space, make_sampler(config, size, shared=False), args.asks)
            study.add_trial(synthetic.running())  # another worker's trial, which the constant liar counts
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            row["tpe_shared"] = time_asks(study, space, make_sampler(config, size, shared=True), args.asks)
            for trial in running:
                study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            row.update(time_reads(study, url, args.read_repeats))
            row["failed_trials_in_study"] = len(study.get_trials(deepcopy=False,
                                                                 states=(optuna.trial.TrialState.FAIL,)))
            rows.append(row)
            cold = row.get("get_trials_cold_ms")
            print(f"{kind:10s} {size:6d} {row['add_ms_per_trial'] or 0:8.2f} {row['tpe']['median_ms']:8.1f} "
                  f"{row['tpe_shared']['median_ms']:9.1f} {row['tpe']['suggest_median_ms']:7.1f} "
                  f"{'-' if cold is None else f'{cold:.1f}':>8s} {row['get_trials_warm_ms']:8.1f} "
                  f"{row['records_pass_ms']:7.1f} {row['pareto_front_ms']:6.1f}", flush=True)
        if url is not None:
            study._storage._backend.engine.dispose()
    return {"space": args.sampler_space, "parameters": len(space.parameters), "sizes": sizes, "asks": args.asks,
            "rows": rows,
            "legend": {"tpe": "make_sampler(shared=False): ask + suggest of one candidate, ms",
                       "tpe_shared": "make_sampler(shared=True): constant liar, one other worker's trial running",
                       "ask_median_ms / suggest_median_ms": "the two halves: Optuna 5 runs TPE's relative "
                                                            "sampling at the first suggest_categorical, and each "
                                                            "parameter is written to storage as it is suggested",
                       "add_ms_per_trial": "study.add_trials of the synthetic trials, per trial (all attributes)",
                       "get_trials_cold_ms": "every trial read by a new storage object (a worker's first read)",
                       "get_trials_warm_ms": "the same study object again: Optuna's cache reads only new and "
                                             "unfinished trials (a running worker's reads)",
                       "records_pass_ms": "TrialRecord.of over every trial, as the runner's counts do",
                       "pareto_front_ms": "archsearch's pareto_front (Optuna's best_trials) after each trial"}}


# ----- main -----


def notes(data: dict[str, Any]) -> list[str]:
    cores = data["machine"]["usable_cores"]
    text = [f"This machine has {cores} usable core(s). TensorFlow training uses every core, so on a {cores}-core "
            f"machine 2 workers share the cores rather than add any: the 2-worker figure shows what overlapping "
            f"one worker's database waits, latency measurement and start-up with the other's training is worth, "
            f"not what a second machine adds.",
            "Latency measured while another worker trains on the same cores is slower, so with 2 workers more "
            "candidates come out over budget (rejected or over_budget): compare the status mixes, not only the rates.",
            "A study on a server database gives each worker its own sampler seed (host, pid), so even the 1-worker "
            "SQLite and PostgreSQL runs propose different candidates: with a few dozen trials the candidate mix "
            "(mean trained MACs, statuses) moves the rate as much as the database does. The round_trips part "
            "measures the database's own cost per trial directly.",
            "PostgreSQL runs on this machine over loopback TCP with default settings; a database on another "
            "machine adds its network round-trip time once per server statement (round_trips: "
            "server_statements_per_trial).",
            "Each throughput configuration has a fresh database and latency cache and no device profile: "
            "candidates are measured before training until the per-part table predicts them."]
    return text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", action="store_true", help="Run the throughput part (none given: all parts).")
    parser.add_argument("--round-trips", action="store_true", help="Run the round-trips part.")
    parser.add_argument("--sampler", action="store_true", help="Run the sampler part.")
    parser.add_argument("--minutes", type=float, default=6.0, help="Wall time (worker --timeout) per configuration.")
    parser.add_argument("--grace-minutes", type=float, default=20.0,
                        help="How long past --minutes a worker may take to finish its last trial before it is stopped.")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="ENGINE:WORKERS, engine sqlite or "
                        "postgresql.")
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--budget-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="Throughput on the tiny space and dataset of tests/conftest.py (a smoke test).")
    parser.add_argument("--round-trip-trials", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000],
                        help="Finished trials in the study when the sampler is timed.")
    parser.add_argument("--asks", type=int, default=3, help="Asks timed per size and sampler (median reported).")
    parser.add_argument("--read-repeats", type=int, default=3)
    parser.add_argument("--sampler-space", default="mobilenetv3")
    parser.add_argument("--sampler-storages", nargs="+", default=["memory", "sqlite", "postgresql"])
    parser.add_argument("--no-postgres", action="store_true", help="Leave out every PostgreSQL row.")
    parser.add_argument("--keep-files", action="store_true",
                        help="Keep the temporary databases, caches and worker logs (default: removed at the end).")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    chosen = [part for part in PARTS if getattr(args, part)]
    args.parts = chosen or list(PARTS)
    for text in args.configs:
        engine, _, count = text.partition(":")
        if engine not in ("sqlite", "postgresql") or not (count or "1").isdigit() or int(count or 1) < 1:
            parser.error(f"--configs: {text!r} is not ENGINE:WORKERS (sqlite:1, postgresql:2)")
    return args


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_optuna()
    needs_postgres = not args.no_postgres and (
        ("throughput" in args.parts and any(c.startswith("postgresql") for c in args.configs))
        or "round_trips" in args.parts
        or ("sampler" in args.parts and "postgresql" in args.sampler_storages))
    data: dict[str, Any] = {"machine": machine(), "settings": {k: v for k, v in vars(args).items()}}
    data["notes"] = notes(data)
    print(f"{data['machine']['cpu_model']}, {data['machine']['usable_cores']} cores, load "
          f"{data['machine']['loadavg_at_start'][0]:.2f}; parts: {', '.join(args.parts)}", flush=True)
    if data["machine"]["loadavg_at_start"][0] > 0.5:
        print("warning: the machine is not idle (load average above 0.5): the timings will show it", flush=True)
    server, postgres_error = start_postgres(needs_postgres)
    data["postgresql"] = {"version": server.version if server else None, "error": postgres_error,
                          "settings": "defaults of initdb, loopback TCP, same machine" if server else None}
    tiny: Path | None = None
    if args.quick or "round_trips" in args.parts:
        tiny = conftest().write_tiny_inputs(scratch("archsearch-fleet-tiny-"))
    started = time.monotonic()
    try:
        if "throughput" in args.parts:
            data["throughput"] = throughput_part(args, server, tiny if args.quick else None)
            write_results(args.out, data)
        if "round_trips" in args.parts:
            assert tiny is not None
            data["round_trips"] = round_trips_part(args, server, tiny)
            write_results(args.out, data)
        if "sampler" in args.parts:
            data["sampler"] = sampler_part(args, server)
    finally:
        if server is not None:
            server.remove()
        if not args.keep_files:
            for path in SCRATCH:
                shutil.rmtree(path, ignore_errors=True)
    data["seconds"] = round(time.monotonic() - started, 1)
    data["machine"]["loadavg_at_end"] = os.getloadavg()
    out = write_results(args.out, data)
    print(f"\nwrote {out} ({data['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
