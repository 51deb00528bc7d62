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

from qspec.network import QuantisedNetwork
from qspec.vectors import read_inputs

from .design import ManifestEntry, design_files, entries_of, write_manifest
from .export import ExportedModule, canonical_modules, export_network

SPEC_DIR = Path(__file__).resolve().parent.parent / "verilog_out" / "specs"
# (spec stem, Linear impl, pipeline stages per layer)
NETWORKS = (("jsc-tiny_relu_8b", "adder_tree", 1), ("jsc-toy_relu_8b", "adder_tree", 1))
SIDE_SUFFIXES = (".spec.json", ".vectors.json")


def canonical_networks() -> list[tuple[ExportedModule, ManifestEntry, dict[str, str]]]:
    """Each shipped network's module, manifest entry and design files (name -> text)."""
    out = []
    for stem, impl, stages in NETWORKS:
        net = QuantisedNetwork.from_json((SPEC_DIR / f"{stem}.json").read_text())
        inputs = read_inputs(SPEC_DIR / f"{stem}.inputs.json", net, "inputs")
        mod = export_network(net, impl=impl, stages=stages)
        out.append((mod, *design_files(net, mod, inputs)))
    return out


def canonical_outputs() -> tuple[dict[str, ManifestEntry], dict[str, str]]:
    """Every canonical module's manifest entry and every file (name -> text) in
    ``verilog_out/``, side files before the Verilog."""
    mods = canonical_modules()
    entries, files = entries_of(mods), {}
    for mod, entry, side in canonical_networks():
        entries[mod.name] = entry
        files |= side
    return entries, files | {f"{m.name}.v": m.verilog for m in mods}


def write_canonical(out: Path) -> list[str]:
    entries, files = canonical_outputs()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():  # side files of networks no longer in the set
        if old.name.endswith(SIDE_SUFFIXES) and old.name not in files:
            old.unlink()
    write_manifest(out, entries, files, replace=True)
    return [e.file for e in entries.values()]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "verilog_out")
    for name in write_canonical(out):
        print(f"{out / name}")
