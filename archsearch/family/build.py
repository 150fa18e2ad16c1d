"""``archsearch family``: one network per rung of a study's ladder, trained for real and set against the references.

Steps: pick the best feasible search trial within each rung (``picks``); train each
pick and each of the space's references at its deployment input with the final recipe,
once per seed (``runs``: finished runs are reused, so an interrupted family resumes and
a later one retrains only the picks that changed); ship per rung a spec YAML, a
``.tflite`` and a ``.keras`` (the first seed's weights); measure every shipped file's
latency under the study's protocol and every seed's ``.tflite`` accuracy in LiteRT; and
compare each member with the references it is no slower than (``compare``). The result
is written as ``family.json`` in the folder and recorded on the study, where
``show-study`` and the dashboard read it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archsearch.cost import count_macs, count_params
from archsearch.errors import ArchsearchError
from archsearch.family.compare import Trained, member_verdicts, reference_verdict
from archsearch.family.estimate import TrainingSpeed, speed_from_runs, speed_from_study
from archsearch.family.picks import Pick, pick_members
from archsearch.family.recipe import FinalRecipe
from archsearch.family.runs import RunStore, SeedRun
from archsearch.output_files import safe_filename, written_atomically
from archsearch.spec import NetworkSpec, parse_spec, spec_hash, spec_to_yaml
from archsearch.study.ladder import ladder_state, unfilled_sentence
from archsearch.study.record import FAMILY_ATTR, LADDER_ATTR, recorded_config, records

Say = Callable[[str], None]


class FamilyError(ArchsearchError):
    """A family cannot be made from this study (nothing feasible, unknown study, unwritable folder)."""


def rung_label(rung_ms: float) -> str:
    """A rung as a file-name part: ``2ms``, ``2.5ms``."""
    return f"{rung_ms:g}ms"


@dataclass
class _Network:
    """A network the family trains: a pick (one or more rungs) or a reference."""

    label: str
    spec: NetworkSpec
    rungs: list[float] = field(default_factory=list)
    reference: str | None = None
    runs: dict[int, SeedRun] = field(default_factory=dict)


def default_folder(study_name: str) -> Path:
    return Path("families") / safe_filename(study_name)


def build_family(study_name: str, storage: str | None = None, output: str | Path | None = None, *,
                 epochs: int = FinalRecipe.epochs, seeds: tuple[int, ...] = FinalRecipe.seeds,
                 batch_size: int | None = None, learning_rate: float | None = None, threads: int | None = None,
                 jobs: int = 1, say: Say = lambda text: None) -> dict[str, Any]:
    """Make the family of ``study_name`` in ``output`` (default ``families/STUDY``) and return its table.

    The final recipe trains ``epochs`` epochs per seed at each network's deployment input,
    on the study's data with the study's optimiser settings unless ``batch_size`` or
    ``learning_rate`` say otherwise. Every setting is part of a run's key: changing one
    trains again, keeping them reuses what finished. ``jobs`` trainings run side by side,
    each with its share of the CPU's threads (``archsearch.family.parallel``).
    """
    from archsearch.study import load_existing_study

    study, url = load_existing_study(study_name, storage)
    config = recorded_config(study)
    if not config.get("budget_ms"):
        raise FamilyError(f"study {study_name!r} recorded no budget: it was not made by `archsearch run`")
    rungs = list(config.get("ladder_ms") or [config["budget_ms"]])
    all_records = records(study)
    picks, empty = pick_members(all_records, rungs)
    if not picks:
        raise FamilyError(f"study {study_name!r} has no trained, feasible search trial within any rung "
                          f"({', '.join(map(rung_label, rungs))}); run more trials first")
    try:
        recipe = FinalRecipe(epochs=epochs, seeds=tuple(seeds),
                             batch_size=batch_size or int(config.get("batch_size", FinalRecipe.batch_size)),
                             learning_rate=learning_rate or float(config.get("learning_rate",
                                                                             FinalRecipe.learning_rate)),
                             dataset=str(config.get("dataset", "digits-clutter")), data_seed=int(config.get("seed", 0)))
    except ValueError as error:
        raise FamilyError(f"final recipe: {error}") from None
    folder = Path(output) if output is not None else default_folder(study_name)
    if folder.exists() and not folder.is_dir():
        raise FamilyError(f"{folder}: the family is written into a folder, and this is a file")
    threads = threads or int(config.get("threads", 1))
    timer = _Timer(url, config.get("device"), str(config.get("backend", "litert")), threads)

    networks = _networks(picks, config, study_name, say)
    store = RunStore(folder / ".runs")
    train_images, validation_images = _image_counts(recipe)
    if jobs < 1:
        raise FamilyError(f"jobs must be at least 1, got {jobs}")
    _train_all(networks, store, recipe, all_records, train_images, say, jobs)
    result = _ship_and_compare(study_name, folder, networks, picks, rungs, recipe, validation_images, timer, say)
    result["unfilled"] = _unfilled(empty, all_records, rungs, study.user_attrs.get(LADDER_ATTR))
    with written_atomically(folder / "family.json", FamilyError) as temporary:
        temporary.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    study.set_user_attr(FAMILY_ATTR, result)
    return result


def _networks(picks: list[Pick], config: dict[str, Any], study_name: str, say: Say) -> list[_Network]:
    """The distinct networks to train: each pick once (a network picked by several rungs is one), then the
    space's references."""
    from archsearch.references import load_reference
    from archsearch.space import load_space

    networks: dict[str, _Network] = {}
    for pick in picks:
        if pick.spec_hash not in networks:
            spec = parse_spec({**pick.spec, "name": f"{study_name}-{rung_label(pick.rung_ms)}"})
            if spec_hash(spec) != pick.spec_hash:
                raise FamilyError(f"trial {pick.trial}: the stored spec does not match its recorded hash")
            networks[pick.spec_hash] = _Network(f"rung {rung_label(pick.rung_ms)} (trial {pick.trial})", spec)
        networks[pick.spec_hash].rungs.append(pick.rung_ms)
    classes = parse_spec(picks[0].spec).classes
    try:
        references = load_space(str(config.get("space", "mobilenetv3"))).references
    except ArchsearchError as error:  # a space file that moved: the family goes on without baselines
        say(f"no references to compare with: the study's space cannot be read here ({error})")
        references = ()
    for name in references:
        networks.setdefault(f"reference:{name}", _Network(name, load_reference(name, classes=classes),
                                                         reference=name))
    return list(networks.values())


def _train_all(networks: list[_Network], store: RunStore, recipe: FinalRecipe, all_records: list[Any],
               images: int, say: Say, jobs: int = 1) -> None:
    """Every (network, seed) run, reusing finished ones; an estimate first, progress throughout.

    With ``jobs`` > 1 the trainings run side by side in that many processes
    (``parallel``), largest first so the last one to finish is a small one.
    """
    todo: list[tuple[_Network, int]] = []
    for network in networks:
        for seed in recipe.seeds:
            finished = store.finished(network.spec, recipe, seed)
            if finished is not None:
                network.runs[seed] = finished
            else:
                todo.append((network, seed))
    reused = sum(len(n.runs) for n in networks)
    if not todo:
        say(f"all {reused} final trainings are done already (in {store.root}); shipping and measuring")
        return
    if jobs > 1:
        todo.sort(key=lambda item: (-count_macs(item[0].spec), item[1]))  # the longest first, roughly
    else:
        todo.sort(key=lambda item: (item[0].spec.input.size, count_macs(item[0].spec), item[1]))  # one size at a time
    speed = speed_from_study(all_records, images)
    total = _estimate(todo, speed, recipe, images)
    side_by_side = f", {jobs} at a time" if jobs > 1 else ""
    say(f"{len(todo)} final trainings to run{side_by_side} ({reused} reused from {store.root}): {recipe.summary()}; "
        + (f"estimated {_duration(total)} one after another, from {speed.source}" if speed and total else
           "no estimate yet (the study's proxy trainings had fewer than 2 epochs to time)"))
    progress = _Progress(todo, recipe, images, jobs, say)
    if jobs > 1:
        from archsearch.family.parallel import train_side_by_side

        train_side_by_side([(network.spec, seed) for network, seed in todo], store, recipe, jobs,
                           on_event=lambda event: progress.epoch(event[0], event[1], event[2]),
                           on_done=progress.done)
        return
    from archsearch.data import load_dataset

    data = None
    for index, (network, seed) in enumerate(todo):
        size = network.spec.input.size
        if data is None or data.image_size != size:
            data = None  # one deployment size in memory at a time (digits-clutter at 320: 3 GB)
            data = load_dataset(recipe.dataset, size=size, seed=recipe.data_seed)
        progress.epoch(index, 0, {})
        run = store.train(network.spec, data, recipe, seed,
                          lambda epoch, metrics, index=index: progress.epoch(index, epoch, metrics))
        progress.done(index, run)


class _Progress:
    """The lines a family prints while it trains, and the time left at the speed measured so far."""

    def __init__(self, todo: list[tuple[_Network, int]], recipe: FinalRecipe, images: int, jobs: int,
                 say: Say) -> None:
        self.todo, self.recipe, self.images, self.jobs, self.say = todo, recipe, images, jobs, say
        self.finished: list[tuple[int, int, int, float]] = []
        self.left = set(range(len(todo)))
        self.started = time.monotonic()

    def _name(self, index: int) -> str:
        network, seed = self.todo[index]
        size = network.spec.input.size
        return f"[{index + 1}/{len(self.todo)}] {network.label}, {size}x{size}, seed {seed}"

    def epoch(self, index: int, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch 0: the training starts."""
        if epoch == 0:
            self.say(f"{self._name(index)}: training {self.recipe.epochs} epochs")
            return
        where = f"    {self._name(index)}" if self.jobs > 1 else "   "  # side by side, lines interleave
        self.say(f"{where} epoch {epoch}/{self.recipe.epochs}: training accuracy {metrics['accuracy']:.3f}, loss "
                 f"{metrics['loss']:.3f} ({metrics['seconds']:.0f} s)")

    def done(self, index: int, run: SeedRun) -> None:
        network, seed = self.todo[index]
        network.runs[seed] = run
        self.left.discard(index)
        self.finished.append((count_macs(network.spec), self.images, self.recipe.epochs, run.seconds))
        remaining = _estimate([self.todo[i] for i in self.left], speed_from_runs(self.finished), self.recipe,
                              self.images)
        where = f"    {self._name(index)}" if self.jobs > 1 else "   "
        self.say(f"{where} done in {run.seconds:.0f} s: {run.tflite_accuracy:.4f} on the .tflite in LiteRT "
                 f"({run.keras_accuracy:.4f} in Keras); {time.monotonic() - self.started:.0f} s so far"
                 + (f", about {_duration(remaining / self.jobs)} left" if self.left and remaining else ""))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _image_counts(recipe: FinalRecipe) -> tuple[int, int]:
    """(training, validation) images of the recipe's data."""
    from archsearch.data import load_dataset

    data = load_dataset(recipe.dataset, seed=recipe.data_seed)
    return len(data.y_train), len(data.y_val)


def _estimate(todo: list[tuple[_Network, int]], speed: TrainingSpeed | None, recipe: FinalRecipe,
              images: int) -> float | None:
    if speed is None:
        return None
    return sum(speed.seconds(count_macs(n.spec), images, recipe.epochs) for n, _ in todo)


def _ship_and_compare(study_name: str, folder: Path, networks: list[_Network], picks: list[Pick],
                      rungs: list[float], recipe: FinalRecipe, validation: int, timer: _Timer,
                      say: Say) -> dict[str, Any]:
    """Write each rung's files (first seed's weights), measure their latency, compare with the references."""
    shipped_seed = recipe.seeds[0]
    measured: dict[str, Trained] = {}
    say(f"measuring the latency of {len(networks)} shipped networks: {timer.protocol}")
    for network in networks:
        run = network.runs[shipped_seed]
        if network.reference is not None:
            target = folder / "references" / f"{safe_filename(network.reference)}.tflite"
            _copy(run.tflite, target)
            _copy(run.keras, target.with_suffix(".keras"))
        else:
            target = folder / f"rung-{rung_label(network.rungs[0])}.tflite"
            _copy(run.tflite, target)
            _copy(run.keras, target.with_suffix(".keras"))
            with written_atomically(target.with_suffix(".yaml"), FamilyError) as temporary:
                temporary.write_text(spec_to_yaml(network.spec), encoding="utf-8")
        measured[network.label] = Trained(network.reference or f"rung {rung_label(network.rungs[0])}",
                                          timer.latency_ms(target, network.spec),
                                          tuple(network.runs[s].tflite_accuracy for s in recipe.seeds))
    references = [n for n in networks if n.reference is not None]
    reference_figures = [measured[n.label] for n in references]
    by_hash = {spec_hash(n.spec): n for n in networks if n.reference is None}
    members = []
    for pick in picks:
        network = by_hash[pick.spec_hash]
        figure = measured[network.label]
        first = network.rungs[0]
        members.append({
            "rung_ms": pick.rung_ms, "trial": pick.trial, "name": pick.name, "spec_hash": pick.spec_hash,
            "input_size": network.spec.input.size, "params": count_params(network.spec),
            "macs": count_macs(network.spec), "proxy_accuracy": pick.proxy_accuracy,
            "search_latency_ms": pick.search_latency_ms, "latency_ms": figure.latency_ms,
            "within_rung": figure.latency_ms <= pick.rung_ms,
            "accuracies": list(figure.accuracies), "accuracy_mean": figure.mean, "accuracy_std": figure.std,
            "shipped_seed": shipped_seed, "shipped_accuracy": network.runs[shipped_seed].tflite_accuracy,
            "keras_accuracies": [network.runs[s].keras_accuracy for s in recipe.seeds],
            "train_seconds": [network.runs[s].seconds for s in recipe.seeds],
            "files": {kind: str(folder / f"rung-{rung_label(first)}{suffix}")
                      for kind, suffix in (("spec", ".yaml"), ("tflite", ".tflite"), ("keras", ".keras"))},
            "same_as_rung_ms": pick.same_as_rung_ms,
            "verdicts": [v.as_dict() for v in member_verdicts(figure, reference_figures, validation)],
        })
    member_figures = [(m["rung_ms"], measured[by_hash[m["spec_hash"]].label]) for m in members
                      if m["same_as_rung_ms"] is None]
    for member in members:
        if member["same_as_rung_ms"] is None:
            _write_card(Path(member["files"]["tflite"]), study_name, member, recipe, validation)
    return {
        "study": study_name, "folder": str(folder), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rungs_ms": rungs,
        "recipe": recipe.as_dict(validation),
        "latency_protocol": timer.protocol,
        "members": members,
        "references": [{
            "reference": n.reference, "latency_ms": measured[n.label].latency_ms, "input_size": n.spec.input.size,
            "params": count_params(n.spec), "macs": count_macs(n.spec),
            "accuracies": list(measured[n.label].accuracies), "accuracy_mean": measured[n.label].mean,
            "accuracy_std": measured[n.label].std,
            "files": {"tflite": str(folder / "references" / f"{safe_filename(n.reference or '')}.tflite")},
            "train_seconds": [n.runs[s].seconds for s in recipe.seeds]} for n in references],
        "reference_verdicts": [reference_verdict(measured[n.label], member_figures, validation) for n in references],
    }


class _Timer:
    """Latency of what ships: the file itself, timed here, or, for a study whose latencies come from a named
    device, the same network timed on that device by its agent (weights do not change a float model's time)."""

    def __init__(self, url: str, device: str | None, backend: str, threads: int) -> None:
        self.url, self.device, self.backend, self.threads = url, device, backend, threads
        if device is None:
            self.protocol = f"median of the exported .tflite timed in LiteRT here, {threads} thread(s), batch 1"
        else:
            self.protocol = (f"median on device {device!r}, timed by its measurement agent ({backend}, "
                             f"{threads} thread(s), batch 1)")

    def latency_ms(self, path: Path, spec: NetworkSpec) -> float:
        if self.device is None:
            from archsearch.latency.measure import measure_tflite

            return float(measure_tflite(path, threads=self.threads)["median_ms"])
        from archsearch.latency import AgentMeasure

        return AgentMeasure(self.url, self.device, self.backend, self.threads).remeasure(spec).median_ms


def _unfilled(empty: list[float], all_records: list[Any], rungs: list[float],
              unreachable: dict[str, str] | None) -> list[dict[str, Any]]:
    states = {s.rung.budget_ms: s for s in ladder_state(all_records, rungs, unreachable)}
    return [{"rung_ms": rung, "reason": unfilled_sentence(states[rung]) if rung in states else
             f"no trained feasible search trial within {rung:g} ms"} for rung in empty]


def _write_card(path: Path, study_name: str, member: dict[str, Any], recipe: FinalRecipe, validation: int) -> None:
    """What the shipped file is, inside it (``.tflite`` metadata ``archsearch``) and beside it (``<file>.json``)."""
    from archsearch.export_card import card_path, embed_in_tflite

    card = {"kind": "family member", "study": study_name, "rung_ms": member["rung_ms"], "trial": member["trial"],
            "input_size": member["input_size"], "latency_ms": member["latency_ms"],
            "accuracy": member["shipped_accuracy"], "seed": member["shipped_seed"],
            "accuracy_over_seeds": {"mean": member["accuracy_mean"], "std": member["accuracy_std"],
                                    "seeds": list(recipe.seeds)},
            "validation_images": validation, "measured_with": "LiteRT interpreter, this .tflite",
            "protocol": recipe.summary(validation),
            "note": (f"Trained at its deployment input ({member['input_size']}x{member['input_size']}) with the "
                     "final recipe: the accuracy is this file's own on the validation set.")}
    with written_atomically(path, FamilyError) as temporary:
        temporary.write_bytes(embed_in_tflite(path.read_bytes(), card))
    with written_atomically(card_path(path), FamilyError) as temporary:
        temporary.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def _copy(source: Path, target: Path) -> None:
    with written_atomically(target, FamilyError) as temporary:
        shutil.copyfile(source, temporary)


__all__ = ["FamilyError", "build_family", "default_folder", "rung_label"]
