"""The dashboard as one self-contained HTML file: plotly.js inlined, no network needed.

Every piece of user text is escaped here (tables) or in ``figures.py`` (plots);
figure data goes in as plotly's own JSON, which escapes ``</`` inside scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import plotly.io
import plotly.offline

from archsearch.output_files import safe_filename
from archsearch.report.figures import (
    colour,
    cost_figure,
    format_count,
    history_figure,
    importance_figure,
    latency_figure,
    pareto_figure,
)
from archsearch.report.info import StudyView
from archsearch.study.front import reference_sentence

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 24px 48px; color: #222; }
h1 { font-size: 1.5rem; margin: 24px 0 4px; } h2 { font-size: 1.15rem; margin: 32px 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px; }
.muted { color: #777; } .warning { color: #a15c00; font-weight: 600; }
pre { background: #f6f6f6; padding: 8px; font-size: 0.8rem; max-height: 320px; overflow: auto; }
button { font-size: 0.8rem; margin-right: 6px; cursor: pointer; }
"""

SCRIPT = """
document.querySelectorAll("button[data-spec]").forEach(function (button) {
  var text = function () { return document.getElementById(button.dataset.spec).textContent; };
  button.addEventListener("click", function () {
    if (button.dataset.action === "download") {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text()], {type: "application/x-yaml"}));
      link.download = button.dataset.filename;
      document.body.appendChild(link); link.click(); link.remove();
      return;
    }
    var done = function () { button.textContent = "Copied"; setTimeout(function () {
      button.textContent = "Copy YAML"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text()).then(done, function () {});
    } else {  // file:// pages are not a secure context in every browser: select and copy
      var range = document.createRange(); range.selectNodeContents(document.getElementById(button.dataset.spec));
      var selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);
      try { document.execCommand("copy"); done(); } catch (error) {}
    }
  });
});
"""


def _figure_html(figure: object, div_id: str) -> str:
    return plotly.io.to_html(figure, full_html=False, include_plotlyjs=False, div_id=div_id,
                             config={"displaylogo": False, "responsive": True})


def _summary_table(views: Sequence[StudyView]) -> str:
    rows = []
    for index, view in enumerate(views):
        statuses = ", ".join(f"{escape(k.replace('_', ' '))} {v}" for k, v in sorted(view.counts.items()))
        budget = f"{view.budget_ms:g} ms" if view.budget_ms else "?"
        rows.append(
            f"<tr><td><span class='swatch' style='background:{colour(index)}'></span>{escape(view.name)}</td>"
            f"<td class='num'>{budget}</td><td class='num'>{sum(view.counts.values())}</td><td>{statuses}</td>"
            f"<td class='num'>{len(view.front)}</td><td class='num'>{view.hypervolume:.3f}</td>"
            f"<td class='muted'>{escape(view.storage)}</td></tr>")
    return ("<table><tr><th>study</th><th class='num'>budget</th><th class='num'>trials</th><th>by status</th>"
            "<th class='num'>front</th><th class='num'>hypervolume</th><th>storage</th></tr>"
            + "".join(rows) + "</table>")


def _front_table(views: Sequence[StudyView]) -> str:
    rows = []
    for index, view in enumerate(views):
        for member in view.front:
            spec_id = f"spec-{index}-{member.number}"
            filename = escape(f"{safe_filename(view.name)}-trial{member.number}.yaml", quote=True)
            reference = f" (reference {escape(member.reference)})" if member.reference else ""
            rows.append(
                f"<tr><td><span class='swatch' style='background:{colour(index)}'></span>{escape(view.name)}</td>"
                f"<td class='num'>{member.number}{reference}</td><td class='num'>{member.accuracy:.3f}</td>"
                f"<td class='num'>{member.latency_ms:.2f}</td><td class='num'>{format_count(member.params)}</td>"
                f"<td class='num'>{format_count(member.macs)}</td><td>"
                f"<button data-spec='{spec_id}' data-action='copy'>Copy YAML</button>"
                f"<button data-spec='{spec_id}' data-action='download' data-filename='{filename}'>"
                f"Download .yaml</button><details><summary>spec</summary>"
                f"<pre id='{spec_id}'>{escape(member.yaml)}</pre></details></td></tr>")
    if not rows:
        return "<p class='muted'>No feasible trial yet: the front is empty.</p>"
    return ("<table id='front-table'><tr><th>study</th><th class='num'>trial</th><th class='num'>accuracy</th>"
            "<th class='num'>latency, ms</th><th class='num'>params</th><th class='num'>MACs</th><th>spec</th></tr>"
            + "".join(rows) + "</table>")


def _references(views: Sequence[StudyView]) -> str:
    """Each reference and the feasible search trials that dominate it (beyond noise) or match it, best first."""
    items = [f"<li>{escape(view.name)}: {escape(reference_sentence(verdict))}</li>"
             for view in views for verdict in view.reference_verdicts]
    if not items:
        return "<p class='muted'>No reference trained in these studies.</p>"
    return "<ul id='references'>" + "".join(items) + "</ul>"


def _protocols(views: Sequence[StudyView]) -> str:
    lines = [f"<p class='muted protocol'>{escape(view.name)}: {escape(view.accuracy_protocol.summary())}</p>"
             for view in views if view.accuracy_protocol is not None]
    lines += [f"<p class='warning canary'>{escape(view.name)}: the canary ({escape(view.canary['anchor'])}) moved "
              f"up to {view.canary['max_deviation']:.0%} from its first reading (noise band "
              f"{view.canary['band']:.0%}): this study's latencies come from more than one regime of the device</p>"
              for view in views if view.canary and view.canary["drifted"]]
    return "".join(lines)


def _failures(views: Sequence[StudyView]) -> str:
    rows = [f"<tr><td>{escape(view.name)}</td><td class='num'>{number}</td><td>{escape(reason)}</td></tr>"
            for view in views for number, reason in view.failures]
    if not rows:
        return "<p class='muted'>None.</p>"
    return "<table><tr><th>study</th><th class='num'>trial</th><th>reason</th></tr>" + "".join(rows) + "</table>"


def _importance_notes(views: Sequence[StudyView]) -> str:
    notes = [f"{escape(view.name)}, {objective}: {escape(note)}" for view in views
             for objective, note in view.importance_notes.items()]
    return "".join(f"<p class='muted'>{note}</p>" for note in notes)


def dashboard_html(views: Sequence[StudyView]) -> str:
    """The whole page for ``views`` as a string."""
    names = ", ".join(escape(v.name) for v in views)
    markers = sum(len(v.points) for v in views)
    sections = [
        ("Pareto front", f"<p class='muted'>One marker per complete trial ({markers}); failed and stopped-early "
                         "trials have no final point and are counted above. Candidates rejected before "
                         "training have no accuracy: they sit on the grey floor line.</p>"
                         f"<div id='pareto-section' data-markers='{markers}'>"
                         f"{_figure_html(pareto_figure(views), 'pareto')}</div>"),
        ("Accuracy vs cost", "<p class='muted'>Trained trials: front members solid, others faded, references as "
                             "stars, over-budget ones as crosses.</p>" + _figure_html(cost_figure(views), "cost")),
        ("Optimization history", "<p class='muted'>Each trained trial's accuracy in trial order, and the "
                                 "hypervolume of the feasible front after each trial (area under the front, "
                                 "bounded by accuracy 0 and the budget).</p>"
                                 + _figure_html(history_figure(views), "history")),
        ("Predicted vs measured latency", _figure_html(latency_figure(views), "latency")),
        ("Parameter importances", "<p class='muted'>fANOVA importance of each search parameter, over the "
                                  "search trials that inform it (accuracy: trained ones; latency: all).</p>"
                                  + _figure_html(importance_figure(views), "importance")
                                  + _importance_notes(views)),
        ("References", "<p class='muted'>A reference is dominated by a feasible, complete search trial that is "
                       "as fast or faster and more accurate by more than the noise of the validation set; as fast "
                       "or faster and within that noise is on par. Most accurate first.</p>"
                       + _references(views)),
        ("Front members and their specs", _front_table(views)),
        ("Failures", _failures(views)),
    ]
    body = "".join(f"<section><h2>{title}</h2>{content}</section>" for title, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>archsearch: {names}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>archsearch dashboard</h1><p class='muted'>Studies: {names}</p>{_summary_table(views)}"
        f"{_protocols(views)}{body}"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


__all__ = ["dashboard_html"]
