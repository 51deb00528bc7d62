"""Data flows one way: every import in the source (module or function level) respects the
layers ``qspec`` < ``hdl``, ``models`` < ``search`` < ``studies`` < ``bench``, nothing imports
``tests``, and importing ``qspec`` or ``hdl`` never loads torch (qspec may import it inside a
function that was handed a tensor, so torch is loaded already)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

OURS = ("qspec", "hdl", "models", "search", "studies", "bench", "tests")
LAZY_TORCH = ("qspec",)  # torch only inside functions, never at module level
EXCEPTIONS = {
    # ``python -m search study`` of earlier versions forwards to ``python -m studies.leaky``
    ("search/cli.py", "studies"),
}
FORBIDDEN = {
    "qspec": {"hdl", "models", "search", "studies", "bench", "tests", "torch"},
    "hdl": {"models", "search", "studies", "bench", "tests", "torch"},
    "models": {"hdl", "search", "studies", "bench", "tests"},
    "search": {"studies", "bench", "tests"},
    "studies": {"bench", "tests"},
    "bench": {"tests"},
}


def imports(source: str, *, module_level: bool = False) -> set[str]:
    """The top-level package of every absolute import in ``source`` (or only at module level)."""
    found = set()
    tree = ast.parse(source)
    for node in tree.body if module_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_imports_are_found():
    src = "import torch.nn\nfrom tests.x import y\ndef f():\n    from search import run\n"
    assert imports(src) == {"torch", "tests", "search"}
    assert imports(src, module_level=True) == {"torch", "tests"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_back_up(package):
    bad = []
    for f in sorted((ROOT / package).rglob("*.py")):
        rel, src = str(Path(f).relative_to(ROOT)), f.read_text()
        found = imports(src)
        if package in LAZY_TORCH and "torch" not in imports(src, module_level=True):
            found.discard("torch")
        bad += [
            f"{rel} imports {n}" for n in found & FORBIDDEN[package] if (rel, n) not in EXCEPTIONS
        ]
    assert not bad, "\n".join(bad)
