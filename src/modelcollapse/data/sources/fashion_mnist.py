"""Fashion-MNIST (70,000 28x28 grey images, 10 classes) from Debian ``dataset-fashion-mnist``.

Outputs: ``train_images.npy`` (60000, 28, 28) uint8, ``train_labels.npy`` (60000,) uint8,
``test_images.npy`` (10000, 28, 28), ``test_labels.npy`` (10000,).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from . import DataUnavailable

NAME = "fashion-mnist"
DESCRIPTION = "Zalando Fashion-MNIST: 60k train + 10k test 28x28 uint8 images, 10 classes"
SOURCE = "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)"
LICENSE = "MIT (Zalando SE 2017)"
PACKAGE_LABEL = "dataset-fashion-mnist (apt)"
SIZE = "55 MB"
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FIX = "apt-get install -y dataset-fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) of unsigned bytes as an array of its shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    data = np.frombuffer(raw, np.uint8, offset=offset)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(dims)


def build(out: Path, source: Path | None = None) -> dict:
    root = DEFAULT_ROOT if source is None else source
    missing = [f for pair in FILES.values() for f in pair if not (root / f).is_file()]
    if missing:
        raise DataUnavailable(f"{NAME}: {root / missing[0]} not found; install it with: {FIX}")
    counts = {}
    for split, (img_file, lab_file) in FILES.items():
        images, labels = read_idx(root / img_file), read_idx(root / lab_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{NAME}: {split} images {images.shape} and labels {labels.shape} "
                             "do not match")
        np.save(out / f"{split}_images.npy", images)
        np.save(out / f"{split}_labels.npy", labels)
        counts[split] = len(labels)
        counts[f"{split}_classes"] = {int(k): int(v) for k, v in
                                      zip(*np.unique(labels, return_counts=True))}
    counts["image_shape"] = list(images.shape[1:])
    return counts
