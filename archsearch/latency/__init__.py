"""Latency: measured in a worker process (LiteRT by default) here or by a target device's agent, cached,
and predicted by a device profile.

The parent side imports no TensorFlow; conversion and timing happen in
``archsearch.latency.worker``.
"""

from archsearch.latency.agent import AgentError, AgentFailedError, AgentMeasure, AgentTimeoutError, ServeSummary, serve
from archsearch.latency.backends import BACKENDS, BackendUnavailableError, get_backend
from archsearch.latency.client import persistent_worker
from archsearch.latency.device import DeviceInfo, device_info
from archsearch.latency.measure import (
    LatencyError,
    LatencyResult,
    measure_latencies,
    measure_latency,
    measure_tflite,
    remeasure_latency,
)
from archsearch.latency.predictor import Calibration, LatencyPredictor, Part, Prediction, decompose, predict_latency
from archsearch.latency.profile import (
    DeviceProfile,
    ProfileAccuracy,
    ProfileError,
    require_profile,
    store_profile,
    stored_profiles,
    this_device_profile,
)
from archsearch.latency.profile_build import build_profile
from archsearch.latency.timing import TimingPolicy, TimingStats, time_runs

__all__ = [
    "AgentError", "AgentFailedError", "AgentMeasure", "AgentTimeoutError", "ServeSummary", "serve",
    "BACKENDS", "BackendUnavailableError", "Calibration", "DeviceInfo", "DeviceProfile", "LatencyError",
    "LatencyPredictor", "LatencyResult", "Part", "Prediction", "ProfileAccuracy", "ProfileError", "TimingPolicy",
    "TimingStats", "build_profile", "decompose", "device_info", "get_backend", "measure_latencies", "measure_latency",
    "measure_tflite", "persistent_worker", "predict_latency", "remeasure_latency", "require_profile", "store_profile",
    "stored_profiles", "this_device_profile", "time_runs",
]
