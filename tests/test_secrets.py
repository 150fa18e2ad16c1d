"""A password in a storage URL is used, never shown: not in any command's output, the study, or a dashboard."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import write_tiny_inputs

from archsearch.urls import scrubbed, shown_url

PASSWORD = "s3cret-Pw0rd"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg://u:p%40ss@h:5432/d?sslmode=require", "postgresql+psycopg://u:***@h:5432/d?sslmode=require"),
    ("sqlite:///studies/default.db", "sqlite:///studies/default.db"),
    ("sqlite:///odd:name@x.db", "sqlite:///odd:name@x.db"),
    ("nonsense://user:secret@host/db", "nonsense://user:***@host/db"),
])
def test_shown_url_hides_only_the_password(url, shown):
    assert shown_url(url) == shown
    password = "p@ss" if "p%40ss" in url else "secret"
    message = scrubbed(f"cannot open {url}: password {password} rejected", url)
    assert (password not in message) == (url != shown)


def _pg_dump() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    assert found, "PostgreSQL is missing: apt-get install postgresql (tests/setup.sh does)"
    return found[-1]


def test_a_password_in_the_storage_url_never_leaves_the_process(postgres_url, tmp_path):
    """The test server trusts local connections, so any password works and must stay hidden."""
    url = postgres_url.replace("archsearch@", f"archsearch:{PASSWORD}@")
    root = write_tiny_inputs(tmp_path)
    env = {**os.environ, "COLUMNS": "200", "ARCHSEARCH_CACHE_DIR": str(root / "cache")}

    def archsearch(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "archsearch", *args], cwd=root, env=env, capture_output=True,
                                text=True, timeout=600)
        assert PASSWORD not in result.stdout + result.stderr, args
        return result

    run = archsearch("run", "--budget-ms", "0.001", "--trials", "1", "--no-references", "--study", "hidden",
                     "--space", str(root / "tiny_space.yaml"), "--dataset", str(root / "tiny.npz"), "--storage", url)
    assert run.returncode == 0, run.stderr
    assert "archsearch:***@" in run.stdout  # the URL is shown, masked
    for args in (["studies", "--storage", url], ["studies", "--storage", url, "--json"],
                 ["show-study", "hidden", "--storage", url], ["show-study", "hidden", "--storage", url, "--json"],
                 ["dashboard", "hidden", "--storage", url, "-o", "hidden.html"]):
        assert archsearch(*args).returncode == 0
    # A run that fails, and a mistyped database name: the error names the storage, not the password.
    assert archsearch("export", "hidden", "--trial", "0", "--storage", url).returncode == 2
    missing = archsearch("show-study", "hidden", "--storage", url.rsplit("/", 1)[0] + "/nosuchdb")
    assert missing.returncode == 2 and "archsearch:***@" in missing.stderr
    unreachable = archsearch("run", "--budget-ms", "5", "--storage", f"postgresql://u:{PASSWORD}@127.0.0.1:9/none")
    assert unreachable.returncode == 2 and "cannot open storage" in unreachable.stderr

    dashboards = list(root.rglob("*.html"))
    assert dashboards and all(PASSWORD not in page.read_text() for page in dashboards)
    study = optuna.load_study(study_name="hidden", storage=url)
    stored = repr((study.user_attrs, [(t.user_attrs, t.system_attrs) for t in study.trials]))
    assert PASSWORD not in stored
    # Nothing anywhere in the database: every table, Optuna's and archsearch's.
    dump = subprocess.run([str(_pg_dump()), "--data-only", postgres_url], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert "hidden" in dump.stdout and PASSWORD not in dump.stdout
    assert shutil.which("grep") is None or subprocess.run(["grep", "-rl", PASSWORD, str(root)],
                                                          capture_output=True).stdout == b""
