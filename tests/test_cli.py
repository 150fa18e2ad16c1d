"""The command line: output, JSON, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import archsearch


def run(*args: str, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archsearch", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_references_json_lists_every_reference():
    result = run("references", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == archsearch.reference_names()
    v2 = next(row for row in rows if row["name"] == "mobilenet_v2")
    assert (v2["params"], v2["macs"], v2["input_size"]) == (3_538_984, 300_774_272, 224)


def test_references_table():
    result = run("references")
    assert result.returncode == 0
    assert "mobilenet_v3_large" in result.stdout and "5,507,432" in result.stdout


def test_show_reference_and_file(tmp_path):
    result = run("show", "mobilenet_v3_small")
    assert result.returncode == 0, result.stderr
    assert "stages[3].blocks[0]" in result.stdout and "2,554,968 params" in result.stdout
    path = archsearch.dump_spec(archsearch.load_reference("shufflenet_v2_x0_5"), tmp_path / "s.yaml")
    data = json.loads(run("show", str(path), "--json").stdout)
    assert data["trainable_params"] == 1_366_792
    assert data["rows"][0]["part"] == "stem" and data["rows"][-1]["part"] == "head"
    assert sum(row["macs"] for row in data["rows"]) == data["macs"]


def test_validate_accepts_a_good_file(tmp_path):
    path = archsearch.dump_spec(archsearch.load_reference("efficientnet_b0"), tmp_path / "b0.json")
    result = run("validate", str(path))
    assert result.returncode == 0 and result.stdout.startswith("ok: efficientnet_b0")


BAD_FILES = {
    "malformed.yaml": ("name: x\nstages: [\n  {type: conv\n", "not valid YAML"),
    "block.yaml": ("stages: [{blocks: [{type: resnet, channels: 8}]}]\n", "stages[0].blocks[0].type: unknown block type 'resnet'"),
    "act.yaml": ("stages: [{blocks: [{type: conv, channels: 8, activation: tanh}]}]\n", "stages[0].blocks[0].activation"),
    "kernel.yaml": ("stages: [{blocks: [{type: mbconv, channels: 8, kernel: 4}]}]\n", "stages[0].blocks[0].kernel: must be odd"),
    "stride.yaml": ("stages: [{blocks: [{type: dsconv, channels: 8, stride: 3}]}]\n", "stages[0].blocks[0].stride"),
    "channels.yaml": ("stages: [{blocks: [{type: conv, channels: -4}]}]\n", "stages[0].blocks[0].channels"),
    "zero.yaml": ("stem: {channels: 0}\nstages: [{blocks: [{type: conv, channels: 8}]}]\n", "stem.channels"),
    "se.yaml": ("stages: [{blocks: [{type: mbconv, channels: 8, se_ratio: 1.5}]}]\n", "stages[0].blocks[0].se_ratio"),
    "collapse.json": ('{"input": {"size": 8}, "stages": [{"blocks": [{"type": "conv", "channels": 8, "stride": 2,'
                      ' "repeats": 1}, {"type": "conv", "channels": 8, "stride": 2}, {"type": "conv", "channels": 8,'
                      ' "stride": 2}]}]}', "stages[0].blocks[2].stride: feature map collapses below 1x1"),
}


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_bad_files_give_one_line_and_status_2(tmp_path, filename):
    text, expected = BAD_FILES[filename]
    path = tmp_path / filename
    path.write_text(text)
    for command in ("validate", "show"):
        result = run(command, str(path))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert expected in result.stderr, result.stderr


def test_missing_file_and_unknown_name():
    result = run("validate", "/nonexistent/spec.yaml")
    assert result.returncode == 2 and "no such file" in result.stderr
    result = run("show", "mobilenet_v9")
    assert result.returncode == 2 and "unknown reference" in result.stderr and result.stderr.count("\n") == 1


def _commands() -> list[str]:
    import typer

    from archsearch.cli import app

    return sorted(typer.main.get_command(app).commands)


def test_the_app_is_a_group_with_the_documented_commands():
    assert _commands() == sorted(["references", "show", "validate", "spaces", "latency", "run", "worker", "agent",
                                  "family", "studies", "show-study", "dashboard", "export", "profile"])
    import typer

    from archsearch.cli import app

    profile = typer.main.get_command(app).commands["profile"]
    assert sorted(profile.commands) == ["build", "export", "import", "show"]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0 and "Usage" in result.stdout and len(result.stdout.strip().splitlines()) > 3


def test_top_level_help_does_not_import_tensorflow():
    code = "import sys; from archsearch.cli import app; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_ci_runs_the_readme_test_command():
    """The quick start's second command is the one .ci/run runs, and it installs what the tests need."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    lines = (root / "README.md").read_text().splitlines()
    command = lines[lines.index("# 2. set up and run the tests") + 1].strip()
    ci_commands = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.lstrip().startswith("#")]
    assert command in ci_commands
    script = (root / command.split()[0]).read_text()
    assert "chromium" in script and "postgresql" in script and "pip install -q -e '.[test]'" in script


def test_storage_from_the_environment_or_a_file(tmp_path):
    """A URL with a password need not be on the command line (where `ps` shows it to everyone)."""
    import optuna

    url = f"sqlite:///{tmp_path / 'team.db'}"
    optuna.create_study(study_name="shared", storage=url, directions=["maximize", "minimize"])
    from_env = run("studies", "--json", env={"ARCHSEARCH_STORAGE": url})
    assert from_env.returncode == 0 and [row["study"] for row in json.loads(from_env.stdout)] == ["shared"]
    secret = tmp_path / "storage-url"
    secret.write_text(f"\n{url}\n")
    from_file = run("show-study", "shared", "--storage", f"@{secret}", "--json")
    assert from_file.returncode == 0 and json.loads(from_file.stdout)["study"] == "shared"
    for value, message in ((f"@{tmp_path / 'missing'}", "no such file"), (f"@{tmp_path}", "cannot read it")):
        refused = run("studies", "--storage", value)
        assert refused.returncode == 2 and message in refused.stderr and refused.stderr.count("\n") == 1
    (tmp_path / "empty").write_text("\n")
    assert "is empty" in run("studies", "--storage", f"@{tmp_path / 'empty'}").stderr
