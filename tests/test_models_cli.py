"""``python -m models``: train/eval/spec end to end on tiny budgets, one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.cli import main
from qspec.network import QuantisedNetwork


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
        (["train", "jsc-toy", "--epochs", "0"], "epochs must be an integer >= 1, got 0"),
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
