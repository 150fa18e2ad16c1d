"""The ``archsearch`` command: parses arguments, calls the library, prints."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

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
