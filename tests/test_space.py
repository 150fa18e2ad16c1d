"""Search spaces: built-ins by name, sampling validity, Optuna suggestion, bad space files."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import optuna
import pytest
from test_cli import run

import archsearch
from archsearch.space import SearchSpace, SpaceError, load_space, sample_specs, space_names
from archsearch.spec import spec_hash

SPACE = {
    "name": "tiny",
    "family": "mobilenet_v3",
    "references": ["mobilenet_v3_small"],
    "base": {
        "input": {"size": 32},
        "stem": {"channels": 8},
        "stages": [
            {"blocks": [{"type": "mbconv", "channels": 8, "expansion": 1}]},
            {"blocks": [{"type": "mbconv", "channels": 16, "stride": 2}]},
            {"blocks": [{"type": "mbconv", "channels": 24, "stride": 2}]},
        ],
        "classes": 10,
    },
    "choices": {
        "input.size": [32, 48],
        "stages[1:].blocks[0].kernel": [3, 5],
        "stages[1:].blocks[0].expansion": [3.0, 6.0],
        "stages[1:].blocks[0].se_ratio": [0.0, 0.25],
    },
}


def test_builtin_spaces_load_by_name_with_their_families():
    assert space_names() == ["efficientnet", "mobilenetv3", "shufflenetv2"]
    families = {name: load_space(name).family for name in space_names()}
    assert families == {"efficientnet": "efficientnet", "mobilenetv3": "mobilenet_v3", "shufflenetv2": "shufflenet_v2"}
    v3 = load_space("mobilenetv3")
    names = {p.name for p in v3.parameters}
    assert {"input.size", "width_multiplier", "stages[1].blocks[0].kernel", "stages[5].blocks[0].repeats"} <= names
    assert "stages[0].blocks[0].kernel" not in names  # the slice [1:] leaves the first stage fixed
    assert v3.size == 7 * 6 * (3 * 3 * 2 * 2 * 4) ** 5


def test_space_size_counts_points():
    space = SearchSpace.model_validate(SPACE)
    assert len(space.parameters) == 7 and space.size == 2 ** 7
    hashes = {spec_hash(space.spec_at(dict(zip([p.name for p in space.parameters], bits))))
              for bits in np.ndindex(*(2,) * 7) for bits in [[space.parameters[i].choices[b] for i, b in enumerate(bits)]]}
    assert len(hashes) == space.size


@pytest.mark.parametrize("name", space_names())
def test_every_sampled_spec_compiles(name):
    from archsearch.compile import compile_model

    space = load_space(name).with_overrides(classes=10)
    for spec in sample_specs(space, 4, seed=3):
        assert spec.name.startswith(f"{name}-")
        small = spec.model_copy(update={"input": spec.input.model_copy(update={"size": 64})})
        model = compile_model(archsearch.parse_spec(small.model_dump()))
        assert model.count_params() == archsearch.count_params(small)
        assert model.output.shape[-1] == 10


def test_sampling_is_seeded_and_distinct():
    space = load_space("mobilenetv3")
    first = [spec_hash(s) for s in sample_specs(space, 10, seed=7)]
    assert first == [spec_hash(s) for s in sample_specs(space, 10, seed=7)]
    assert len(set(first)) == 10
    assert spec_hash(space.sample(np.random.default_rng(1))) == spec_hash(space.sample(np.random.default_rng(1)))
    assert spec_hash(space.sample(random.Random(1))) == spec_hash(space.sample(random.Random(1)))


def test_suggest_from_an_optuna_trial():
    space = SearchSpace.model_validate(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    spec = space.suggest(trial)
    assert set(trial.params) == {p.name for p in space.parameters}
    assert spec.input.size == trial.params["input.size"]
    assert spec.stages[2].blocks[0].kernel == trial.params["stages[2].blocks[0].kernel"]


def _space_with(**changes):
    data = json.loads(json.dumps(SPACE))
    data.update(changes)
    return data


BAD_SPACES = [
    ({"choices": {**SPACE["choices"], "stages[1:].blocks[0].kernel": [3, 4]}},
     "choices['stages[1:].blocks[0].kernel'] value 4: stages[1].blocks[0].kernel: must be odd"),
    ({"choices": {**SPACE["choices"], "width_multiplier": []}}, "choices.width_multiplier: Tuple should have at least 1 item"),
    ({"choices": {"stages[7].blocks[0].kernel": [3]}}, "stages has 3 items, no [7]"),
    ({"choices": {"stages[*].blocks[0].kernal": [3]}}, "kernal: Extra inputs are not permitted"),
    ({"choices": {"input.size": [32, 2]}}, "collapses below 1x1"),
    ({"base": "mobilenet_v9"}, "base: unknown reference 'mobilenet_v9'"),
    ({"references": ["resnet50"]}, "references: unknown reference 'resnet50'"),
    ({"choices": {"stages[1].blocks[0].kernel": [3], "stages[*].blocks[0].kernel": [5]}}, "already chosen"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_SPACES, ids=[m[:30] for _, m in BAD_SPACES])
def test_bad_space_files_give_one_line(tmp_path, changes, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(_space_with(**changes)))
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_unknown_space_name():
    with pytest.raises(archsearch.UnknownNameError, match="unknown search space"):
        load_space("resnet")


def test_cli_spaces_json():
    result = run("spaces", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["mobilenetv3"]["size"] == load_space("mobilenetv3").size
    assert rows["shufflenetv2"]["family"] == "shufflenet_v2"


def test_builtins_ship_inside_a_plain_install(tmp_path):
    """A non-editable wheel carries the spaces and references, so names resolve after `pip install .`."""
    import zipfile
    from pathlib import Path

    root = Path(__file__).parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("archsearch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for space in space_names():
        assert f"archsearch/search_spaces/{space}.yaml" in names
    for reference in archsearch.reference_names():
        assert f"archsearch/references/data/{reference}.yaml" in names
