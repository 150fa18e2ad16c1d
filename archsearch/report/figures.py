"""Plotly figures of one or more studies, drawn from ``StudyView`` data.

All text that comes from users (study names, spec names, reference names) is escaped
here, before it reaches plotly, whose labels and hover text accept HTML tags.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from html import escape

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from archsearch.report.info import Family, FamilyMember, StudyView, TrialPoint

PALETTE = qualitative.Plotly
KIND_STYLE = {
    # kind: (legend label, marker symbol, opacity)
    "front": ("front", "circle", 1.0),
    "dominated": ("dominated", "circle", 0.3),
    "duplicate": ("duplicate of an earlier trial", "circle-open", 0.3),
    "infeasible": ("infeasible (over budget)", "x", 0.5),
}
# The latency axis runs from 0 to this multiple of the (largest) budget; see ``latency_edge``.
EDGE_OVER_BUDGET = 1.25
BEYOND_LABEL = "slower than the axis, drawn at its edge"
RUNG_STYLE = dict(color="darkorange", dash="dash", width=1.2)
UNFILLED_RUNG_STYLE = dict(color="#a15c00", dash="dot", width=1.5)
TITLE_WIDTH = 150  # characters per line of a family figure's title (the recipe)
# Section headings in the page name each figure, so figures carry no title of their own.
LAYOUT = dict(template="plotly_white", height=480, margin=dict(l=60, r=30, t=30, b=50),
              legend=dict(groupclick="toggleitem"))


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def format_count(value: int | None) -> str:
    if value is None:
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return str(value)


def hover(study: str, point: TrialPoint) -> str:
    """Hover text of one trial (user-supplied parts escaped)."""
    what = f"reference {escape(point.reference)}" if point.reference else point.status.replace("_", " ")
    if point.duplicate_of is not None:
        what += f" (same network as trial {point.duplicate_of})"
    if point.aimed_at_ms is not None:
        what += f"<br>drawn by the ladder for rung {point.aimed_at_ms:g} ms"
    if point.family_rungs_ms:
        what += f"<br>the family's pick for rung {', '.join(f'{r:g}' for r in point.family_rungs_ms)} ms"
    spread = (f" (p10 {point.p10_ms:.2f}, p90 {point.p90_ms:.2f})"
              if point.p10_ms is not None and point.p90_ms is not None else "")
    accuracy = f"{point.accuracy:.3f}" if point.trained else "not trained (rejected before training)"
    return (f"<b>{escape(study)}</b> trial {point.number}<br>{what}<br>proxy accuracy {accuracy}<br>"
            f"latency {point.latency_ms:.2f} ms{spread}<br>params {format_count(point.params)}, "
            f"MACs {format_count(point.macs)}<br>{escape(point.summary)}")


def _error_bars(points: list[TrialPoint]) -> dict[str, object] | None:
    if not any(p.p10_ms is not None for p in points):
        return None
    return dict(type="data", symmetric=False, thickness=1, width=0,
                array=[(p.p90_ms - p.latency_ms) if p.p90_ms is not None else 0 for p in points],
                arrayminus=[(p.latency_ms - p.p10_ms) if p.p10_ms is not None else 0 for p in points])


def latency_edge(views: Sequence[StudyView]) -> float | None:
    """Where the accuracy-latency plot's latency axis ends: 1.25 x the largest budget, or None (no budget).

    Candidates rejected on their latency can be any amount slower than the budget (10x,
    100x: the search does not bound them). Letting them set the axis squeezed the region
    that matters, 0 to the budget, into a sliver. A log axis was the other option, but it
    still gives the rejected decades most of the width (1-2000 ms puts a 20 ms budget at
    0.4 of it) and bends the front, whose area (the hypervolume) is linear in latency.
    So the axis is fixed to [0, edge] with edge = 1.25 x budget, whatever the spread:
    the budget sits at about three quarters of the width, near misses (up to a quarter
    over) keep their true place, and anything slower, rejected candidate or reference,
    is drawn on the edge (a triangle pointing right, or its star) with its true latency
    in the hover text. Feasible trials are never past the edge: their latency is at most
    their study's budget, and with several studies the largest budget sets the edge.
    A study without a recorded budget has nothing to scale by: the axis autoranges.
    """
    budgets = [view.budget_ms for view in views if view.budget_ms]
    return EDGE_OVER_BUDGET * max(budgets) if budgets else None


def beyond_edge(point: TrialPoint, edge: float | None) -> bool:
    """Whether ``point`` lies past the latency axis (and so is drawn on its edge)."""
    return edge is not None and point.latency_ms > edge


def rung_label(budget_ms: float, states: list[tuple[str, bool]], several: bool) -> str:
    """A rung line's label: ``rung 5 ms``, ``rung 2 ms: not filled``, or per study when several have ladders."""
    if several:
        return f"rung {budget_ms:g} ms (" + ", ".join(
            name + ("" if filled else ": not filled") for name, filled in states) + ")"
    return f"rung {budget_ms:g} ms" + ("" if all(filled for _, filled in states) else ": not filled")


def _ladder_lines(figure: go.Figure, views: Sequence[StudyView]) -> dict[float, str]:
    """Draw every rung below a study's top one as a dashed vertical line, labelled, unfilled ones dotted and
    marked. The top rung is the study's budget, drawn by the caller: returned, with what its label adds
    (``": not filled"`` when it is empty), keyed by budget."""
    laddered = [view for view in views if view.ladder]
    several = len(laddered) > 1
    lines: dict[float, list[tuple[str, bool]]] = {}
    tops: dict[float, list[tuple[str, bool]]] = {}
    for view in laddered:
        assert view.ladder is not None
        for rung in view.ladder:
            top = view.budget_ms is not None and rung.budget_ms == view.budget_ms
            (tops if top else lines).setdefault(rung.budget_ms, []).append((escape(view.name), rung.filled))
    for budget, states in sorted(lines.items()):
        filled = all(state for _, state in states)
        figure.add_vline(x=budget, line=RUNG_STYLE if filled else UNFILLED_RUNG_STYLE,
                         annotation=dict(text=rung_label(budget, states, several), textangle=-90,
                                         font=dict(size=10, color="darkorange" if filled else "#a15c00")),
                         annotation_position="top left")
    return {budget: ("" if all(filled for _, filled in states) else
                     (": not filled" if not several else
                      " (not filled: " + ", ".join(name for name, filled in states if not filled) + ")"))
            for budget, states in tops.items()}


def pareto_figure(views: Sequence[StudyView]) -> go.Figure:
    """Accuracy vs measured latency: one marker per complete trial, the front joined, references named."""
    figure = go.Figure()
    budgets: dict[float, list[str]] = {}
    # Candidates rejected before training have no accuracy (Optuna holds a placeholder 0).
    # Drawn at 0 they would squash the front into the top of the plot, so they sit on a
    # floor just under the lowest trained accuracy, and their hover says they were not trained.
    trained = [p.accuracy for view in views for p in view.points if p.trained]
    floor = max(0.0, min(trained, default=0.0) - 0.05)

    def shown(point: TrialPoint) -> float:
        return point.accuracy if point.trained else floor

    # The latency axis ends at the edge (see ``latency_edge``); slower points sit on it.
    edge = latency_edge(views)

    def placed(point: TrialPoint) -> float:
        return min(point.latency_ms, edge) if edge is not None else point.latency_ms

    def text(view: StudyView, point: TrialPoint) -> str:
        if not beyond_edge(point, edge):
            return hover(view.name, point)
        return f"{hover(view.name, point)}<br><i>{BEYOND_LABEL} ({edge:g} ms)</i>"

    def stacked(view: StudyView, points: list[TrialPoint]) -> list[str]:
        """Hover text of markers on the edge. Rejected candidates all land on one spot (edge,
        floor) where only the top marker can be hovered, so each names the others there."""
        spots: dict[float, list[TrialPoint]] = {}
        for point in sorted(points, key=lambda p: p.latency_ms):
            spots.setdefault(shown(point), []).append(point)
        texts = []
        for point in points:
            others = [p for p in spots[shown(point)] if p is not point]
            listed = ", ".join(f"trial {p.number} ({p.latency_ms:.2f} ms)" for p in others[:8])
            more = f" and {len(others) - 8} more" if len(others) > 8 else ""
            texts.append(text(view, point) + (f"<br>also drawn here: {listed}{more}" if others else ""))
        return texts

    for index, view in enumerate(views):
        group, name = f"study{index}", escape(view.name)
        front = sorted((p for p in view.points if p.kind == "front"), key=lambda p: p.latency_ms)
        if front:  # the front as a step line through its members (drawn without markers)
            figure.add_trace(go.Scatter(
                x=[placed(p) for p in front], y=[p.accuracy for p in front], mode="lines",
                line=dict(color=colour(index), width=1.5, shape="hv"), hoverinfo="skip",
                name=f"{name}: front line", legendgroup=group, showlegend=False))
        for kind, (label, symbol, opacity) in KIND_STYLE.items():
            points = [p for p in view.points if p.kind == kind and p.reference is None and not beyond_edge(p, edge)]
            if not points:
                continue
            figure.add_trace(go.Scatter(
                x=[p.latency_ms for p in points], y=[shown(p) for p in points], mode="markers",
                marker=dict(color=colour(index), symbol=symbol, size=9 if kind == "front" else 7, opacity=opacity,
                            line=dict(width=1, color="white" if kind == "front" else colour(index))),
                error_x=_error_bars(points) if kind == "front" else None,
                hovertext=[text(view, p) for p in points], hoverinfo="text",
                name=f"{name}: {label}", legendgroup=group, meta=kind))
        beyond = [p for p in view.points if p.reference is None and beyond_edge(p, edge)]
        if beyond:  # over budget by more than the axis shows: on its edge, pointing right
            figure.add_trace(go.Scatter(
                x=[placed(p) for p in beyond], y=[shown(p) for p in beyond], mode="markers",
                marker=dict(color=colour(index), symbol="triangle-right", size=9, opacity=0.6,
                            line=dict(width=1, color=colour(index))),
                hovertext=stacked(view, beyond), hoverinfo="text", cliponaxis=False,
                name=f"{name}: over budget, beyond the axis", legendgroup=group, meta="beyond"))
        references = [p for p in view.points if p.reference is not None]
        if references:
            figure.add_trace(go.Scatter(
                x=[placed(p) for p in references], y=[shown(p) for p in references], mode="markers+text",
                text=[escape(p.reference or "") for p in references],
                textposition=["top left" if beyond_edge(p, edge) else "top center" for p in references],
                textfont=dict(size=11, color=colour(index)),
                marker=dict(color=colour(index), symbol="star", size=13, line=dict(width=1, color="black"),
                            opacity=[1.0 if p.kind == "front" else 0.6 for p in references]),
                hovertext=[text(view, p) for p in references], hoverinfo="text", cliponaxis=False,
                name=f"{name}: references", legendgroup=group, meta="reference"))
        if view.budget_ms:
            budgets.setdefault(view.budget_ms, []).append(name)
    tops = _ladder_lines(figure, views)
    for budget, names in budgets.items():
        label = f"budget {budget:g} ms" + (f" ({', '.join(names)})" if len(budgets) > 1 else "")
        if budget in tops:  # the ladder's top rung is the budget: one line, saying both
            label += f" = top rung{tops[budget]}"
        figure.add_vline(x=budget, line=dict(color="crimson", dash="dash", width=1.5),
                         annotation_text=label, annotation_position="top right")
    if floor > 0:
        figure.add_hline(y=floor, line=dict(color="lightgrey", width=1),
                         annotation_text="rejected before training (not trained)",
                         annotation_position="bottom left", annotation_font=dict(size=10, color="grey"))
    figure.update_yaxes(range=[floor - 0.03, 1.01] if floor > 0 else None)
    title = "latency, ms (median; bars p10-p90)"
    if edge is not None:
        if any(beyond_edge(p, edge) for view in views for p in view.points):
            figure.add_vline(x=edge, line=dict(color="grey", dash="dot", width=1),
                             annotation=dict(text="slower: drawn on this line (hover for latency)", textangle=-90),
                             annotation_position="left", annotation_font=dict(size=10, color="grey"))
            title += f"; slower than {edge:g} ms drawn at the right edge"
        # Markers on the edge stay whole (cliponaxis off), the axis does not stretch to hold them.
        figure.update_xaxes(range=[0, edge], autorange=False)
    figure.update_layout(xaxis_title=title, yaxis_title="proxy accuracy (protocol above)", **LAYOUT)
    return figure


def cost_figure(views: Sequence[StudyView]) -> go.Figure:
    """Accuracy vs MACs and vs params, for trained trials."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("vs MACs", "vs parameters"),
                           shared_yaxes=True, horizontal_spacing=0.06)
    for index, view in enumerate(views):
        points = [p for p in view.points if p.trained]
        texts = [hover(view.name, p) for p in points]
        for col, attribute in ((1, "macs"), (2, "params")):
            figure.add_trace(go.Scatter(
                x=[getattr(p, attribute) for p in points], y=[p.accuracy for p in points], mode="markers",
                marker=dict(color=colour(index), size=8,
                            symbol=["star" if p.reference else "x" if p.kind == "infeasible" else "circle"
                                    for p in points],
                            opacity=[1.0 if p.kind == "front" else 0.45 for p in points]),
                hovertext=texts, hoverinfo="text", name=escape(view.name), legendgroup=f"study{index}",
                showlegend=col == 1), row=1, col=col)
    figure.update_xaxes(type="log", title_text="MACs", row=1, col=1)
    figure.update_xaxes(type="log", title_text="parameters", row=1, col=2)
    figure.update_yaxes(title_text="proxy accuracy", row=1, col=1)
    figure.update_layout(**LAYOUT)
    return figure


def history_figure(views: Sequence[StudyView]) -> go.Figure:
    """Each trial's accuracy in order, and the hypervolume of the feasible front after each trial."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    for index, view in enumerate(views):
        name = escape(view.name)
        trained = [s for s in view.history if s.accuracy is not None]
        figure.add_trace(go.Scatter(
            x=[s.number for s in trained], y=[s.accuracy for s in trained], mode="markers",
            marker=dict(color=colour(index), size=7, opacity=[1.0 if s.feasible else 0.35 for s in trained]),
            name=f"{name}: accuracy", legendgroup=f"study{index}",
            hovertemplate="trial %{x}<br>proxy accuracy %{y:.3f}<extra></extra>"), secondary_y=False)
        figure.add_trace(go.Scatter(
            x=[s.number for s in view.history], y=[s.hypervolume for s in view.history], mode="lines",
            line=dict(color=colour(index), shape="hv", width=2), name=f"{name}: front hypervolume",
            legendgroup=f"study{index}", hovertemplate="after trial %{x}<br>hypervolume %{y:.3f}<extra></extra>"),
            secondary_y=True)
    figure.update_xaxes(title_text="trial")
    figure.update_yaxes(title_text="proxy accuracy (faded: infeasible)", secondary_y=False)
    figure.update_yaxes(title_text="hypervolume (accuracy x ms under the budget)", secondary_y=True)
    figure.update_layout(**LAYOUT)
    return figure


def latency_figure(views: Sequence[StudyView]) -> go.Figure:
    """Predicted vs measured latency, with the line where they agree."""
    figure = go.Figure()
    values: list[float] = []
    for index, view in enumerate(views):
        if not view.latency_pairs:
            continue
        numbers, predicted, measured = zip(*view.latency_pairs)
        values += [*predicted, *measured]
        figure.add_trace(go.Scatter(
            x=measured, y=predicted, mode="markers", marker=dict(color=colour(index), size=8),
            customdata=numbers, name=escape(view.name),
            hovertemplate="trial %{customdata}<br>measured %{x:.2f} ms<br>predicted %{y:.2f} ms<extra></extra>"))
    if values:
        low, high = min(values) * 0.9, max(values) * 1.1
        figure.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", hoverinfo="skip",
                                    line=dict(color="grey", dash="dot"), name="predicted = measured"))
    else:
        figure.add_annotation(text="No trial here had its latency predicted: each was measured whole before "
                                   "training<br>(a candidate is predicted only once nearly all its parts are in "
                                   "the part table).", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(xaxis_title="measured, ms",
                         yaxis_title="predicted, ms", **LAYOUT)
    return figure


def importance_figure(views: Sequence[StudyView]) -> go.Figure:
    """fANOVA importance of each search parameter, for accuracy and for latency."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("for accuracy", "for latency"), horizontal_spacing=0.25)
    for index, view in enumerate(views):
        for col, objective in ((1, "accuracy"), (2, "latency")):
            found = view.importances.get(objective)
            if not found:  # the page says why, under the figure
                continue
            ranked = sorted(found.items(), key=lambda item: item[1])
            figure.add_trace(go.Bar(
                x=[value for _, value in ranked], y=[escape(name) for name, _ in ranked], orientation="h",
                marker_color=colour(index), name=escape(view.name), legendgroup=f"study{index}",
                showlegend=col == 1 or "accuracy" not in view.importances,
                hovertemplate="%{y}: %{x:.3f}<extra></extra>"), row=1, col=col)
    figure.update_layout(barmode="group", **{**LAYOUT, "height": 560})
    return figure


def accuracy_spread(mean: float, std: float, count: int) -> str:
    """``0.912 ± 0.004 (3 seeds)``: a final-training accuracy over seeds."""
    return f"{mean:.3f} ± {std:.3f} ({count} seed{'s' if count != 1 else ''})"


def _member_hover(member: FamilyMember, same: list[FamilyMember]) -> str:
    rungs = ", ".join(f"{m.rung_ms:g}" for m in [member, *same])
    search = (f"<br>in the search: proxy accuracy {member.proxy_accuracy:.3f}, "
              f"{member.search_latency_ms:.2f} ms" if member.proxy_accuracy is not None
              and member.search_latency_ms is not None else "")
    verdicts = "".join(f"<br>{escape(v.sentence)}" for v in member.verdicts)
    return (f"<b>rung {rungs} ms</b>: {escape(member.name)} (trial {member.trial})<br>"
            f"input {member.input_size}px, params {format_count(member.params)}, MACs {format_count(member.macs)}"
            f"<br>latency of the exported .tflite {member.latency_ms:.2f} ms"
            + (f" <b>(over its {member.rung_ms:g} ms rung once re-measured)</b>" if member.within_rung is False else "")
            + "<br>accuracy of the exported .tflite "
            f"{accuracy_spread(member.accuracy_mean, member.accuracy_std, len(member.accuracies))}"
            f"<br>per seed: {', '.join(f'{a:.3f}' for a in member.accuracies)}{search}{verdicts}")


def family_figure(family: Family, index: int = 0, study: str = "") -> go.Figure:
    """A study's family: accuracy after final training vs latency, both of the exported .tflite.

    Not the search's proxy accuracy (short training at a reduced input): that is the
    Pareto plot's axis. Members in rung order joined by a line, each labelled with its
    rung(s) (a rung whose pick is a lower rung's network shares that point); error bars
    are the std over seeds, the seeds themselves faint dots; the references retrained
    under the same recipe as diamonds; each rung a dashed vertical line.
    """
    figure = go.Figure()
    shared: dict[float, list[FamilyMember]] = {}
    for member in family.members:
        if member.same_as_rung_ms is not None and any(m.rung_ms == member.same_as_rung_ms for m in family.members):
            shared.setdefault(member.same_as_rung_ms, []).append(member)
    drawn = [m for m in family.members if not any(m in group for group in shared.values())]
    rungs = family.rungs_ms
    edge = EDGE_OVER_BUDGET * max(rungs) if rungs else None

    def placed(latency: float) -> float:
        return min(latency, edge) if edge is not None else latency

    if drawn:
        labels = ["rung " + ", ".join(f"{r.rung_ms:g}" for r in [m, *shared.get(m.rung_ms, [])]) + " ms"
                  for m in drawn]
        figure.add_trace(go.Scatter(
            x=[placed(m.latency_ms) for m in drawn], y=[m.accuracy_mean for m in drawn], mode="lines+markers+text",
            text=labels, textposition="top left", textfont=dict(size=11, color=colour(index)),
            line=dict(color=colour(index), width=1.5), marker=dict(color=colour(index), size=10),
            error_y=dict(type="data", array=[m.accuracy_std for m in drawn], thickness=1.5, width=4),
            hovertext=[_member_hover(m, shared.get(m.rung_ms, [])) for m in drawn], hoverinfo="text",
            cliponaxis=False, name="family (mean ± std over seeds)", meta="members"))
        seeds = [(placed(m.latency_ms), a) for m in drawn for a in m.accuracies]
        if seeds:
            figure.add_trace(go.Scatter(
                x=[x for x, _ in seeds], y=[a for _, a in seeds], mode="markers",
                marker=dict(color=colour(index), size=5, opacity=0.35), name="family: each seed",
                hovertemplate="one seed: %{y:.3f}<extra></extra>", meta="seeds"))
    if family.references:
        references = family.references
        figure.add_trace(go.Scatter(
            x=[placed(r.latency_ms) for r in references], y=[r.accuracy_mean for r in references],
            mode="markers+text", text=[escape(r.reference) for r in references],
            textposition=["top left" if edge is not None and r.latency_ms > edge else "top right"
                          for r in references],
            textfont=dict(size=11, color="#444"),
            marker=dict(color="#444", symbol="diamond", size=11, line=dict(width=1, color="white")),
            error_y=dict(type="data", array=[r.accuracy_std for r in references], thickness=1.5, width=4,
                         color="#444"),
            hovertext=[f"<b>reference {escape(r.reference)}</b>, same recipe<br>input {r.input_size or '?'}px, "
                       f"params {format_count(r.params)}, MACs {format_count(r.macs)}<br>latency of the exported "
                       f".tflite {r.latency_ms:.2f} ms<br>accuracy of the exported .tflite "
                       f"{accuracy_spread(r.accuracy_mean, r.accuracy_std, len(r.accuracies))}"
                       + (f"<br><i>{BEYOND_LABEL} ({edge:g} ms)</i>"
                          if edge is not None and r.latency_ms > edge else "") for r in references],
            hoverinfo="text", cliponaxis=False, name="references, same recipe (mean ± std)", meta="references"))
    filled = {m.rung_ms for m in family.members}
    for rung in rungs:
        figure.add_vline(x=rung, line=RUNG_STYLE if rung in filled else UNFILLED_RUNG_STYLE,
                         annotation=dict(text=f"rung {rung:g} ms" + ("" if rung in filled else ": not filled"),
                                         textangle=-90, font=dict(size=10, color="darkorange" if rung in filled
                                                                  else "#a15c00")),
                         annotation_position="top left")
    if edge is not None:
        figure.update_xaxes(range=[0, edge], autorange=False)
    seeds_text = f"{len(family.seeds)} seeds" if family.seeds else "seeds"
    x_notes = [escape(family.latency_protocol)] if family.latency_protocol else []
    if edge is not None and any(r.latency_ms > edge for r in family.references):
        x_notes.append(f"slower than {edge:g} ms drawn at the right edge")
    x_title = "latency of the exported .tflite, ms (re-measured after final training)"
    x_title += "<br>" + "; ".join(x_notes) if x_notes else ""
    # Plotly does not wrap titles: break the (long) recipe summary into lines.
    title = "<br>".join(escape(line) for line in textwrap.wrap(
        (f"{study}: " if study else "") + (family.recipe_summary or "final recipe"), TITLE_WIDTH))
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=f"accuracy of the exported .tflite in LiteRT<br>after final training (mean ± std, "
                    f"{seeds_text})",
        **{**LAYOUT, "margin": dict(l=80, r=30, t=30 + 16 * title.count("<br>") + 30, b=70 if x_notes else 50),
           "title": dict(text=f"<span style='font-size:12px'>{title}</span>", x=0.01, xanchor="left")})
    return figure


__all__ = ["accuracy_spread", "beyond_edge", "cost_figure", "family_figure", "format_count", "history_figure",
           "hover", "importance_figure", "latency_edge", "latency_figure", "pareto_figure", "rung_label"]
