"""Trained weights of a study's trials, kept so exports never retrain.

They live in Optuna's artifact store (``optuna.artifacts``: a folder beside a SQLite
study, or any shared folder or S3 bucket for a fleet; ``study.artifacts``), one
artifact per trained feasible trial, linked from the trial twice: by Optuna's artifact
metadata and by the trial's own fact ``weights_artifact``. Databases stay small:
a trained network's weights are megabytes, and every worker of a server study would
otherwise carry them through its connection.

By default only what can still be exported usefully is kept: members of the feasible
Pareto front. A trial strictly dominated by a feasible complete trial never returns to
the front (trials never change once complete), so its artifact is removed after each
trial (``prune``) and the study records why (user attribute
``archsearch:weights_dropped:<N>``; a finished trial cannot be written to). With
``keep_weights="all"`` nothing is removed. The policy is the study's (user attribute
``archsearch:keep_weights``, set by the last run that asked for one), so every worker follows it.

Studies written before the artifact store kept weights in archsearch's table
``archsearch_trial_weights``; they still load from there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from archsearch.errors import ArchsearchError
from archsearch.study.artifacts import ArtifactLocation, record_location, study_location
from archsearch.study.fidelity import dominates
from archsearch.study.record import TrialRecord, TrialRecorder

if TYPE_CHECKING:
    import optuna
    from optuna.artifacts._protocol import ArtifactStore

    from archsearch.study.config import StudyConfig

KeepWeights = Literal["front", "all"]

KEEP_ATTR = "archsearch:keep_weights"
"""Study user attribute: ``front`` or ``all``, the policy the last run that asked for one set."""

DROPPED_ATTR_PREFIX = "archsearch:weights_dropped:"
"""Study user attribute ``<prefix><trial number>`` -> ``{"dominated_by": M}``: weights removed, and why."""


class MissingWeightsError(ArchsearchError):
    """A trial whose trained weights are not stored."""


class DroppedWeightsError(MissingWeightsError):
    """A trial whose weights were stored, then removed when it left the front for good."""


class DatabaseWeights:
    """Weights in the study's database (``archsearch_trial_weights``): how studies kept them before artifacts.

    Keyed by study name and trial number; the spec hash guards against a study deleted and
    recreated under the same name. Read only: new weights go to the artifact store.
    """

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.study_name = url, study_name

    def load(self, number: int, spec_hash: str) -> bytes:
        """The weights trial ``number`` stored for the network ``spec_hash``; ``MissingWeightsError`` if none."""
        from archsearch.db import Store, TrialWeights

        with Store.at(self.url).session() as session:
            row = TrialWeights.get(session, self.study_name, number)
            if row is None or row.spec_hash != spec_hash:
                raise MissingWeightsError(f"trial {number} has no stored trained weights (trained by an "
                                         "archsearch that did not keep them?)")
            return row.weights


class TrialWeightStore:
    """The trained weights of one study's trials: in its artifact store, or (older studies) its database.

    ``TrialWeightStore.for_run`` is a runner's (it records the location on the study);
    ``TrialWeightStore.of_study`` a reader's (export: it writes nothing).
    """

    def __init__(self, study: optuna.Study, url: str, location: ArtifactLocation) -> None:
        self.study, self.url, self.location = study, url, location
        self.legacy = DatabaseWeights(url, study.study_name)
        self._store: ArtifactStore | None = None
        self._writable = False

    @classmethod
    def for_run(cls, study: optuna.Study, url: str, location: str | None = None,
                keep_weights: KeepWeights | None = None) -> TrialWeightStore:
        """The store a run writes to.

        ``location`` (a folder or ``s3://bucket/prefix``), else the one the study recorded,
        else the default; one other than the recorded location raises ``ArtifactLocationError``.
        ``keep_weights``, when given, becomes the study's policy (recorded, so every worker
        follows it, and a later run may change it); ``None`` keeps the recorded one.
        """
        chosen = study_location(study, url, location)
        store = cls(study, url, chosen)
        store._open(for_writing=True)  # fail now, in one line, rather than in every trial (no boto3, no folder)
        record_location(study, chosen)
        if keep_weights is not None:
            study.set_user_attr(KEEP_ATTR, keep_weights)
        return store

    @classmethod
    def for_config(cls, study: optuna.Study, url: str, config: StudyConfig) -> TrialWeightStore:
        """``for_run`` with a study's settings: ``keep_weights`` counts only when it was asked for, so a
        worker that joins with the recorded settings follows the study's policy instead of the default."""
        keep = config.keep_weights if "keep_weights" in config.model_fields_set else None
        return cls.for_run(study, url, config.artifacts, keep)

    @classmethod
    def of_study(cls, study: optuna.Study, url: str) -> TrialWeightStore:
        """The store a reader loads from: the location the study recorded (else the default); writes nothing."""
        return cls(study, url, study_location(study, url))

    def keep(self, trial: optuna.Trial, spec_hash: str, weights: bytes) -> str:
        """Store a running trial's weights as an artifact linked to it (and as its ``weights_artifact``); its id."""
        from optuna.artifacts import upload_artifact

        store = self._open(for_writing=True)
        with tempfile.TemporaryDirectory(prefix="archsearch-weights-") as folder:
            path = Path(folder) / f"trial{trial.number}-{spec_hash[:12]}.weights.npz"
            path.write_bytes(weights)
            artifact_id = upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
        TrialRecorder.running(trial).set(weights_artifact=artifact_id)
        return artifact_id

    def load(self, number: int, spec_hash: str) -> bytes:
        """The weights trial ``number`` stored for the network ``spec_hash``.

        From the artifact store when the trial has an artifact, else from the database
        (older studies). ``DroppedWeightsError`` when they were removed, ``MissingWeightsError``
        when there are none.
        """
        from optuna.artifacts.exceptions import ArtifactNotFound

        record = self._record(number)
        if record is None or record.weights_artifact is None:
            return self.legacy.load(number, spec_hash)
        artifact = record.weights_artifact
        dominated_by = self.dropped().get(number)
        if dominated_by is not None:
            raise DroppedWeightsError(f"trial {number}'s weights were not kept (dominated by trial {dominated_by}); "
                                      "rerun with --keep-weights all")
        if record.spec_hash != spec_hash:
            raise MissingWeightsError(f"trial {number} has no stored trained weights for this network")
        try:
            with self._open().open_reader(artifact) as reader:
                return reader.read()
        except ArtifactNotFound:
            raise MissingWeightsError(f"trial {number}'s weights (artifact {artifact}) are not in the artifact "
                                      f"store {self.location.shown}") from None

    def keep_weights(self) -> KeepWeights:
        """The study's policy: what the last run that asked for one recorded (read afresh: with several
        workers, another may have changed it), else ``"front"``."""
        return "all" if self.study.user_attrs.get(KEEP_ATTR) == "all" else "front"

    def dropped(self) -> dict[int, int]:
        """Trials whose weights were removed -> the trial that dominated them."""
        found = {}
        for key, value in self.study.user_attrs.items():
            if key.startswith(DROPPED_ATTR_PREFIX) and isinstance(value, dict):
                found[int(key.removeprefix(DROPPED_ATTR_PREFIX))] = int(value["dominated_by"])
        return found

    def prune(self) -> dict[int, int]:
        """Remove the weights of trials that left the feasible Pareto front; return {trial: dominated by}.

        Nothing is removed with ``keep_weights="all"``. A removal is recorded on the study
        before the artifact goes, so a process killed between the two leaves an unused
        file, never a trial that claims weights it no longer has.
        """
        from optuna.artifacts.exceptions import ArtifactNotFound
        from optuna.trial import TrialState

        if self.keep_weights() == "all":
            return {}
        front = sorted(self.study.best_trials, key=lambda t: t.number)  # feasible and non-dominated
        on_front = {t.number for t in front}
        already = self.dropped()
        removed: dict[int, int] = {}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            record = TrialRecord.of(trial)
            if (record.weights_artifact is None or record.number in on_front or record.number in already
                    or not record.is_complete):
                continue
            assert record.values is not None
            values = (record.values[0], record.values[1])
            by = next((t.number for t in front if dominates((t.values[0], t.values[1]), values)), None)
            if by is None:  # off the front only through infeasibility (never stored) or a concurrent change
                continue
            self.study.set_user_attr(f"{DROPPED_ATTR_PREFIX}{record.number}", {"dominated_by": by})
            try:
                self._open().remove(record.weights_artifact)
            except ArtifactNotFound:
                pass  # another worker removed it first
            removed[record.number] = by
        return removed

    def _open(self, for_writing: bool = False) -> ArtifactStore:
        """The artifact store, opened once (a folder is created the first time it is written to)."""
        store = self._store
        if store is None or (for_writing and not self._writable):
            store = self._store = self.location.open(for_writing)
            self._writable = for_writing
        return store

    def _record(self, number: int) -> TrialRecord | None:
        for trial in self.study.get_trials(deepcopy=False):
            if trial.number == number:
                return TrialRecord.of(trial)
        return None


__all__ = ["DROPPED_ATTR_PREFIX", "KEEP_ATTR", "DatabaseWeights", "DroppedWeightsError", "KeepWeights",
           "MissingWeightsError", "TrialWeightStore"]
