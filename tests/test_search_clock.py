"""``hardware.clock_mhz`` in the search: validated, in the fingerprint only when set, and
every design pipelined to it (model latency = the placements' cycles, passed on to
synthesis and export, recorded by each trial)."""

from __future__ import annotations

import dataclasses
import json
import types

import optuna
import pytest

import hdl.synth.network as synth_network
from hdl.hwmodel import predict_network
from hdl.pipeline import place
from hdl.resources import Resources
from qspec.network import QuantisedNetwork, group_layers
from search.config import ConfigError, load_config, loads_config
from search.hardware import HardwareParams, hardware_metrics, model_metrics
from search.records import CLOCK_ATTR
from search.run import run_study
from tests.conftest import CONFIGS, PINNED_FINGERPRINTS, ROOT, csv_rows
from tests.test_clock_cli import built_top

TOY = ROOT / "verilog_out" / "specs" / "jsc-toy_relu_8b.json"

BASE = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [3, 6]
act_width = 8
[strategy]
name = "brute_force"
[storage]
study = "clocked"
[metrics.accuracy]
[metrics.latency]
[metrics.lut_eq]
[hardware]
fidelity = "model"
"""


def cfg_with(hardware: str = "", space: str = ""):
    return loads_config(BASE.replace("[strategy]", space + "[strategy]") + hardware)


@pytest.mark.parametrize(
    ("hardware", "space", "message"),
    [
        ("clock_mhz = 0\n", "", "hardware.clock_mhz must be a number of MHz in [1, 2000], got 0"),
        ("clock_mhz = -5\n", "", "hardware.clock_mhz must be a number of MHz in [1, 2000], got -5"),
        ('clock_mhz = "200"\n', "", "hardware.clock_mhz must be a number of MHz"),
        ("clock_mhz = true\n", "", "hardware.clock_mhz must be a number of MHz"),
        ("clock_mhz = 2500.0\n", "", "hardware.clock_mhz must be a number of MHz"),
        ("clock_mhz = nan\n", "", "hardware.clock_mhz must be a number of MHz"),
        (
            "clock_mhz = 200\n",
            "[space]\nstages = [0, 1]\n",
            "hardware.clock_mhz places the registers itself; space.stages must then be 0 "
            "(the manual override), got [0, 1]",
        ),
        (
            'clock_mhz = 200\nimpl = "mul"\n',
            "",
            "hardware.clock_mhz needs hardware.impl in adder_tree|adder_tree_nosub",
        ),
        (
            "clock_mhz = 200\n",
            '[space]\nimpl = ["adder_tree", "mul"]\n',
            "hardware.clock_mhz needs space.impl in adder_tree|adder_tree_nosub (the modelled "
            "ones), got 'mul'",
        ),
    ],
)
def test_config_errors_name_the_key(hardware, space, message):
    with pytest.raises(ConfigError) as e:
        cfg_with(hardware, space)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_clock_parses_and_stages_zero_is_allowed():
    cfg = cfg_with("clock_mhz = 200\n", "[space]\nstages = [0]\n")
    assert cfg.hardware.clock_mhz == 200.0 and isinstance(cfg.hardware.clock_mhz, float)
    assert cfg_with().hardware.clock_mhz is None


@pytest.mark.parametrize(("name", "fingerprint"), sorted(PINNED_FINGERPRINTS.items()))
def test_fingerprints_without_a_clock_are_unchanged(name, fingerprint):
    assert load_config(CONFIGS / f"{name}.toml").fingerprint == fingerprint


def test_the_clock_changes_the_fingerprint():
    plain = cfg_with().fingerprint
    at200 = cfg_with("clock_mhz = 200\n").fingerprint
    assert plain != at200 != cfg_with("clock_mhz = 250\n").fingerprint
    assert cfg_with("clock_mhz = 200.0\n").fingerprint == at200  # the same clock


def test_model_latency_is_the_placements_cycles():
    net = QuantisedNetwork.read(TOY, "SPEC")
    hw = HardwareParams("ecp5", "adder_tree", 0, fidelity="model", clock_mhz=200.0)
    top = built_top(net, clock_mhz=200.0)
    m = hardware_metrics(net, hw)
    assert m["latency"] == sum(ly.placement.latency for ly in top.layers) == top.latency
    p = predict_network(net, clock_mhz=200.0)
    assert m["fmax"] == p.fmax_mhz >= 200.0 and m["ffs"] == p.ffs
    assert m["latency_ns"] == pytest.approx(m["latency"] * 1000.0 / m["fmax"])
    # without a clock: the stages by hand, as before
    one = model_metrics(net, HardwareParams("ecp5", "adder_tree", 1, fidelity="model"))
    assert one["latency"] == 3.0 and one["fmax"] < m["fmax"]
    with pytest.raises(ValueError, match="stages must be 0 with clock_mhz"):
        predict_network(net, stages=1, clock_mhz=200.0)


def test_model_places_the_network_networktop_builds():
    """Dead units removed first (as NetworkTop does): here fc1 loses five neurons nothing
    reads, so its adder graph and placement differ."""
    net = QuantisedNetwork.read(TOY, "SPEC")
    fc2 = net.layers[2]
    weight = [[0 if j in (0, 1, 2, 4, 6) else v for j, v in enumerate(row)] for row in fc2.weight]
    net = dataclasses.replace(
        net, layers=(*net.layers[:2], dataclasses.replace(fc2, weight=weight), *net.layers[3:])
    )
    top = built_top(net, clock_mhz=200.0)
    m = model_metrics(net, HardwareParams(fidelity="model", clock_mhz=200.0))
    assert m["latency"] == top.latency
    assert m["ffs"] == sum(ly.placement.ffs for ly in top.layers)
    unpruned = sum(place(g, "adder_tree", 200.0).latency for g in group_layers(net))
    # what the model would say of the layers as given (the figures follow the coefficients)
    assert unpruned != top.latency


def test_synthesis_gets_the_clock(monkeypatch):
    calls = []

    def fake(net, target, **kw):
        calls.append(kw)
        return types.SimpleNamespace(total=Resources("ecp5", lut4=1, latency=9))

    monkeypatch.setattr(synth_network, "synthesise_network", fake)
    hw = HardwareParams("ice40", "adder_tree", 0, False, 5.0, clock_mhz=150.0)
    assert hardware_metrics("NET", hw)["latency"] == 9.0  # not a spec: uncached
    assert calls == [
        {"impl": "adder_tree", "stages": 0, "fmax": False, "timeout": 5.0, "clock_mhz": 150.0}
    ]


def test_a_clocked_study_records_the_clock(tmp_path):
    cfg = cfg_with("clock_mhz = 200\n")
    res = run_study(cfg, out_dir=tmp_path, progress=False)
    study = optuna.load_study(study_name=res.study, storage=res.storage)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2
    for t in done:
        assert t.user_attrs[CLOCK_ATTR] == 200.0
        assert t.user_attrs["latency"] > 1  # registers inside the layer: not the top's one
        assert t.user_attrs["fmax"] >= 200.0
    rows = csv_rows(res.out_dir / "trials.csv")
    assert {float(r[CLOCK_ATTR]) for r in rows} == {200.0}
    best = json.loads((res.out_dir / "best.json").read_text())["best"]
    assert best and all(e[CLOCK_ATTR] == 200.0 for e in best)
    (v,) = (res.out_dir / "best").glob("trial_*/*.v")
    assert v.stem.endswith("_c200ecp5")  # the best design exported pipelined to the clock
