"""archsearch: hardware-aware neural architecture search for Keras.

Architectures are data (``NetworkSpec``); ``compile_model`` turns one into Keras.
Importing this package does not import TensorFlow: names that need it are loaded on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from archsearch.cost import count_macs, count_params, network_cost
from archsearch.errors import ArchsearchError, SpecError, UnknownNameError, WeightTransferError
from archsearch.references import load_reference, reference_names
from archsearch.space import SearchSpace, load_space, sample_specs, space_names
from archsearch.spec import NetworkSpec, dump_spec, load_spec, parse_spec, spec_hash, spec_to_yaml

__version__ = "0.1.0"

# Public names whose modules import TensorFlow, resolved lazily (PEP 562).
_LAZY = {
    "compile_model": "archsearch.compile",
    "transfer_weights": "archsearch.compile",
    "load_keras_model": "archsearch.compile",
    "count_model_macs": "archsearch.compile",
    # The latency side imports SQLAlchemy; the measuring itself runs in a worker process.
    "measure_latency": "archsearch.latency",
    "predict_latency": "archsearch.latency",
    "LatencyResult": "archsearch.latency",
    # Studies, their dashboards and exports import Optuna (and plotly), not needed for specs.
    "StudyConfig": "archsearch.study",
    "run_study": "archsearch.study",
    "write_dashboard": "archsearch.report",
    "export_trial": "archsearch.export",
    "export_front": "archsearch.export",
}

if TYPE_CHECKING:
    from archsearch.compile import compile_model, count_model_macs, load_keras_model, transfer_weights
    from archsearch.export import export_front, export_trial
    from archsearch.latency import LatencyResult, measure_latency, predict_latency
    from archsearch.report import write_dashboard
    from archsearch.study import StudyConfig, run_study


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archsearch' has no attribute {name!r}")


__all__ = [
    "ArchsearchError", "LatencyResult", "NetworkSpec", "SearchSpace", "SpecError", "StudyConfig", "UnknownNameError",
    "WeightTransferError", "__version__", "compile_model", "count_macs", "count_model_macs", "count_params",
    "dump_spec", "export_front", "export_trial", "load_keras_model", "load_reference", "load_space", "load_spec",
    "measure_latency", "network_cost", "parse_spec", "predict_latency", "reference_names", "run_study",
    "sample_specs", "space_names", "spec_hash", "spec_to_yaml", "transfer_weights", "write_dashboard",
]
