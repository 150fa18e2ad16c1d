"""Datasets: the embedded digits and digits-clutter, resizing, .npz files, image folders, Keras datasets, bad paths."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.data import ClutterRecipe, DatasetError, _digits_clutter_arrays, _digits_split, load_dataset


def test_digits_are_real_and_split_fixed():
    digits = load_dataset("digits")
    assert (len(digits.x_train), len(digits.x_val), digits.classes, digits.image_size) == (1437, 360, 10, 32)
    assert digits.x_train.shape[-1] == 3 and digits.x_train.dtype == np.float32
    assert 0 <= digits.x_train.min() and digits.x_train.max() <= 255
    again = load_dataset("digits", size=16)
    assert again.image_size == 16 and np.array_equal(again.y_val, digits.y_val)


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.integers(0, 255, (20, 12, 12)), y_train=np.arange(20) % 4,
             x_val=rng.integers(0, 255, (8, 12, 12)), y_val=np.arange(8) % 4)
    data = load_dataset(str(path))
    assert data.classes == 4 and data.x_train.shape == (20, 12, 12, 3)
    assert load_dataset(str(path), size=24).image_size == 24
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 4, 4)))
    with pytest.raises(DatasetError, match="missing arrays y_train, x_val, y_val"):
        load_dataset(str(tmp_path / "partial.npz"))


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for label in ("cat", "dog", "owl"):
        (tmp_path / label).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    data = load_dataset(str(tmp_path), size=16)
    assert data.classes == 3 and len(data.x_train) + len(data.x_val) == 15
    assert sorted(set(data.y_val)) == [0, 1, 2] and data.image_size == 16


def test_bad_dataset_names_and_paths(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    (tmp_path / "only").mkdir()
    with pytest.raises(DatasetError, match="one subfolder per class"):
        load_dataset(str(tmp_path))


def test_keras_dataset_loads_or_says_it_cannot(tmp_path, monkeypatch):
    """Online, Keras downloads and caches mnist; offline and uncached, one clear error."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    try:
        data = load_dataset("mnist")
    except DatasetError as error:
        assert "dataset 'mnist' is not in Keras' cache and could not be downloaded" in str(error)
        assert "\n" not in str(error)
    else:
        assert data.classes == 10 and data.image_size == 28 and len(data.x_val) == 10000


# no geometry, clutter or noise: each image is its original, drawn alone (a cheap recipe to generate)
CLEAN = ClutterRecipe(canvas=32, height=(32.0, 32.0), shift=0.0, aspect=0.0, rotation=0.0, shear=0.0,
                      stroke=(0.3, 0.3), ink=(1.0, 1.0), background=(0.0, 0.0), gradient=0.0, fragments=0,
                      noise=(0.0, 0.0))


def test_digits_clutter_shapes_ranges_and_labels():
    data = load_dataset("digits-clutter")
    digits = load_dataset("digits")
    assert data.name == "digits-clutter" and data.classes == 10 and data.image_size == 64
    assert data.x_train.shape == (1437, 64, 64, 3) and data.x_val.shape == (1080, 64, 64, 3)
    assert data.x_train.dtype == np.float32 and data.x_val.dtype == np.float32
    assert 0 <= data.x_train.min() and data.x_train.max() <= 255 and data.x_val.max() > 200
    assert np.array_equal(data.x_train[..., 0], data.x_train[..., 2])  # grey, repeated
    # the digits' own split: copy k of validation original i is image k * 360 + i
    assert np.array_equal(data.y_train, digits.y_train)
    assert np.array_equal(data.y_val, np.tile(digits.y_val, 3))
    assert "1437 train / 1080 validation images, 64x64" in data.describe()
    assert load_dataset("digits-clutter", size=40).image_size == 40


def test_digits_clutter_is_deterministic_and_seeded():
    small = ClutterRecipe(canvas=24, height=(18.0, 22.0))
    first, second = _digits_clutter_arrays.__wrapped__(small), _digits_clutter_arrays.__wrapped__(small)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    other = _digits_clutter_arrays.__wrapped__(ClutterRecipe(canvas=24, height=(18.0, 22.0), seed=2))
    assert not np.array_equal(first[0], other[0]) and np.array_equal(first[1], other[1])
    # copies of one original differ from each other
    train, _, val, _ = first
    assert not np.array_equal(val[0], val[360])
    # in-process cache: the same arrays, and callers get copies they may change
    assert load_dataset("digits-clutter").x_val is not load_dataset("digits-clutter").x_val
    assert _digits_clutter_arrays(small)[0] is _digits_clutter_arrays(small)[0]


def test_digits_clutter_never_trains_on_a_validation_original():
    """The two splits share no original, and each drawing is of the original of its own split it is labelled with.

    Checked on a clean recipe, matching 8x8 block means against all 1,797 originals: the
    few misses are near-twins among the digits themselves.
    """
    x_train, x_val, _, _ = _digits_split()
    assert not {x.tobytes() for x in x_train} & {x.tobytes() for x in x_val}
    originals = np.concatenate([x_train, x_val]).reshape(len(x_train) + len(x_val), -1)
    originals = originals - originals.mean(axis=1, keepdims=True)
    originals /= np.linalg.norm(originals, axis=1, keepdims=True)
    train, _, val, _ = _digits_clutter_arrays.__wrapped__(CLEAN)
    for drawn, offset, count in ((train, 0, len(x_train)), (val, len(x_train), len(x_val))):
        pooled = drawn.reshape(len(drawn), 8, 4, 8, 4).mean(axis=(2, 4)).reshape(len(drawn), -1)
        pooled = pooled - pooled.mean(axis=1, keepdims=True)
        nearest = np.argmax(pooled @ originals.T, axis=1)
        assert np.mean(nearest == offset + np.arange(len(drawn)) % count) > 0.98  # its own original


def test_digits_clutter_is_harder_than_digits_but_learnable():
    """1-nearest-neighbour on 16x16 pixels: near-perfect on the digits, several times the errors here, far from chance.

    (The proxy-trained networks feel it more: 0.90-0.95 on the digits, 0.59-0.83 here;
    benchmarks/task_separation.py.)
    """
    from sklearn.neighbors import KNeighborsClassifier

    def error(data):
        data = data.at_size(16)
        flat = [x[..., 0].reshape(len(x), -1) for x in (data.x_train, data.x_val)]
        return 1 - KNeighborsClassifier(1).fit(flat[0], data.y_train).score(flat[1], data.y_val)

    digits, clutter = error(load_dataset("digits")), error(load_dataset("digits-clutter"))
    assert digits < 0.05
    assert 3 * digits < clutter < 0.5


def test_at_size_resizes_once_per_size():
    data = load_dataset("digits-clutter")
    assert data.at_size(64) is data
    smaller = data.at_size(24)
    assert smaller is data.at_size(24) and smaller.image_size == 24 and smaller.name == data.name
    assert smaller.x_train.shape == (1437, 24, 24, 3) and smaller.x_val.dtype == np.float32
    assert np.array_equal(smaller.y_val, data.y_val) and smaller.classes == data.classes
    resized = load_dataset("digits-clutter", size=24)  # the same bilinear resize as the loaders'
    assert np.array_equal(smaller.x_train, resized.x_train) and np.array_equal(smaller.x_val, resized.x_val)
    assert 0 <= smaller.x_val.min() and smaller.x_val.max() <= 255
    digits = load_dataset("digits")
    assert digits.at_size(40).image_size == 40 and digits.at_size(40) is digits.at_size(40)
    assert digits.at_size(24) is not smaller
    with pytest.raises(DatasetError, match="must be positive"):
        data.at_size(0)


@pytest.mark.parametrize("shape, size", [((3, 64, 64, 3), 224), ((3, 64, 48, 1), 20), ((2, 8, 8, 3), 32)])
def test_resize_is_scipys_bilinear_zoom(shape, size):
    """The separable resize gives ``scipy.ndimage.zoom``'s values (up, down, non-square), in float32."""
    from scipy.ndimage import zoom

    from archsearch.data import _resize

    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    resized = _resize(images, size)
    expected = zoom(images, (1, size / shape[1], size / shape[2], 1), order=1, grid_mode=True, mode="nearest")
    assert resized.shape == (shape[0], size, size, shape[3]) and resized.dtype == np.float32
    np.testing.assert_allclose(resized, expected, atol=1e-3)
