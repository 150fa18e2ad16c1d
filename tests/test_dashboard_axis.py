"""The accuracy-latency plot keeps 0 to the budget readable, however slow the rejected candidates are.

The study is written directly (no training): feasible trials over 1-19 ms under a 20 ms
budget, references inside and far outside it, a near miss, and candidates rejected
before training at 200 ms (10x the budget) and 2000 ms (100x).
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.references import reference_document
from archsearch.report import study_view, write_dashboard
from archsearch.report.figures import latency_edge, pareto_figure
from archsearch.study import CONFIG_ATTR

BUDGET = 20.0
NAME = "wide"
# (accuracy, latency ms): trained, feasible, spread over 1-19 ms.
FEASIBLE = [(0.60, 1.2), (0.70, 3.5), (0.66, 5.0), (0.78, 7.5), (0.74, 10.0), (0.83, 13.0), (0.80, 16.0),
            (0.88, 19.0)]
REJECTED = [200.0, 2000.0, 480.0]  # measured, over budget, never trained
NEAR_MISS = 22.0  # trained, over budget by 10%: keeps its true place
SMALL_REFERENCE = ("mobilenet_v3_small", 0.72, 9.0)
LARGE_REFERENCE = ("mobilenet_v3_large", 0.91, 300.0)  # far over budget: must not stretch the axis


def _trial(accuracy: float, latency: float, *, trained: bool = True, status: str | None = None,
           **attrs: object) -> optuna.trial.FrozenTrial:
    status = status or ("complete" if latency <= BUDGET else "over_budget")
    user_attrs = {"status": status, "trained": trained, "spec": reference_document("mobilenet_v3_small"),
                  "params": 1_500_000, "macs": 56_000_000, **attrs}
    if trained:
        user_attrs["latency_protocol"] = {"p10_ms": latency * 0.95, "p90_ms": latency * 1.08}
    return optuna.trial.create_trial(values=[accuracy, latency], constraints={"latency_budget": latency - BUDGET},
                                     user_attrs=user_attrs, state=TrialState.COMPLETE)


@pytest.fixture
def wide_study(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    study = optuna.create_study(study_name=NAME, storage=url, directions=["maximize", "minimize"])
    study.set_user_attr(CONFIG_ATTR, {"budget_ms": BUDGET, "name": NAME})
    trials = [_trial(accuracy, latency) for accuracy, latency in FEASIBLE]
    trials.append(_trial(0.70, 3.5, status="duplicate", duplicate_of=1))
    trials.append(_trial(0.90, NEAR_MISS))
    trials += [_trial(0.0, latency, trained=False, status="rejected_measured") for latency in REJECTED]
    for reference, accuracy, latency in (SMALL_REFERENCE, LARGE_REFERENCE):
        trials.append(_trial(accuracy, latency, reference=reference))
    study.add_trials(trials)
    return url


def test_slow_points_sit_on_the_edge_of_a_budget_scaled_axis(wide_study):
    view = study_view(optuna.load_study(study_name=NAME, storage=wide_study), wide_study)
    assert {p.kind for p in view.points} == {"front", "dominated", "duplicate", "infeasible"}
    edge = latency_edge([view])
    assert edge == pytest.approx(1.25 * BUDGET)
    figure = pareto_figure([view])
    assert tuple(figure.layout.xaxis.range) == pytest.approx((0.0, edge))
    markers = [t for t in figure.data if "markers" in t.mode]
    # Every complete trial is still one marker, and none lies past the edge.
    assert sum(len(t.x) for t in markers) == len(view.points)
    assert all(0 < x <= edge for t in markers for x in t.x)
    # Rejected candidates past the edge: on it, in their own legend entry, true latency in the hover.
    (beyond,) = [t for t in markers if t.meta == "beyond"]
    assert "beyond the axis" in beyond.name
    assert list(beyond.x) == [edge] * len(REJECTED) and beyond.marker.symbol == "triangle-right"
    for latency in REJECTED:
        assert sum(f"latency {latency:.2f} ms" in text for text in beyond.hovertext) == 1
    # They share one spot (edge, floor), where only one can be hovered: each names the others.
    assert all(text.count("also drawn here: trial") == 1 for text in beyond.hovertext)
    assert all(sum(f"({latency:.2f} ms)" in text for latency in REJECTED) == len(REJECTED) - 1
               for text in beyond.hovertext)
    # The near miss keeps its place; the slow reference keeps its star, on the edge.
    infeasible = next(t for t in markers if t.meta == "infeasible")
    assert list(infeasible.x) == [NEAR_MISS]
    references = next(t for t in markers if t.meta == "reference")
    placed = dict(zip(references.text, references.x))
    assert placed == {SMALL_REFERENCE[0]: SMALL_REFERENCE[2], LARGE_REFERENCE[0]: edge}
    assert references.marker.symbol == "star"
    assert any(f"latency {LARGE_REFERENCE[2]:.2f} ms" in text for text in references.hovertext)


def test_several_budgets_use_the_largest_and_no_budget_autoranges(wide_study):
    view = study_view(optuna.load_study(study_name=NAME, storage=wide_study), wide_study)
    from dataclasses import replace

    tight = replace(view, name="tight", budget_ms=5.0)
    assert latency_edge([tight, view]) == pytest.approx(1.25 * BUDGET)
    unbounded = replace(view, budget_ms=None)
    assert latency_edge([unbounded]) is None
    figure = pareto_figure([unbounded])
    assert figure.layout.xaxis.range is None
    assert max(x for t in figure.data if "markers" in t.mode for x in t.x) == 2000.0


# Rendered geometry of the accuracy-latency plot, read from the SVG Chromium drew.
GEOMETRY = """() => {
  const gd = document.getElementById('pareto');
  const area = gd.querySelector('.draglayer .nsewdrag').getBoundingClientRect();
  const centre = el => { const r = el.getBoundingClientRect(); return [(r.left + r.right) / 2, (r.top + r.bottom) / 2]; };
  const traces = Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(el => {
    const trace = el.__data__[0].trace;
    return {index: trace.index, meta: trace.meta || null, name: trace.name,
            points: Array.from(el.querySelectorAll('.points path.point')).map(centre)};
  });
  const lines = Array.from(gd.querySelectorAll('.shapelayer path'))
    .filter(el => getComputedStyle(el).stroke === 'rgb(220, 20, 60)');  // crimson: the budget
  if (lines.length !== 1) return {budgetLines: lines.length};
  const box = lines[0].getBoundingClientRect();
  return {area: [area.left, area.top, area.right, area.bottom], budget: (box.left + box.right) / 2,
          traces: traces};
}"""

# Plotly throttles hover events (50 ms apart): wait before each one.
HOVER = """async ([curve, point]) => {
  const gd = document.getElementById('pareto');
  Plotly.Fx.unhover(gd);
  await new Promise(resolve => setTimeout(resolve, 120));
  Plotly.Fx.hover(gd, [{curveNumber: curve, pointNumber: point}]);
  const label = gd.querySelector('.hoverlayer .hovertext');
  return label ? label.textContent : null;
}"""


def test_feasible_region_is_readable_in_chromium(wide_study, chromium, tmp_path):
    path = write_dashboard([NAME], wide_study, tmp_path / "wide.html")
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"file://{path}")
    page.wait_for_function("() => { const gd = document.getElementById('pareto');"
                           " return gd && gd._fullLayout && gd.querySelector('.scatterlayer .trace .point'); }")
    geometry = page.evaluate(GEOMETRY)
    assert "area" in geometry, geometry  # exactly one budget line was drawn
    left, top, right, bottom = geometry["area"]
    width = right - left
    assert width > 300
    # The budget line sits well inside: 0 to the budget takes most of the width.
    assert (geometry["budget"] - left) / width >= 0.6, geometry["budget"]
    traces = {t["meta"]: t for t in geometry["traces"] if t["meta"]}
    drawn = sum(len(t["points"]) for t in traces.values())
    assert drawn == len(FEASIBLE) + 1 + 1 + len(REJECTED) + 2  # one marker per complete trial
    inside = [xy for kind in ("front", "dominated", "duplicate") for xy in traces[kind]["points"]]
    assert len(inside) == len(FEASIBLE) + 1
    for x, y in inside:  # every feasible trial is drawn inside the plot area
        assert left < x < right and top <= y <= bottom, (x, y, geometry["area"])
    # The feasible trials (1.2-19 ms) spread over more than half the width: the front is legible.
    xs = [x for x, _ in inside]
    assert (max(xs) - min(xs)) / width > 0.5
    # Rejected candidates and the slow reference are drawn on the right edge, not past it.
    beyond = traces["beyond"]["points"]
    assert len(beyond) == len(REJECTED)
    for x, _ in beyond:
        assert abs(x - right) <= 2, (x, right)
    reference_xs = sorted(x for x, _ in traces["reference"]["points"])
    assert left < reference_xs[0] < geometry["budget"] and abs(reference_xs[1] - right) <= 2
    # Hovering one of them shows its true latency.
    curve = traces["beyond"]["index"]
    texts = [page.evaluate(HOVER, [curve, i]) for i in range(len(REJECTED))]
    for latency in REJECTED:
        assert sum(f"latency {latency:.2f} ms" in (text or "") for text in texts) == 1, texts
    assert all("drawn at its edge" in (text or "") for text in texts)
    slow_reference = next(i for i, (x, _) in enumerate(traces["reference"]["points"]) if abs(x - right) <= 2)
    reference_text = page.evaluate(HOVER, [traces["reference"]["index"], slow_reference])
    assert "300.00 ms" in (reference_text or ""), reference_text
    assert errors == []
    page.close()
