"""The ``archsearch`` command: parses arguments, calls the library, prints."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from archsearch.errors import ArchsearchError

app = typer.Typer(
    help="Hardware-aware neural architecture search for Keras: architectures as data, latency measured.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _storage(value: Optional[str]) -> Optional[str]:
    """``--storage`` as given, or read from ``@FILE`` (a password need not be on the command line)."""
    from archsearch.urls import read_storage

    return read_storage(value)


StudyStorage = Annotated[Optional[str], typer.Option(
    "--storage", envvar="ARCHSEARCH_STORAGE", callback=_storage, show_envvar=True,
    help="Optuna storage URL, or @FILE to read it from a file (a password on the command line is visible to "
         "every user of the machine); default: $ARCHSEARCH_STORAGE, else sqlite:///studies/NAME.db.")]


@app.callback()
def _group() -> None:
    """Keeps the app a command group even while it has few commands."""


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _millions(value: int) -> str:
    return f"{value / 1e6:,.1f}M"


@app.command()
def references(as_json: JsonFlag = False) -> None:
    """List the reference networks with their parameters, MACs and input size."""
    from archsearch.describe import spec_totals
    from archsearch.references import load_reference, reference_names

    rows = [spec_totals(load_reference(name)) for name in reference_names()]
    if as_json:
        _print_json(rows)
        return
    from archsearch.terminal import Col, fit_table

    columns = [Col("name"), Col("input"), Col("params", justify="right"), Col("trainable", justify="right"),
               Col("MACs", justify="right"), Col("hash")]
    cells = [[row["name"], f"{row['input_size']}x{row['input_size']}", f"{row['params']:,}",
              f"{row['trainable_params']:,}", _millions(row["macs"]), row["hash"][:12]] for row in rows]
    console.print(fit_table(columns, cells, console=console, drop=["hash", "trainable"]))


@app.command()
def show(
    name_or_file: Annotated[str, typer.Argument(help="A reference name or a spec file (.yaml/.json).")],
    as_json: JsonFlag = False,
) -> None:
    """Show a network stage by stage: each block's output shape, parameters and MACs."""
    from archsearch.describe import resolve_spec_argument, spec_rows, stage_totals

    data = spec_rows(resolve_spec_argument(name_or_file))
    if as_json:
        _print_json(data)
        return
    from archsearch.terminal import Col, fit_table

    columns = [Col("part"), Col("block", "text"), Col("x", justify="right"), Col("output"),
               Col("params", justify="right"), Col("MACs", justify="right")]
    cells = [[row["part"], row["block"], str(row["repeats"]), "x".join(map(str, row["output"])),
              f"{row['params']:,}", _millions(row["macs"])] for row in data["rows"]]
    console.print(fit_table(columns, cells, console=console, drop=["output", "MACs"],
                            title=f"{data['name']}  ({data['hash'][:12]})"))
    for stage, cost in stage_totals(data["rows"]).items():
        console.print(f"stage {stage}: {cost.params:,} params, {_millions(cost.macs)} MACs")
    console.print(f"total: {data['params']:,} params ({data['trainable_params']:,} trainable), "
                  f"{_millions(data['macs'])} MACs at {data['input_size']}x{data['input_size']}")


@app.command()
def validate(file: Annotated[str, typer.Argument(help="A spec file (.yaml/.yml/.json).")]) -> None:
    """Check a spec file; exit 0 if it describes a buildable network, 2 with the reason if not."""
    from archsearch.describe import spec_totals
    from archsearch.spec import load_spec

    summary = spec_totals(load_spec(file))
    console.print(f"ok: {summary['name']} ({summary['hash'][:12]}): {summary['params']:,} params, "
                  f"{_millions(summary['macs'])} MACs at {summary['input_size']}x{summary['input_size']}")


@app.command()
def spaces(as_json: JsonFlag = False) -> None:
    """List the built-in search spaces: size (distinct specs), parameters and reference family."""
    from archsearch.space import load_space, space_names

    rows = []
    for name in space_names():
        space = load_space(name)
        rows.append({"name": name, "size": space.size, "parameters": len(space.parameters),
                     "family": space.family, "references": list(space.references),
                     "description": space.description})
    if as_json:
        _print_json(rows)
        return
    from archsearch.terminal import Col, fit_table

    columns = [Col("name"), Col("size", justify="right"), Col("parameters", justify="right"), Col("family"),
               Col("references", "text"), Col("description", "text", min_width=24)]
    cells = [[row["name"], f"{row['size']:,}", str(row["parameters"]), row["family"] or "-",
              "\n".join(row["references"]) or "-", row["description"] or ""] for row in rows]
    console.print(fit_table(columns, cells, console=console, drop=["description", "family", "parameters"]))


@app.command()
def latency(
    name_or_file: Annotated[str, typer.Argument(help="A reference name, a spec file (.yaml/.json) or a .tflite file.")],
    backend: Annotated[str, typer.Option(help="Latency backend: litert (TFLite in LiteRT) or keras.")] = "litert",
    threads: Annotated[int, typer.Option(help="Interpreter threads.")] = 1,
    runs: Annotated[Optional[int], typer.Option(help="Timed runs (default: until the median is stable).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Measure again instead of answering from the cache.")] = False,
    predict: Annotated[bool, typer.Option("--predict", help="Predict with this device's profile (see "
                                          "`archsearch profile`) instead of measuring.")] = False,
    storage: Annotated[Optional[str], typer.Option(help="Database URL for the cache (default: user cache).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Measure (or predict) batch-1 latency at the spec's input size, in a separate process."""
    from archsearch.describe import resolve_spec_argument
    from archsearch.latency import measure_latency, measure_tflite

    if name_or_file.lower().endswith(".tflite"):
        if backend != "litert" or predict:
            raise ArchsearchError("a .tflite file is timed as it is: only --backend litert, without --predict")
        stats = measure_tflite(name_or_file, threads=threads, runs=runs)
        if as_json:
            _print_json({"name": name_or_file, **stats, "backend": "litert", "threads": threads, "cached": False})
        else:
            console.print(f"{name_or_file}: median {stats['median_ms']:.3f} ms (p10 {stats['p10_ms']:.3f}, "
                          f"p90 {stats['p90_ms']:.3f}, {stats['runs']} runs)")
        return
    spec = resolve_spec_argument(name_or_file)
    if predict:
        from archsearch.latency.profile import require_profile

        choice = require_profile(backend, threads, storage)
        started = time.perf_counter()
        predicted = choice.profile.predict(spec)
        seconds = time.perf_counter() - started
        data = {"name": spec.name, "predicted_ms": predicted, "backend": backend, "threads": threads,
                "profile": {"device": choice.profile.device, "backend_version": choice.profile.backend_version,
                            "created_at": choice.profile.created_at, "accuracy": asdict(choice.profile.accuracy)},
                "caveat": choice.caveat, "seconds": seconds}
        if as_json:
            _print_json(data)
        else:
            console.print(f"{spec.name}: predicted {predicted:.3f} ms ({backend}, {threads} thread(s), device "
                          f"profile: {choice.profile.accuracy.sentence()}); {seconds * 1e3:.2f} ms to predict, "
                          f"nothing measured")
            if choice.caveat:
                console.print(f"note: {choice.caveat}")
        return
    result = measure_latency(spec, backend=backend, threads=threads, runs=runs, fresh=fresh, storage=storage)
    if as_json:
        _print_json({"name": spec.name, **result.as_dict()})
        return
    device = result.protocol.get("device", {})
    console.print(
        f"{spec.name}: median {result.median_ms:.3f} ms (p10 {result.p10_ms:.3f}, p90 {result.p90_ms:.3f}, "
        f"{result.runs} runs){' [cached]' if result.cached else ''}\n"
        f"  {result.backend} ({result.backend_version}), {result.threads} thread(s), input {result.input_shape}, "
        f"{device.get('cpu_model', '?')} x{device.get('logical_cores', '?')}"
    )


@app.command()
def run(
    budget_ms: Annotated[Optional[str], typer.Option(
        "--budget-ms", help="Latency budget in ms (measured median), or a ladder of them: 2,5,10,20 "
                            "(one search fills every rung; `archsearch family` then trains one network per rung).")
    ] = None,
    space: Annotated[Optional[str], typer.Option(help="Built-in space name or space file.")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="Study name (resumes if it exists).")] = None,
    trials: Annotated[Optional[int], typer.Option(help="Search trials to reach (references not counted).")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting trials after this many minutes.")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="digits-clutter (default), digits, a Keras dataset name, an image folder or an .npz.")] = None,
    train_scale: Annotated[Optional[float], typer.Option(
        help="Proxy training resolution as a fraction of each candidate's input size (default 0.25).")] = None,
    train_size: Annotated[Optional[int], typer.Option(
        help="A fixed proxy training resolution instead (only for spaces that do not search input.size).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Proxy-training epochs per candidate.")] = None,
    storage: StudyStorage = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (sampler, training).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Threads for latency measurement.")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="tpe (default), nsga2 or random.")] = None,
    references: Annotated[Optional[bool], typer.Option("--references/--no-references",
                                                       help="Train the space's reference networks too.")] = None,
    keep_weights: Annotated[Optional[str], typer.Option(
        "--keep-weights", help="Trained weights to keep: front (default; front members) or all.")] = None,
    artifacts: Annotated[Optional[str], typer.Option(
        "--artifacts", help="Where trained weights go: a folder or s3://BUCKET/PREFIX (default: beside a "
                            "SQLite study; recorded on the study).")] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="The device the networks are meant for: its agent (`archsearch agent --device NAME`) "
                         "measures every latency, nothing is timed here.")] = None,
    warm_start: Annotated[Optional[bool], typer.Option(
        "--warm-start/--no-warm-start", help="Begin from the space's references' configurations (projected onto "
                                             "the space) instead of random points (default on).")] = None,
    config: Annotated[Optional[str], typer.Option("--config",
                                                  help="A study written down as YAML (flags override it).")] = None,
) -> None:
    """Search a space under a measured latency budget (or a ladder of budgets); store every trial; print the front."""
    from archsearch.study import StudyRunner, load_study_config, parse_budget_ms

    _quiet_optuna()  # before the runner opens the study: Optuna logs its creation
    settings = load_study_config(
        config, budget_ms=None if budget_ms is None else parse_budget_ms(budget_ms), space=space, name=study,
        trials=trials, timeout_minutes=timeout, dataset=dataset, train_scale=train_scale, train_size=train_size,
        epochs=epochs, storage=storage, seed=seed, threads=threads, sampler=sampler, references=references,
        keep_weights=keep_weights, artifacts=artifacts, device=device, warm_start=warm_start)
    _run_study(StudyRunner(settings))  # validates data, space, storage and resume before any display


@app.command()
def worker(
    study: Annotated[str, typer.Option("--study", help="The study to join (it must exist).")],
    storage: StudyStorage = None,
    timeout: Annotated[Optional[float], typer.Option(help="Stop starting trials after this many minutes.")] = None,
) -> None:
    """Join an existing study as one more worker, with the settings the study recorded."""
    from archsearch.study import StudyRunner, join_config

    _quiet_optuna()
    _run_study(StudyRunner(join_config(study, storage, timeout)))


def _run_study(runner: Any) -> None:
    """Print what the study is, run it with a progress line, then print its front.

    The caller quiets Optuna (``_quiet_optuna``) before making ``runner``, which opens the study."""
    from archsearch.report import write_dashboard
    from archsearch.study import study_trial_count

    settings = runner.config
    total = study_trial_count(runner.study)
    console.print(f"study {settings.name}: {runner.dataset.describe()}; space {settings.space} "
                  f"({runner.space.size:,} specs); {_budget_words(settings)}; "
                  f"{'until the timeout' if total is None else f'{total} search trials'}; storage {runner.shown_url}\n"
                  f"{runner.protocol.summary()}\n{runner.latency_plan}")
    with _StudyProgress() as progress:
        runner.progress = progress
        runner.notify = lambda text: progress.bar.console.print(f"[yellow]{text}[/]", highlight=False)
        result = runner.run()
    _print_study(result, runner.url)
    console.print(f"dashboard: {write_dashboard([result], runner.url)}")


def _budget_words(settings: Any) -> str:
    if settings.ladder_ms:
        return f"budget ladder {', '.join(f'{b:g}' for b in settings.ladder_ms)} ms (every rung to be filled)"
    return f"budget {settings.budget_ms:g} ms"


def _quiet_optuna() -> None:
    """The progress display replaces Optuna's per-trial log lines and experimental-feature notes."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures show in the progress lines
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class _StudyProgress:
    """Trial n/N, best feasible accuracy, front size and time left, on one live line."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                            transient=False)
        self.task = self.bar.add_task("starting", total=None)

    def __enter__(self) -> _StudyProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, study: Any, report: Any) -> None:
        progress = report.progress
        total = progress.total or "∞"
        left = ""
        if progress.seconds_left is not None:
            left = f" · ~{progress.seconds_left / 60:.1f} min left"
        if progress.timeout_left_seconds is not None:
            left += f" · {progress.timeout_left_seconds / 60:.1f} min of timeout left"
        what = f"reference {report.reference}" if report.reference else f"trial {progress.done}/{total}"
        result = (f"acc {report.accuracy:.3f}, {report.latency_ms:.2f} ms" if report.accuracy is not None
                  else (report.reason or ""))
        self.bar.console.print(f"#{report.number} {what}: {report.status} ({result}) in {report.seconds:.0f} s")
        if report.notice:
            self.bar.console.print(f"[bold yellow]{report.notice}[/]", highlight=False)
        best = f"{progress.best_accuracy:.3f}" if progress.best_accuracy is not None else "-"
        self.bar.update(self.task, total=progress.total, completed=progress.done,
                        description=f"trial {progress.done}/{total} · best feasible acc {best} · "
                                    f"front {progress.front_size}{left}")


def _print_study(study: Any, storage_url: str) -> None:
    from archsearch.study import study_report

    report = study_report(study, storage_url)
    _print_front(report)
    console.print(f"database: {report['storage']}")


def _print_ladder(report: dict[str, Any]) -> None:
    """Each rung of a ladder study: the trained networks inside it, or why none is."""
    for rung in report.get("ladder") or ():
        console.print(rung["sentence"], style=None if rung["filled"] else "bold yellow", markup=False,
                      highlight=False)


def _print_family(family: dict[str, Any]) -> None:
    """A family as a B0-B7 style table: one row per rung, then the references under the same recipe."""
    from archsearch.terminal import Col, fit_table

    columns = [Col("rung", justify="right"), Col("network"), Col("input", justify="right"),
               Col("latency ms", justify="right"), Col("accuracy", justify="right"), Col("params", justify="right"),
               Col("MACs", justify="right")]
    seeds = len(family["recipe"]["seeds"])

    def accuracy(row: dict[str, Any]) -> str:
        return f"{row['accuracy_mean']:.4f} ± {row['accuracy_std']:.4f}" if seeds > 1 else f"{row['accuracy_mean']:.4f}"

    cells = [[f"{m['rung_ms']:g} ms", f"trial {m['trial']}" + (f" (= rung {m['same_as_rung_ms']:g} ms)"
                                                                if m["same_as_rung_ms"] is not None else ""),
              str(m["input_size"]), f"{m['latency_ms']:.3f}", accuracy(m), f"{m['params']:,}", _millions(m["macs"])]
             for m in family["members"]]
    cells += [["ref", r["reference"], str(r["input_size"]), f"{r['latency_ms']:.3f}", accuracy(r), f"{r['params']:,}",
               _millions(r["macs"])] for r in family["references"]]
    console.print(fit_table(columns, cells, console=console, drop=["MACs", "params", "input"],
                            title=f"family of {family['study']} (accuracy: mean ± std over {seeds} seed(s), "
                                  "measured on the exported .tflite)"))
    console.print(family["recipe"]["summary"] + "; latency: " + family["latency_protocol"])
    for verdict in family["reference_verdicts"]:
        console.print(verdict["sentence"])
    for rung in family["unfilled"]:
        console.print(f"[bold yellow]{rung['reason']}[/]", highlight=False)
    console.print(f"files: {family['folder']}")


def _print_canary(report: dict[str, Any]) -> None:
    canary = report.get("canary")
    if canary and canary["drifted"]:
        console.print(f"[bold yellow]canary: {canary['anchor']}'s latency moved up to {canary['max_deviation']:.0%} "
                      f"from its first reading in this study (noise band {canary['band']:.0%}): latencies were "
                      f"measured in more than one regime of the device[/]", highlight=False)


def _print_front(report: dict[str, Any]) -> None:
    from archsearch.study.front import reference_sentence
    from archsearch.terminal import Col, fit_table

    columns = [Col("trial", justify="right"), Col("accuracy", justify="right"), Col("latency ms", justify="right"),
               Col("params", justify="right"), Col("MACs", justify="right"), Col("network")]
    cells = [[str(point["number"]), f"{point['accuracy']:.4f}", f"{point['latency_ms']:.3f}",
              f"{point['params']:,}" if point["params"] else "-",
              _millions(point["macs"]) if point["macs"] else "-",
              point["reference"] or point["name"] or ""] for point in report["front"]]
    console.print(fit_table(columns, cells, console=console, drop=["MACs", "params"],
                            title=f"Pareto front of {report['study']} (budget {report['budget_ms']} ms; "
                                  f"accuracy: {report.get('accuracy', 'proxy accuracy')})"))
    if report.get("accuracy_protocol"):
        console.print(report["accuracy_protocol"]["summary"])
    for verdict in report["reference_verdicts"]:
        console.print(reference_sentence(verdict))
    _print_ladder(report)
    _print_canary(report)


@app.command()
def studies(storage: StudyStorage = None, as_json: JsonFlag = False) -> None:
    """List studies with their trial counts and storage."""
    from archsearch.study import list_studies
    from archsearch.urls import shown_url

    rows = [{"study": summary.study_name, "trials": summary.n_trials, "storage": shown_url(url),
             "started": summary.datetime_start.isoformat() if summary.datetime_start else None}
            for url, summary in list_studies(storage)]
    if as_json:
        _print_json(rows)
        return
    from archsearch.terminal import Col, fit_table, headers

    # the start time may wrap between date and time; the storage URL may fold; study names stay whole
    columns = [Col("study"), Col("trials", justify="right"), Col("started", "text"),
               Col("storage", "fold", min_width=16)]
    cells = [[row["study"], str(row["trials"]), (row["started"] or "-").replace("T", " ", 1), row["storage"]]
             for row in rows]
    table = fit_table(columns, cells, console=console, drop=["started", "storage"])
    console.print(table)
    if rows and "storage" not in headers(table):  # too narrow for the column: the storage on lines of its own
        urls = {row["storage"] for row in rows}
        for line in ([f"storage: {urls.pop()}"] if len(urls) == 1 else
                     [f"{row['study']}: {row['storage']}" for row in rows]):
            console.print(line, markup=False, highlight=False)


@app.command("show-study")
def show_study(name: Annotated[str, typer.Argument(help="Study name.")], storage: StudyStorage = None,
               as_json: JsonFlag = False) -> None:
    """Print a study's Pareto front, its references and its failures with reasons."""
    from archsearch.study import load_existing_study, study_report

    study, url = load_existing_study(name, storage)
    report = study_report(study, url)
    if as_json:
        _print_json(report)
        return
    counts = ", ".join(f"{v} {k}" for k, v in sorted(report["by_status"].items()))
    console.print(f"{report['study']}: {report['trials']} trials ({counts}); storage {report['storage']}")
    if report["device"] or len(report["workers"]) > 1:
        workers = ", ".join(f"{name} ({n})" for name, n in report["workers"].items())
        device = f"latency from device {report['device']!r}; " if report["device"] else ""
        console.print(f"{device}trials by worker: {workers}")
    _print_front(report)
    for ref in report["references"]:
        console.print(f"reference {ref['reference']}: accuracy {ref['accuracy']:.4f}, {ref['latency_ms']:.3f} ms "
                      f"(trial {ref['number']})")
    for failure in report["failures"]:
        console.print(f"trial {failure['trial']} failed: {failure['reason']}")
    if report.get("family"):
        _print_family(report["family"])


@app.command()
def family(
    study: Annotated[str, typer.Argument(help="The study whose ladder the family fills.")],
    output: Annotated[Optional[str], typer.Option("-o", "--output",
                                                  help="Folder for the family (default families/STUDY).")] = None,
    epochs: Annotated[int, typer.Option(help="Final-training epochs at each network's deployment input.")] = 8,
    seeds: Annotated[int, typer.Option(help="Seeds per network (0, 1, ...): accuracy is their mean ± std.")] = 2,
    batch_size: Annotated[Optional[int], typer.Option(help="Final-training batch size (default the study's).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(
        help="Final-training AdamW learning rate (default the study's).")] = None,
    threads: Annotated[Optional[int], typer.Option(help="LiteRT threads for latency (default the study's).")] = None,
    jobs: Annotated[int, typer.Option(
        help="Trainings side by side, each in its own process with its share of the cores (each holds its own "
             "training in memory).")] = 1,
    storage: StudyStorage = None,
    as_json: JsonFlag = False,
) -> None:
    """Pick the best network per rung of a study's ladder, train it for real with the references, ship it.

    Each pick and each of the space's references is trained at its deployment input
    (--epochs, --seeds); per rung a spec YAML, a .tflite and a .keras are written; accuracy
    is measured on the exported .tflite in LiteRT and latency re-measured. Finished
    trainings are reused: an interrupted family resumes, and a later one retrains only
    the picks that changed.
    """
    from archsearch.family import build_family

    if epochs < 1 or seeds < 1:
        raise ArchsearchError(f"--epochs and --seeds must be at least 1, got {epochs} and {seeds}")
    if (batch_size is not None and batch_size < 1) or (learning_rate is not None and learning_rate <= 0):
        raise ArchsearchError("--batch-size and --learning-rate must be positive")
    if threads is not None and threads < 1:
        raise ArchsearchError(f"--threads must be at least 1, got {threads}")
    if jobs < 1:
        raise ArchsearchError(f"--jobs must be at least 1, got {jobs}")
    import signal

    signal.signal(signal.SIGTERM, _interrupt)  # side-by-side trainings are stopped with it, not left running
    result = build_family(study, storage, output, epochs=epochs, seeds=tuple(range(seeds)), batch_size=batch_size,
                          learning_rate=learning_rate, threads=threads, jobs=jobs,
                          say=lambda text: console.print(text, highlight=False))
    if as_json:
        _print_json(result)
    else:
        _print_family(result)


@app.command()
def dashboard(
    names: Annotated[list[str], typer.Argument(help="One or more study names (told apart by colour).")],
    storage: StudyStorage = None,
    output: Annotated[Optional[str], typer.Option("-o", "--output",
                                                  help="HTML file (default: dashboards/NAME.html).")] = None,
) -> None:
    """Write a self-contained HTML dashboard: Pareto front, cost, history, latency, importances, specs."""
    from archsearch.report import write_dashboard

    console.print(f"dashboard: {write_dashboard(names, storage, output)}")


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="Study name.")],
    trial: Annotated[Optional[int], typer.Option("--trial", help="Trial number to export.")] = None,
    front: Annotated[bool, typer.Option("--front", help="Export every member of the Pareto front.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="yaml, keras, tflite or onnx.")] = "yaml",
    storage: StudyStorage = None,
    output: Annotated[Optional[str], typer.Option(
        "-o", "--output", help="File (folder with --front); default exports/STUDY/trialN.EXT.")] = None,
) -> None:
    """Export a trial (or the whole front) as a spec, a .keras model, a .tflite or an .onnx file.

    Model formats carry the weights the study trained, compiled at the spec's input size.
    """
    from archsearch.export import check_format, export_front, export_trial

    check_format(fmt)
    if front and trial is None:
        written = export_front(name, fmt, storage, output)
    elif trial is not None and not front:
        written = [export_trial(name, trial, fmt, storage, output)]
    else:
        raise ArchsearchError("give either --trial N or --front")
    for item in written:
        console.print(f"trial {item.trial}: {item.path}")
        if item.card is not None:
            console.print(f"  {item.card.line()}\n  card: {item.path}.json")


AgentStorage = Annotated[Optional[str], typer.Option(
    "--storage", envvar="ARCHSEARCH_STORAGE", callback=_storage, show_envvar=True,
    help="The database the workers share (a study's storage URL), or @FILE to read it from a file.")]


@app.command()
def agent(
    device: Annotated[str, typer.Option("--device", help="The device's name, as studies name it.")],
    storage: AgentStorage = None,
    backend: Annotated[str, typer.Option(help="Latency backend.")] = "litert",
    threads: Annotated[int, typer.Option(help="Interpreter threads.")] = 1,
    max_requests: Annotated[Optional[int], typer.Option(help="Stop after this many requests.")] = None,
    idle_exit: Annotated[Optional[float], typer.Option(help="Stop after this many seconds without a request.")] = None,
) -> None:
    """Serve latency measurements on this device for workers anywhere; run nothing else on it meanwhile."""
    import signal

    from archsearch.latency.agent import serve

    if not storage:
        raise ArchsearchError("give --storage URL (or set ARCHSEARCH_STORAGE): the database the workers share")

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the agent hands back what it holds and unregisters

    signal.signal(signal.SIGTERM, stop)
    serve(storage, device, backend, threads, max_requests=max_requests, idle_exit_seconds=idle_exit,
          on_event=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))


profile_app = typer.Typer(help="Device profiles: per-kernel latency regressors that predict without measuring.",
                          no_args_is_help=True)
app.add_typer(profile_app, name="profile")
CacheStorage = Annotated[Optional[str], typer.Option("--storage", callback=_storage,
                                                     help="Database URL for the cache (default: user cache), or "
                                                          "@FILE to read it from a file.")]
Threads = Annotated[int, typer.Option(help="Interpreter threads the profile is for.")]
Backend = Annotated[str, typer.Option(help="Latency backend.")]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@profile_app.command("build")
def profile_build(
    threads: Threads = 1,
    backend: Backend = "litert",
    minutes: Annotated[float, typer.Option(help="Time budget for measuring networks.")] = 15.0,
    seed: Annotated[int, typer.Option(help="Seed for sampling the networks.")] = 0,
    storage: CacheStorage = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="Build the profile of this device through its measurement agent (`archsearch agent "
                         "--device NAME` on it, serving --storage, default $ARCHSEARCH_STORAGE): nothing is timed "
                         "here; stored in that database for studies on the device.")] = None,
    space: Annotated[Optional[list[str]], typer.Option(
        "--space", help="Sample from this space (built-in name or file; repeatable; default: mobilenetv3, "
                        "efficientnet and shufflenetv2).")] = None,
    networks: Annotated[Optional[int], typer.Option(
        "--networks", help="Stop after this many measured networks (at least 10), before the time budget.")] = None,
) -> None:
    """Measure sampled networks on this device (or a named one, through its agent) and fit its profile."""
    import os
    import signal

    from archsearch.latency.profile import store_profile
    from archsearch.latency.profile_build import BUILD_SPACES, BuildProgress, build_profile

    def progress(step: BuildProgress) -> None:
        error = step.accuracy.sentence() if step.accuracy else "held-out error once 10 networks are measured"
        failed = f" ({step.failed} the device could not measure, skipped)" if step.failed else ""
        console.print(f"round {step.round}: {step.networks} networks measured{failed} in {step.seconds / 60:.1f} "
                      f"min; {error}", highlight=False)

    spaces = tuple(space) if space else BUILD_SPACES
    sampled = " and ".join([", ".join(spaces[:-1]), spaces[-1]] if len(spaces) > 1 else spaces)
    measure = None
    if device is not None:
        from archsearch.latency import AgentMeasure
        from archsearch.urls import read_storage, shown_url

        storage = storage or read_storage(os.environ.get("ARCHSEARCH_STORAGE"))
        if not storage:
            raise ArchsearchError("give --storage URL (or set ARCHSEARCH_STORAGE): the database the device's agent "
                                  "serves")
        agent = AgentMeasure(storage, device, backend, threads, on_wait=lambda text: console.print(
            text, style="yellow", markup=False, highlight=False, soft_wrap=True))
        measure = agent.measure_many
        signal.signal(signal.SIGTERM, _interrupt)  # the requests no agent has taken are withdrawn on the way out
        console.print(f"building the {backend} profile of device {device!r} for {threads} thread(s) within "
                      f"{minutes:g} minutes (networks sampled from {sampled}), measured by its agent "
                      f"through {shown_url(storage)}; nothing is timed here", highlight=False)
    else:
        console.print(f"building a {backend} profile for {threads} thread(s) within {minutes:g} minutes "
                      f"(networks sampled from {sampled}, each converted and timed)")
    profile = build_profile(backend, threads, storage, minutes=minutes, seed=seed, spaces=spaces,
                            max_networks=networks, on_progress=progress, measure=measure, device_name=device)
    store_profile(profile, storage)
    if device is not None:
        console.print(f"device {device!r}: {profile.device.get('cpu_model', '?')} "
                      f"x{profile.device.get('logical_cores', '?')} (fingerprint {profile.fingerprint}), "
                      f"{profile.backend} ({profile.backend_version})", highlight=False)
    console.print(f"profile stored: {profile.build['networks']} networks in {profile.build['seconds'] / 60:.1f} min; "
                  f"cross-validated: {profile.accuracy.sentence()}", highlight=False)


@profile_app.command("show")
def profile_show(storage: CacheStorage = None, as_json: JsonFlag = False) -> None:
    """Print every stored profile: its device, setup, what it was built from, and how well it predicts."""
    from archsearch.latency import device_info
    from archsearch.latency.profile import stored_profiles

    profiles = stored_profiles(storage)
    if as_json:
        _print_json([p.as_dict() for p in profiles])
        return
    if not profiles:
        console.print("no device profiles stored: `archsearch profile build` makes one (about 15 minutes)")
        return
    here = device_info().fingerprint
    for profile in profiles:
        where = "this machine" if profile.fingerprint == here else "ANOTHER device"
        named = f"device {profile.device_name!r}: " if profile.device_name else ""
        console.print(f"{named}{profile.device.get('cpu_model', '?')} x{profile.device.get('logical_cores', '?')} "
                      f"(fingerprint {profile.fingerprint}, {where}); {profile.backend} ({profile.backend_version}), "
                      f"{profile.threads} thread(s); built {profile.created_at} from "
                      f"{profile.build.get('networks', '?')} networks in "
                      f"{profile.build.get('seconds', 0) / 60:.1f} min", highlight=False)
        console.print(f"  held-out accuracy: {profile.accuracy.sentence()}", highlight=False)
        for kind, costs in profile.kernel_costs().items():
            console.print(f"  {kind}: " + ", ".join(f"{name} {value:.3g} ms" for name, value in costs.items()),
                          highlight=False)


@profile_app.command("export")
def profile_export(
    file: Annotated[str, typer.Argument(help="JSON file to write.")],
    threads: Threads = 1,
    backend: Backend = "litert",
    storage: CacheStorage = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="The profile of this named device (built with `profile build --device`).")] = None,
) -> None:
    """Write this device's profile to a file, for others to import."""
    from pathlib import Path

    from archsearch.latency.profile import ProfileChoice, ProfileError, device_profile, require_profile

    if device is not None:
        found = device_profile(device, backend, threads, storage)
        if found is None:
            raise ProfileError(f"no profile of device {device!r} for {backend} with {threads} thread(s) in this "
                               f"storage: build one with `archsearch profile build --device {device} --storage URL`")
        choice = ProfileChoice(found, None)
    else:
        choice = require_profile(backend, threads, storage)
    Path(file).write_text(choice.profile.to_json())
    console.print(f"{file}: profile of {choice.profile.device.get('cpu_model', '?')} ({backend}, {threads} "
                  f"thread(s))", highlight=False)
    if choice.caveat:
        console.print(f"note: {choice.caveat}", highlight=False)


@profile_app.command("import")
def profile_import(file: Annotated[str, typer.Argument(help="A file written by `archsearch profile export`.")],
                   storage: CacheStorage = None) -> None:
    """Store a profile measured elsewhere; predictions then use it, saying which device it describes."""
    from pathlib import Path

    from archsearch.latency import device_info
    from archsearch.latency.profile import DeviceProfile, ProfileError, store_profile

    path = Path(file)
    if not path.is_file():
        raise ProfileError(f"{file}: no such file")
    profile = DeviceProfile.from_json(path.read_text(errors="replace"), file)
    store_profile(profile, storage)
    named = f"device {profile.device_name!r}, " if profile.device_name else ""
    console.print(f"imported the profile of {named}{profile.device.get('cpu_model', '?')} ({profile.backend}, "
                  f"{profile.threads} thread(s)); {profile.accuracy.sentence()}", highlight=False)
    if profile.fingerprint != device_info().fingerprint:
        console.print(f"note: built on another device (fingerprint {profile.fingerprint}, this machine is "
                      f"{device_info().fingerprint}): its predictions are that device's latencies", highlight=False)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    from archsearch.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()  # TensorFlow's C++ start-up lines (oneDNN, no CUDA) are not for our users
    try:
        code = app(args=sys.argv[1:] or ["--help"], standalone_mode=False)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    except typer.TyperException as error:  # command-line usage errors (bad option values, unknown commands)
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        sys.stderr.write(f"error: {' '.join(message.split())}\n")
        raise SystemExit(getattr(error, "exit_code", 2) or 2) from None
    except ValidationError as error:
        from archsearch.spec import format_validation_error

        sys.stderr.write(f"error: {format_validation_error(error)}\n")
        raise SystemExit(2) from None
    except ArchsearchError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
