"""da4ml 0.6.0 as the reference for a constant-weight Linear layer (benchmark-only dependency).

``da4ml_linear(layer, name)`` traces exactly the layer's function on da4ml's
fixed-point variables -- ``y = requantise(x @ W.T + b, out_fmt, rounding,
overflow)`` on the same integer codes and formats -- lets da4ml's CMVM solver
build the adder graph and writes its combinational Verilog. The module has one
packed input ``model_inp`` (feature j at bits [j*W_in, (j+1)*W_in)) and one
packed output ``model_out`` (output k at [k*W_out, (k+1)*W_out)), two's
complement, like ``qspec``'s codes, so it can be checked against
``qspec.integer_forward.linear_forward`` bit for bit (:func:`check_on_vectors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from qspec.fixed import FixedFormat, Overflow, Rounding
from qspec.network import LinearSpec

_HELPERS = ("shift_adder.v", "negative.v", "mux.v", "multiplier.v", "binop.v", "lookup_table.v")


@dataclass(frozen=True)
class Da4mlLinear:
    name: str
    verilog: str  # the top module plus da4ml's helper modules it instantiates
    comb: object  # da4ml.types.CombLogic (its own bit-exact Python model)
    cost: float  # da4ml's adder-cost estimate


def _kif(fmt: FixedFormat) -> tuple[int, int, int]:
    """da4ml's (keep_negative, integer bits without sign, fraction bits) of a qspec format."""
    k = int(fmt.signed)
    return k, fmt.width - k - fmt.frac_width, fmt.frac_width


def _helpers_verilog(top: str) -> str:
    src = resources.files("da4ml.codegen.rtl.verilog") / "source"
    used = [h for h in _HELPERS if f"{h[:-2]} #(" in top or f"{h[:-2]} " in top]
    return "\n".join((src / h).read_text() for h in used)


def da4ml_linear(layer: LinearSpec, name: str | None = None, **solver_options) -> Da4mlLinear:
    """Trace ``layer`` with da4ml and return its combinational Verilog."""
    from da4ml.codegen.rtl.verilog.comb import comb_logic_gen
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    name = name or f"da4ml_{layer.name}"
    inp = FixedVariableArrayInput(layer.in_features, solver_options=solver_options or None)
    x = inp.quantize(*_kif(layer.in_fmt), overflow_mode="WRAP", round_mode="TRN")
    w = np.array(layer.weight, dtype=np.float64).T * 2.0**-layer.weight_fmt.frac_width
    b = np.array(layer.bias, dtype=np.float64) * 2.0**-layer.bias_fmt.frac_width
    acc = x @ w + b  # exact: da4ml tracks the full-precision interval of every node
    rnd = {Rounding.FLOOR: "TRN", Rounding.NEAREST: "RND"}[layer.rounding]
    ovf = {Overflow.SATURATE: "SAT", Overflow.WRAP: "WRAP"}[layer.overflow]
    y = acc.quantize(*_kif(layer.out_fmt), overflow_mode=ovf, round_mode=rnd)
    comb = comb_trace(inp, y)
    top = comb_logic_gen(comb, name)
    return Da4mlLinear(name, top + "\n" + _helpers_verilog(top), comb, float(comb.cost))


def packed_widths(comb) -> tuple[list[int], list[int]]:
    """Bit widths da4ml gives each input and output (it trims constant/unused bits)."""
    from da4ml.types import minimal_kif

    return [sum(minimal_kif(q)) for q in comb.inp_qint], [
        sum(minimal_kif(q)) for q in comb.out_qint
    ]


def reference_matches(layer: LinearSpec, ref: Da4mlLinear, x: np.ndarray) -> bool:
    """da4ml's own Python model of its graph equals qspec's integer reference on codes ``x``."""
    from qspec.integer_forward import linear_forward

    want = linear_forward(layer, x.astype(np.int64))
    real = np.asarray(ref.comb.predict(x * 2.0**-layer.in_fmt.frac_width), dtype=np.float64)
    got = np.round(real * 2.0**layer.out_fmt.frac_width).astype(np.int64)
    return bool(np.array_equal(got, want))


def check_on_vectors(
    layer: LinearSpec, ref: Da4mlLinear, x: np.ndarray, workdir: Path, timeout: float = 300
) -> int:
    """Simulate the Verilog with Icarus on codes ``x`` (N, in); return mismatches vs qspec."""
    import subprocess

    from qspec.integer_forward import linear_forward

    in_w, out_w = packed_widths(ref.comb)
    want = linear_forward(layer, x.astype(np.int64))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dut.v").write_text(ref.verilog)
    ni, no = sum(in_w), sum(out_w)
    lines = []
    for row in x:
        word, pos = 0, 0
        for v, w in zip(row, in_w, strict=True):
            word |= (int(v) & ((1 << w) - 1)) << pos if w else 0
            pos += w
        lines.append(f"{word:0{(ni + 3) // 4}x}")
    (workdir / "in.hex").write_text("\n".join(lines) + "\n")
    tb = f"""`timescale 1ns/1ps
module tb;
  reg [{ni - 1}:0] mem [0:{len(x) - 1}];
  reg [{ni - 1}:0] xin; wire [{no - 1}:0] yout; integer i;
  {ref.name} dut(.model_inp(xin), .model_out(yout));
  initial begin
    $readmemh("in.hex", mem);
    for (i = 0; i < {len(x)}; i = i + 1) begin xin = mem[i]; #1; $display("%h", yout); end
    $finish;
  end
endmodule
"""
    (workdir / "tb.v").write_text(tb)
    subprocess.run(
        ["iverilog", "-g2012", "-o", "sim", "tb.v", "dut.v"],
        cwd=workdir,
        check=True,
        timeout=timeout,
        capture_output=True,
    )
    out = subprocess.run(
        ["vvp", "-n", "sim"],
        cwd=workdir,
        check=True,
        timeout=timeout,
        capture_output=True,
        text=True,
    ).stdout.split()
    out = [o for o in out if all(c in "0123456789abcdefx" for c in o)]
    bad = 0
    fmt = layer.out_fmt
    for word_hex, exp in zip(out, want, strict=True):
        word, pos, got = int(word_hex, 16), 0, []
        for w, q in zip(out_w, ref.comb.out_qint, strict=True):
            raw = (word >> pos) & ((1 << w) - 1) if w else 0
            pos += w
            # da4ml's output k has its own (lsb, signedness): rescale to out_fmt codes
            if w and q.min < 0 and raw >> (w - 1):
                raw -= 1 << w
            got.append(int(round(raw * q.step * 2.0**fmt.frac_width)))
        bad += got != [int(v) for v in exp]
    return bad
