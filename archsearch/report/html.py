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
    accuracy_spread,
    colour,
    cost_figure,
    family_figure,
    format_count,
    history_figure,
    importance_figure,
    latency_figure,
    pareto_figure,
)
from archsearch.report.info import Family, StudyView
from archsearch.study.front import reference_sentence

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 24px 48px; color: #222; }
h1 { font-size: 1.5rem; margin: 24px 0 4px; } h2 { font-size: 1.15rem; margin: 32px 0 8px; }
h3 { font-size: 1rem; margin: 24px 0 6px; } h4 { font-size: 0.9rem; margin: 16px 0 4px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, #ladder-table td:first-child { white-space: nowrap; } td ul { margin: 0; padding-left: 16px; }
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
        if view.ladder:
            budget = ", ".join(f"{rung.budget_ms:g}" for rung in view.ladder) + " ms (ladder)"
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


def _ladder_table(views: Sequence[StudyView]) -> str:
    """Each rung of each study's ladder: its band, the trials in it and aimed at it, and why an empty one is."""
    rows = []
    for index, view in enumerate(views):
        for rung in view.ladder or ():
            band = f"({rung.floor_ms:g}, {rung.budget_ms:g}]" if rung.floor_ms else f"under {rung.budget_ms:g}"
            state = "filled" if rung.filled else f"<span class='warning'>{escape(rung.sentence)}</span>"
            rows.append(
                f"<tr class='rung'><td><span class='swatch' style='background:{colour(index)}'></span>"
                f"{escape(view.name)}</td><td class='num'>{rung.budget_ms:g} ms</td><td class='num'>{band} ms</td>"
                f"<td>{', '.join(map(str, rung.filled_by)) or '-'}</td>"
                f"<td>{', '.join(map(str, rung.aimed)) or '-'}</td><td>{state}</td></tr>")
    return ("<table id='ladder-table'><tr><th>study</th><th class='num'>rung</th><th class='num'>band</th>"
            "<th>filled by trial(s)</th><th>aimed trial(s)</th><th>state</th></tr>" + "".join(rows) + "</table>")


def _recipe(family: Family) -> str:
    """The final recipe in its own words, every recorded setting under it, and how latency was measured."""
    def shown(value: object) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    settings = "; ".join(f"{escape(str(key).replace('_', ' '))} {escape(shown(value))}"
                         for key, value in family.recipe.items() if key != "summary" and value not in (None, {}, []))
    summary = escape(family.recipe_summary) if family.recipe_summary else "not recorded"
    latency = f" Latency: {escape(family.latency_protocol)}." if family.latency_protocol else ""
    details = f"<details><summary>every setting</summary>{settings}</details>" if settings else ""
    return f"<div class='muted recipe'><p>Final recipe: {summary}.{latency}</p>{details}</div>"


def _family_members(family: Family) -> str:
    by_rung = {m.rung_ms: m for m in family.members}
    rows: list[tuple[float, str]] = []
    for member in family.members:
        network = f"{escape(member.name)} (trial {member.trial})" if member.name else f"trial {member.trial}"
        if member.same_as_rung_ms is not None:
            network += f"<br><span class='muted'>same network as rung {member.same_as_rung_ms:g} ms</span>"
        search = ""
        if member.proxy_accuracy is not None and member.search_latency_ms is not None:
            search = (f"<span class='muted'>proxy {member.proxy_accuracy:.3f} at "
                      f"{member.search_latency_ms:.2f} ms</span>")
        verdicts = "".join(f"<li class='verdict {escape(v.outcome, quote=True)}'>{escape(v.sentence)}</li>"
                           for v in member.verdicts)
        if member.same_as_rung_ms in by_rung:  # its network's verdicts are the lower rung's, already listed
            verdicts = f"<li class='muted'>as rung {member.same_as_rung_ms:g} ms</li>"
        files = "<br>".join(f"{escape(kind)}: <code>{escape(path)}</code>" for kind, path in member.files.items())
        if files and member.shipped_seed is not None:
            shipped = f" ({member.shipped_accuracy:.3f})" if member.shipped_accuracy is not None else ""
            files += f"<br>shipped: seed {member.shipped_seed}{shipped}"
        files = f"<details class='muted'><summary>files</summary>{files}</details>" if files else ""
        over = ("<br><span class='warning over-rung'>over the rung</span>" if member.within_rung is False else "")
        rows.append((member.rung_ms, (
            f"<tr class='member'><td class='num'>{member.rung_ms:g} ms</td><td>{network}</td>"
            f"<td class='num'>{member.input_size}</td><td class='num'>{member.latency_ms:.2f}{over}</td>"
            f"<td class='num'>{accuracy_spread(member.accuracy_mean, member.accuracy_std, len(member.accuracies))}"
            f"</td><td class='num'>{format_count(member.params)}</td><td class='num'>{format_count(member.macs)}</td>"
            f"<td class='num'>{search}</td><td>{'<ul>' + verdicts + '</ul>' if verdicts else '-'}"
            f"{files}</td></tr>")))
    rows += [(rung, f"<tr class='unfilled'><td class='num'>{rung:g} ms</td><td colspan='8'>"
                    f"<span class='warning'>not filled</span>: {escape(reason)}</td></tr>")
             for rung, reason in family.unfilled if rung not in by_rung]
    return ("<table class='family-table'><tr><th class='num'>rung</th><th>network</th><th class='num'>input, px</th>"
            "<th class='num'>latency, ms (.tflite)</th><th class='num'>accuracy (.tflite), mean ± std</th>"
            "<th class='num'>params</th><th class='num'>MACs</th><th class='num'>search (proxy accuracy, ms)</th>"
            "<th>against the references, same recipe</th></tr>"
            + "".join(row for _, row in sorted(rows, key=lambda item: item[0])) + "</table>")


def _family_references(family: Family) -> str:
    if not family.references:
        return "<p class='muted'>No reference retrained under this recipe.</p>"
    rows = [f"<tr class='family-reference'><td>{escape(r.reference)}</td><td class='num'>{r.input_size or '?'}</td>"
            f"<td class='num'>{r.latency_ms:.2f}</td>"
            f"<td class='num'>{accuracy_spread(r.accuracy_mean, r.accuracy_std, len(r.accuracies))}</td>"
            f"<td class='num'>{format_count(r.params)}</td><td class='num'>{format_count(r.macs)}</td></tr>"
            for r in family.references]
    verdicts = "".join(f"<li>{escape(v.sentence)}</li>" for v in family.reference_verdicts)
    return ("<table class='family-references'><tr><th>reference</th><th class='num'>input, px</th>"
            "<th class='num'>latency, ms (.tflite)</th><th class='num'>accuracy (.tflite), mean ± std</th>"
            "<th class='num'>params</th><th class='num'>MACs</th></tr>" + "".join(rows) + "</table>"
            + (f"<ul class='family-verdicts'>{verdicts}</ul>" if verdicts else ""))


def _families(views: Sequence[StudyView]) -> str:
    """Each study's family: its figure, its B0-B7-style table, its references under the same recipe."""
    parts = []
    for index, view in enumerate(views):
        name = escape(view.name)
        if view.family_note:
            parts.append(f"<h3>{name}</h3><p class='warning'>{escape(view.family_note)}</p>")
        family = view.family
        if family is None:
            continue
        made = [text for text in (f"made {escape(family.created)}" if family.created else "",
                                  f"files in {escape(family.folder)}" if family.folder else "") if text]
        parts.append(f"<div class='family' id='family-section-{index}'><h3>{name}</h3>{_recipe(family)}"
                     + (f"<p class='muted'>Family {', '.join(made)}.</p>" if made else ""))
        parts.append(_figure_html(family_figure(family, index, view.name), f"family-{index}"))
        parts.append(f"<h4>One network per rung</h4>{_family_members(family)}")
        parts.append(f"<h4>References, same recipe</h4>{_family_references(family)}</div>")
    return "".join(parts)


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
    ]
    if any(view.ladder for view in views):
        sections.append(("Budget ladder", "<p class='muted'>One search, several budgets: a rung is filled by a "
                                          "trained, feasible search trial measured inside its band. Each rung is a "
                                          "dashed line on the plot above; an empty one is dotted and says so.</p>"
                                          + _ladder_table(views)))
    if any(view.family is not None or view.family_note for view in views):
        sections.append(("Family: accuracy after final training vs latency", (
            "<p class='muted'>The best network of each rung, retrained at its deployment input with the final "
            "recipe over several seeds, exported, and measured as deployed: accuracy of the exported .tflite in "
            "LiteRT (mean ± std over seeds) and its re-measured latency. These accuracies are not the "
            "search's proxy accuracies (short training at a reduced input) and are not on the Pareto plot's "
            "axis. The space's references are retrained under the same recipe.</p>" + _families(views))))
    sections += [
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
