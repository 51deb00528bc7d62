"""The before/after table of the hostile-input suite: class -> cases -> clean.

``python -m tests.hostile_table [--json FILE]`` runs every ``CASES`` list of the
``tests/test_hostile_*.py`` modules against the code on ``sys.path`` and prints one row
per class (run it with ``PYTHONPATH`` pointing at an older checkout to measure before).
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
from collections import Counter
from pathlib import Path

from tests.hostile import verdict

HERE = Path(__file__).parent


def cases():
    for f in sorted(HERE.glob("test_hostile_*.py")):
        yield from getattr(importlib.import_module(f"tests.{f.stem}"), "CASES", ())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write every verdict here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each unclean case")
    a = ap.parse_args(argv)
    tried, clean, rows = Counter(), Counter(), []
    for c in cases():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                why = verdict(c, Path(tmp))
            except Exception as e:  # noqa: BLE001 - a case that cannot even be set up
                why = f"setup: {type(e).__name__}: {e}"
        tried[c.cls] += 1
        clean[c.cls] += why is None
        rows.append({"class": c.cls, "id": c.id, "clean": why is None, "why": why})
        if why and a.verbose:
            print(f"  {c.cls}/{c.id}: {why}")
    print("| class | cases | clean |\n|---|---|---|")
    for k in tried:
        print(f"| {k} | {tried[k]} | {clean[k]} |")
    print(f"| all | {sum(tried.values())} | {sum(clean.values())} |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
