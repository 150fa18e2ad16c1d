"""The Optuna study: configuration, the trial record, the run loop and its steps, storage, reading results."""

from archsearch.study.config import StudyConfig, load_study_config, parse_budget_ms
from archsearch.study.front import (
    Point,
    dominated_references,
    failures,
    hypervolume,
    pareto_front,
    reference_points,
    search_points,
    study_report,
    trial_point,
)
from archsearch.study.optuna_storage import StudyError, list_studies, load_existing_study, open_storage
from archsearch.study.record import CONFIG_ATTR, Status, TrialRecord, recorded_config
from archsearch.study.run import (
    StudyProgress,
    StudyRunner,
    TrialReport,
    join_config,
    run_study,
    search_trials,
    study_trial_count,
)

__all__ = [
    "CONFIG_ATTR", "Point", "Status", "StudyConfig", "StudyError", "StudyProgress", "StudyRunner", "TrialRecord",
    "TrialReport", "dominated_references", "failures", "hypervolume", "join_config", "list_studies",
    "load_existing_study", "load_study_config", "open_storage", "pareto_front", "parse_budget_ms", "recorded_config",
    "reference_points", "run_study", "search_points", "search_trials", "study_report", "study_trial_count",
    "trial_point",
]
