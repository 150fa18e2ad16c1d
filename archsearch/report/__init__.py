"""Dashboards: one self-contained HTML page per study (or several studies side by side)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from archsearch.errors import ArchsearchError
from archsearch.output_files import safe_filename, written_atomically
from archsearch.report.info import FrontMember, HistoryStep, StudyView, TrialPoint, study_view


class DashboardError(ArchsearchError):
    """The dashboard cannot be written."""


def default_dashboard_path(studies: Sequence[str], folder: str | Path = "dashboards") -> Path:
    return Path(folder) / f"{safe_filename('+'.join(studies))}.html"


def load_views(studies: Sequence[str], storage: str | None = None) -> list[StudyView]:
    """The dashboard data of each named study (``StudyError`` for one that does not exist)."""
    from archsearch.study import load_existing_study

    views = []
    for name in studies:
        study, url = load_existing_study(name, storage)
        views.append(study_view(study, url))
    return views


def write_dashboard(studies: Sequence[str], storage: str | None = None, output: str | Path | None = None) -> Path:
    """Write the dashboard of ``studies`` to ``output`` (default ``dashboards/NAME.html``) and return its path."""
    from archsearch.report.html import dashboard_html

    if not studies:
        raise DashboardError("name at least one study")
    if len(set(studies)) != len(studies):
        raise DashboardError("a study is named twice")
    page = dashboard_html(load_views(studies, storage))
    path = Path(output) if output is not None else default_dashboard_path(studies)
    with written_atomically(path, DashboardError) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


__all__ = ["DashboardError", "FrontMember", "HistoryStep", "StudyView", "TrialPoint", "default_dashboard_path",
           "load_views", "study_view", "write_dashboard"]
