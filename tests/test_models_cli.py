"""``python -m models``: train/eval/spec end to end on tiny budgets, one-line errors with exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.cli import main
from models.store import SHIPPED_DIR
from qspec.network import QuantisedNetwork


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    """Every test gets its own (empty) user checkpoint directory."""
    d = tmp_path / "user-checkpoints"
    monkeypatch.setenv("HWFIRST_CHECKPOINTS", str(d))
    return d


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["train", "jsc-xl"], "model must be one of jsc-tiny|jsc-toy|jsc-s, got 'jsc-xl'"),
        (["train", "jsc-toy", "--dataset", "mnist"], "--dataset must be one of digits16|jsc"),
        (
            ["train", "jsc-toy", "--activation", "gelu"],
            "--activation must be one of relu|leaky_relu",
        ),
        (
            ["train", "jsc-toy", "--epochs", "0"],
            "--epochs must be an integer in [1, 100000], got '0'",
        ),
        (["train", "jsc-toy", "--slope", "1.5"], "slope must be in (0, 1), got 1.5"),
        (["train", "jsc-toy", "--dataset", "jsc"], "data_file is required for dataset jsc"),
        (["eval", "jsc-toy", "--bits", "0"], "width must be an integer in [1, 16], got 0"),
        (["eval", "jsc-toy", "--split", "train"], "--split must be one of val|test"),
        (["eval", "jsc-toy", "--bits", "4", "--config", "x.toml"], "not allowed with argument"),
        (["spec", "jsc-toy", "--bits", "8"], "the following arguments are required: --out"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, match):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m models")
    assert match in err


def test_config_naming_a_missing_layer(capsys, tmp_path):
    cfg = tmp_path / "q.toml"
    cfg.write_text("[layers.fc7]\nweight_width = 4\n")
    rc, _, err = run(capsys, "eval", "jsc-toy", "--config", str(cfg))
    assert rc == 2 and "layers.fc7 is not a layer of this model; allowed: fc1, fc2, fc3" in err


def test_train_eval_spec_qat_round_trip(capsys, tmp_path):
    ck = str(tmp_path / "ck")
    rc, out, _ = run(capsys, "train", "jsc-toy", "--epochs", "2", "--checkpoints", ck)
    assert rc == 0 and "test accuracy" in out
    meta = json.loads((tmp_path / "ck" / "jsc-toy_digits16_relu.json").read_text())
    assert meta["epochs_run"] == 2 and 0 <= meta["test_acc"] <= 1
    assert not list((tmp_path / "ck").glob("*.tmp"))  # atomic writes leave nothing behind

    rc, out, _ = run(capsys, "eval", "jsc-toy", "--bits", "4", "--checkpoints", ck, "--json")
    assert rc == 0
    m = json.loads(out)
    assert [ly["name"] for ly in m["layers"]] == ["fc1", "fc2", "fc3"]
    assert m["bitops"] == (16 * 8 + 8 * 8 + 8 * 10) * 16

    spec_path = tmp_path / "spec.json"
    rc, _, _ = run(
        capsys, "spec", "jsc-toy", "--bits", "6", "--checkpoints", ck, "--out", str(spec_path)
    )
    assert rc == 0
    spec = QuantisedNetwork.from_json(spec_path.read_text())
    assert spec.name == "jsc-toy" and spec.linear_layers[0].weight_fmt.width == 6
    assert (tmp_path / "spec.inputs.json").is_file()

    cfg = tmp_path / "q.toml"
    cfg.write_text("[quant.default]\nwidth = 4\n")
    rc, out, _ = run(
        capsys, "train", "jsc-toy", "--qat", str(cfg), "--epochs", "1", "--checkpoints", ck
    )
    assert rc == 0 and "QAT" in out
    from models.train import load_qat

    fq, qmeta = load_qat(tmp_path / "ck" / "jsc-toy_digits16_relu_qat.pt")
    assert fq.spec == QuantisedNetwork.from_dict(qmeta["spec"])


def test_eval_prints_a_table_for_a_shipped_checkpoint(capsys):
    rc, out, _ = run(capsys, "eval", "jsc-tiny", "--bits", "8")
    assert rc == 0 and "total" in out and "avg bits" in out


def test_module_entry_point_exit_status():
    r = subprocess.run(
        [sys.executable, "-m", "models", "train", "nope"], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "model must be one of" in r.stderr


# --- checkpoint names, directories, --slope and --seed --------------------------------------


def test_checkpoint_stems():
    from models.store import checkpoint_stem

    assert checkpoint_stem("jsc-s", "digits16", "relu") == "jsc-s_digits16_relu"
    assert checkpoint_stem("jsc-s", "digits16", "relu", slope=0.3) == "jsc-s_digits16_relu"
    assert checkpoint_stem("jsc-toy", "jsc", "leaky_relu", slope=0.3, seed=4) == (
        "jsc-toy_jsc_leaky_relu_s0.3_seed4"
    )
    assert checkpoint_stem("jsc-toy", "digits16", "leaky_relu", True) == (
        "jsc-toy_digits16_leaky_relu_s0.125_qat"
    )
    assert checkpoint_stem("jsc-tiny", "digits16", "leaky_relu", slope=0.3) == "jsc-tiny_digits16"
    # distinct slopes never share a name
    assert checkpoint_stem("jsc-s", "d", "leaky_relu", slope=0.1234567) != checkpoint_stem(
        "jsc-s", "d", "leaky_relu", slope=0.1234568
    )


def test_shipped_checkpoints_are_named_by_their_metadata():
    from models.store import checkpoint_stem

    names = sorted(p.stem for p in SHIPPED_DIR.glob("*.pt"))
    assert len(names) == 5 and "jsc-toy_digits16_leaky_relu_s0.125" in names
    for stem in names:
        meta = json.loads((SHIPPED_DIR / f"{stem}.json").read_text())
        m = meta["model"]
        got = checkpoint_stem(
            m["name"],
            meta["dataset"],
            m["activation"],
            slope=m["slope"],
            seed=meta["train"]["seed"],
        )
        assert got == stem


def _leaky_slopes(spec_path):
    spec = QuantisedNetwork.from_json(spec_path.read_text())
    return {float(ly.slope) for ly in spec.layers if ly.kind == "leaky_relu"}


def test_slope_selects_the_checkpoint(capsys, tmp_path, user_dir):
    argv = ["jsc-toy", "--activation", "leaky_relu", "--bits", "8"]
    rc, _, err = run(capsys, "eval", *argv, "--slope", "0.25")
    assert rc == 2 and err.count("\n") == 1
    assert "no checkpoint jsc-toy_digits16_leaky_relu_s0.25.pt in" in err
    assert "python -m models train jsc-toy --dataset digits16 --activation leaky_relu " in err
    assert "--slope 0.25)" in err
    rc, _, err = run(capsys, "spec", *argv, "--slope", "0.25", "--out", str(tmp_path / "a.json"))
    assert rc == 2 and "no checkpoint jsc-toy_digits16_leaky_relu_s0.25.pt" in err
    assert not (tmp_path / "a.json").exists()

    rc, out, _ = run(capsys, "train", "jsc-toy", "--activation", "leaky_relu", "--slope", "0.25",
                     "--epochs", "1")  # fmt: skip
    assert rc == 0 and (user_dir / "jsc-toy_digits16_leaky_relu_s0.25.pt").is_file()
    meta = json.loads((user_dir / "jsc-toy_digits16_leaky_relu_s0.25.json").read_text())
    assert meta["model"]["slope"] == 0.25 and meta["epochs_run"] == 1
    rc, _, _ = run(capsys, "spec", *argv, "--slope", "0.25", "--out", str(tmp_path / "a.json"))
    assert rc == 0 and _leaky_slopes(tmp_path / "a.json") == {0.25}
    rc, _, _ = run(capsys, "spec", *argv, "--out", str(tmp_path / "b.json"))  # the shipped one
    assert rc == 0 and _leaky_slopes(tmp_path / "b.json") == {0.125}
    rc, out, _ = run(capsys, "eval", *argv, "--slope", "0.25", "--split", "val", "--json")
    assert rc == 0 and json.loads(out)["float_accuracy"] == pytest.approx(meta["val_acc"])


def test_slope_for_a_model_without_leaky_relu_is_an_error(capsys):
    for argv in (["jsc-toy"], ["jsc-tiny", "--activation", "leaky_relu"]):
        rc, _, err = run(capsys, "eval", *argv, "--slope", "0.25")
        assert rc == 2 and "--slope applies only to --activation leaky_relu" in err


def test_train_writes_to_the_user_dir_and_loading_prefers_it(capsys, user_dir):
    shipped = {p.name: p.read_bytes() for p in SHIPPED_DIR.iterdir()}
    rc, out, _ = run(capsys, "train", "jsc-tiny", "--epochs", "1")
    assert rc == 0 and str(user_dir / "jsc-tiny_digits16.pt") in out
    assert {p.name: p.read_bytes() for p in SHIPPED_DIR.iterdir()} == shipped
    from models.train import load_float

    _, meta = load_float("jsc-tiny")
    assert meta["epochs_run"] == 1  # the user's, not the shipped one
    _, meta = load_float("jsc-tiny", directory=user_dir / "elsewhere")
    assert meta["epochs_run"] > 1  # falls back to the shipped one


def test_default_user_dir_is_platformdirs(monkeypatch):
    import platformdirs

    from models.store import user_checkpoint_dir

    monkeypatch.delenv("HWFIRST_CHECKPOINTS")
    assert user_checkpoint_dir() == Path(platformdirs.user_data_dir("hwfirst")) / "checkpoints"
    assert SHIPPED_DIR not in user_checkpoint_dir().parents


def test_seed_is_part_of_the_name(capsys, user_dir):
    rc, _, _ = run(capsys, "train", "jsc-tiny", "--epochs", "1", "--seed", "3")
    assert rc == 0 and (user_dir / "jsc-tiny_digits16_seed3.pt").is_file()
    assert not (user_dir / "jsc-tiny_digits16.pt").exists()
    rc, _, _ = run(capsys, "eval", "jsc-tiny", "--seed", "3")
    assert rc == 0
    rc, _, err = run(capsys, "eval", "jsc-tiny", "--seed", "4")
    assert rc == 2 and "no checkpoint jsc-tiny_digits16_seed4.pt" in err and "--seed 4)" in err


def test_a_renamed_checkpoint_is_refused(capsys, user_dir):
    import shutil

    user_dir.mkdir()
    shutil.copy(
        SHIPPED_DIR / "jsc-toy_digits16_relu.pt", user_dir / "jsc-toy_digits16_relu_seed2.pt"
    )
    rc, _, err = run(capsys, "eval", "jsc-toy", "--seed", "2")
    assert rc == 2 and "holds jsc-toy_digits16_relu, not jsc-toy_digits16_relu_seed2" in err


# --- the spec's test vectors -----------------------------------------------------------------


def test_spec_writes_the_test_inputs_beside_it(capsys, tmp_path):
    from models.data import load_dataset

    out = tmp_path / "net.json"
    rc, out_text, _ = run(capsys, "spec", "jsc-s", "--activation", "leaky_relu", "--bits", "5",
                          "--out", str(out))  # fmt: skip
    assert rc == 0 and "net.inputs.json" in out_text
    spec = QuantisedNetwork.from_json(out.read_text())
    vec = json.loads((tmp_path / "net.inputs.json").read_text())
    assert set(vec) == {"dataset", "split", "input_fmt", "codes", "labels"}
    assert (vec["dataset"], vec["split"]) == ("digits16", "test")
    f = spec.input_fmt
    assert vec["input_fmt"] == {"width": f.width, "frac_width": f.frac_width, "signed": True}
    test = load_dataset("digits16").test
    # the host's quantisation: round half up, saturate
    lo, hi = -(2 ** (f.width - 1)), 2 ** (f.width - 1) - 1
    want = np.clip(np.floor(test.x.astype(np.float64) * 2.0**f.frac_width + 0.5), lo, hi)
    assert vec["codes"] == want.astype(int).tolist() and vec["labels"] == test.y.tolist()
    assert all(type(c) is int for c in vec["codes"][0]) and len(vec["codes"][0]) == 16
    assert not list(tmp_path.glob(".*.tmp"))


# --- one-line errors, nothing written -------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ("layers = 3\n", "layers must be a table of [layers.NAME] tables, got 3"),
        ("[layers]\nfc1 = 5\n", "layers.fc1 must be a table of keys, got 5"),
        ("default = 5\n", "default must be a table of keys, got 5"),
        ("quant = 5\n", "quant must be a table ([default], [layers.NAME]), got 5"),
    ],
)
def test_bad_config_tables(capsys, tmp_path, toml, match):
    cfg = tmp_path / "q.toml"
    cfg.write_text(toml)
    out = tmp_path / "s.json"
    for cmd in (["eval"], ["spec", "--out", str(out)]):
        rc, stdout, err = run(capsys, *cmd, "jsc-toy", "--config", str(cfg))
        assert rc == 2 and stdout == "" and err.count("\n") == 1 and match in err
    assert not out.exists()


def test_ragged_jsc_csv(capsys, tmp_path):
    from models.data import JSC_FEATURES

    f = tmp_path / "jets.csv"
    f.write_text(
        ",".join([*JSC_FEATURES, "class"]) + "\n" + ",".join(["1"] * 16 + ["g"]) + "\n1,2\n"
    )
    rc, _, err = run(capsys, "eval", "jsc-toy", "--dataset", "jsc", "--data-file", str(f))
    assert rc == 2 and err.count("\n") == 1
    assert "jets.csv record 3 has 2 fields, the header has 17" in err


def _no_write_access(monkeypatch, path):
    """chmod does not stop root: make os.access say ``path`` is not writable."""
    import os

    real = os.access

    def access(p, mode, *a, **k):
        if Path(p) == path and mode & os.W_OK:
            return False
        return real(p, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("where", ["directory", "inputs-directory", "under-a-file", "read-only"])
def test_spec_out_errors(capsys, tmp_path, monkeypatch, where):
    out = tmp_path / "s.json"
    match = "--out must be a file path, but"
    if where == "directory":
        out.mkdir()
    elif where == "inputs-directory":
        (tmp_path / "s.inputs.json").mkdir()
    elif where == "under-a-file":
        (tmp_path / "f").write_text("")
        out, match = tmp_path / "f" / "s.json", "--out: cannot create .*s.json': .*/f' is a file"
    else:
        (tmp_path / "ro").mkdir()
        out, match = tmp_path / "ro" / "s.json", "--out: directory .*ro' is not writable"
        _no_write_access(monkeypatch, tmp_path / "ro")
    rc, stdout, err = run(capsys, "spec", "jsc-toy", "--out", str(out))
    assert rc == 2 and stdout == "" and err.count("\n") == 1
    assert re.search(match, err), err
    assert not out.is_file() and not (out.parent / "s.inputs.json").is_file()
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("cmd", ["train", "eval", "spec"])
def test_checkpoints_that_is_a_file(capsys, tmp_path, cmd):
    f = tmp_path / "ck"
    f.write_text("")
    extra = ["--out", str(tmp_path / "s.json")] if cmd == "spec" else []
    rc, stdout, err = run(capsys, cmd, "jsc-toy", "--checkpoints", str(f), *extra)
    assert rc == 2 and stdout == "" and err.count("\n") == 1
    assert f"--checkpoints must be a directory, but '{f}' is a file" in err
    assert f.read_text() == "" and not (tmp_path / "s.json").exists()


def test_unwritable_checkpoints_for_train(capsys, tmp_path, monkeypatch, user_dir):
    user_dir.mkdir()
    _no_write_access(monkeypatch, user_dir)
    rc, _, err = run(capsys, "train", "jsc-tiny", "--epochs", "1")
    assert rc == 2 and f"$HWFIRST_CHECKPOINTS: directory '{user_dir}' is not writable" in err


@pytest.mark.parametrize("what", ["missing", "directory", "unreadable", "wrong-dataset"])
def test_data_file_errors(capsys, tmp_path, monkeypatch, what):
    import os

    f = tmp_path / "jets.csv"
    dataset = "jsc"
    if what == "missing":
        match = f"--data-file not found: '{f}'"
    elif what == "directory":
        f.mkdir()
        match = f"--data-file must be a file, but '{f}' is not"
    elif what == "unreadable":
        f.write_text("x\n")
        real = os.access
        monkeypatch.setattr(
            os, "access", lambda p, m, *a, **k: False if Path(p) == f else real(p, m, *a, **k)
        )
        match = f"--data-file '{f}' is not readable"
    else:
        f.write_text("x\n")
        dataset, match = "digits16", "--data-file is only used with --dataset jsc, got digits16"
    rc, stdout, err = run(capsys, "eval", "jsc-toy", "--dataset", dataset, "--data-file", str(f))
    assert rc == 2 and stdout == "" and err.count("\n") == 1 and match in err


def test_env_checkpoints_that_is_a_file(capsys, user_dir):
    user_dir.parent.mkdir(exist_ok=True)
    user_dir.write_text("")
    for cmd in ("train", "eval"):
        rc, _, err = run(capsys, cmd, "jsc-tiny", "--epochs" if cmd == "train" else "--bits", "1")
        assert rc == 2 and err.count("\n") == 1
        assert f"$HWFIRST_CHECKPOINTS must be a directory, but '{user_dir}' is a file" in err
    assert user_dir.read_text() == ""
