"""Datasets: the embedded digits, .npz files, image folders, Keras datasets, bad paths."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.data import DatasetError, load_dataset


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
