"""The mapped netlist of a design, and the Yosys cell models that simulate it.

:func:`synthesise_netlist` runs the metrics' own script (:mod:`hdl.synth.flow`: the same
``synth_<target>``, the same ABC9 settings and crash fallbacks) and has Yosys write the
mapped top as Verilog (``write_verilog -noattr``; the top keeps its port names).
:func:`cell_models` gives the simulation models of the cells that netlist instantiates,
taken from the target's library (:attr:`hdl.targets.Target.sim_library`, e.g.
``ecp5/cells_sim.v``) in the share directory of the Yosys backend in use, with its
```include``s read from beside it (each file once), and only the modules the netlist
needs (and those they instantiate): Icarus 11 cannot parse some models no netlist
uses (an elaboration-time ``$error`` in ECP5's ``TRELLIS_COMB``).  A netlist cell with
no model (ECP5's ``MULT18X18D`` is only a black box in Yosys) is a one-line
``ValueError``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from qspec.names import check_name

from .. import targets
from .flow import DEFAULT_TIMEOUT, FLOW_NOTES, _read_cmds, _synth_cmd, _synth_run, check_timeout
from .yosys import resolve_backend, share_dir

NETLIST_FILE = "netlist.v"
_ID = r"(?:\\\S+|[A-Za-z_][\w$]*)"  # plain or escaped
_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"')
_MODULE = re.compile(rf"^\s*(?:\(\*.*?\*\)\s*)?module\s+({_ID})")
_ENDMODULE = re.compile(r"\bendmodule\b")  # cells_ff.vh: a module a line
# an instance in write_verilog's layout: `TYPE #(` or `TYPE NAME (`
_INSTANCE = re.compile(rf"^\s*({_ID})\s+(?:#\s*\(|{_ID}\s*\()", re.M)
_KEYWORDS = frozenset(
    ("module", "input", "output", "inout", "wire", "reg", "assign", "always", "initial", "if",
     "else", "case", "begin", "end", "function", "task", "generate", "genvar", "integer",
     "localparam", "parameter")
)  # fmt: skip


@dataclass(frozen=True)
class Netlist:
    """A design's top after ``synth_<target>``, as Verilog; ``flow``: the mapping that ran."""

    verilog: str
    top: str
    target: str
    flow: str
    backend: str
    notes: tuple[str, ...] = ()
    seconds: float = 0.0


def synthesise_netlist(
    verilog: str,
    top: str,
    target: str = "ecp5",
    *,
    backend: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Netlist:
    """Synthesise ``top`` of ``verilog`` for ``target`` as the metrics do and return the
    mapped netlist.  Raises ``ValueError`` for bad input and
    :class:`~hdl.synth.flow.SynthError` when Yosys fails (after the fallbacks)."""
    t = targets.target(target)
    check_name("top", top)  # spliced into the Yosys script
    check_timeout(timeout)
    backend = resolve_backend(backend)

    def script(flow: str) -> str:
        return (
            _read_cmds(top, {}, "design.v")
            + _synth_cmd(t.name, top, t.dsp_default, flow)
            + f"\nwrite_verilog -noattr {NETLIST_FILE}\n"
        )

    t0 = time.monotonic()
    run, flow = _synth_run(script, {"design.v": verilog}, (NETLIST_FILE,), timeout, backend)
    notes = (FLOW_NOTES[flow],) if flow in FLOW_NOTES else ()
    return Netlist(
        run.outputs[NETLIST_FILE],
        top,
        t.name,
        flow,
        backend,
        notes,
        round(time.monotonic() - t0, 3),
    )


def netlist_cells(netlist: str) -> set[str]:
    """The module types instantiated in a ``write_verilog`` netlist."""
    return {m for m in _INSTANCE.findall(netlist) if m not in _KEYWORDS}


def _expand(path: Path, seen: set[Path]) -> list[str]:
    """``path``'s lines with each ```include`` replaced by the file (each file once)."""
    seen.add(path.resolve())
    lines: list[str] = []
    for line in path.read_text().splitlines():
        m = _INCLUDE.match(line)
        if m is None:
            lines.append(line)
            continue
        inc = (path.parent / m[1]).resolve()
        if inc not in seen:
            lines += _expand(inc, seen)
    return lines


def _modules(lines: list[str]) -> tuple[list[tuple[str | None, list[str]]], dict[str, str]]:
    """The library as chunks (module name or ``None`` for a directive outside modules, and
    its lines) and each module's text (the first definition of a name wins)."""
    chunks: list[tuple[str | None, list[str]]] = []
    bodies: dict[str, str] = {}
    current: tuple[str, list[str]] | None = None
    for line in lines:
        if current is None:
            m = _MODULE.match(line)
            if m is None:  # outside modules only directives matter (attributes do not)
                if line.lstrip().startswith("`"):
                    chunks.append((None, [line]))
                continue
            current = (m[1], [])
        current[1].append(line)
        if _ENDMODULE.search(line):
            name, body = current
            if name not in bodies:
                bodies[name] = "\n".join(body)
                chunks.append((name, body))
            current = None
    return chunks, bodies


def cell_models(
    target: str, netlist: str, sim: str, backend: str | None = None
) -> tuple[str, dict[str, str]]:
    """The Verilog of the cell models ``netlist`` needs on ``target`` and the defines
    ``sim`` needs for them (name -> value)."""
    t = targets.target(target)
    share = share_dir(backend)
    seen: set[Path] = set()
    lines: list[str] = []
    for rel in t.sim_library:
        path = share / rel
        if not path.is_file():
            raise ValueError(f"netlist: no cell models for {target} at {path}")
        lines += _expand(path, seen)
    chunks, bodies = _modules(lines)
    used = netlist_cells(netlist)
    missing = sorted(used - set(bodies))
    if missing:
        raise ValueError(
            f"netlist: the {target} netlist uses {', '.join(missing)}, which "
            f"{'/'.join(t.sim_library)} does not model"
        )
    needed, todo = set(), list(used)
    while todo:  # the models a model instantiates
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        todo += [
            other
            for other in bodies
            if other != name
            and other not in needed
            and re.search(rf"(?<![\w$\\]){re.escape(other)}(?![\w$])", bodies[name])
        ]
    out = [line for name, body in chunks if name is None or name in needed for line in body]
    defines = {d: "1" for d in t.sim_defines.get(sim, ())}
    return "\n".join(out) + "\n", defines
