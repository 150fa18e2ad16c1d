"""Which latency statistic stays put across processes on a shared, virtualized machine?

    python benchmarks/latency_protocol.py [--sessions 5] [--gap-seconds 120] [--busy 2,4] [--rounds 20]
                                          [--block 10] [--networks 8] [--work DIR] [--out FILE]
    python benchmarks/latency_protocol.py --analyse DIR_OR_SESSION_FILES... [--out FILE]

LiteRT batch-1 single-thread timings of one flatbuffer drift between processes minutes
apart (median CV 1-7% depending on host and hour), and a busy neighbour core moves them,
so a figure measured today need not match one measured an hour ago. This benchmark
measures the same networks in ``--sessions`` fresh processes, ``--gap-seconds`` apart,
the ``--busy`` ones (1-based) with a pure-Python spinner pinned to the other core, and
asks which statistic of the per-invoke times has the smallest spread (max/min - 1)
across sessions; the target is <= 3%.

Each session pins itself to one core, loads every flatbuffer (5 references, 3 specs
sampled from ``mobilenetv3`` and an *anchor*, a separate copy of MobileNetV3-Small at
224 px), warms each up and times ``--rounds`` rounds of ``--block`` candidate invokes
followed by ``--block`` anchor invokes, GC off; plus a trivial one-op model for the
fixed per-invoke overhead. Raw times go to one JSON per session, so ``--analyse`` can
recompute everything. Statistics compared: median, mean, min, p10, p20, interquartile
mean, median minus overhead, and anchor ratios (candidate / interleaved anchor, as a
whole, per round, at p20, and against all the session's anchor samples) scaled back
to ms by the anchor's figure over all sessions: a ratio cancels drift that hits both
networks alike. The plain statistics use the same interleaved samples, so they see the
anchor's cache effects too; their cost column counts only the candidate's invokes.

Writes JSON (settings, machine, per-network per-session values, summary) and prints
the statistics ranked by their worst spread over all sessions, then the median spread.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from results_file import write_results  # benchmarks/ is the script folder: on sys.path

REFERENCES = ("mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v2", "efficientnet_b0", "shufflenet_v2_x1_0")
TARGET_SPREAD = 0.03
WARMUP_RUNS, WARMUP_SECONDS = 10, 0.2
OVERHEAD_RUNS = 500
DEFAULT_OUT = Path(__file__).parent / "results" / "latency_protocol.json"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "archsearch-latency-protocol"


# ----- networks: converted once, kept in the work folder -----


def choose_specs(space_name: str, samples: int, seed: int, limit: int | None) -> dict[str, Any]:
    """The reference networks then ``samples`` specs from the space, the first ``limit`` of them."""
    import archsearch

    specs = {name: archsearch.load_reference(name) for name in REFERENCES}
    space = archsearch.load_space(space_name)
    for i, spec in enumerate(archsearch.sample_specs(space, samples, seed=seed)):
        specs[f"{space_name}_sample{i}"] = spec
    return dict(list(specs.items())[:limit]) if limit else specs


def write_flatbuffer(path: Path, build: Callable[[], Any]) -> Path:
    """``path``, converted from the Keras model ``build()`` unless it exists (written atomically)."""
    if not path.is_file():
        from archsearch.latency.backends import convert_to_tflite

        started = time.perf_counter()
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(convert_to_tflite(build()))
        partial.replace(path)
        print(f"  converted {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def trivial_model() -> Any:
    """One ReLU on 8 numbers: its invoke time is LiteRT's fixed per-invoke cost."""
    import keras

    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.ReLU()(inputs))


def prepare_flatbuffers(args: argparse.Namespace) -> dict[str, Any]:
    """Every network's flatbuffer path (spec hash in the name, so a file is only reused for its spec)."""
    import archsearch
    from archsearch.spec import spec_hash

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    specs = choose_specs(args.space, args.samples, args.seed, args.networks)
    anchor = archsearch.load_reference(args.anchor, input={"size": args.anchor_size})
    networks = {}
    for name, spec in specs.items():
        networks[name] = str(write_flatbuffer(work / f"{name}-{spec_hash(spec)[:12]}.tflite",
                                              lambda spec=spec: archsearch.compile_model(spec)))
    return {
        "networks": networks,
        "anchor": str(write_flatbuffer(work / f"anchor-{spec_hash(anchor)[:12]}.tflite",
                                       lambda: archsearch.compile_model(anchor))),
        "overhead": str(write_flatbuffer(work / "overhead-relu8.tflite", trivial_model)),
    }


# ----- one session: a fresh process on one core -----


def load_invoke(path: str, seed: int = 0) -> Callable[[], None]:
    """The flatbuffer in a single-thread LiteRT interpreter on a random input: its ``invoke``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    shape = tuple(int(d) for d in detail["shape"])
    interpreter.set_tensor(detail["index"], np.random.default_rng(seed).uniform(0, 1, shape).astype(detail["dtype"]))
    return interpreter.invoke


def warm_up(invoke: Callable[[], None]) -> float:
    """At least ``WARMUP_RUNS`` invokes and ``WARMUP_SECONDS``; the seconds taken."""
    started, runs = time.perf_counter(), 0
    while runs < WARMUP_RUNS or time.perf_counter() - started < WARMUP_SECONDS:
        invoke()
        runs += 1
    return time.perf_counter() - started


def time_block(invoke: Callable[[], None], runs: int) -> list[float]:
    """``runs`` invokes, each timed alone, in ms."""
    clock, times = time.perf_counter, []
    for _ in range(runs):
        begin = clock()
        invoke()
        times.append((clock() - begin) * 1e3)
    return times


def time_interleaved(candidate: Callable[[], None], anchor: Callable[[], None],
                     rounds: int, block: int) -> tuple[list[list[float]], list[list[float]]]:
    """``rounds`` x (``block`` candidate invokes, then ``block`` anchor invokes): per-round times."""
    candidate_rounds, anchor_rounds = [], []
    for _ in range(rounds):
        candidate_rounds.append(time_block(candidate, block))
        anchor_rounds.append(time_block(anchor, block))
    return candidate_rounds, anchor_rounds


def rounded(rows: list[list[float]]) -> list[list[float]]:
    return [[round(value, 5) for value in row] for row in rows]


def run_session(plan_path: Path, index: int, busy_core: int | None) -> None:
    """Measure every network of the plan on the last allowed core; write ``session{index}.json`` next to it."""
    plan = json.loads(plan_path.read_text())
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    started, load_start = time.time(), os.getloadavg()
    anchor = load_invoke(plan["anchor"])
    overhead = load_invoke(plan["overhead"])
    gc.disable()
    warm_up(overhead)
    overhead_ms = time_block(overhead, OVERHEAD_RUNS)
    warm_up(anchor)
    networks = {}
    for name, path in plan["networks"].items():
        invoke = load_invoke(path)
        warmup_seconds = warm_up(invoke)
        candidate_ms, anchor_ms = time_interleaved(invoke, anchor, plan["rounds"], plan["block"])
        networks[name] = {"warmup_seconds": round(warmup_seconds, 3),
                          "candidate_ms": rounded(candidate_ms), "anchor_ms": rounded(anchor_ms)}
        print(f"  {name}: median {np.median(candidate_ms):.2f} ms, anchor {np.median(anchor_ms):.2f} ms", flush=True)
        del invoke
    gc.enable()
    record = {
        "session": index, "busy": busy_core is not None, "busy_core": busy_core, "measure_core": core,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "seconds": round(time.time() - started, 1), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "rounds": plan["rounds"], "block": plan["block"],
        "overhead_ms": [round(value, 5) for value in overhead_ms], "networks": networks,
    }
    (plan_path.parent / f"session{index}.json").write_text(json.dumps(record) + "\n")


# ----- collection: sessions spaced apart, some with a busy neighbour -----


def start_spinner(core: int) -> subprocess.Popen[bytes]:
    """A process spinning a pure-Python loop on ``core``."""
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def neighbour_core() -> int:
    """A core other than the one a session measures on (the last allowed one)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("a busy neighbour needs a second core; pass --busy '' on a single core")
    return cores[0]


def collect(args: argparse.Namespace, run_dir: Path, busy: set[int]) -> None:
    """Run the sessions one after another, each in a fresh process; the spinner always dies with its session."""
    for index in range(1, args.sessions + 1):
        if index > 1:
            print(f"waiting {args.gap_seconds:.0f} s", flush=True)
            time.sleep(args.gap_seconds)
        busy_core = neighbour_core() if index in busy else None
        print(f"session {index}/{args.sessions}" + (f", core {busy_core} busy" if busy_core is not None else ""),
              flush=True)
        spinner = session = None
        try:
            if busy_core is not None:
                spinner = start_spinner(busy_core)
                time.sleep(0.5)  # let it start spinning
            command = [sys.executable, __file__, "--session", str(run_dir / "plan.json"),
                       "--session-index", str(index)]
            if busy_core is not None:
                command += ["--session-busy-core", str(busy_core)]
            session = subprocess.Popen(command)
            if session.wait() != 0:
                raise SystemExit(f"session {index} failed with exit code {session.returncode}")
            if spinner is not None and spinner.poll() is not None:
                print(f"warning: the busy neighbour of session {index} ended early", file=sys.stderr)
        finally:
            stop(session)
            stop(spinner)


# ----- analysis -----


def iqm(values: np.ndarray) -> float:
    """Mean of the samples between the 25th and 75th percentile."""
    low, high = np.percentile(values, [25, 75])
    return float(values[(values >= low) & (values <= high)].mean())


PLAIN: dict[str, Callable[[np.ndarray], float]] = {
    "median": lambda x: float(np.median(x)),
    "mean": lambda x: float(np.mean(x)),
    "min": lambda x: float(np.min(x)),
    "p10": lambda x: float(np.percentile(x, 10)),
    "p20": lambda x: float(np.percentile(x, 20)),
    "iqm": iqm,
}
# Ratio statistics: (name, value per session before scaling, anchor statistic that scales it to ms).
RATIO_SCALE = {"anchor_ratio_median": "median", "anchor_ratio_round_median": "median",
               "anchor_ratio_p20": "p20", "anchor_ratio_median_session_anchor": "median"}


def session_values(session: dict[str, Any], name: str) -> dict[str, float]:
    """Every statistic of one network in one session; ratio statistics still unscaled (dimensionless)."""
    candidate_rounds = np.asarray(session["networks"][name]["candidate_ms"])
    anchor_rounds = np.asarray(session["networks"][name]["anchor_ms"])
    candidate, anchor = candidate_rounds.ravel(), anchor_rounds.ravel()
    all_anchor = np.concatenate([np.ravel(n["anchor_ms"]) for n in session["networks"].values()])
    values = {key: function(candidate) for key, function in PLAIN.items()}
    values["median_minus_overhead"] = values["median"] - float(np.median(session["overhead_ms"]))
    values["anchor_ratio_median"] = values["median"] / float(np.median(anchor))
    values["anchor_ratio_round_median"] = float(np.median(np.median(candidate_rounds, axis=1)
                                                          / np.median(anchor_rounds, axis=1)))
    values["anchor_ratio_p20"] = values["p20"] / float(np.percentile(anchor, 20))
    values["anchor_ratio_median_session_anchor"] = values["median"] / float(np.median(all_anchor))
    return values


def anchor_figures(sessions: list[dict[str, Any]]) -> dict[str, float]:
    """The anchor's median and p20 (all its samples of a session), each the median over sessions."""
    per_session = []
    for session in sessions:
        samples = np.concatenate([np.ravel(n["anchor_ms"]) for n in session["networks"].values()])
        per_session.append({key: PLAIN[key](samples) for key in ("median", "p20")})
    return {key: float(np.median([row[key] for row in per_session])) for key in ("median", "p20")}


def spread(values: list[float]) -> float | None:
    return max(values) / min(values) - 1 if len(values) >= 2 else None


def summarise(spreads: list[float | None]) -> dict[str, Any]:
    found = [s for s in spreads if s is not None]
    if not found:
        return {"median_spread": None, "max_spread": None, "share_within_target": None}
    return {"median_spread": round(float(np.median(found)), 5), "max_spread": round(float(max(found)), 5),
            "share_within_target": round(sum(s <= TARGET_SPREAD for s in found) / len(found), 3)}


def timing_seconds(sessions: list[dict[str, Any]], names: list[str]) -> dict[str, float]:
    """Mean timed seconds per network and session: candidate invokes alone, and with the anchor's."""
    candidate = [np.sum(s["networks"][n]["candidate_ms"]) / 1e3 for s in sessions for n in names]
    anchor = [np.sum(s["networks"][n]["anchor_ms"]) / 1e3 for s in sessions for n in names]
    return {"candidate": round(float(np.mean(candidate)), 2),
            "candidate_and_anchor": round(float(np.mean(candidate) + np.mean(anchor)), 2)}


def analyse(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-network per-session values, per-network spreads and the summary table, best statistic first."""
    names = [name for name in sessions[0]["networks"] if all(name in s["networks"] for s in sessions)]
    anchor = anchor_figures(sessions)
    values: dict[str, dict[str, list[float]]] = {}
    for name in names:
        rows = [session_values(session, name) for session in sessions]
        values[name] = {key: [round(row[key] * anchor[RATIO_SCALE[key]] if key in RATIO_SCALE else row[key], 5)
                              for row in rows] for key in rows[0]}
    groups = {"all": list(range(len(sessions))),
              "quiet": [i for i, s in enumerate(sessions) if not s["busy"]],
              "busy": [i for i, s in enumerate(sessions) if s["busy"]]}
    spreads = {name: {key: {group: spread([series[i] for i in members]) for group, members in groups.items()}
                      for key, series in by_key.items()} for name, by_key in values.items()}
    cost = timing_seconds(sessions, names)
    table = []
    for key in next(iter(values.values())):
        row: dict[str, Any] = {"statistic": key}
        for group in groups:
            row[group] = summarise([spreads[name][key][group] for name in names])
        row["timing_seconds_per_network"] = cost["candidate_and_anchor" if key.startswith("anchor") else "candidate"]
        table.append(row)
    table.sort(key=lambda r: (r["all"]["max_spread"] if r["all"]["max_spread"] is not None else np.inf,
                              r["all"]["median_spread"] if r["all"]["median_spread"] is not None else np.inf))
    anchor_medians = [float(np.median(np.concatenate([np.ravel(n["anchor_ms"]) for n in s["networks"].values()])))
                      for s in sessions]
    return {
        "sessions": [{key: s[key] for key in ("session", "busy", "busy_core", "measure_core", "started", "seconds",
                                              "loadavg_start", "loadavg_end")}
                     | {"anchor_median_ms": round(m, 4), "overhead_median_ms": round(float(np.median(s["overhead_ms"])), 5)}
                     for s, m in zip(sessions, anchor_medians)],
        "anchor_ms_over_sessions": anchor, "anchor_median_spread": spread(anchor_medians),
        "values_per_session": values, "spreads": spreads, "summary": table,
    }


def percent(value: float | None) -> str:
    return "    -" if value is None else f"{100 * value:5.1f}"


def share(group: dict[str, Any]) -> str:
    return "    -" if group["share_within_target"] is None else f"{group['share_within_target']:5.2f}"


def print_table(result: dict[str, Any]) -> None:
    print(f"\nspread (max/min - 1) across sessions, % ; 'ok' = share of networks within {TARGET_SPREAD:.0%}")
    print(f"{'statistic':36s} {'all: med   max   ok':>21s} {'quiet: med   max   ok':>23s} "
          f"{'busy: med   max   ok':>22s} {'s/net':>6s}")
    for row in result["summary"]:
        cells = [f"{percent(row[g]['median_spread'])} {percent(row[g]['max_spread'])} {share(row[g])}"
                 for g in ("all", "quiet", "busy")]
        print(f"{row['statistic']:36s} {cells[0]:>21s} {cells[1]:>23s} {cells[2]:>22s} "
              f"{row['timing_seconds_per_network']:6.1f}")
    print(f"anchor median per session (ms): {[s['anchor_median_ms'] for s in result['sessions']]}; "
          f"overhead per invoke (ms): {[s['overhead_median_ms'] for s in result['sessions']]}")


def session_files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(path.glob("session*.json")) if path.is_dir() else [path]
    return found


def report(files: list[Path], settings: dict[str, Any], out: str) -> None:
    from archsearch.latency import device_info

    sessions = sorted((json.loads(f.read_text()) for f in files), key=lambda s: s["session"])
    if not sessions:
        raise SystemExit("no session files")
    result = analyse(sessions)
    data = {"settings": settings | {"session_files": [str(f) for f in files], "target_spread": TARGET_SPREAD},
            "machine": device_info().as_dict(), **result}
    print_table(result)
    print(f"wrote {write_results(out, data)}")


# ----- command line -----


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--gap-seconds", type=float, default=120.0, help="pause between one session and the next")
    parser.add_argument("--busy", default="2,4", help="1-based sessions run with the other core spinning")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--block", type=int, default=10, help="invokes per block (candidate, then anchor)")
    parser.add_argument("--networks", type=int, help="only the first N networks (references first)")
    parser.add_argument("--samples", type=int, default=3, help="specs sampled from --space")
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anchor", default="mobilenet_v3_small")
    parser.add_argument("--anchor-size", type=int, default=224)
    parser.add_argument("--work", default=str(DEFAULT_WORK), help="flatbuffers (reused) and one folder per run")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--analyse", nargs="+", metavar="PATH", help="only analyse session files (or run folders)")
    parser.add_argument("--session", help=argparse.SUPPRESS)
    parser.add_argument("--session-index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--session-busy-core", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def raise_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so ``finally`` blocks still kill the spinner."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main() -> None:
    args = parse_args()
    if args.session:
        run_session(Path(args.session), args.session_index, args.session_busy_core)
        return
    raise_on_sigterm()
    settings = {key: getattr(args, key) for key in ("sessions", "gap_seconds", "busy", "rounds", "block", "networks",
                                                    "samples", "space", "seed", "anchor", "anchor_size")}
    if args.analyse:
        files = session_files(args.analyse)
        plans = [f.parent / "plan.json" for f in files if (f.parent / "plan.json").is_file()]
        recorded = json.loads(plans[0].read_text()).get("settings", {}) if plans else {}
        report(files, recorded | {"analysed_again": True}, args.out)
        return
    busy = {int(s) for s in args.busy.split(",") if s.strip()}
    plan = prepare_flatbuffers(args) | {"rounds": args.rounds, "block": args.block}
    run_dir = Path(args.work) / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    (run_dir / "plan.json").write_text(json.dumps(plan | {"settings": settings}, indent=2) + "\n")
    print(f"{len(plan['networks'])} networks + anchor; sessions in {run_dir}", flush=True)
    collect(args, run_dir, busy)
    report(session_files([str(run_dir)]), settings | {"run_dir": str(run_dir)}, args.out)


if __name__ == "__main__":
    main()
