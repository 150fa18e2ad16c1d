"""Each piece of a study's work done once, however many workers share the study.

A piece is "train the network with spec hash H" or "train reference R". Before a trial
does a piece it claims it; the claim is a row whose primary key is (study, piece), so of
several workers claiming at once exactly one insert succeeds, on SQLite and PostgreSQL
alike. A worker that loses waits for the holder's trial and reuses its result; a claim
whose trial failed (its worker died, its training raised) is taken over with a
compare-and-swap, so one worker, not all of them, tries again.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError


def spec_piece(spec_hash: str) -> str:
    """The piece of work "train this network"."""
    return f"spec:{spec_hash}"


def reference_piece(name: str) -> str:
    """The piece of work "train this reference" (once per study, whichever worker gets there first)."""
    return f"reference:{name}"


class WorkClaims:
    """The claims of one study, in the study's database (``archsearch_work_claims``)."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.study_name = url, study_name

    def claim(self, piece: str, trial_number: int) -> int | None:
        """Claim ``piece`` for ``trial_number``: ``None`` if it is now this trial's, else the holder's trial number."""
        from archsearch.db import Store, WorkClaim

        store = Store.at(self.url)
        try:
            with store.session() as session:
                session.add(WorkClaim(study_name=self.study_name, key=piece, trial_number=trial_number))
        except IntegrityError:
            holder = self.holder(piece)
            return None if holder in (None, trial_number) else holder
        return None

    def holder(self, piece: str) -> int | None:
        """The trial number holding ``piece``, if anyone does."""
        from archsearch.db import Store, WorkClaim

        with Store.at(self.url).session() as session:
            return session.scalar(select(WorkClaim.trial_number).filter_by(study_name=self.study_name, key=piece))

    def take_over(self, piece: str, holder: int, trial_number: int) -> bool:
        """Move ``piece`` from ``holder`` (whose trial failed) to ``trial_number``; ``False`` if another worker
        moved it first."""
        from archsearch.db import Store, WorkClaim

        with Store.at(self.url).session() as session:
            moved = session.execute(update(WorkClaim).filter_by(study_name=self.study_name, key=piece,
                                                                trial_number=holder)
                                    .values(trial_number=trial_number))
            return moved.rowcount == 1  # type: ignore[attr-defined]


__all__ = ["WorkClaims", "reference_piece", "spec_piece"]
