"""The Optuna study: configuration, the run loop, multi-fidelity, storage and reading results."""

from archsearch.study.config import StudyConfig
from archsearch.study.front import (
    Point,
    dominated_references,
    failures,
    hypervolume,
    pareto_front,
    reference_points,
    study_report,
    trial_point,
)
from archsearch.study.run import CONFIG_ATTR, StudyRunner, TrialReport, run_study, search_trials
from archsearch.study.optuna_storage import StudyError, list_studies, load_existing_study, open_storage

__all__ = [
    "CONFIG_ATTR", "Point", "StudyConfig", "StudyError", "StudyRunner", "TrialReport", "dominated_references", "failures",
    "hypervolume", "list_studies", "load_existing_study", "open_storage", "pareto_front", "reference_points",
    "run_study", "search_trials", "study_report", "trial_point",
]
