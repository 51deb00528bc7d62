"""``python -m hdl.canonical DIR``: rewrite the canonical Verilog set (``nox -s export``)."""

import sys
from pathlib import Path

from .export import canonical_modules, write_modules

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "verilog_out")
    mods = canonical_modules()
    write_modules(mods, out, replace=True)
    for mod in mods:
        print(f"{out / (mod.name + '.v')}")
