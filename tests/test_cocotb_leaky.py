"""cocotb tests of the exported LeakyReLU Verilog against the PyTorch reference.

Expected values are computed here (``models.leaky_reference``) and handed to the
testbenches in an ``.npz`` file; the simulators never import torch.  Which
simulators run is chosen by ``SIM`` (see ``tests.sim``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hdl.export import export_leaky
from models.leaky_reference import InexactReference, leaky_relu_reference
from qspec.leaky import LeakyReLUSpec
from tests import sim as simlib

S, M = LeakyReLUSpec.shift_variant, LeakyReLUSpec.mult_variant
SEED = 20240602
RANDOM_VECTORS = 20_000


@dataclass(frozen=True)
class Case:
    id: str
    spec: LeakyReLUSpec
    exhaustive: bool = True
    runtime_slope: bool = False

    @property
    def param(self):
        return pytest.param(self, id=self.id)


# Plain cores. Rounding and overflow are spread over the cases; negative slopes,
# slopes above one and narrower outputs make both overflow modes really act.
CORE_CASES = [
    # W=8, exhaustive
    Case("shift_w8_n2", S(8, 4, 2)),
    Case(
        "shift_w8_n8_rn_wrap_o6",
        S(8, 4, 8, rounding="nearest", overflow="wrap", out_width=6, out_frac_width=3),
    ),
    Case("shift_w8_n3_rn_o6f1", S(8, 4, 3, rounding="nearest", out_width=6, out_frac_width=1)),
    Case("mult_w8_0.3", M(8, 4, 0.3)),
    Case("mult_w8_m1.5_rn", M(8, 4, -1.5, rounding="nearest")),
    Case("mult_w8_3.25_wrap", M(8, 4, 3.25, overflow="wrap")),
    Case(
        "mult_w8_rt_rn_wrap", M(8, 4, 0.5, rounding="nearest", overflow="wrap"), runtime_slope=True
    ),
    # W=16, exhaustive (65 536 inputs each)
    Case("shift_w16_n3", S(16, 8, 3)),
    Case(
        "shift_w16_n5_rn_wrap_o12",
        S(16, 8, 5, rounding="nearest", overflow="wrap", out_width=12, out_frac_width=6),
    ),
    Case("mult_w16_77/256", M(16, 8, 77 / 256)),
    Case("mult_w16_m0.7_rn_wrap", M(16, 8, -0.7, rounding="nearest", overflow="wrap")),
    Case("mult_w16_2.5_sw6", M(16, 8, 2.5, slope_width=6, slope_frac_width=2)),
    Case("mult_w16_rt_rn", M(16, 8, 0.1, rounding="nearest"), runtime_slope=True),
    # W=24 and W=32: seeded random vectors plus edge cases
    Case("shift_w24_n7_rn", S(24, 12, 7, rounding="nearest"), exhaustive=False),
    Case("mult_w24_m0.3_wrap", M(24, 12, -0.3, overflow="wrap"), exhaustive=False),
    Case(
        "shift_w32_n11_wrap_o24",
        S(32, 16, 11, overflow="wrap", out_width=24, out_frac_width=10),
        exhaustive=False,
    ),
    Case(
        "mult_w32_1.75_rn",
        M(32, 16, 1.75, slope_width=16, slope_frac_width=12, rounding="nearest"),
        exhaustive=False,
    ),
    Case(
        "mult_w32_rt_wrap",
        M(32, 16, -0.25, slope_width=16, slope_frac_width=12, overflow="wrap"),
        exhaustive=False,
        runtime_slope=True,
    ),
]


def _edges(lo: int, hi: int) -> list[int]:
    return sorted(v for v in {lo, lo + 1, -1, 0, 1, hi - 1, hi} if lo <= v <= hi)


def core_vectors(case: Case) -> tuple[np.ndarray, np.ndarray | None]:
    """Input codes (all of them, or seeded random plus edges) and runtime slope codes."""
    fmt = case.spec.in_fmt
    rng = np.random.default_rng([SEED, zlib.crc32(case.id.encode())])
    if case.exhaustive:
        x = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    else:
        rand = rng.integers(fmt.min_code, fmt.max_code, RANDOM_VECTORS, endpoint=True)
        x = np.concatenate([np.array(_edges(fmt.min_code, fmt.max_code), np.int64), rand])
    if not case.runtime_slope:
        return x, None
    sf = case.spec.slope_fmt
    assert sf is not None
    slope = rng.integers(sf.min_code, sf.max_code, x.size, endpoint=True)
    edges = np.array(_edges(sf.min_code, sf.max_code), np.int64)
    # every edge slope meets the most negative, the largest and a random input
    x = np.concatenate([x, np.repeat([fmt.min_code, fmt.max_code, -1], edges.size)])
    slope = np.concatenate([slope, np.tile(edges, 3)])
    return x, slope


def reference(case: Case, x: np.ndarray, slope: np.ndarray | None) -> np.ndarray:
    y = leaky_relu_reference(case.spec, x, slope)
    # The torch reference and the integer semantics the generator implements must agree.
    semantic = np.asarray(case.spec.forward(x, slope))
    diff = np.flatnonzero(y != semantic)
    assert diff.size == 0, f"torch reference != qspec at x={x[diff[:5]].tolist()}"
    return y


def write_core_vectors(
    path: Path, case: Case, x: np.ndarray, y: np.ndarray, slope: np.ndarray | None
) -> Path:
    arrays = {
        "x": x,
        "y": y,
        "in_width": case.spec.in_fmt.width,
        "out_width": case.spec.out_fmt.width,
    }
    if slope is not None:
        arrays["slope"] = slope
    np.savez(path, **arrays)
    return path


def run_core(
    sim: str, case: Case, test_dir: Path, module: tuple[str, str] | None = None
) -> simlib.Result:
    """Build the case's core (or ``module``: name, Verilog) and check it against the reference."""
    if module is None:
        mod = export_leaky(case.spec, runtime_slope=case.runtime_slope)
        module = (mod.name, mod.verilog)
    build = simlib.build(sim, module[0], {f"{module[0]}.v": module[1]})
    x, slope = core_vectors(case)
    y = reference(case, x, slope)
    vectors = write_core_vectors(test_dir / "vectors.npz", case, x, y, slope)
    return simlib.run(build, "hdl.rtlsim.tb_leaky", test_dir, {"HWFIRST_TB_VECTORS": str(vectors)})


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
@pytest.mark.parametrize("case", [c.param for c in CORE_CASES])
def test_core(sim: str, case: Case, tmp_path: Path) -> None:
    simlib.assert_passed(run_core(sim, case, tmp_path), expected_tests=1)


# --- the reference itself ----------------------------------------------------


def test_reference_refuses_inexact_float64() -> None:
    spec = M(32, 16, 30000.5)  # slope code 30000.5 * 2**16 ~ 2**31
    leaky_relu_reference(spec, [1, -1, 1000])  # small products are fine
    with pytest.raises(InexactReference, match="2\\*\\*53"):
        leaky_relu_reference(spec, [-(2**31)])
    with pytest.raises(InexactReference):
        leaky_relu_reference(M(32, 16, 1.0), [-(2**31)], slope_code=[-(2**31)])


def test_reference_matches_semantics_on_edges() -> None:
    for case in CORE_CASES:
        fmt = case.spec.in_fmt
        x = np.array(_edges(fmt.min_code, fmt.max_code), np.int64)
        y = leaky_relu_reference(case.spec, x)
        assert y.tolist() == [case.spec.forward(int(v)) for v in x], case.id


# --- streamed form -----------------------------------------------------------

STREAM_BEATS = 1200


@dataclass(frozen=True)
class StreamCase:
    id: str
    spec: LeakyReLUSpec
    lanes: int
    stages: int
    runtime_slope: bool = False

    @property
    def param(self):
        return pytest.param(self, id=self.id)


STREAM_CASES = [
    StreamCase("shift_w8_l4_p1", S(8, 4, 2), lanes=4, stages=1),
    StreamCase("mult_w8_l4_p1", M(8, 4, 0.3), lanes=4, stages=1),
    StreamCase(
        "mult_w16_l1_p0_rn_wrap",
        M(16, 8, -0.7, rounding="nearest", overflow="wrap"),
        lanes=1,
        stages=0,
    ),
    StreamCase(
        "shift_w16_l2_p2_rn_wrap_o12",
        S(16, 8, 5, rounding="nearest", overflow="wrap", out_width=12, out_frac_width=6),
        lanes=2,
        stages=2,
    ),
    StreamCase(
        "mult_w12_rt_l3_p2_rn",
        M(12, 6, 1.5, rounding="nearest"),
        lanes=3,
        stages=2,
        runtime_slope=True,
    ),
    StreamCase(
        "mult_w8_rt_l2_p0_wrap",
        M(8, 4, -2.0, overflow="wrap"),
        lanes=2,
        stages=0,
        runtime_slope=True,
    ),
]


def stream_vectors(case: StreamCase) -> tuple[np.ndarray, np.ndarray | None]:
    """``STREAM_BEATS`` beats; for W <= 12 every input code appears at least once."""
    fmt = case.spec.in_fmt
    rng = np.random.default_rng([SEED, zlib.crc32(case.id.encode())])
    codes = np.array(_edges(fmt.min_code, fmt.max_code), np.int64)
    if fmt.width <= 12:
        codes = np.arange(fmt.min_code, fmt.max_code + 1, dtype=np.int64)
    n = case.lanes * max(STREAM_BEATS, -(-codes.size // case.lanes))
    if codes.size < n:
        rand = rng.integers(fmt.min_code, fmt.max_code, n - codes.size, endpoint=True)
        codes = np.concatenate([codes, rand])
    x = rng.permutation(codes).reshape(-1, case.lanes)
    if not case.runtime_slope:
        return x, None
    sf = case.spec.slope_fmt
    assert sf is not None
    return x, rng.integers(sf.min_code, sf.max_code, x.shape[0], endpoint=True)


def run_stream(
    sim: str,
    case: StreamCase,
    test_dir: Path,
    seed: int = 1,
    module: tuple[str, str] | None = None,
) -> simlib.Result:
    """Build the streamed case (or ``module``: name, Verilog) and run both stream tests."""
    if module is None:
        mod = export_leaky(
            case.spec, lanes=case.lanes, stages=case.stages, runtime_slope=case.runtime_slope
        )
        module = (mod.name, mod.verilog)
    build = simlib.build(sim, module[0], {f"{module[0]}.v": module[1]})
    x, slope = stream_vectors(case)
    y = leaky_relu_reference(case.spec, x, None if slope is None else slope[:, None])
    arrays = {
        "x": x,
        "y": y,
        "in_width": case.spec.in_fmt.width,
        "out_width": case.spec.out_fmt.width,
        "lanes": case.lanes,
        "stages": case.stages,
    }
    if slope is not None:
        arrays["slope"] = slope
    np.savez(test_dir / "vectors.npz", **arrays)
    env = {"HWFIRST_TB_VECTORS": str(test_dir / "vectors.npz"), "HWFIRST_TB_SEED": str(seed)}
    return simlib.run(build, "tests.tb_leaky_stream", test_dir, env, seed=seed)


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", simlib.sim_params())
@pytest.mark.parametrize("case", [c.param for c in STREAM_CASES])
def test_stream(sim: str, case: StreamCase, tmp_path: Path) -> None:
    simlib.assert_passed(run_stream(sim, case, tmp_path), expected_tests=2)


# --- simulator selection -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("verilator", ["verilator"]), ("icarus", ["icarus"]), ("all", ["verilator", "icarus"])],
)
def test_sim_variable_picks_simulators(value, expected, monkeypatch) -> None:
    monkeypatch.setenv("SIM", value)
    assert simlib.requested_simulators() == expected


def test_sim_default_falls_back_to_icarus(monkeypatch) -> None:
    monkeypatch.delenv("SIM", raising=False)
    monkeypatch.setattr(simlib, "simulator_problem", lambda s: "gone" if s == "verilator" else None)
    assert simlib.requested_simulators() == ["icarus"]
    monkeypatch.setattr(simlib, "simulator_problem", lambda s: None)
    assert simlib.requested_simulators() == ["verilator"]


def test_bad_sim_variable_is_an_error(monkeypatch) -> None:
    monkeypatch.setenv("SIM", "modelsim")
    with pytest.raises(pytest.UsageError, match="verilator\\|icarus\\|all"):
        simlib.requested_simulators()


def test_missing_simulator_skips_but_fails_in_ci_with_sim_all(monkeypatch) -> None:
    monkeypatch.setattr(simlib, "simulator_problem", lambda s: f"{s} not installed")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("SIM", "all")
    with pytest.raises(pytest.skip.Exception, match="icarus not installed"):
        simlib.require("icarus")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and SIM=all"):
        simlib.require("icarus")
    monkeypatch.setenv("SIM", "icarus")  # CI, but only one simulator asked for: skip
    with pytest.raises(pytest.skip.Exception):
        simlib.require("icarus")
