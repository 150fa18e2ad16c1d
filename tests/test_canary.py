"""The canary: an anchor re-measured during a study, drift beyond the noise band said and stored."""

from __future__ import annotations

import json
import shutil

import optuna
from test_cli import run

from archsearch import load_reference
from archsearch.study.canary import CANARY_ATTR, Canary, canary_summary


class Reading:
    def __init__(self, ms: float) -> None:
        self.median_ms = ms


def test_readings_are_stored_and_drift_is_said():
    study = optuna.create_study(directions=["maximize", "minimize"])
    times = iter([2.00, 2.04, 2.60])
    canary = Canary(study, load_reference("mobilenet_v3_small", classes=10), lambda spec: Reading(next(times)),
                    band=0.05, every=10)
    assert canary.due(0)
    assert canary.check(0) is None  # the first reading is the baseline
    assert not canary.due(9) and canary.due(10)
    assert canary.check(10) is None  # +2%: within the band
    message = canary.check(20)
    assert message and "+30.0%" in message and "beyond the 5% noise band" in message and "2.000 ms" in message
    summary = canary_summary(study)
    assert summary["drifted"] and abs(summary["max_deviation"] - 0.30) < 1e-9
    assert [r["trials_done"] for r in summary["readings"]] == [0, 10, 20]
    assert summary["anchor"] == "mobilenet_v3_small"


def test_a_resumed_run_checks_again_at_once():
    study = optuna.create_study(directions=["maximize", "minimize"])
    spec = load_reference("mobilenet_v3_small", classes=10)
    Canary(study, spec, lambda s: Reading(1.0)).check(3)
    resumed = Canary(study, spec, lambda s: Reading(1.5))  # another host, say
    assert resumed.due(4)
    assert resumed.check(4) is not None and canary_summary(study)["readings"][1]["ratio"] == 1.5


def test_show_study_reports_a_drifted_canary(trained_study, tmp_path):
    summary = canary_summary(optuna.load_study(study_name=trained_study.name, storage=trained_study.storage))
    assert summary is not None and summary["readings"][0]["ratio"] == 1.0  # the real run took a reading
    assert summary["readings"][0]["median_ms"] > 0 and not summary["drifted"]

    storage = f"sqlite:///{tmp_path / 'copy.db'}"  # the shared study stays as it is
    shutil.copy(trained_study.root / "studies" / "shop.db", tmp_path / "copy.db")
    drifted = optuna.create_study(study_name="drift", directions=["maximize", "minimize"], storage=storage)
    drifted.set_user_attr(CANARY_ATTR, {"anchor": "mobilenet_v3_small", "band": 0.05, "readings": [
        {"trials_done": 0, "at": "t0", "median_ms": 1.0, "ratio": 1.0, "drifted": False},
        {"trials_done": 10, "at": "t1", "median_ms": 1.2, "ratio": 1.2, "drifted": True}]})
    shown = run("show-study", "drift", "--storage", storage)
    assert shown.returncode == 0 and "canary: mobilenet_v3_small's latency moved up to 20%" in shown.stdout
    data = json.loads(run("show-study", "drift", "--storage", storage, "--json").stdout)
    assert data["canary"]["drifted"] is True
    page = tmp_path / "drift.html"
    assert run("dashboard", "drift", "--storage", storage, "-o", str(page)).returncode == 0
    assert "the canary (mobilenet_v3_small) moved up to 20%" in page.read_text()
