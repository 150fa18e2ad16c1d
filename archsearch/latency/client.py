"""The parent's side of the worker process: requests, results, and a persistent worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from archsearch.db import cache_dir
from archsearch.latency.backends import BackendInfo, function_path
from archsearch.latency.timing import TimingPolicy
from archsearch.quiet import quiet_tensorflow_env


def artifact_dir() -> Path:
    """Where converted flatbuffers are kept, per converter version."""
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    path = cache_dir() / "tflite" / f"tensorflow-{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LatencyWorker:
    """A long-lived measuring process for one backend and thread count.

    Spares each measurement the seconds TensorFlow takes to import. Used through
    ``persistent_worker()``; it measures only when asked, so nothing else (training
    included) should run while it does.
    """

    def __init__(self, backend: str, threads: int) -> None:
        self.backend, self.threads = backend, threads
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            self._stderr = tempfile.TemporaryFile(mode="w+")
            self._process = subprocess.Popen(
                [sys.executable, "-m", "archsearch.latency.worker", "--serve", str(self.threads), self.backend],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=_worker_env())
        return self._process

    def run(self, request_path: Path) -> tuple[int, str]:
        """Serve one request file; return (status, stderr tail) where status 0 means done."""
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(f"{request_path}\n")
            process.stdin.flush()
            for line in process.stdout:
                if line.strip() == f"done {request_path}":
                    return 0, ""
        except BrokenPipeError:
            pass
        process.wait()
        self._stderr.seek(0)
        return process.returncode or 1, self._stderr.read()

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None


_PERSISTENT: dict[tuple[str, int], LatencyWorker] = {}
_PERSISTENT_ACTIVE: list[bool] = []  # a stack: nested persistent_worker() blocks share the workers


@contextmanager
def persistent_worker() -> Iterator[None]:
    """Within this block, measurements reuse one worker process per backend and thread count."""
    outermost = not _PERSISTENT_ACTIVE
    _PERSISTENT_ACTIVE.append(True)
    try:
        yield
    finally:
        _PERSISTENT_ACTIVE.pop()
        if outermost:
            for worker in _PERSISTENT.values():
                worker.close()
            _PERSISTENT.clear()


def _worker_env() -> dict[str, str]:
    return quiet_tensorflow_env(os.environ)  # the worker's main() also filters its TensorFlow start-up lines


def worker_request(jobs: list[dict[str, Any]], backend: BackendInfo, threads: int, policy: TimingPolicy,
                   output: Path) -> dict[str, Any]:
    """A request for the worker: the jobs, and the backend's functions by import path."""
    return {"backend": backend.name, "runner": function_path(backend.make_runner),
            "configure": function_path(backend.configure) if backend.configure else None,
            "threads": threads, "policy": policy.as_dict(), "artifact_dir": str(artifact_dir()),
            "output": str(output), "jobs": jobs}


def run_worker(jobs: list[dict[str, Any]], backend: BackendInfo, threads: int,
               policy: TimingPolicy) -> dict[str, dict[str, Any]]:
    """Measure ``jobs`` in a worker process; results by job id (each ``ok`` or with an ``error``)."""
    with tempfile.TemporaryDirectory(prefix="archsearch-latency-") as tmp:
        request_path, output_path = Path(tmp) / "request.json", Path(tmp) / "results.json"
        request_path.write_text(json.dumps(worker_request(jobs, backend, threads, policy, output_path)))
        if _PERSISTENT_ACTIVE:
            worker = _PERSISTENT.setdefault((backend.name, threads), LatencyWorker(backend.name, threads))
            status, stderr = worker.run(request_path)
        else:
            completed = subprocess.run([sys.executable, "-m", "archsearch.latency.worker", str(request_path)],
                                       capture_output=True, text=True, env=_worker_env())
            status, stderr = completed.returncode, completed.stderr
        results = json.loads(output_path.read_text()) if output_path.is_file() else []
    by_id = {result["id"]: result for result in results}
    if status != 0 and len(by_id) < len(jobs):
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {status}"
        for job in jobs:
            by_id.setdefault(job["id"], {"id": job["id"], "ok": False, "error": f"measuring process died: {reason}"})
    return by_id
