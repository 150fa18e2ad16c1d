"""Dashboards of a real study: the data they show, and the page in real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.report import study_view, write_dashboard
from archsearch.study import hypervolume, pareto_front


@pytest.fixture(scope="module")
def study(trained_study):
    return optuna.load_study(study_name=trained_study.name, storage=trained_study.storage)


@pytest.fixture(scope="module")
def hostile_study(trained_study, study):
    """A copy of the study under a name that would inject script if it were not escaped.

    archsearch's own study names are restricted, but any Optuna client can name a study.
    """
    name = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
    optuna.copy_study(from_study_name=study.study_name, from_storage=trained_study.storage,
                      to_storage=trained_study.storage, to_study_name=name)
    return name


def test_view_has_one_point_per_complete_trial_and_the_front(study, trained_study):
    view = study_view(study, trained_study.storage)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(p.number for p in view.points) == sorted(t.number for t in complete)
    front = pareto_front(study)
    assert [m.number for m in view.front] == [p.number for p in front]
    assert {p.number for p in view.points if p.kind == "front"} == {p.number for p in front}
    for point in view.points:
        trial = study.trials[point.number]
        assert (point.kind == "infeasible") == (max(trial.constraints.values()) > 0)
        assert point.reference == trial.user_attrs.get("reference")
    assert any(p.reference == "mobilenet_v3_small" for p in view.points)
    assert view.hypervolume == pytest.approx(hypervolume(front, trained_study.budget_ms))
    assert view.budget_ms == trained_study.budget_ms
    # Every front member's spec is there, as YAML that parses back to the trial's network.
    import yaml

    from archsearch.spec import parse_spec, spec_hash

    for member in view.front:
        assert spec_hash(parse_spec(yaml.safe_load(member.yaml))) == study.trials[member.number].user_attrs["spec_hash"]


def test_importances_are_computed_or_explained(study, trained_study):
    view = study_view(study, trained_study.storage)
    for objective in ("accuracy", "latency"):
        assert objective in view.importances or view.importance_notes.get(objective)
    for values in view.importances.values():
        assert values and abs(sum(values.values()) - 1.0) < 1e-6


def _open(browser, path):
    """The page, with console errors, page errors, dialogs and any network request recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    events: dict[str, list[str]] = {"errors": [], "dialogs": [], "requests": []}
    page.on("console", lambda message: events["errors"].append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: events["errors"].append(str(error)))
    page.on("dialog", lambda dialog: (events["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: events["requests"].append(request.url)
            if not request.url.startswith(("file:", "data:", "blob:")) else None)
    page.goto(path.as_uri())
    page.wait_for_function("() => ['pareto', 'cost', 'history', 'latency', 'importance']"
                           ".every(id => document.getElementById(id) && document.getElementById(id)._fullLayout)")
    return page, events


def test_dashboard_in_headless_chromium(trained_study, study, hostile_study, chromium, tmp_path):
    path = write_dashboard([trained_study.name, hostile_study], trained_study.storage, tmp_path / "both.html")
    page, events = _open(chromium, path)
    complete = len([t for t in study.trials if t.state == TrialState.COMPLETE])
    # One marker per complete trial of each study, in the Pareto plot, drawn as SVG points.
    drawn = page.evaluate("document.querySelectorAll('#pareto .scatterlayer .trace .points path').length")
    assert drawn == 2 * complete
    assert page.get_attribute("#pareto-section", "data-markers") == str(2 * complete)
    traces = page.evaluate("document.getElementById('pareto').data.map(t => [t.name, t.mode, (t.x || []).length])")
    assert sum(n for _, mode, n in traces if "markers" in mode) == 2 * complete
    labels = page.evaluate("Array.from(document.querySelectorAll('#pareto .textpoint text')).map(t => t.textContent)")
    assert "mobilenet_v3_small" in labels  # references are labelled by name
    assert page.locator("#pareto .shapelayer path").count() >= 1  # the budget line
    # User text stays text: no script ran, the hostile name shows literally.
    assert events["dialogs"] == [] and events["errors"] == [] and events["requests"] == []
    assert hostile_study in page.inner_text("body") and hostile_study in page.title()
    legend = page.evaluate("Array.from(document.querySelectorAll('#pareto .legendtext')).map(t => t.textContent)")
    assert any(text.startswith(hostile_study) for text in legend)
    # The front table offers each member's spec for download.
    view = study_view(study, trained_study.storage)
    assert page.locator("#front-table button[data-action='download']").count() == 2 * len(view.front)
    with page.expect_download() as download:
        page.locator("#front-table button[data-action='download']").first.click()
    assert download.value.suggested_filename.endswith(".yaml")
    page.close()


def test_dashboard_cli(trained_study, tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "archsearch", "dashboard"]
    ok = subprocess.run([*command, trained_study.name, "--storage", trained_study.storage], cwd=tmp_path,
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "dashboards" / f"{trained_study.name}.html").is_file()
    optuna.create_study(study_name="plain", storage=trained_study.storage, load_if_exists=True)  # not ours
    for args, message in [
        (["nosuch", "--storage", trained_study.storage], "no study named 'nosuch'"),
        (["plain", "--storage", trained_study.storage], "is not an archsearch study"),
        ([trained_study.name, "--storage", trained_study.storage, "-o", "/proc/archsearch/d.html"],
         "cannot write /proc/archsearch/d.html"),
        ([trained_study.name, "--storage", "postgresql://nobody@127.0.0.1:9/none"], "cannot open storage"),
    ]:
        result = subprocess.run([*command, *args], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
