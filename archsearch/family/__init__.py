"""Config generation: a family of networks, one per rung of a study's budget ladder, trained for real.

``build_family`` picks the best feasible search trial within each rung, trains each pick
and the space's references at the deployment input with a final recipe over several
seeds, ships a spec, a ``.tflite`` and a ``.keras`` per rung, measures accuracy on the
shipped ``.tflite`` files and their latency, and says rung by rung how each member
compares with the references.
"""

from archsearch.family.build import FamilyError, build_family, default_folder, rung_label
from archsearch.family.compare import Trained, Verdict, compare, member_verdicts, reference_verdict
from archsearch.family.picks import Pick, pick_members
from archsearch.family.recipe import FinalRecipe
from archsearch.family.runs import RunStore, SeedRun

__all__ = ["FamilyError", "FinalRecipe", "Pick", "RunStore", "SeedRun", "Trained", "Verdict", "build_family",
           "compare", "default_folder", "member_verdicts", "pick_members", "reference_verdict", "rung_label"]
