"""SQLAlchemy tables of archsearch's own (latency measurements, part lookup table, trained weights)."""

from archsearch.db.engine import Store, StoreError, cache_dir, default_cache_url
from archsearch.db.models import Base, NetworkLatency, PartLatency, TrialWeights

__all__ = ["Base", "NetworkLatency", "PartLatency", "Store", "StoreError", "TrialWeights", "cache_dir",
           "default_cache_url"]
