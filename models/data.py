"""Offline datasets: ``digits16`` (bundled with scikit-learn) and ``jsc`` (a user's file).

Both come back as a :class:`Dataset` of float32 features standardised with the
train split's statistics and a fixed, seeded, stratified train/val/test split.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .modelspec import DATASETS

SPLIT_SEED = 0
VAL_FRACTION, TEST_FRACTION = 0.2, 0.2

JSC_FEATURES = (
    "j_zlogz",
    "j_c1_b0_mmdt",
    "j_c1_b1_mmdt",
    "j_c1_b2_mmdt",
    "j_c2_b1_mmdt",
    "j_c2_b2_mmdt",
    "j_d2_b1_mmdt",
    "j_d2_b2_mmdt",
    "j_d2_a1_b1_mmdt",
    "j_d2_a1_b2_mmdt",
    "j_m2_b1_mmdt",
    "j_m2_b2_mmdt",
    "j_n2_b1_mmdt",
    "j_n2_b2_mmdt",
    "j_mass_mmdt",
    "j_multiplicity",
)
JSC_CLASSES = ("g", "q", "w", "z", "t")  # one-hot columns j_g, j_q, j_w, j_z, j_t
JSC_ONEHOT = tuple(f"j_{c}" for c in JSC_CLASSES)


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, features) float32
    y: np.ndarray  # (N,) int64
    index: np.ndarray  # rows of the source data, so disjointness is checkable


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_features: int
    num_classes: int
    mean: np.ndarray  # train statistics used for standardisation
    std: np.ndarray

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be one of train|val|test, got {name!r}")
        return getattr(self, name)


def split_and_standardise(
    name: str, x: np.ndarray, y: np.ndarray, seed: int = SPLIT_SEED
) -> Dataset:
    """Disjoint stratified train/val/test (60/20/20), standardised with train statistics."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    val_size = VAL_FRACTION / (1 - TEST_FRACTION)
    train, val = train_test_split(rest, test_size=val_size, stratify=y[rest], random_state=seed)
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant features stay 0 instead of NaN

    def make(i: np.ndarray) -> Split:
        return Split(((x[i] - mean) / std).astype(np.float32), y[i].astype(np.int64), i)

    return Dataset(
        name, make(train), make(val), make(test), x.shape[1], int(y.max()) + 1, mean, std
    )


@functools.cache
def load_digits16() -> Dataset:
    """scikit-learn's 8x8 digits, 2x2 average-pooled to 4x4 = 16 features, 10 classes."""
    from sklearn.datasets import load_digits

    d = load_digits()
    img = d.images.astype(np.float64).reshape(-1, 4, 2, 4, 2)
    x = img.mean(axis=(2, 4)).reshape(-1, 16)
    return split_and_standardise("digits16", x, d.target.astype(np.int64))


def _jsc_error(path: Path, missing: list[str]) -> ValueError:
    shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
    return ValueError(
        f"data_file {path} lacks column(s) {shown}: jsc needs the 16 features "
        f"({JSC_FEATURES[0]}..{JSC_FEATURES[-1]}) and 'class' ({'|'.join(JSC_CLASSES)}) "
        f"or one-hot {','.join(JSC_ONEHOT)}"
    )


def _jsc_labels(path: Path, cols: dict[str, np.ndarray]) -> np.ndarray:
    if "class" in cols:
        raw = cols["class"]
        if raw.dtype.kind in "iuf":
            y = raw.astype(np.int64)
        else:
            names = np.char.lower(np.char.strip(raw.astype(str)))
            names = np.char.replace(names, "j_", "")
            bad = sorted(set(names.tolist()) - set(JSC_CLASSES))
            if bad:
                raise ValueError(f"class values must be in {'|'.join(JSC_CLASSES)}, got {bad[0]!r}")
            y = np.array([JSC_CLASSES.index(n) for n in names], dtype=np.int64)
        if y.size and (y.min() < 0 or y.max() >= len(JSC_CLASSES)):
            raise ValueError(f"class indices must be in [0, {len(JSC_CLASSES) - 1}] in {path}")
        return y
    missing = [c for c in JSC_ONEHOT if c not in cols]
    if missing:
        raise _jsc_error(path, missing)
    return np.stack([cols[c] for c in JSC_ONEHOT], axis=1).argmax(axis=1).astype(np.int64)


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (csv.Error, UnicodeDecodeError) as e:
        raise ValueError(f"data_file {path} is not a readable CSV: {e}") from None
    if not rows:
        raise ValueError(f"data_file {path} is empty")
    header, body = [h.strip() for h in rows[0]], []
    for n, r in enumerate(rows[1:], start=2):  # n: the record's number, the header is 1
        if not r:  # csv gives [] for a blank line
            continue
        if len(r) != len(header):
            raise ValueError(
                f"data_file {path} record {n} has {len(r)} fields, the header has {len(header)}"
            )
        body.append(r)
    cols: dict[str, np.ndarray] = {}
    for i, h in enumerate(header):
        vals = [r[i] for r in body]
        try:
            cols[h] = np.array(vals, dtype=np.float64)
        except ValueError:
            cols[h] = np.array(vals, dtype=str)
    return cols


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    """Either hls4ml's layout (``jets`` matrix + ``jetFeatureNames``) or one dataset per column."""
    import h5py

    with h5py.File(path, "r") as f:
        if "jets" in f and "jetFeatureNames" in f:
            names = [
                n.decode() if isinstance(n, bytes) else str(n) for n in f["jetFeatureNames"][()]
            ]
            jets = f["jets"][()]
            return {n: jets[:, i] for i, n in enumerate(names)}
        return {k: f[k][()] for k in f if isinstance(f[k], h5py.Dataset) and f[k].ndim == 1}


def load_jsc(path: str | Path | None) -> Dataset:
    """Jet substructure (16 features, 5 classes) from a CSV or HDF5 file the user supplies."""
    if path is None:
        raise ValueError("data_file is required for dataset jsc (--data-file PATH, .csv or .h5)")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data_file not found: {path} (jsc needs a .csv or .h5 file)")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".h5", ".hdf5"):
        raise ValueError(f"data_file must end in .csv, .h5 or .hdf5, got {path.name!r}")
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise ValueError(f"data_file {path} is not readable: {e.strerror}") from None
    if suffix == ".csv":
        cols = _read_csv(path)
    else:
        try:
            cols = _read_hdf5(path)
        except OSError as e:
            raise ValueError(f"data_file {path} is not readable HDF5: {e}") from None
    missing = [c for c in JSC_FEATURES if c not in cols]
    if missing:
        raise _jsc_error(path, missing)
    if any(cols[c].dtype.kind not in "iuf" for c in JSC_FEATURES):
        raise ValueError(f"data_file {path}: the 16 jsc feature columns must be numeric")
    x = np.stack([cols[c] for c in JSC_FEATURES], axis=1).astype(np.float64)
    y = _jsc_labels(path, cols)
    if np.bincount(y, minlength=5).min() < 5:
        raise ValueError(f"data_file {path}: every jsc class needs at least 5 rows for the split")
    return split_and_standardise("jsc", x, y)


def load_dataset(name: str, data_file: str | Path | None = None) -> Dataset:
    """``digits16`` (offline, default) or ``jsc`` (needs ``data_file``)."""
    if name == "digits16":
        return load_digits16()
    if name == "jsc":
        return load_jsc(data_file)
    raise ValueError(f"dataset must be one of {'|'.join(DATASETS)}, got {name!r}")
