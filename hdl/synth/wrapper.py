"""A registered wrapper around a module, so nextpnr has register-to-register paths to time.

Inputs come from a shift register fed by one pin and outputs are captured in a
register, so the core sits between two register banks; the captured outputs
leave through a loadable shift register (one mux level). Serialising the pins
keeps even wide designs within the 39 I/Os of the iCE40 UP5K's sg48 package.
A port named ``clk`` is driven by the wrapper clock, ``rst`` by a pin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WRAPPER_TOP = "hwfirst_wrap"
_PORTLINE = re.compile(r"^(input|output|inout)\s+(?:\[(-?\d+):(-?\d+)\]\s+)?(\S+)\s*$")


@dataclass(frozen=True)
class WirePort:
    direction: str  # "input" | "output"
    width: int
    name: str


def parse_portlist(log: str, top: str) -> tuple[WirePort, ...]:
    """The ports of ``top`` from the output of Yosys' ``portlist`` pass."""
    ports, inside = [], False
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("module "):
            inside = line.split()[1].lstrip("\\") == top
            continue
        m = _PORTLINE.match(line) if inside else None
        if m:
            direction, hi, lo, name = m.groups()
            width = abs(int(hi) - int(lo)) + 1 if hi is not None else 1
            ports.append(WirePort(direction, width, name.lstrip("\\")))
    return tuple(ports)


def _esc(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def registered_wrapper(top: str, ports: tuple[WirePort, ...]) -> str:
    """Verilog text of module ``hwfirst_wrap`` instantiating ``top`` between registers."""
    if any(p.direction == "inout" for p in ports):
        raise ValueError(f"module {top!r} has inout ports; the registered wrapper needs in/out")
    ins = [p for p in ports if p.direction == "input" and p.name not in ("clk", "rst")]
    outs = [p for p in ports if p.direction == "output"]
    ni, no = sum(p.width for p in ins), sum(p.width for p in outs)
    lines = [f"module {WRAPPER_TOP}(input clk, input rst, input din, input load, output dout);"]
    conns, pos = [], 0
    if ni:
        lines.append(f"  reg [{ni - 1}:0] sin;")
        lines.append(
            "  always @(posedge clk) sin <= " + (f"{{sin[{ni - 2}:0], din}};" if ni > 1 else "din;")
        )
    for p in ins:
        conns.append(f".{_esc(p.name)}(sin[{pos + p.width - 1}:{pos}])")
        pos += p.width
    if no:
        lines.append(f"  wire [{no - 1}:0] y;")
    pos = 0
    for p in outs:
        conns.append(f".{_esc(p.name)}(y[{pos + p.width - 1}:{pos}])")
        pos += p.width
    names = {p.name for p in ports}
    conns += [f".{n}({n})" for n in ("clk", "rst") if n in names]
    lines.append(f"  {_esc(top)} dut({', '.join(conns)});")
    if no:
        shift = f"{{1'b0, so[{no - 1}:1]}}" if no > 1 else "1'b0"
        lines += [
            f"  reg [{no - 1}:0] yr, so;",
            "  always @(posedge clk) yr <= y;",
            f"  always @(posedge clk) so <= load ? yr : {shift};",
            "  assign dout = so[0];",
        ]
    else:
        lines.append("  assign dout = 1'b0;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
