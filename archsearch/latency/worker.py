"""The measuring process: ``python -m archsearch.latency.worker REQUEST.json``.

Latency is measured here, in a process of its own, never beside training. The request
lists jobs (a whole spec, one part of a spec, or a TFLite file) and names, by import
path, the backend's ``make_runner`` and ``configure`` (``archsearch.latency.backends``);
the worker knows no backend by name. Each job's result is written to the request's
output file as soon as it is known, so a crash loses nothing already measured.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from archsearch.latency.backends import resolve_function
from archsearch.latency.timing import TimingPolicy, time_runs
from archsearch.quiet import quiet_tensorflow_startup

_CONFIGURED: set[str] = set()  # the backends' ``configure`` already run in this process


def _pin_to_one_core() -> None:
    """Single-threaded runs stay on one core: fewer migrations, steadier timings."""
    if hasattr(os, "sched_getaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})


def _measure(job: dict[str, Any], request: dict[str, Any], policy: TimingPolicy) -> dict[str, Any]:
    make_runner = resolve_function(request["runner"])
    run, shape = make_runner(job, Path(request["artifact_dir"]), int(request["threads"]))
    stats = time_runs(run, policy)
    return {"stats": stats.as_dict(), "input_shape": list(shape)}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    # TensorFlow's converter errors put the useful line last.
    useful = [line for line in text if line.strip() and not line.startswith(("  ", "\t"))]
    return f"{type(error).__name__}: {(useful[-1] if useful else '').strip()}"[:500]


def serve_request(request: dict[str, Any]) -> None:
    """Measure every job of ``request``, writing results to its output file as they come."""
    configure = request.get("configure")
    if configure and configure not in _CONFIGURED:
        resolve_function(configure)(int(request["threads"]))
        _CONFIGURED.add(configure)
    output = Path(request["output"])
    policy = TimingPolicy(**request.get("policy", {}))
    results: list[dict[str, Any]] = []
    for job in request["jobs"]:
        try:
            result = {"id": job["id"], "ok": True, **_measure(job, request, policy)}
        except Exception as error:  # reported per job; the batch goes on
            traceback.print_exc(file=sys.stderr)
            result = {"id": job["id"], "ok": False, "error": _first_line(error)}
        results.append(result)
        partial = output.with_suffix(".partial")
        partial.write_text(json.dumps(results))
        partial.replace(output)
    if "keras" in sys.modules:  # a model was built: a long-lived worker must not accumulate graphs
        import keras

        keras.backend.clear_session()


def main(argv: list[str]) -> int:
    """``worker REQUEST.json`` measures one request; ``worker --serve THREADS BACKEND`` serves many.

    In serve mode, each line on stdin is the path of a request file; when it is done
    the worker prints ``done <path>`` on stdout. ``BACKEND`` only labels the process:
    every request names the functions that run it.
    """
    quiet_tensorflow_startup()
    serving = argv[1] == "--serve"
    first = None if serving else json.loads(Path(argv[1]).read_text())
    threads = int(argv[2]) if serving else int(first["threads"])
    if threads == 1:
        _pin_to_one_core()
    if not serving:
        serve_request(first)
        return 0
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        serve_request(json.loads(Path(path).read_text()))
        sys.stdout.write(f"done {path}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
