"""Datasets: digits16 split/standardisation, the jsc file loader and its errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from models.data import JSC_CLASSES, JSC_FEATURES, JSC_ONEHOT, load_dataset


def test_digits16_shape_split_and_standardisation():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits16")
    assert (ds.num_features, ds.num_classes) == (16, 10)
    sizes = [len(s.y) for s in (ds.train, ds.val, ds.test)]
    assert sum(sizes) == 1797 and sizes == [1077, 360, 360]
    # features are 2x2 means of the 8x8 image, standardised with train statistics
    raw = load_digits().images.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)).reshape(-1, 16)
    rows = {tuple(np.round(r, 6)) for r in raw}
    back = ds.train.x * ds.std + ds.mean
    assert all(tuple(np.round(r, 6)) in rows for r in back.astype(np.float64))
    assert np.allclose(ds.train.x.mean(axis=0), 0, atol=1e-5)
    assert not np.allclose(ds.test.x.mean(axis=0), 0, atol=1e-3)  # not its own statistics
    idx = [set(s.index.tolist()) for s in (ds.train, ds.val, ds.test)]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert idx[0] | idx[1] | idx[2] == set(range(1797))
    assert np.allclose(ds.test.x[:5] * ds.std + ds.mean, raw[ds.test.index[:5]], atol=1e-5)
    # stratified: every class in every split, proportions within one sample of each other
    for s in (ds.val, ds.test):
        counts = np.bincount(s.y, minlength=10)
        assert counts.min() > 0 and counts.max() - counts.min() <= 2


def test_digits16_split_is_fixed():
    from models.data import load_digits16

    load_digits16.cache_clear()
    a = load_dataset("digits16")
    load_digits16.cache_clear()
    b = load_dataset("digits16")
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.val.y, b.val.y)


def _table(n: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)) * np.arange(1, 17)
    y = np.arange(n) % 5
    return x, y


def _write_csv(path, x, y, label="class"):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        if label == "class":
            w.writerow([*JSC_FEATURES, "class"])
            w.writerows([*row, JSC_CLASSES[c]] for row, c in zip(x.tolist(), y, strict=True))
        else:
            w.writerow([*JSC_FEATURES, *JSC_ONEHOT])
            w.writerows(
                [*row, *np.eye(5, dtype=int)[c]] for row, c in zip(x.tolist(), y, strict=True)
            )


@pytest.mark.parametrize("label", ["class", "onehot"])
def test_jsc_csv(tmp_path, label):
    x, y = _table()
    path = tmp_path / "jets.csv"
    _write_csv(path, x, y, label)
    ds = load_dataset("jsc", path)
    assert (ds.num_features, ds.num_classes) == (16, 5)
    assert sum(len(s.y) for s in (ds.train, ds.val, ds.test)) == 100
    assert np.allclose(ds.mean, x[_rows(x, ds.train.x * ds.std + ds.mean)].mean(axis=0))
    assert sorted(np.bincount(ds.test.y).tolist()) == [4, 4, 4, 4, 4]


def _rows(x, xs):
    return [int(np.argmin(np.abs(x - r).sum(axis=1))) for r in xs]


def test_jsc_hdf5_both_layouts(tmp_path):
    import h5py

    x, y = _table(60)
    onehot = np.eye(5)[y]
    a, b = tmp_path / "hls4ml.h5", tmp_path / "columns.h5"
    with h5py.File(a, "w") as f:  # hls4ml layout: a matrix + its column names
        names = [*JSC_FEATURES, "j_pt", *JSC_ONEHOT]
        f["jets"] = np.concatenate([x, np.ones((60, 1)), onehot], axis=1)
        f["jetFeatureNames"] = np.array([n.encode() for n in names])
    with h5py.File(b, "w") as f:  # one dataset per column
        for i, n in enumerate(JSC_FEATURES):
            f[n] = x[:, i]
        f["class"] = y
    da, db = load_dataset("jsc", a), load_dataset("jsc", b)
    assert np.array_equal(da.test.x, db.test.x) and np.array_equal(da.test.y, db.test.y)


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("missing", "data_file not found: .*nope.csv"),
        ("none", "data_file is required for dataset jsc"),
        ("columns", "lacks column\\(s\\) j_zlogz"),
        ("labels", "lacks column\\(s\\) j_g"),
        ("suffix", "data_file must end in .csv, .h5 or .hdf5"),
        ("badclass", "class values must be in g\\|q\\|w\\|z\\|t, got 'x'"),
        ("ragged", "jets.csv record 4 has 2 fields, the header has 17"),
        ("unreadable", "data_file .*jets.csv is not readable: Permission denied"),
    ],
)
def test_jsc_errors_are_one_line(tmp_path, monkeypatch, setup, match):
    x, y = _table(30)
    path = tmp_path / "jets.csv"
    if setup == "missing":
        path = tmp_path / "nope.csv"
    elif setup == "none":
        path = None
    elif setup == "columns":
        path.write_text("a,b\n1,2\n")
    elif setup == "labels":
        path.write_text(",".join(JSC_FEATURES) + "\n" + ",".join(["1"] * 16) + "\n")
    elif setup == "suffix":
        path = tmp_path / "jets.parquet"
        path.write_text("x")
    elif setup == "ragged":  # a short record after a blank line (which is skipped)
        _write_csv(path, x, y)
        lines = path.read_text().splitlines()
        path.write_text("\n".join([*lines[:2], "", "1.5,2", *lines[3:]]) + "\n")
    elif setup == "unreadable":  # chmod does not stop root, so refuse the open itself
        _write_csv(path, x, y)
        real_open = type(path).open

        def refuse(self, *a, **k):
            if self.name == "jets.csv":
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *a, **k)

        monkeypatch.setattr(type(path), "open", refuse)
    else:
        _write_csv(path, x, y)
        path.write_text(path.read_text().replace(",g\n", ",x\n", 1))
    with pytest.raises(ValueError, match=match) as e:
        load_dataset("jsc", path)
    assert "\n" not in str(e.value)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of digits16\\|jsc, got 'mnist'"):
        load_dataset("mnist")
