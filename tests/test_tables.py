"""Tables fit the terminal: identifiers and numbers are never cut, at any width.

Each command runs in-process with the CLI's rich console forced to a width; the output
must hold every name and number whole, never an ellipsis, and no line wider than the
terminal.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import optuna
import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

import archsearch
from archsearch import cli
from archsearch.describe import spec_totals
from archsearch.terminal import Col, fit_table, measure_width

WIDTHS = (60, 80, 200)
STUDY = "a-study-with-a-rather-long-name-0123456789"  # 42 characters
SPEC_NAMES = ["mobilenetv3-6316d54e36", "mobilenetv3-0a1b2c3d4e", "shufflenetv2-9f8e7d6c5b"]


def render(monkeypatch: pytest.MonkeyPatch, width: int, *args: str) -> str:
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(width=width, file=out, force_terminal=False, color_system=None))
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    text = out.getvalue()
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not too_wide, text
    return text


def column_text(text: str, index: int) -> str:
    """A column's body cells joined line after line: a folded value reads whole again."""
    return "".join(line.split("│")[1:-1][index].strip() for line in text.splitlines() if line.startswith("│"))


def cells(text: str) -> set[str]:
    """Every table cell's text, one line of a cell at a time (borders and padding stripped)."""
    found = set()
    for line in text.splitlines():
        for part in line.replace("┃", "│").split("│")[1:-1]:
            if part.strip():
                found.add(part.strip())
    return found


@pytest.mark.parametrize("width", WIDTHS)
def test_references_names_and_numbers_are_whole(monkeypatch, width):
    text = render(monkeypatch, width, "references")
    shown = cells(text)
    for name in archsearch.reference_names():
        assert name in shown, (name, text)
        totals = spec_totals(archsearch.load_reference(name))
        assert f"{totals['params']:,}" in shown, text
        assert f"{totals['input_size']}x{totals['input_size']}" in shown
    if width >= 80:
        assert "trainable" in shown  # only the hash goes at 80 columns
    if width >= 100:
        assert "hash" in shown


@pytest.mark.parametrize("width", WIDTHS)
def test_spaces_sizes_and_references_are_whole(monkeypatch, width):
    from archsearch.space import load_space, space_names

    text = render(monkeypatch, width, "spaces")
    shown = cells(text)
    for name in space_names():
        space = load_space(name)
        assert name in shown and f"{space.size:,}" in shown, text
        for reference in space.references:
            assert reference in shown, (reference, text)
    assert "2,600,529,297,408" in shown  # the size of mobilenetv3, once cut to 2,600,529,297,…


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("network", ["mobilenet_v3_large", "efficientnet_b7", "shufflenet_v2_x2_0"])
def test_show_part_paths_are_whole(monkeypatch, width, network):
    from archsearch.describe import resolve_spec_argument, spec_rows

    data = spec_rows(resolve_spec_argument(network))
    text = render(monkeypatch, width, "show", network)
    shown = cells(text)
    for row in data["rows"]:
        assert row["part"] in shown, (row["part"], text)
        assert f"{row['params']:,}" in shown, text
        for word in row["block"].split():  # the description wraps, at spaces only
            assert word in text
    assert f"total: {data['params']:,} params" in text


def test_references_in_a_real_80_column_terminal():
    result = subprocess.run([sys.executable, "-m", "archsearch", "references"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    for name in archsearch.reference_names():
        assert f" {name} " in result.stdout
    assert max(cell_len(line) for line in result.stdout.splitlines()) <= 80


@pytest.fixture
def fake_study(tmp_path):
    """A small archsearch-shaped study: a long name, long spec names, a reference and an over-budget trial."""
    from archsearch.study import CONFIG_ATTR

    url = f"sqlite:///{tmp_path / 'fake.db'}"
    study = optuna.create_study(study_name=STUDY, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(CONFIG_ATTR, {"budget_ms": 20.0})
    budget = 20.0
    trials = [  # (accuracy, ms, attrs)
        (0.9200, 10.0, {"reference": "mobilenet_v3_large", "spec_name": "mobilenet_v3_large",
                          "params": 5_507_432, "macs": 216_600_000}),
        (0.9100, 8.125, {"spec_name": SPEC_NAMES[0], "params": 2_554_968, "macs": 56_500_000}),
        (0.9350, 14.5, {"spec_name": SPEC_NAMES[1], "params": 66_658_687, "macs": 37_745_900_000}),
        (0.9400, 19.875, {"spec_name": SPEC_NAMES[2], "params": 7_427_719, "macs": 583_300_000}),
        (0.9900, 31.0, {"spec_name": "over-budget-network", "params": 1, "macs": 1}),
    ]
    for accuracy, ms, attrs in trials:
        study.add_trial(optuna.trial.create_trial(values=[accuracy, ms], constraints={"latency": ms - budget},
                                                  user_attrs={**attrs, "status": "complete"}))
    return url


@pytest.mark.parametrize("width", WIDTHS)
def test_studies_names_are_whole(monkeypatch, fake_study, width):
    text = render(monkeypatch, width, "studies", "--storage", fake_study)
    assert STUDY in cells(text), text
    if "storage" in cells(text):  # the URL may fold in its column, nothing is lost
        assert fake_study in column_text(text, -1), text
    else:  # too narrow for a storage column: the URL on a line of its own (folded by the terminal)
        assert width < 80
        after_table = text.split("┘", 1)[1]
        assert "storage: " + fake_study in "".join(after_table.splitlines()), text


@pytest.mark.parametrize("width", WIDTHS)
def test_show_study_front_is_whole(monkeypatch, fake_study, width):
    text = render(monkeypatch, width, "show-study", STUDY, "--storage", fake_study)
    shown = cells(text)
    assert STUDY in text  # the header line and the table's title
    for name in [*SPEC_NAMES, "mobilenet_v3_large"]:
        assert name in shown, (name, text)
    for number in ("0.9100", "0.9200", "0.9350", "0.9400", "8.125", "10.000", "14.500", "19.875"):
        assert number in shown, (number, text)
    if width >= 80:
        for number in ("2,554,968", "66,658,687", "7,427,719"):
            assert number in shown, (number, text)
    assert "over-budget-network" not in text


# ----- the helper itself -----

def _console(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(width=width, file=out, force_terminal=False, color_system=None), out


def test_fit_table_drops_optional_columns_in_order_only_when_needed():
    columns = [Col("name"), Col("size", justify="right"), Col("note", "text"), Col("hash")]
    rows = [["a_long_identifier_name", "123,456,789", "some prose that may wrap anywhere", "0123456789ab"]]
    wide, _ = _console(200)
    assert [c.header.plain for c in fit_table(columns, rows, console=wide, drop=["hash", "note"]).columns] == \
        ["name", "size", "note", "hash"]
    narrow, out = _console(56)
    table = fit_table(columns, rows, console=narrow, drop=["hash", "note"])
    assert [c.header.plain for c in table.columns] == ["name", "size", "note"]
    assert measure_width(table, narrow) <= 56
    narrow.print(table)
    assert "a_long_identifier_name" in out.getvalue() and "123,456,789" in out.getvalue()
    assert "…" not in out.getvalue()


def test_fit_table_folds_without_ellipsis_when_nothing_is_left_to_drop():
    console, out = _console(20)
    table = fit_table([Col("name"), Col("value")], [["an_identifier_longer_than_the_terminal", "1,234,567,890"]],
                      console=console)
    console.print(table)
    text = out.getvalue()
    assert "…" not in text and max(cell_len(line) for line in text.splitlines()) <= 20
    assert column_text(text, 0) == "an_identifier_longer_than_the_terminal"
    assert column_text(text, 1) == "1,234,567,890"


def test_fit_table_prints_cells_as_plain_text():
    console, out = _console(80)
    console.print(fit_table([Col("part")], [["stages[1].blocks[0]"], ["[bold]x[/bold]"]], console=console))
    assert "stages[1].blocks[0]" in out.getvalue() and "[bold]x[/bold]" in out.getvalue()


def test_fit_table_rejects_an_unknown_optional_column():
    console, _ = _console(80)
    with pytest.raises(ValueError, match="unknown column"):
        fit_table([Col("name")], [["x"]], console=console, drop=["nope"])
