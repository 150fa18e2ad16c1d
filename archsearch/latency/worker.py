"""The measuring process: ``python -m archsearch.latency.worker REQUEST.json``.

Latency is measured here, in a process of its own, never beside training. The request
lists jobs (a whole spec, one part of a spec, or a TFLite file); each job's result is
written to the request's output file as soon as it is known, so a crash loses nothing
already measured. Converted flatbuffers are cached by key and written atomically.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from archsearch.latency.timing import TimingPolicy, time_runs
from archsearch.quiet import quiet_tensorflow_startup


def _pin_to_one_core() -> None:
    """Single-threaded runs stay on one core: fewer migrations, steadier timings."""
    if hasattr(os, "sched_getaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})


def _build_model(job: dict[str, Any]) -> Any:
    from archsearch.compile import compile_model
    from archsearch.compile.parts import build_part_model
    from archsearch.spec import parse_spec

    spec = parse_spec(job["spec"])
    return build_part_model(spec, job["part"]) if job.get("part") else compile_model(spec)


def _flatbuffer(job: dict[str, Any], artifact_dir: Path) -> Path:
    from archsearch.latency.backends import convert_to_tflite

    if job.get("tflite"):
        return Path(job["tflite"])
    path = artifact_dir / f"{job['artifact']}.tflite"
    if not path.is_file():
        flatbuffer = convert_to_tflite(_build_model(job))
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(flatbuffer)
        partial.replace(path)  # atomic: a reader never sees half a file
    return path


def _measure(job: dict[str, Any], request: dict[str, Any], policy: TimingPolicy) -> dict[str, Any]:
    from archsearch.latency.backends import keras_runner, litert_runner

    threads = int(request["threads"])
    if request["backend"] == "litert":
        run, shape = litert_runner(_flatbuffer(job, Path(request["artifact_dir"])), threads)
    else:
        run, shape = keras_runner(_build_model(job), threads)
    stats = time_runs(run, policy)
    return {"stats": stats.as_dict(), "input_shape": list(shape)}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    # TensorFlow's converter errors put the useful line last.
    useful = [line for line in text if line.strip() and not line.startswith(("  ", "\t"))]
    return f"{type(error).__name__}: {(useful[-1] if useful else '').strip()}"[:500]


def serve_request(request: dict[str, Any]) -> None:
    """Measure every job of ``request``, writing results to its output file as they come."""
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
    if request["backend"] == "keras" or any(not job.get("tflite") for job in request["jobs"]):
        import keras

        keras.backend.clear_session()  # a long-lived worker must not accumulate graphs


def main(argv: list[str]) -> int:
    """``worker REQUEST.json`` measures one request; ``worker --serve THREADS BACKEND`` serves many.

    In serve mode, each line on stdin is the path of a request file; when it is done
    the worker prints ``done <path>`` on stdout.
    """
    quiet_tensorflow_startup()
    serving = argv[1] == "--serve"
    threads, backend = (int(argv[2]), argv[3]) if serving else (None, None)
    first = None if serving else json.loads(Path(argv[1]).read_text())
    threads = threads if serving else int(first["threads"])
    backend = backend if serving else first["backend"]
    if threads == 1:
        _pin_to_one_core()
    if backend == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
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
