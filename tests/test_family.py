"""The budget ladder and the family: rungs filled or reported, picks, final training, shipped files, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from conftest import TINY_SPACE, write_tiny_inputs

from archsearch.family import FinalRecipe, Trained, compare, pick_members, reference_verdict
from archsearch.study import StudyConfig, load_study_config, parse_budget_ms, study_report
from archsearch.study.ladder import ladder_state, mac_power_law, rungs
from archsearch.study.record import CONFIG_ATTR, FAMILY_ATTR, records

# ----- the ladder as data --------------------------------------------------------------------------


def test_budget_ladder_parsing_and_config():
    assert parse_budget_ms("2, 5,10,20") == [2.0, 5.0, 10.0, 20.0]
    assert parse_budget_ms("20") == 20.0
    settings = load_study_config(None, budget_ms=[10.0, 2.0, 5.0])
    assert settings.budget_ms == 10.0 and settings.ladder_ms == (2.0, 5.0, 10.0)
    assert settings.rungs_ms == (2.0, 5.0, 10.0)
    assert StudyConfig(budget_ms=20).rungs_ms == (20.0,) and StudyConfig(budget_ms=20).ladder_ms is None
    assert StudyConfig(budget_ms=[20]).ladder_ms is None  # one rung is a plain budget
    for text in ("2,x", "2,2", "0,5", "5,-1", "nan"):
        with pytest.raises(Exception, match="--budget-ms"):
            parse_budget_ms(text)


def test_rungs_and_bands():
    ladder = rungs([5.0, 2.0, 10.0])
    assert [(r.floor_ms, r.budget_ms) for r in ladder] == [(0.0, 2.0), (2.0, 5.0), (5.0, 10.0)]
    assert ladder[1].holds(5.0) and not ladder[1].holds(2.0) and ladder[0].holds(2.0)
    assert 2.0 < ladder[1].aim_ms <= 5.0


def test_mac_power_law_fits_what_was_measured():
    from archsearch.cost import count_macs
    from archsearch.references import load_reference

    small, large = (load_reference(n, classes=10) for n in ("mobilenet_v3_small", "mobilenet_v3_large"))

    estimate = mac_power_law([(count_macs(small), 1.5), (count_macs(large), 5.5)])
    assert estimate is not None
    assert estimate(small) == pytest.approx(1.5, rel=1e-6) and estimate(large) == pytest.approx(5.5, rel=1e-6)
    assert mac_power_law([]) is None


# ----- picks and verdicts ----------------------------------------------------------------------------


def _trial(spec: dict, accuracy: float, latency: float, macs: int, budget: float,
           **attrs: object) -> optuna.trial.FrozenTrial:
    user_attrs = {"spec": spec, "spec_hash": attrs.pop("spec_hash"), "spec_name": "n", "macs": macs,
                  "params": 1000, "input_size": 64, "measured_latency_ms": latency, "trained": True,
                  "status": "complete", **attrs}
    return optuna.trial.create_trial(values=[accuracy, latency], constraints={"latency_budget": latency - budget},
                                     user_attrs=user_attrs)


def test_picks_the_best_feasible_per_rung_ties_to_fewer_macs():
    study = optuna.create_study(directions=["maximize", "minimize"])
    spec = {"name": "x"}
    rows = [  # (hash, accuracy, latency, macs, extra)
        ("a", 0.80, 1.5, 100, {}),
        ("b", 0.85, 1.9, 300, {}),            # best under 2
        ("c", 0.85, 1.8, 200, {}),            # same accuracy, fewer MACs: wins rung 2
        ("d", 0.95, 4.0, 900, {"reference": "mobilenet_v3_small"}),   # references are not members
        ("e", 0.99, 4.5, 900, {"duplicate_of": 1}),                   # a reuse of another trial
        ("f", 0.97, 4.8, 800, {"trained": False, "status": "rejected_measured"}),
        ("g", 0.90, 4.9, 700, {}),            # best under 5
        ("h", 0.99, 12.0, 900, {}),           # over the top budget: infeasible
    ]
    for digest, accuracy, latency, macs, extra in rows:
        study.add_trial(_trial(spec, accuracy, latency, macs, 10.0, spec_hash=digest, **extra))
    picks, empty = pick_members(records(study), [0.5, 2.0, 5.0, 10.0])
    assert empty == [0.5]
    assert [(p.rung_ms, p.spec_hash) for p in picks] == [(2.0, "c"), (5.0, "g"), (10.0, "g")]
    assert picks[2].same_as_rung_ms == 5.0 and picks[1].same_as_rung_ms is None
    state = ladder_state(records(study), [0.5, 2.0, 5.0, 10.0])
    assert [s.filled for s in state] == [False, True, True, False]  # nothing trained between 5 and 10 ms


def test_verdicts_need_more_than_the_seed_spread_and_one_image():
    member = Trained("rung 5ms", 4.0, (0.90, 0.92))
    clearly_worse = Trained("ref", 5.0, (0.80, 0.81))
    close = Trained("ref", 5.0, (0.905, 0.925))
    verdict = compare(member, clearly_worse, 1080)
    assert verdict.outcome == "beats" and verdict.beyond_seed_spread and "beats ref" in verdict.sentence
    near = compare(member, close, 1080)
    assert near.outcome == "matches" and not near.beyond_seed_spread
    assert compare(clearly_worse, member, 1080).outcome == "loses"
    single = compare(Trained("m", 1.0, (0.9,)), Trained("r", 2.0, (0.8,)), 1080)
    assert "seed spread unknown" in single.sentence
    slower = reference_verdict(Trained("fast ref", 1.0, (0.7, 0.7)), [(5.0, member)], 1080)
    assert slower["outcome"] == "unmatched" and "no family member is as fast" in slower["sentence"]
    assert "the fastest, rung 5 ms (4.00 ms), scores 0.910 ± 0.014 over 2 seeds against 0.700" in slower["sentence"]
    assert slower["sentence"].endswith("+21.0 points")


def test_final_recipe_key_changes_with_settings_not_seeds():
    base = FinalRecipe()
    assert base.key() == FinalRecipe(seeds=(3, 4)).key()
    assert base.key() != FinalRecipe(epochs=9).key() != FinalRecipe(batch_size=32).key()
    with pytest.raises(ValueError):
        FinalRecipe(seeds=())
    assert "seeds 0, 1" in base.summary(1080) and "deployment input" in base.summary()


# ----- a real ladder study and its family -----------------------------------------------------------------

NO_REFERENCES = {**TINY_SPACE, "name": "tinyladder", "references": []}


@pytest.fixture(scope="module")
def ladder_dir(tmp_path_factory) -> Path:
    root = write_tiny_inputs(tmp_path_factory.mktemp("ladder"))
    (root / "plain_space.yaml").write_text(yaml.safe_dump(NO_REFERENCES))
    return root


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "ARCHSEARCH_CACHE_DIR": str(root / "cache")}


def _extremes(root: Path, space_file: str) -> tuple[float, float]:
    """Measured latency of the tiny space's smallest and largest networks on this host."""
    from archsearch.latency import measure_latency
    from archsearch.space import load_space

    space = load_space(str(root / space_file)).with_overrides(classes=10)
    smallest = space.spec_at({p.name: min(p.choices) for p in space.parameters})
    largest = space.spec_at({p.name: max(p.choices) for p in space.parameters})
    storage = f"sqlite:///{root / 'studies' / 'ladder.db'}"
    return measure_latency(smallest, storage=storage).median_ms, measure_latency(largest, storage=storage).median_ms


@pytest.fixture(scope="module")
def ladder_study(ladder_dir):
    """A real study over a three-rung ladder whose lowest rung no network of the space can reach."""
    (ladder_dir / "studies").mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ladder_dir)
        patch.setenv("ARCHSEARCH_CACHE_DIR", str(ladder_dir / "cache"))
        fastest, slowest = _extremes(ladder_dir, "plain_space.yaml")
        assert slowest > 1.5 * fastest, (fastest, slowest)
        ladder = [round(fastest * 0.2, 4), round((fastest * slowest) ** 0.5, 4), round(slowest * 1.5, 4)]
        budgets = ",".join(map(str, ladder))
        result = subprocess.run(
            [sys.executable, "-m", "archsearch", "run", "--budget-ms", budgets, "--study", "ladder",
             "--space", "plain_space.yaml", "--dataset", "tiny.npz", "--trials", "6", "--epochs", "1", "--seed", "2"],
            capture_output=True, text=True, cwd=ladder_dir, env=_env(ladder_dir), timeout=900)
    assert result.returncode == 0, result.stderr
    return ladder_dir, ladder, result.stdout


@pytest.mark.slow
def test_a_ladder_run_fills_every_reachable_rung_and_names_the_one_it_could_not(ladder_study):
    root, ladder, output = ladder_study
    study = optuna.load_study(study_name="ladder", storage=f"sqlite:///{root / 'studies' / 'ladder.db'}")
    assert study.user_attrs[CONFIG_ATTR]["ladder_ms"] == sorted(ladder)
    state = ladder_state(records(study), ladder)
    assert not state[0].filled and state[1].filled and state[2].filled, [s.as_dict() for s in state]
    for rung in state[1:]:  # each filled rung holds a trained, feasible trial measured inside its band
        for number in rung.filled_by:
            record = next(r for r in records(study) if r.number == number)
            assert record.trained and rung.rung.floor_ms < record.measured_latency_ms <= rung.rung.budget_ms
    assert f"rung {ladder[0]:g} ms not filled" in output, output
    report = study_report(study, f"sqlite:///{root / 'studies' / 'ladder.db'}")
    assert [r["filled"] for r in report["ladder"]] == [False, True, True]
    assert report["ladder"][0]["given_up"] or report["ladder"][0]["aimed"] == []


def _tflite_accuracy(path: Path, root: Path, size: int) -> float:
    from archsearch.data import load_dataset
    from archsearch.export_card import file_accuracy

    data = load_dataset(str(root / "tiny.npz"), size=size)
    accuracy, _ = file_accuracy(path, "tflite", data.x_val, data.y_val)
    assert accuracy is not None
    return accuracy


def _stopped_after_first_training(command: list[str], root: Path, stop: signal.Signals) -> list[str]:
    """Run a family command and send it ``stop`` once its first training is done; the lines it printed."""
    process = subprocess.Popen(command, cwd=root, env=_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "done in" in line:
            process.send_signal(stop)
            break
    process.wait(timeout=60)
    return lines


@pytest.mark.slow
def test_family_trains_ships_and_resumes(ladder_study):
    root, ladder, _ = ladder_study
    family_dir = root / "fam"
    command = [sys.executable, "-m", "archsearch", "family", "ladder", "-o", str(family_dir), "--epochs", "1",
               "--seeds", "2"]
    # Interrupted after its first finished training...
    lines = _stopped_after_first_training(command, root, signal.SIGKILL)
    assert any("final trainings to run (0 reused" in line for line in lines), lines
    planned = int(next(line for line in lines if "final trainings to run" in line).split()[0])
    # ...and started again: it reuses the finished training and does the rest.
    result = subprocess.run(command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{planned - 1} final trainings to run (1 reused" in result.stdout, result.stdout

    family = json.loads((family_dir / "family.json").read_text())
    assert family["recipe"]["seeds"] == [0, 1] and family["recipe"]["epochs"] == 1
    assert family["recipe"]["resolution"] == "deployment input"
    assert [u["rung_ms"] for u in family["unfilled"]] == [sorted(ladder)[0]]
    assert {m["rung_ms"] for m in family["members"]} == set(sorted(ladder)[1:])
    for member in family["members"]:
        tflite = Path(member["files"]["tflite"])
        assert tflite.is_file() and Path(member["files"]["keras"]).is_file() and Path(member["files"]["spec"]).is_file()
        # The shipped file, run in LiteRT on the validation set at its own input, gives the reported accuracy.
        assert _tflite_accuracy(tflite, root, member["input_size"]) == pytest.approx(member["shipped_accuracy"],
                                                                                     abs=1 / 100 + 1e-9)
        assert member["accuracy_mean"] == pytest.approx(np.mean(member["accuracies"]))
        assert len(member["accuracies"]) == 2 and member["latency_ms"] > 0
        from archsearch.export_card import read_tflite_card

        card = read_tflite_card(tflite)
        shipped_for = member["same_as_rung_ms"] or member["rung_ms"]  # a network picked twice ships once
        assert card is not None and card["rung_ms"] == shipped_for and "deployment input" in card["note"]
        # The spec YAML is the searched network (same hash as the trial).
        spec = yaml.safe_load(Path(member["files"]["spec"]).read_text())
        assert spec["input"]["size"] == member["input_size"]
    study = optuna.load_study(study_name="ladder", storage=f"sqlite:///{root / 'studies' / 'ladder.db'}")
    assert study.user_attrs[FAMILY_ATTR]["members"] == family["members"]
    show = subprocess.run([sys.executable, "-m", "archsearch", "show-study", "ladder"], cwd=root, env=_env(root),
                          capture_output=True, text=True)
    assert "family of ladder" in show.stdout and "measured on the exported .tflite" in show.stdout

    # A third run with nothing new trains nothing.
    again = subprocess.run(command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "final trainings are done already" in again.stdout, again.stdout


@pytest.mark.slow
def test_family_retrains_only_a_changed_pick(ladder_study):
    """A later search finds a better network for one rung: only that rung's pick trains again."""
    root, ladder, _ = ladder_study
    storage = f"sqlite:///{root / 'studies' / 'ladder.db'}"
    from archsearch.family import build_family

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("ARCHSEARCH_CACHE_DIR", str(root / "cache"))
        first = build_family("ladder", storage, root / "fam2", epochs=1, seeds=(0,), say=lines.append)
        study = optuna.load_study(study_name="ladder", storage=storage)
        # Another trained search trial of the space, better by its proxy accuracy, inside the top rung only.
        picked = {m["spec_hash"] for m in first["members"]}
        other = next(r for r in records(study) if r.spec and r.spec_hash and r.spec_hash not in picked)
        latency = (sorted(ladder)[1] + sorted(ladder)[2]) / 2
        study.add_trial(optuna.trial.create_trial(
            values=[1.0, latency], constraints={"latency_budget": latency - max(ladder)},
            user_attrs={"spec": other.spec, "spec_hash": other.spec_hash, "spec_name": other.spec_name,
                        "macs": other.macs, "params": other.param_count, "input_size": other.input_size,
                        "measured_latency_ms": latency, "trained": True, "status": "complete"}))
        lines.clear()
        second = build_family("ladder", storage, root / "fam2", epochs=1, seeds=(0,), say=lines.append)
    assert any(line.startswith("1 final trainings to run") for line in lines), lines
    new_top = max(second["members"], key=lambda m: m["rung_ms"])
    assert new_top["spec_hash"] == other.spec_hash


def _spawned_workers() -> int:
    listed = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum("multiprocessing.spawn" in line for line in listed.splitlines())


@pytest.mark.slow
def test_family_trains_side_by_side(ladder_study):
    """--jobs 2: two worker processes train the runs, each stored as one run would be; a SIGTERM stops the
    workers too, and the restart reuses what finished."""
    root, ladder, _ = ladder_study
    family_dir = root / "fam3"
    command = [sys.executable, "-m", "archsearch", "family", "ladder", "-o", str(family_dir), "--epochs", "2",
               "--seeds", "3", "--jobs", "2"]
    workers_before = _spawned_workers()
    lines = _stopped_after_first_training(command, root, signal.SIGTERM)
    time.sleep(2)
    assert _spawned_workers() == workers_before, "a worker outlived its family"
    output = " ".join("".join(lines).split())
    planned = int(re.search(r"(\d+) final trainings to run, 2 at a time \(0 reused", output).group(1))

    result = subprocess.run(command, cwd=root, env=_env(root), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    output = " ".join(result.stdout.split())
    left = int(re.search(r"(\d+) final trainings to run, 2 at a time \((\d+) reused", output).group(1))
    assert 1 <= planned - left <= 2  # the finished run (and one that finished as the signal came) reused
    assert output.count("done in") == left and output.count("epoch 1/2") == left, output
    family = json.loads((family_dir / "family.json").read_text())
    assert len(list((family_dir / ".runs").glob("*/result.json"))) == planned
    assert {m["rung_ms"] for m in family["members"]} == set(sorted(ladder)[1:])
    for member in family["members"]:
        tflite = Path(member["files"]["tflite"])
        assert _tflite_accuracy(tflite, root, member["input_size"]) == pytest.approx(member["shipped_accuracy"],
                                                                                     abs=1 / 100 + 1e-9)
        assert len(member["accuracies"]) == 3 and 0 < member["accuracy_mean"] <= 1


def test_threads_are_shared_out_between_jobs():
    from archsearch.family.parallel import threads_per_job

    assert [threads_per_job(jobs, cores=8) for jobs in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_family_bad_input(tmp_path):
    for args, message in ((["nosuchstudy"], "nosuchstudy"), (["x", "--epochs", "0"], "--epochs"),
                          (["x", "--seeds", "0"], "--seeds")):
        result = subprocess.run([sys.executable, "-m", "archsearch", "family", *args], capture_output=True,
                                text=True, cwd=tmp_path, env=_env(tmp_path))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_the_runner_measures_draws_and_aims_the_next_trial_at_an_empty_rung(ladder_dir, monkeypatch):
    """With measured trials to estimate from, the planning step measures the draws nearest the lowest empty
    rung's aim until one lands in an empty rung, enqueues it (``aimed_at_ms``) with its measurement in the
    latency cache, and records a rung no draw can reach, with the figures."""
    from archsearch.cost import count_macs
    from archsearch.latency import measure_latency
    from archsearch.space import load_space
    from archsearch.study.ladder import rungs
    from archsearch.study.record import LADDER_ATTR
    from archsearch.study.run import StudyRunner

    monkeypatch.chdir(ladder_dir)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(ladder_dir / "cache"))
    storage = f"sqlite:///{ladder_dir / 'aim.db'}"
    space = load_space(str(ladder_dir / "plain_space.yaml")).with_overrides(classes=10)
    smallest = space.spec_at({p.name: min(p.choices) for p in space.parameters})
    largest = space.spec_at({p.name: max(p.choices) for p in space.parameters})
    fastest, slowest = (measure_latency(spec, storage=storage).median_ms for spec in (smallest, largest))
    ladder = [round(fastest * 0.2, 4), round((fastest * slowest) ** 0.5, 4), round(slowest * 2, 4)]
    settings = StudyConfig(name="aim", space=str(ladder_dir / "plain_space.yaml"), dataset=str(ladder_dir / "tiny.npz"),
                           budget_ms=ladder, trials=5, epochs=1, references=False, storage=storage)
    runner = StudyRunner(settings)
    try:
        # The two extremes, measured and untrained, give the estimate its scale and fill nothing.
        for spec, latency in ((smallest, fastest), (largest, slowest)):
            runner.study.add_trial(optuna.trial.create_trial(
                values=[0.0, latency], constraints={"latency_budget": latency - ladder[-1]},
                user_attrs={"macs": count_macs(spec), "measured_latency_ms": latency, "trained": False,
                            "spec_hash": f"h{latency}", "spec": {}, "status": "rejected_measured"}))
        runner._plan_next_search_trial(None)
        waiting = runner.study.get_trials(states=(optuna.trial.TrialState.WAITING,))
        stored = dict(runner.study.user_attrs.get(LADDER_ATTR, {}))
        measured_draws = list(runner.ladder.measured) if runner.ladder else []
    finally:
        runner.close()
    assert f"{ladder[0]:g}" in stored and "none of 400 random networks" in stored[f"{ladder[0]:g}"]
    assert len(waiting) == 1 and waiting[0].user_attrs["aimed_at_ms"] in ladder[1:]
    params = waiting[0].system_attrs["fixed_params"]
    assert {p.name for p in space.parameters} == set(params)
    target = next(r for r in rungs(ladder) if r.budget_ms == waiting[0].user_attrs["aimed_at_ms"])
    cached = measure_latency(space.spec_at(params), storage=storage)
    assert cached.cached and target.holds(cached.median_ms), (cached.median_ms, target)
    assert measured_draws and measured_draws[-1][1] == cached.median_ms


def test_the_ladder_measures_until_a_draw_lands_and_gives_up_with_the_figures():
    """An estimate that is 3x optimistic for wide networks: the ladder measures the draws the estimate
    chose until one lands, and gives a rung up after MAX_AIMED_TRIALS rounds of misses, naming them."""
    from archsearch.cost import count_macs
    from archsearch.space import load_space
    from archsearch.study.ladder import AIM_MEASUREMENTS, MAX_AIMED_TRIALS, Ladder

    space = load_space("mobilenetv3").with_overrides(classes=10)
    estimate = lambda spec: count_macs(spec) / 50e6  # noqa: E731 - 1 ms per 50 MMACs
    # The "device": networks at inputs above 192 are three times slower than their MACs say.
    device = lambda spec: estimate(spec) * (3.0 if spec.input.size > 192 else 1.0)  # noqa: E731
    calls: list[float] = []

    def measure(spec):
        calls.append(device(spec))
        return calls[-1]

    ladder = Ladder(space, [2.0, 4.0, 8.0], seed=0)
    aim = ladder.next_aim([], estimate, measure)
    assert aim is not None and aim.measured_ms is not None and aim.rung.holds(aim.measured_ms)
    assert aim.measured_ms == calls[-1] and len(calls) <= AIM_MEASUREMENTS  # measured until one landed
    assert aim.measured_ms == pytest.approx(device(space.spec_at(aim.params)))
    assert ladder.measured[-1][1] == aim.measured_ms and len(ladder.measured) == len(calls)

    never = Ladder(space, [2.0, 8.0], seed=0)
    for _ in range(MAX_AIMED_TRIALS):
        assert never.next_aim([], estimate, lambda spec: 100.0) is None  # nothing ever lands
    assert "2" in never.unreachable and "8" in never.unreachable
    assert f"{MAX_AIMED_TRIALS * AIM_MEASUREMENTS} networks estimated nearest to it were measured, none inside it " \
           "(100.00-100.00 ms)" in never.unreachable["2"]
