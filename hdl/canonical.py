"""``python -m hdl.canonical DIR``: rewrite the canonical Verilog set (``nox -s export``).

The LeakyReLU modules of :func:`hdl.export.canonical_modules`, plus the shipped
networks jsc-tiny and jsc-toy (ReLU, 8 bits) built from the spec JSONs checked
in under ``verilog_out/specs/`` (written once by ``python -m models spec NAME
--bits 8 --out verilog_out/specs/NAME_relu_8b.json``, which also writes the
test split's input codes beside them).  Everything here is torch-free and
deterministic; ``tests/test_export.py`` fails when ``verilog_out/`` is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qspec.files import atomic_write
from qspec.network import QuantisedNetwork

from .export import (
    ExportedModule,
    canonical_modules,
    export_network,
    network_files,
    read_network_inputs,
    with_files,
    write_modules,
)

SPEC_DIR = Path(__file__).resolve().parent.parent / "verilog_out" / "specs"
# (spec stem, Linear impl, pipeline stages per layer)
NETWORKS = (("jsc-tiny_relu_8b", "adder_tree", 1), ("jsc-toy_relu_8b", "adder_tree", 1))
SIDE_SUFFIXES = (".spec.json", ".vectors.json")


def canonical_networks() -> list[tuple[ExportedModule, dict[str, str]]]:
    """Each shipped network's module (manifest entry naming its files) and side files."""
    out = []
    for stem, impl, stages in NETWORKS:
        net = QuantisedNetwork.from_json((SPEC_DIR / f"{stem}.json").read_text())
        inputs = read_network_inputs(SPEC_DIR / f"{stem}.inputs.json", net, "inputs")
        mod = export_network(net, impl=impl, stages=stages)
        files = network_files(net, mod, inputs)
        out.append((with_files(mod, files), files))
    return out


def canonical_outputs() -> tuple[list[ExportedModule], dict[str, str]]:
    """Every canonical module and every side file (name -> text) in ``verilog_out/``."""
    mods, files = list(canonical_modules()), {}
    for mod, side in canonical_networks():
        mods.append(mod)
        files |= side
    return mods, files


def write_canonical(out: Path) -> list[ExportedModule]:
    mods, files = canonical_outputs()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # side files of networks no longer in the set
        if old.name.endswith(SIDE_SUFFIXES) and old.name not in files:
            old.unlink()
    for name, text in files.items():
        atomic_write(out / name, text)
    write_modules(mods, out, replace=True)
    return mods


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "verilog_out")
    for mod in write_canonical(out):
        print(f"{out / (mod.name + '.v')}")
