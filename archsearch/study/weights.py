"""Trained weights of a study's trials, kept beside the study so exports never retrain.

They live in archsearch's own table (``archsearch_trial_weights``) in the study's
database, keyed by study name and trial number; the spec hash guards against a study
deleted and recreated under the same name.
"""

from __future__ import annotations

from archsearch.errors import ArchsearchError


class MissingWeightsError(ArchsearchError):
    """A trial whose trained weights are not stored."""


class TrialWeightStore:
    """The trained weights of one study's trials, in the study's database."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.study_name = url, study_name

    def keep(self, number: int, spec_hash: str, weights: bytes) -> None:
        from archsearch.db import Store, TrialWeights

        with Store.at(self.url).session() as session:
            session.merge(TrialWeights(study_name=self.study_name, trial_number=number, spec_hash=spec_hash,
                                       weights=weights))

    def load(self, number: int, spec_hash: str) -> bytes:
        """The weights trial ``number`` stored for the network ``spec_hash``; ``MissingWeightsError`` if none."""
        from archsearch.db import Store, TrialWeights

        with Store.at(self.url).session() as session:
            row = TrialWeights.get(session, self.study_name, number)
            if row is None or row.spec_hash != spec_hash:
                raise MissingWeightsError(f"trial {number} has no stored trained weights")
            return row.weights


__all__ = ["MissingWeightsError", "TrialWeightStore"]
