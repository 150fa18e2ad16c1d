"""Datasets for proxy training: the embedded digits, Keras datasets, image folders, .npz files.

Every loader returns images as float32 in [0, 255], NHWC, with three channels (grey
images are repeated), so any spec's preprocessing applies unchanged. Nothing here
imports TensorFlow except the Keras-dataset loader, which needs it to download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsearch.errors import ArchsearchError

KERAS_DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
DEFAULT_DIGITS_SIZE = 32  # 8x8 digits are upsampled so five stride-2 stages still see a map


class DatasetError(ArchsearchError):
    """A dataset that cannot be found, read or made sense of."""


@dataclass(frozen=True)
class Dataset:
    """Train and validation images (float32, [0, 255], NHWC, 3 channels) with integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: int

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} validation images, "
                f"{self.image_size}x{self.image_size}, {self.classes} classes")


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an (N, H, W, C) batch to (N, size, size, C)."""
    from scipy.ndimage import zoom

    if images.shape[1] == size and images.shape[2] == size:
        return images
    factors = (1, size / images.shape[1], size / images.shape[2], 1)
    return zoom(images, factors, order=1, grid_mode=True, mode="nearest").astype("float32")


def _rgb(images: np.ndarray) -> np.ndarray:
    images = images.astype("float32")
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.shape[-1] != 3:
        raise DatasetError(f"images have {images.shape[-1]} channels; expected 1 or 3")
    return images


def _finish(name: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
            size: int | None) -> Dataset:
    x_train, x_val = _rgb(x_train), _rgb(x_val)
    if size is not None:
        x_train, x_val = _resize(x_train, size), _resize(x_val, size)
    y_train, y_val = np.asarray(y_train).reshape(-1).astype("int64"), np.asarray(y_val).reshape(-1).astype("int64")
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise DatasetError(f"{name}: images and labels differ in number")
    if len(x_train) == 0 or len(x_val) == 0:
        raise DatasetError(f"{name}: the train and validation sets must both be non-empty")
    classes = int(max(y_train.max(), y_val.max())) + 1
    return Dataset(name, x_train, y_train, x_val, y_val, classes)


def load_digits(size: int | None = None) -> Dataset:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images), fixed 1,437/360 split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = digits.images * (255.0 / 16.0)
    x_train, x_val, y_train, y_val = train_test_split(images, digits.target, test_size=360, random_state=0,
                                                      stratify=digits.target)
    return _finish("digits", x_train, y_train, x_val, y_val, size or DEFAULT_DIGITS_SIZE)


def load_keras_dataset(name: str, size: int | None = None) -> Dataset:
    """A ``keras.datasets`` dataset; Keras downloads and caches it when online."""
    import keras

    try:
        (x_train, y_train), (x_val, y_val) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # offline and not cached: urllib/HTTP/OS errors
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatasetError(f"dataset {name!r} is not in Keras' cache and could not be downloaded ({reason})") from None
    return _finish(name, x_train, y_train, x_val, y_val, size)


def load_npz(path: Path, size: int | None = None) -> Dataset:
    """An ``.npz`` with ``x_train``, ``y_train``, ``x_val``, ``y_val`` (images NHW or NHWC, 0-255)."""
    try:
        with np.load(path) as data:
            missing = [key for key in ("x_train", "y_train", "x_val", "y_val") if key not in data]
            if missing:
                raise DatasetError(f"{path}: missing arrays {', '.join(missing)}")
            arrays = [data[key] for key in ("x_train", "y_train", "x_val", "y_val")]
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable .npz file ({error})") from None
    return _finish(path.stem, *arrays, size)


def load_image_folder(path: Path, size: int | None = None, validation_share: float = 0.2, seed: int = 0) -> Dataset:
    """A folder with one subfolder of images per class; a seeded, stratified validation split."""
    from PIL import Image

    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise DatasetError(f"{path}: expected one subfolder per class (at least two), found {len(classes)}")
    files = [(f, label) for label, name in enumerate(classes)
             for f in sorted((path / name).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    images, labels = [], []
    for file, label in files:
        try:
            with Image.open(file) as image:
                image = image.convert("RGB")
                size = size or image.width
                images.append(np.asarray(image.resize((size, size), Image.BILINEAR), dtype="float32"))
        except OSError as error:
            raise DatasetError(f"{file}: cannot read image ({error})") from None
        labels.append(label)
    x, y = np.stack(images), np.asarray(labels)
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(y), dtype=bool)
    for label in range(len(classes)):
        members = np.flatnonzero(y == label)
        take = max(1, int(round(len(members) * validation_share))) if len(members) > 1 else 0
        val_mask[rng.choice(members, take, replace=False)] = True
    return _finish(path.name, x[~val_mask], y[~val_mask], x[val_mask], y[val_mask], None)


def load_dataset(name_or_path: str, size: int | None = None, seed: int = 0) -> Dataset:
    """``digits`` (embedded), a Keras dataset name, an image folder, or an ``.npz`` file.

    ``size`` resizes images for training; by default a dataset keeps its own resolution
    (digits: 32x32).
    """
    if size is not None and size < 1:
        raise DatasetError(f"training image size must be positive, got {size}")
    if name_or_path == "digits":
        return load_digits(size)
    if name_or_path in KERAS_DATASETS:
        return load_keras_dataset(name_or_path, size)
    path = Path(name_or_path)
    if path.is_dir():
        return load_image_folder(path, size, seed=seed)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        return load_npz(path, size)
    raise DatasetError(f"unknown dataset {name_or_path!r}: use digits, {', '.join(KERAS_DATASETS)}, "
                       f"a folder of class subfolders, or an .npz file")
