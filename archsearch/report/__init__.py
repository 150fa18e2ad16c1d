"""Dashboards: one self-contained HTML page per study (or several studies side by side)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Union

import optuna

from archsearch.errors import ArchsearchError
from archsearch.output_files import safe_filename, written_atomically
from archsearch.report.info import FrontMember, HistoryStep, StudyView, TrialPoint, study_view


class DashboardError(ArchsearchError):
    """The dashboard cannot be written."""


StudyRef = Union[str, optuna.Study]
"""A study by name (looked up in the storage) or an open ``optuna.Study`` (stored at the storage given)."""


def _name(study: StudyRef) -> str:
    return study if isinstance(study, str) else study.study_name


def default_dashboard_path(studies: Sequence[StudyRef], folder: str | Path = "dashboards") -> Path:
    return Path(folder) / f"{safe_filename('+'.join(map(_name, studies)))}.html"


def load_views(studies: Sequence[StudyRef], storage: str | None = None) -> list[StudyView]:
    """The dashboard data of each study (``StudyError`` for a name that does not exist)."""
    from archsearch.study import load_existing_study

    views = []
    for study in studies:
        if isinstance(study, str):
            loaded, url = load_existing_study(study, storage)
        else:
            if storage is None:
                raise DashboardError(f"study {study.study_name!r}: say which storage it lives in")
            loaded, url = study, storage
        views.append(study_view(loaded, url))
    return views


def write_dashboard(studies: Sequence[StudyRef], storage: str | None = None, output: str | Path | None = None) -> Path:
    """Write the dashboard of ``studies`` to ``output`` (default ``dashboards/NAME.html``) and return its path.

    Each study is a name (found in ``storage``, or in ``studies/*.db``) or an open
    ``optuna.Study`` already in hand (``storage`` then says where it lives).
    """
    from archsearch.report.html import dashboard_html

    if not studies:
        raise DashboardError("name at least one study")
    names = [_name(study) for study in studies]
    if len(set(names)) != len(names):
        raise DashboardError("a study is named twice")
    page = dashboard_html(load_views(studies, storage))
    path = Path(output) if output is not None else default_dashboard_path(studies)
    with written_atomically(path, DashboardError) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


__all__ = ["DashboardError", "FrontMember", "HistoryStep", "StudyView", "TrialPoint", "default_dashboard_path",
           "load_views", "study_view", "write_dashboard"]
