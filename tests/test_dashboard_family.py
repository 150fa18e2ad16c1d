"""The dashboard of a budget ladder and of its family (``archsearch family``).

The studies are written directly (no training, no Chromium): a ladder 2, 5, 10, 20 ms
whose 2 ms rung three aimed trials missed, and a family with one network per filled
rung (the 20 ms rung's pick is the 10 ms rung's network), references retrained under the
same recipe, one of them far slower than the ladder.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from html import escape

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.family.compare import Trained, member_verdicts, reference_verdict
from archsearch.family.recipe import FinalRecipe
from archsearch.references import reference_document
from archsearch.report import study_view, write_dashboard
from archsearch.report.figures import family_figure, pareto_figure
from archsearch.report.info import family_of
from archsearch.study.record import CONFIG_ATTR, FAMILY_ATTR

LADDER = [2.0, 5.0, 10.0, 20.0]
BUDGET = LADDER[-1]
HOSTILE = "<marquee>x</marquee>"
RECIPE = FinalRecipe(epochs=40, seeds=(0, 1, 2))
VALIDATION = 2000
SMALL = Trained("mobilenet_v3_small", 9.31, (0.90, 0.905, 0.91))
LARGE = Trained("mobilenet_v3_large", 300.0, (0.95, 0.96))
RUNG5 = Trained("rung 5 ms", 4.12, (0.908, 0.916, 0.912))
RUNG10 = Trained(f"rung 10 ms {HOSTILE}", 8.61, (0.927, 0.931, 0.932))
UNFILLED_REASON = "no trained feasible network under 2 ms; 3 aimed trials missed"


def _trial(accuracy: float, latency: float, *, trained: bool = True, status: str = "complete",
           **attrs: object) -> optuna.trial.FrozenTrial:
    user_attrs = {"status": status, "trained": trained, "spec": reference_document("mobilenet_v3_small"),
                  "params": 1_500_000, "macs": 56_000_000, "measured_latency_ms": latency, **attrs}
    return optuna.trial.create_trial(values=[accuracy, latency], constraints={"latency_budget": latency - BUDGET},
                                     user_attrs=user_attrs, state=TrialState.COMPLETE)


def _family(study: str) -> dict[str, object]:
    """A family as ``archsearch family`` stores it (``family.build``), from its own recipe and comparisons."""
    def member(rung: float, trial: int, figure: Trained, same: float | None) -> dict[str, object]:
        first = same or rung
        return {"rung_ms": rung, "trial": trial, "name": f"{study}-trial{trial}", "spec_hash": f"hash{trial}",
                "input_size": 160 if trial == 0 else 224, "params": 1_234_000 if trial == 0 else 2_500_000,
                "macs": 45_600_000 if trial == 0 else 120_000_000, "proxy_accuracy": 0.6 + trial / 10,
                "search_latency_ms": figure.latency_ms - 0.1, "latency_ms": figure.latency_ms,
                "within_rung": figure.latency_ms <= rung, "accuracies": list(figure.accuracies),
                "accuracy_mean": figure.mean, "accuracy_std": figure.std, "shipped_seed": 0,
                "shipped_accuracy": figure.accuracies[0], "keras_accuracies": list(figure.accuracies),
                "train_seconds": [1.0] * len(figure.accuracies),
                "files": {kind: f"families/{study}/rung-{first:g}ms{suffix}"
                          for kind, suffix in (("spec", ".yaml"), ("tflite", ".tflite"), ("keras", ".keras"))},
                "same_as_rung_ms": same,
                "verdicts": [v.as_dict() for v in member_verdicts(figure, [SMALL, LARGE], VALIDATION)]}

    return {
        "study": study, "folder": f"families/{study}", "created": "2025-01-02T03:04:05+00:00", "rungs_ms": LADDER,
        "recipe": RECIPE.as_dict(VALIDATION),
        "latency_protocol": "median of the exported .tflite in LiteRT, 1 thread(s), batch 1",
        "members": [member(5.0, 0, RUNG5, None), member(10.0, 1, RUNG10, None), member(20.0, 1, RUNG10, 10.0)],
        "unfilled": [{"rung_ms": 2.0, "reason": UNFILLED_REASON}],
        "references": [{"reference": ref.label, "latency_ms": ref.latency_ms, "input_size": 224,
                        "params": params, "macs": macs, "accuracies": list(ref.accuracies),
                        "accuracy_mean": ref.mean, "accuracy_std": ref.std,
                        "files": {"tflite": f"families/{study}/references/{ref.label}.tflite"},
                        "train_seconds": [1.0] * len(ref.accuracies)}
                       for ref, params, macs in ((SMALL, 1_520_000, 56_000_000), (LARGE, 4_200_000, 219_000_000))],
        "reference_verdicts": [reference_verdict(ref, [(5.0, RUNG5), (10.0, RUNG10)], VALIDATION)
                               for ref in (SMALL, LARGE)],
    }


def _sentences(data: dict[str, object]) -> list[str]:
    members = data["members"]
    assert isinstance(members, list)
    return [v["sentence"] for m in members for v in m["verdicts"]]


def _make(url: str, name: str, *, ladder: bool, family: bool) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(CONFIG_ATTR, {"budget_ms": BUDGET, "name": name, "ladder_ms": LADDER if ladder else None})
    study.add_trials([
        _trial(0.60, 4.0),    # 0: fills the 5 ms rung
        _trial(0.70, 8.5),    # 1: fills the 10 ms rung
        _trial(0.68, 17.0),   # 2: fills the 20 ms rung
        *(_trial(0.50 + i / 100, latency, **({"aimed_at_ms": 2.0} if ladder else {}))  # 3-5: aimed at 2 ms
          for i, latency in enumerate((3.1, 2.6, 2.4))),
        _trial(0.66, 9.0, reference="mobilenet_v3_small"),  # 6
    ])
    if family:
        study.set_user_attr(FAMILY_ATTR, _family(name))
    return study


@pytest.fixture
def storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'family.db'}"


@pytest.fixture
def ladder_study(storage) -> optuna.Study:
    return _make(storage, "ladder", ladder=True, family=True)


def _annotations(figure) -> list[str]:
    return [a.text for a in figure.layout.annotations]


def _vlines(figure) -> list[float]:
    """Where the vertical lines are (rungs, budget): shapes with one x."""
    return sorted(s.x0 for s in figure.layout.shapes if s.type == "line" and s.x0 == s.x1)


def test_view_reads_the_ladder_and_the_family(ladder_study, storage):
    view = study_view(ladder_study, storage)
    assert view.ladder is not None
    assert [r.budget_ms for r in view.ladder] == LADDER
    assert [r.filled for r in view.ladder] == [False, True, True, True]
    lowest = view.ladder[0]
    assert lowest.aimed == (3, 4, 5) and lowest.given_up and "3 trials aimed at it" in lowest.given_up
    assert "not filled" in lowest.sentence
    assert view.ladder[1].filled_by == (0, 3, 4, 5)  # the aimed trials that missed 2 ms landed in 5 ms
    family = view.family
    assert family is not None and view.family_note is None
    assert [m.rung_ms for m in family.members] == [5.0, 10.0, 20.0]
    assert family.members[0].accuracies == (0.908, 0.916, 0.912)
    assert family.rungs_ms == LADDER and family.seeds == (0, 1, 2) and family.recipe_summary == RECIPE.summary(VALIDATION)
    by_number = {p.number: p for p in view.points}
    assert by_number[1].family_rungs_ms == (10.0, 20.0) and by_number[3].aimed_at_ms == 2.0


def test_pareto_plot_draws_each_rung_once_and_marks_the_empty_one(ladder_study, storage):
    figure = pareto_figure([study_view(ladder_study, storage)])
    texts = _annotations(figure)
    assert "rung 2 ms: not filled" in texts
    assert "rung 5 ms" in texts and "rung 10 ms" in texts
    assert not any(t.startswith("rung 20") for t in texts)  # the top rung is the budget line
    assert "budget 20 ms = top rung" in texts
    assert _vlines(figure) == LADDER  # one line per rung, the budget not drawn twice
    dotted = [s for s in figure.layout.shapes if s.x0 == 2.0]
    assert dotted[0].line.dash == "dot"
    hovers = [text for trace in figure.data for text in (trace.hovertext or ())]
    assert any("drawn by the ladder for rung 2 ms" in text for text in hovers)
    assert any("the family's pick for rung 10, 20 ms" in text for text in hovers)


def test_empty_top_rung_says_so_on_the_budget_line(ladder_study, storage):
    view = study_view(ladder_study, storage)
    assert view.ladder is not None
    emptied = [replace(rung, filled_by=()) if rung.budget_ms == BUDGET else rung for rung in view.ladder]
    texts = _annotations(pareto_figure([replace(view, ladder=emptied)]))
    assert "budget 20 ms = top rung: not filled" in texts


def test_family_figure_axes_points_and_rungs(ladder_study, storage):
    view = study_view(ladder_study, storage)
    assert view.family is not None
    figure = family_figure(view.family, 0, view.name)
    assert figure.layout.xaxis.title.text.startswith("latency of the exported .tflite, ms")
    assert "slower than 25 ms drawn at the right edge" in figure.layout.xaxis.title.text
    y_title = figure.layout.yaxis.title.text
    assert "accuracy of the exported .tflite in LiteRT" in y_title and "final training" in y_title
    assert "mean ± std" in y_title and "3 seeds" in y_title and "proxy" not in y_title
    assert escape(RECIPE.summary(VALIDATION)) in figure.layout.title.text.replace("<br>", " ")
    traces = {t.meta: t for t in figure.data}
    members = traces["members"]
    # The 20 ms rung's pick is the 10 ms rung's network: one point, labelled with both rungs, in rung order.
    assert list(members.x) == [4.12, 8.61] and list(members.y) == pytest.approx([0.912, 0.930])
    assert list(members.error_y.array) == pytest.approx([RUNG5.std, RUNG10.std])
    assert list(members.text) == ["rung 5 ms", "rung 10, 20 ms"] and "lines" in members.mode
    assert len(traces["seeds"].y) == 6
    references = traces["references"]
    assert references.marker.symbol == "diamond"
    assert dict(zip(references.text, references.x)) == {"mobilenet_v3_small": 9.31, "mobilenet_v3_large": 25.0}
    assert list(references.error_y.array) == pytest.approx([0.005, LARGE.std])
    assert any("300.00 ms" in text for text in references.hovertext)
    assert _vlines(figure) == LADDER
    assert "rung 2 ms: not filled" in _annotations(figure) and "rung 20 ms" in _annotations(figure)
    assert tuple(figure.layout.xaxis.range) == pytest.approx((0.0, 25.0))


def test_dashboard_page_shows_the_family(ladder_study, storage, tmp_path):
    page = write_dashboard([ladder_study], storage=storage, output=tmp_path / "ladder.html").read_text()
    assert "<h2>Budget ladder</h2>" in page and "id='ladder-table'" in page
    assert "2, 5, 10, 20 ms (ladder)" in page
    assert "3 trials aimed at it did not fill it" in page
    assert "<h2>Family: accuracy after final training vs latency</h2>" in page
    assert "id='family-0'" in page or 'id="family-0"' in page
    assert "rung 2 ms: not filled" in page  # on the plots (figure JSON)
    # The B0-B7 style table: one row per rung, in order, with its numbers.
    (table,) = re.findall(r"<table class='family-table'>.*?</table>", page)
    rows = re.findall(r"<tr class='(member|unfilled)'><td class='num'>([\d.]+) ms</td>", table)
    assert rows == [("unfilled", "2"), ("member", "5"), ("member", "10"), ("member", "20")]
    assert "0.912 ± 0.004 (3 seeds)" in table and "0.930 ± 0.003 (3 seeds)" in table
    assert "ladder-trial0 (trial 0)" in table and "same network as rung 10 ms" in table
    assert "<td class='num'>4.12</td>" in table and "1.23M" in table and "45.60M" in table
    assert "<td class='num'>160</td>" in table
    assert "no trained feasible network under 2 ms; 3 aimed trials missed" in table
    assert "families/ladder/rung-5ms.tflite" in table
    sentences = _sentences(_family("ladder"))
    assert len(sentences) == 6  # each member against both references (the 20 ms rung repeats the 10 ms one)
    for sentence in sentences:
        assert table.count(escape(sentence)) == 1  # the 20 ms row says "as rung 10 ms" instead of repeating them
    assert "<li class='muted'>as rung 10 ms</li>" in table
    (references,) = re.findall(r"<table class='family-references'>.*?</table>", page)
    assert "mobilenet_v3_small" in references and "0.905 ± 0.005 (3 seeds)" in references
    assert "0.955 ± 0.007 (2 seeds)" in references and "300.00" in references
    for verdict in _family("ladder")["reference_verdicts"]:  # type: ignore[attr-defined]
        assert escape(verdict["sentence"]) in page
    assert escape(RECIPE.summary(VALIDATION)) in page
    assert "batchnorm momentum 0.9;" in page and "seeds 0, 1, 2;" in page and "validation images 2000" in page
    assert "median of the exported .tflite in LiteRT, 1 thread(s), batch 1" in page
    assert "shipped: seed 0 (0.908)" in table and "over the rung" not in table
    # User text stays text.
    assert HOSTILE not in page and "&lt;marquee&gt;" in page


def test_study_without_ladder_or_family_renders_as_before(storage, tmp_path):
    study = _make(storage, "plain", ladder=False, family=False)
    view = study_view(study, storage)
    assert view.ladder is None and view.family is None and view.family_note is None
    figure = pareto_figure([view])
    assert [t for t in _annotations(figure) if "budget" in t or "rung" in t] == ["budget 20 ms"]
    assert _vlines(figure) == [BUDGET]
    page = write_dashboard([study], storage=storage, output=tmp_path / "plain.html").read_text()
    body = page.split("</head>", 1)[1]  # past plotly.js
    for absent in ("Budget ladder", "Family", "family-table", "family-0", "rung ", "ladder-table", "(ladder)"):
        assert absent not in body
    assert "<td class='num'>20 ms</td>" in body


def test_several_studies_each_get_their_family(storage, tmp_path):
    first = _make(storage, "first", ladder=True, family=True)
    second = _make(storage, "second", ladder=True, family=True)
    views = [study_view(first, storage), study_view(second, storage)]
    texts = _annotations(pareto_figure(views))
    assert "rung 2 ms (first: not filled, second: not filled)" in texts
    assert "rung 5 ms (first, second)" in texts
    page = write_dashboard([first, second], storage=storage, output=tmp_path / "both.html").read_text()
    assert page.count("<table class='family-table'>") == 2
    assert "id='family-section-0'" in page and "id='family-section-1'" in page
    assert "first-trial0 (trial 0)" in page and "second-trial0 (trial 0)" in page


def test_a_family_that_cannot_be_read_is_reported_not_fatal(storage, tmp_path):
    study = _make(storage, "broken", ladder=True, family=False)
    data = _family("broken")
    del data["members"][0]["accuracy_mean"]  # type: ignore[index]
    study.set_user_attr(FAMILY_ATTR, data)
    view = study_view(study, storage)
    assert view.family is None and view.family_note and "accuracy_mean" in view.family_note
    page = write_dashboard([study], storage=storage, output=tmp_path / "broken.html").read_text()
    assert "the stored family (archsearch:family) cannot be read" in page
    assert "family-table" not in page


def test_family_of_keeps_rung_order():
    data = _family("order")
    shuffled = copy.deepcopy(data)
    shuffled["members"] = list(reversed(data["members"]))  # type: ignore[call-overload]
    assert [m.rung_ms for m in family_of(shuffled).members] == [5.0, 10.0, 20.0]


def test_a_member_over_its_rung_once_re_measured_is_flagged(storage, tmp_path):
    study = _make(storage, "over", ladder=True, family=False)
    data = _family("over")
    data["members"][0]["within_rung"] = False  # type: ignore[index]
    study.set_user_attr(FAMILY_ATTR, data)
    view = study_view(study, storage)
    assert view.family is not None and view.family.members[0].within_rung is False
    members = next(t for t in family_figure(view.family, 0, view.name).data if t.meta == "members")
    assert "over its 5 ms rung once re-measured" in members.hovertext[0]
    assert "over its" not in members.hovertext[1]
    page = write_dashboard([study], storage=storage, output=tmp_path / "over.html").read_text()
    (table,) = re.findall(r"<table class='family-table'>.*?</table>", page)
    assert table.count("over the rung") == 1
