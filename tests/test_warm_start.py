"""Warm start: the references' configurations projected onto a space, and enqueued as the first search trials."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import TINY_SPACE, write_tiny_inputs
from optuna.trial import TrialState

from archsearch.references import load_reference
from archsearch.space import SearchSpace, load_space
from archsearch.spec import spec_hash
from archsearch.study import StudyConfig, run_study, search_trials
from archsearch.study.warm_start import WarmPoint, project_reference, warm_start_points


def in_choices(space: SearchSpace, params: dict[str, Any]) -> bool:
    """Every parameter of ``space`` is set, to one of its choices (a bool never standing for a number)."""
    return params.keys() == {p.name for p in space.parameters} and all(
        any(type(c) is type(params[p.name]) and c == params[p.name] for c in p.choices) for p in space.parameters)


def small_space(choices: dict[str, list[Any]], **fields: Any) -> SearchSpace:
    """A space over MobileNetV3-Small itself (10 classes, as the runner gives a space the dataset's)."""
    data = {"name": "oversmall", "family": "mobilenet_v3", "references": ["mobilenet_v3_small"],
            "base": "mobilenet_v3_small", "overrides": {"classes": 10}, "choices": choices}
    return SearchSpace.model_validate({**data, **fields})


def test_mobilenetv3_references_project_to_points_of_the_space():
    space = load_space("mobilenetv3").with_overrides(classes=10)  # as StudyRunner loads it
    points = {p.reference: p for p in warm_start_points(space, classes=10)}
    assert list(points) == ["mobilenet_v3_small", "mobilenet_v3_large"]
    for name, point in points.items():
        assert in_choices(space, point.params)
        same = spec_hash(space.spec_at(point.params)) == spec_hash(load_reference(name, classes=10))
        assert point.exact is same
        assert ("exactly a point of the space" in point.describe()) is same
        assert ("projected onto the space (differs in: " in point.describe()) is (not same)
    small, large = points["mobilenet_v3_small"], points["mobilenet_v3_large"]
    assert small.params["stages[1].blocks[0].expansion"] == 4.0  # 4.5 in the reference: the nearest choice
    assert small.params["stages[5].blocks[0].kernel"] == 5  # Small has 4 stages: the space's base value
    assert large.params["input.size"] == 224 and large.params["width_multiplier"] == 1.0
    # Large's third stage is four distinct blocks where the space has one block with repeats: said, not hidden.
    assert not large.exact and "stages[3].blocks 4 items -> 1 item" in large.differences


def test_a_reference_inside_the_space_is_exactly_a_point():
    space = small_space({"input.size": [160, 224], "stages[2].blocks[1].kernel": [3, 5],
                         "stages[1].blocks[0].expansion": [4.5, 6.0], "stages[0].blocks[0].activation": ["relu",
                                                                                                       "hswish"]})
    (point,) = warm_start_points(space, classes=10)
    assert point.exact and point.differences == ()
    assert point.params == {"input.size": 224, "stages[2].blocks[1].kernel": 5, "stages[1].blocks[0].expansion": 4.5,
                            "stages[0].blocks[0].activation": "relu"}
    assert spec_hash(space.spec_at(point.params)) == spec_hash(load_reference("mobilenet_v3_small", classes=10))
    assert point.describe() == "mobilenet_v3_small's configuration, exactly a point of the space"


def test_a_value_the_choices_cannot_hold_is_projected_to_the_nearest_and_named():
    space = small_space({"stages[2].blocks[1].kernel": [3, 7], "input.size": [128, 192, 256]})
    (point,) = warm_start_points(space, classes=10)
    assert point.params == {"stages[2].blocks[1].kernel": 3, "input.size": 192}  # ties: the first listed
    assert not point.exact
    assert point.differences == ("input.size 224 -> 192", "stages[2].blocks[1].kernel 5 -> 3")
    assert point.describe() == ("mobilenet_v3_small projected onto the space (differs in: input.size 224 -> 192, "
                                "stages[2].blocks[1].kernel 5 -> 3)")


def test_the_dataset_classes_decide_whether_a_reference_is_exact():
    space = small_space({"input.size": [160, 224]}, overrides={})  # the reference's 1000 classes
    assert project_reference(space, "mobilenet_v3_small", classes=1000).exact
    ten = project_reference(space, "mobilenet_v3_small", classes=10)
    assert ten is not None and not ten.exact and ten.differences == ("classes 10 -> 1000",)


def test_a_path_the_reference_lacks_takes_the_base_value_or_the_first_choice():
    base = {**TINY_SPACE["base"], "stages": [*TINY_SPACE["base"]["stages"], *TINY_SPACE["base"]["stages"][1:]]}
    space = SearchSpace.model_validate({  # five stages; MobileNetV3-Small has four
        **TINY_SPACE, "base": base, "overrides": {"classes": 10},
        "choices": {"stages[4].blocks[0].kernel": [5, 7], "stages[4].blocks[0].activation": ["hswish", "relu"]}})
    (point,) = warm_start_points(space, classes=10)
    assert point.params == {"stages[4].blocks[0].kernel": 5, "stages[4].blocks[0].activation": "relu"}
    assert not point.exact and "stages 4 items -> 5 items" in point.differences


def test_references_that_project_to_the_same_point_are_enqueued_once():
    space = small_space({"input.size": [224, 256]}, references=["mobilenet_v3_small", "mobilenet_v3_large"],
                        base="mobilenet_v3_small")
    points = warm_start_points(space, classes=10)
    assert [p.reference for p in points] == ["mobilenet_v3_small"]  # Large's projection is the same point


def test_describe_names_three_differences_and_counts_the_rest():
    point = WarmPoint("mobilenet_v3_large", {}, False, ("a 1 -> 2", "b 1 -> 2", "c 1 -> 2", "d 1 -> 2", "e 1 -> 2"))
    assert point.describe() == ("mobilenet_v3_large projected onto the space (differs in: a 1 -> 2, b 1 -> 2, "
                                "c 1 -> 2 and 2 more)")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """The tiny dataset and space, and a tiny space listing both MobileNetV3 references."""
    root = write_tiny_inputs(tmp_path_factory.mktemp("warm"))
    both = {**TINY_SPACE, "name": "tinyboth", "references": ["mobilenet_v3_small", "mobilenet_v3_large"],
            # Small's 16-channel block has squeeze-excite, Large's has none: they project to different points.
            "choices": {**TINY_SPACE["choices"], "stages[1:].blocks[0].activation": ["relu", "hswish"],
                        "stages[1:].blocks[0].se_ratio": [0.0, 0.25]}}
    (root / "both_space.yaml").write_text(yaml.safe_dump(both))
    return root


@pytest.fixture()
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ARCHSEARCH_CACHE_DIR", str(workdir / "cache"))
    return workdir


def config(workdir, name: str, **changes: Any) -> StudyConfig:
    settings = {"name": name, "space": str(workdir / "tiny_space.yaml"), "dataset": str(workdir / "tiny.npz"),
                "budget_ms": 1000.0, "trials": 2, "epochs": 1, "references": False, "seed": 1, "warm_start": True}
    return StudyConfig(**{**settings, **changes})


@pytest.mark.parametrize("room", [None, 1])
def test_the_runner_enqueues_the_projections_before_the_first_search_trial(in_workdir, room):
    from archsearch.study.run import StudyRunner

    said: list[str] = []
    runner = StudyRunner(config(in_workdir, f"plan{room}", space=str(in_workdir / "both_space.yaml")),
                         notify=said.append)
    try:
        runner._plan_next_search_trial(room)  # the planning step alone: nothing is trained
        waiting = runner.study.get_trials(states=(TrialState.WAITING,))
    finally:
        runner.close()
    expected = warm_start_points(runner.space, classes=10)[:room]
    assert len(expected) == (2 if room is None else 1)
    assert [t.user_attrs["warm_start"] for t in waiting] == [p.reference for p in expected]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [p.params for p in expected]  # how Optuna keeps them
    assert said == [f"warm start: {p.describe()}" for p in expected]


def test_a_warm_started_study_trains_the_projection_first(in_workdir):
    study = run_study(config(in_workdir, "warm"))
    first, second = search_trials(study)
    space = load_space(in_workdir / "tiny_space.yaml").with_overrides(classes=10)
    (point,) = warm_start_points(space, classes=10)
    assert first.user_attrs["warm_start"] == "mobilenet_v3_small" and first.params == point.params
    assert first.state == TrialState.COMPLETE and first.user_attrs["trained"] is True
    assert "warm_start" not in second.user_attrs  # then the sampler chooses


def test_stages_are_matched_by_channels_not_position():
    """MobileNetV3-Large keeps its 80- and 112-channel blocks in one stage; the space has one stage for each.
    Matched by channels, each of the space's stages gets Large's depth and kernel for those channels."""
    space = load_space("mobilenetv3").with_overrides(classes=10)
    large = next(p for p in warm_start_points(space, 10) if p.reference == "mobilenet_v3_large")
    assert [large.params[f"stages[{i}].blocks[0].repeats"] for i in range(1, 6)] == [2, 3, 4, 2, 3]
    assert [large.params[f"stages[{i}].blocks[0].kernel"] for i in range(1, 6)] == [3, 5, 3, 3, 5]
    assert [large.params[f"stages[{i}].blocks[0].se_ratio"] for i in range(1, 6)] == [0.0, 0.25, 0.0, 0.25, 0.25]
    assert large.params["input.size"] == 224 and large.params["width_multiplier"] == 1.0


def test_warm_start_is_the_default_and_a_resume_may_differ_from_how_the_study_began(in_workdir):
    """On by default (the benchmark said it helps). It only decides how a study begins, so a cold
    study resumed without the flag goes on (not refused), and gets no projections mid-way; a study
    recorded with ``warm_start`` by the version that compared it resumes too."""
    from archsearch.study.record import CONFIG_ATTR

    assert StudyConfig(budget_ms=20).warm_start is True
    cold = run_study(config(in_workdir, "began-cold", warm_start=False, trials=1))
    assert "warm_start" not in search_trials(cold)[0].user_attrs
    settings = config(in_workdir, "began-cold", trials=2).model_dump()
    del settings["warm_start"]  # the default, as `archsearch run` without the flag
    resumed = run_study(StudyConfig(**settings))
    assert len(search_trials(resumed)) == 2
    assert all("warm_start" not in t.user_attrs for t in search_trials(resumed))

    older = run_study(config(in_workdir, "recorded-warm-start", warm_start=False, trials=1))
    older.set_user_attr(CONFIG_ATTR, {**older.user_attrs[CONFIG_ATTR], "warm_start": False})
    assert len(search_trials(run_study(config(in_workdir, "recorded-warm-start", trials=2)))) == 2
