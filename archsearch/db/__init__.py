"""SQLAlchemy tables of archsearch's own (latency measurements, part lookup table, device profiles, trained
weights, work claims)."""

from archsearch.db.engine import Store, StoreError, cache_dir, default_cache_url
from archsearch.db.models import Base, DeviceProfileRecord, NetworkLatency, PartLatency, TrialWeights, WorkClaim

__all__ = ["Base", "DeviceProfileRecord", "NetworkLatency", "PartLatency", "Store", "StoreError", "TrialWeights",
           "WorkClaim", "cache_dir", "default_cache_url"]
