"""The CLIs' option tables: every ParamError an API raises names a parameter the CLI maps
to one of its own options, so users see the option, never the API's parameter name."""

from __future__ import annotations

import argparse
import ast
import inspect
from pathlib import Path

import pytest

import hdl.cli
import hdl.synth.cli
import search.cli
from hdl.export import export_network
from hdl.rtlsim import runner, verify_network
from hdl.synth.flow import check_target, check_timeout, synthesise
from hdl.synth.nextpnr import check_device
from qspec.cli import CliError, ParamError, option_error
from qspec.network import QuantisedNetwork

ROOT = Path(__file__).resolve().parents[1]
TINY8 = ROOT / "verilog_out" / "specs" / "jsc-tiny_relu_8b.json"


def _options(parser: argparse.ArgumentParser, *path: str) -> set[str]:
    """The option strings of the subcommand ``path`` (e.g. verify network)."""
    for name in path:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    return {o for a in parser._actions for o in a.option_strings}


def _raised_params(module: str) -> set[str]:
    """Literal first arguments of ``ParamError(...)`` and ``_check_count(...)`` in a module."""
    tree = ast.parse((ROOT / module).read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "ParamError",
            "_check_count",
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant):
                out.add(arg.value)
    return out


@pytest.mark.parametrize(
    "table, api, parser_path",
    [
        (hdl.cli.VERIFY_OPTIONS, verify_network, (hdl.cli.build_parser(), "verify", "network")),
        (hdl.cli.EXPORT_OPTIONS, export_network, (hdl.cli.build_parser(), "export", "network")),
        (search.cli.VERIFY_OPTIONS, verify_network, (search.cli._parser(), "verify")),
        (hdl.synth.cli.SYNTH_OPTIONS, synthesise, (hdl.cli.build_parser(), "synth")),
    ],
)
def test_tables_map_api_parameters_to_real_options(table, api, parser_path):
    params = set(inspect.signature(api).parameters)
    assert set(table) <= params, set(table) - params
    options = _options(*parser_path)
    assert set(table.values()) <= options, set(table.values()) - options


def test_every_literal_param_raised_has_an_option():
    """A new ParamError in these modules needs a table entry (or this test fails)."""
    verify = _raised_params("hdl/rtlsim/verify.py")
    export = _raised_params("hdl/export.py") | _raised_params("hdl/network.py")
    assert verify and export
    assert verify <= set(hdl.cli.VERIFY_OPTIONS), verify - set(hdl.cli.VERIFY_OPTIONS)
    assert export <= set(hdl.cli.EXPORT_OPTIONS), export - set(hdl.cli.EXPORT_OPTIONS)
    # verify exports a spec with impl and stages (never one layer)
    assert export - {"layer"} <= set(hdl.cli.VERIFY_OPTIONS)
    synth = _raised_params("hdl/synth/flow.py") - {"top"}  # top: synthesise's own argument
    assert synth <= set(hdl.synth.cli.SYNTH_OPTIONS)


def _param_error(call) -> ParamError:
    with pytest.raises(ParamError) as info:
        call()
    return info.value


VERIFY_CASES = [
    (dict(samples=-1), "samples", "--samples must be an integer in [0, 10000000], got -1"),
    (dict(random_codes=-2), "random_codes", "--random must be an integer in [0, 1000000], got -2"),
    (dict(random_codes=10**6 + 1), "random_codes", "--random must be an integer in [0, 1000000]"),
    (dict(seed=True), "seed", "--seed must be an integer in [0, 4294967295], got True"),
    (dict(impl="lut"), "impl", "--impl must be one of adder_tree|adder_tree_nosub|mul"),
    (dict(stages=99), "stages", "--stages must be an int in [0, "),
    (dict(stages=[1, 2]), "stages", "--stages must be an int in [0, "),
]


@pytest.mark.parametrize("kwargs, param, message", VERIFY_CASES)
def test_verify_network_parameter_errors(kwargs, param, message):
    e = _param_error(lambda: verify_network(TINY8, **kwargs))
    assert e.param == param
    assert str(option_error(e, hdl.cli.VERIFY_OPTIONS)).startswith(message)


@pytest.mark.parametrize("param", ["impl", "stages", "argmax"])
def test_verify_exported_design_rejects_spec_options(tmp_path, param):
    value = {"impl": "mul", "stages": 1, "argmax": True}[param]
    e = _param_error(lambda: verify_network(tmp_path / "a.v", **{param: value}))
    assert e.param == param
    msg = str(option_error(e, hdl.cli.VERIFY_OPTIONS))
    assert msg.startswith(f"--{param} is only for a spec JSON: ")


def test_verify_inputs_and_sim(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    e = _param_error(lambda: verify_network(TINY8, inputs=bad))
    assert e.param == "inputs"
    assert str(option_error(e, hdl.cli.VERIFY_OPTIONS)).startswith(f"--inputs '{bad}': not valid")
    if runner.cocotb_problem() is not None:
        pytest.skip(runner.cocotb_problem())
    e = _param_error(lambda: verify_network(TINY8, sim="modelsim", samples=0))
    assert e.param == "sim"
    assert str(option_error(e, search.cli.VERIFY_OPTIONS)).startswith(
        "--sim must be one of verilator|icarus, got 'modelsim'"
    )


def test_export_network_parameter_errors():
    net = QuantisedNetwork.read(TINY8, "SPEC")
    for kwargs, param, message in [
        (dict(layer="fc9"), "layer", "--layer must be one of fc1, got 'fc9'"),
        (dict(impl="dsp"), "impl", "--impl must be one of adder_tree|adder_tree_nosub|mul"),
        (dict(stages=-1), "stages", "--stages must be an int in [0, "),
    ]:
        e = _param_error(lambda kw=kwargs: export_network(net, **kw))
        assert e.param == param
        assert str(option_error(e, hdl.cli.EXPORT_OPTIONS)).startswith(message)


def test_synth_parameter_errors():
    cases = [
        (lambda: check_target("xc7"), "--target must be one of ecp5, ice40, got 'xc7'"),
        (lambda: check_timeout(0.0), "--timeout must be a finite number of seconds > 0, got 0.0"),
        (
            lambda: check_timeout(float("nan")),
            "--timeout must be a finite number of seconds > 0, got nan",
        ),
        (
            lambda: check_timeout(float("inf")),
            "--timeout must be a finite number of seconds > 0, got inf",
        ),
    ]
    for call, message in cases:
        assert str(option_error(_param_error(call), hdl.synth.cli.SYNTH_OPTIONS)) == message
    assert check_timeout(None) is None and check_timeout(1) == 1
    assert _param_error(lambda: check_device("ecp5", "XC7")).param == "device"


def test_option_error_leaves_other_errors_alone():
    assert str(option_error(ValueError("design 'x': no such file\nmore"), {"x": "--x"})) == (
        "design 'x': no such file"
    )
    e = ParamError("width", "width must be in [2, 32], got 1")
    assert str(option_error(e, {})) == "width must be in [2, 32], got 1"  # not in the table
    assert str(option_error(e, {"width": "--width"})) == "--width must be in [2, 32], got 1"
    assert isinstance(option_error(e, {}), CliError) and isinstance(e, ValueError)
    assert ParamError("a", "b is bad").renamed("--a") == "--a: b is bad"


def test_leaky_table_maps_spec_parameters_to_export_options():
    from hdl.export import export_leaky
    from qspec.leaky import LeakyReLUSpec

    params = set()
    for api in (LeakyReLUSpec.shift_variant, LeakyReLUSpec.from_slope, export_leaky):
        params |= set(inspect.signature(api).parameters)
    assert set(hdl.cli.LEAKY_OPTIONS) <= params, set(hdl.cli.LEAKY_OPTIONS) - params
    options = _options(hdl.cli.build_parser(), "export", "leaky-relu")
    assert set(hdl.cli.LEAKY_OPTIONS.values()) <= options


def test_missing_module_names_its_pyproject_extra():
    """The install hint for a missing optional module comes from pyproject's extras (the
    installed metadata), import names that differ from the distribution's included."""
    import tomllib

    from qspec.cli import extra_for, install_hint

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = extras["optional-dependencies"]
    modules = {"torch": "models", "sklearn.metrics": "models", "optuna": "search",
               "matplotlib": "search", "optuna_dashboard": "scale", "psycopg": "scale",
               "pyosys": "fast", "cocotb": "sim", "verilator": "sim"}  # fmt: skip
    for module, extra in modules.items():
        assert extra_for(module) == extra, module
        dist = {"sklearn.metrics": "scikit-learn", "optuna_dashboard": "optuna-dashboard"}
        assert any(r.startswith(dist.get(module, module)) for r in extras[extra]), module
    assert extra_for("numpy") is None and extra_for("nonexistent_mod") is None
    assert install_hint("cocotb") == "pip install 'hwfirst[sim]'"
