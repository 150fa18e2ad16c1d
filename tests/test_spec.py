"""The schema: validation with field paths, scaling rules, I/O round trips and the hash."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml
from pydantic import ValidationError

import archsearch
from archsearch.errors import SpecError
from archsearch.spec import (
    BLOCK_CLASSES,
    NetworkSpec,
    canonical_json,
    load_spec,
    make_divisible,
    parse_spec,
    resolve,
    spec_hash,
    spec_to_yaml,
)

TINY = {
    "name": "tiny",
    "input": {"size": 32},
    "stem": {"channels": 16, "activation": "hswish"},
    "stages": [
        {"blocks": [{"type": "dsconv", "channels": 16}]},
        {"blocks": [{"type": "mbconv", "channels": 24, "stride": 2, "repeats": 2, "se_ratio": 0.25}]},
        {"blocks": [{"type": "shuffle", "channels": 32, "stride": 2, "repeats": 2}]},
        {"blocks": [{"type": "conv", "channels": 48, "kernel": 1}]},
    ],
    "head": {"conv": {"channels": 64}, "dropout": 0.1},
    "classes": 10,
}


def tiny(**edits) -> dict:
    data = copy.deepcopy(TINY)
    for dotted, value in edits.items():
        target = data
        keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return data


BAD = [
    ("unknown block type", {"stages.1.blocks.0.type": "resnet"}, "stages[1].blocks[0]", "resnet"),
    ("unknown activation", {"stages.1.blocks.0.activation": "tanh"}, "stages[1].blocks[0].activation", "relu"),
    ("even kernel", {"stages.1.blocks.0.kernel": 4}, "stages[1].blocks[0].kernel", "must be odd"),
    ("stride 3", {"stages.0.blocks.0.stride": 3}, "stages[0].blocks[0].stride", "1 or 2"),
    ("zero channels", {"stages.3.blocks.0.channels": 0}, "stages[3].blocks[0].channels", "greater than 0"),
    ("negative channels", {"stem.channels": -8}, "stem.channels", "greater than 0"),
    ("SE ratio 1", {"stages.1.blocks.0.se_ratio": 1.0}, "stages[1].blocks[0].se_ratio", "less than 1"),
    ("SE ratio negative", {"stages.1.blocks.0.se_ratio": -0.1}, "stages[1].blocks[0].se_ratio", "greater than or equal to 0"),
    ("unknown key", {"stages.1.blocks.0.kernal": 3}, "stages[1].blocks[0].kernal", "Extra inputs"),
    ("collapse", {"input.size": 4}, "stages[2].blocks[0].stride", "collapses below 1x1 at input size 4"),
    ("odd shuffle", {"divisor": 1, "stages.2.blocks.0.channels": 33}, "stages[2].blocks[0]", "even output width"),
    ("no stages", {"stages": []}, "stages", "at least 1"),
]


@pytest.mark.parametrize(("case", "edits", "path", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_specs_name_the_field_and_the_problem(case, edits, path, fragment):
    with pytest.raises(SpecError) as caught:
        parse_spec(tiny(**edits))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(path) or f" {path}" in message or message.startswith(f"{path}:"), message
    assert fragment in message, message
    # The plain pydantic route raises a ValidationError for the same input.
    with pytest.raises(ValidationError):
        NetworkSpec.model_validate(tiny(**edits))


def test_valid_tiny_spec_resolves_with_strides_on_first_repeats_only():
    spec = parse_spec(TINY)
    net = resolve(spec)
    assert [b.block.stride for b in net.blocks] == [1, 2, 1, 2, 1, 1]
    assert [b.out_size for b in net.blocks] == [16, 8, 8, 4, 4, 4]
    assert [b.name for b in net.blocks][:3] == ["stage1_block1a", "stage2_block1a", "stage2_block1b"]
    assert net.blocks[1].widths == {"expanded": 96, "se": 24}


@pytest.mark.parametrize("value", [3.2, 5.6, 11.2, 16, 18, 22.4, 33.6, 100, 183.99999999999997, 1280 * 1.3])
@pytest.mark.parametrize("divisor", [4, 8])
def test_make_divisible_matches_keras(value, divisor):
    from keras.src.applications.mobilenet_v3 import _depth

    assert make_divisible(value, divisor) == _depth(value, divisor)


def test_width_and_depth_multipliers():
    base = archsearch.load_reference("efficientnet_b0")
    scaled = archsearch.load_reference("efficientnet_b0", width_multiplier=1.2, depth_multiplier=1.4)
    assert len(resolve(base).blocks) == 16
    assert len(resolve(scaled).blocks) == 26  # ceil(1.4 * r) per stage, as Keras' round_repeats
    assert resolve(scaled).stem.channels == 40  # round_filters(32) at width 1.2
    v3 = resolve(archsearch.load_reference("mobilenet_v3_large", width_multiplier=0.75))
    assert v3.stem.channels == 16  # MobileNetV3 does not scale its stem
    assert v3.head.hidden[0].channels == 1280  # nor its last dense layer below width 1
    assert resolve(archsearch.load_reference("mobilenet_v3_large", width_multiplier=1.25)).head.hidden[0].channels == 1600


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b2", "shufflenet_v2_x1_0"])
def test_dump_and_load_round_trip(tmp_path, name, suffix):
    spec = archsearch.load_reference(name)
    path = archsearch.dump_spec(spec, tmp_path / f"spec{suffix}")
    loaded = archsearch.load_spec(path)
    assert loaded == spec
    assert spec_hash(loaded) == spec_hash(spec)


def test_hash_ignores_the_label_and_spelled_out_defaults_but_not_the_network():
    spec = parse_spec(TINY)
    assert spec_hash(parse_spec(tiny(name="other"))) == spec_hash(spec)
    assert spec_hash(parse_spec(tiny(**{"stages.0.blocks.0.repeats": 1, "classes": 10}))) == spec_hash(spec)
    assert spec_hash(parse_spec(tiny(**{"stages.0.blocks.0.kernel": 5}))) != spec_hash(spec)
    assert spec_hash(parse_spec(tiny(width_multiplier=0.75))) != spec_hash(spec)
    assert json.loads(canonical_json(spec))["classes"] == 10


def test_hash_is_the_same_in_a_fresh_process():
    """Same spec, same hash across processes (no dict-order or float-repr drift)."""
    code = ("import archsearch; print(archsearch.spec_hash(archsearch.load_reference('efficientnet_b3')),"
            " archsearch.spec_hash(archsearch.load_reference('mobilenet_v3_small')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [spec_hash(archsearch.load_reference("efficientnet_b3")),
                   spec_hash(archsearch.load_reference("mobilenet_v3_small"))]


def test_yaml_dump_is_readable_and_complete():
    text = spec_to_yaml(parse_spec(TINY))
    data = yaml.safe_load(text)
    assert data["stages"][1]["blocks"][0]["type"] == "mbconv"
    assert data["width_multiplier"] == 1.0


def test_malformed_and_missing_files(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nstages: [\n  - {type: conv\n")
    with pytest.raises(SpecError, match=r"broken.yaml: not valid YAML \(line \d+, column \d+\)"):
        load_spec(broken)
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(scalar)


def test_every_block_type_has_a_cost_function():
    from archsearch.cost import COST_FUNCTIONS

    assert set(COST_FUNCTIONS) == set(BLOCK_CLASSES)


def test_importing_archsearch_and_costing_does_not_import_tensorflow():
    code = ("import sys, archsearch; archsearch.count_macs(archsearch.load_reference('efficientnet_b7'));"
            " print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_readme_example_is_valid_and_its_figures_are_true():
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", readme, re.S).group(1))
    spec = parse_spec(example)
    params, macs = archsearch.count_params(spec), archsearch.count_macs(spec)
    assert f"ok: {spec.name} (…): {params:,} params, {macs / 1e6:,.1f}M MACs at 64x64" in readme
