"""The ``archsearch`` command: parses arguments, calls the library, prints."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from archsearch.errors import ArchsearchError

app = typer.Typer(
    help="Hardware-aware neural architecture search for Keras: architectures as data, latency measured.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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
    from archsearch.inspect import spec_summary
    from archsearch.references import load_reference, reference_names

    rows = [spec_summary(load_reference(name)) for name in reference_names()]
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "input", "params", "trainable", "MACs", "hash")
    for row in rows:
        table.add_row(row["name"], f"{row['input_size']}x{row['input_size']}", f"{row['params']:,}",
                      f"{row['trainable_params']:,}", _millions(row["macs"]), row["hash"][:12])
    console.print(table)


@app.command()
def show(
    name_or_file: Annotated[str, typer.Argument(help="A reference name or a spec file (.yaml/.json).")],
    as_json: JsonFlag = False,
) -> None:
    """Show a network stage by stage: each block's output shape, parameters and MACs."""
    from archsearch.inspect import resolve_spec_argument, spec_table, stage_totals

    data = spec_table(resolve_spec_argument(name_or_file))
    if as_json:
        _print_json(data)
        return
    table = Table("part", "block", "x", "output", "params", "MACs", title=f"{data['name']}  ({data['hash'][:12]})")
    for row in data["rows"]:
        h, w, c = row["output"]
        table.add_row(row["part"], row["block"], str(row["repeats"]), f"{h}x{w}x{c}", f"{row['params']:,}",
                      _millions(row["macs"]))
    console.print(table)
    for stage, cost in stage_totals(data["rows"]).items():
        console.print(f"stage {stage}: {cost.params:,} params, {_millions(cost.macs)} MACs")
    console.print(f"total: {data['params']:,} params ({data['trainable_params']:,} trainable), "
                  f"{_millions(data['macs'])} MACs at {data['input_size']}x{data['input_size']}")


@app.command()
def validate(file: Annotated[str, typer.Argument(help="A spec file (.yaml/.yml/.json).")]) -> None:
    """Check a spec file; exit 0 if it describes a buildable network, 2 with the reason if not."""
    from archsearch.inspect import spec_summary
    from archsearch.spec import load_spec

    summary = spec_summary(load_spec(file))
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
    table = Table("name", "size", "parameters", "family", "references")
    for row in rows:
        table.add_row(row["name"], f"{row['size']:,}", str(row["parameters"]), row["family"],
                      ", ".join(row["references"]))
    console.print(table)


@app.command()
def latency(
    name_or_file: Annotated[str, typer.Argument(help="A reference name, a spec file (.yaml/.json) or a .tflite file.")],
    backend: Annotated[str, typer.Option(help="Latency backend: litert (TFLite in LiteRT) or keras.")] = "litert",
    threads: Annotated[int, typer.Option(help="Interpreter threads.")] = 1,
    runs: Annotated[Optional[int], typer.Option(help="Timed runs (default: until the median is stable).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Measure again instead of answering from the cache.")] = False,
    predict: Annotated[bool, typer.Option("--predict", help="Predict from the per-part table instead of measuring.")] = False,
    storage: Annotated[Optional[str], typer.Option(help="Database URL for the cache (default: user cache).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Measure (or predict) batch-1 latency at the spec's input size, in a separate process."""
    from archsearch.inspect import resolve_spec_argument
    from archsearch.latency import LatencyPredictor, measure_latency, measure_tflite

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
        prediction = LatencyPredictor(backend, threads, storage).predict(spec)
        data = {"name": spec.name, "predicted_ms": prediction.latency_ms, "parts_sum_ms": prediction.parts_sum_ms,
                "parts": prediction.parts, "parts_measured_now": prediction.parts_measured,
                "calibration_points": prediction.calibration.points, "seconds": prediction.seconds,
                "backend": backend, "threads": threads}
        if as_json:
            _print_json(data)
        else:
            console.print(f"{spec.name}: predicted {prediction.latency_ms:.3f} ms ({backend}, {threads} thread(s)); "
                          f"{prediction.parts} parts summing to {prediction.parts_sum_ms:.3f} ms, "
                          f"{prediction.parts_measured} measured now; calibrated on "
                          f"{prediction.calibration.points} network(s); {prediction.seconds * 1e3:.1f} ms to predict")
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


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        app()
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
