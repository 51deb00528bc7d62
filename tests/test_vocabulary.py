"""Every vocabulary tuple and target table has one home; a copy elsewhere fails here.

The source of qspec/, hdl/, models/, search/ and bench/ is parsed with ``ast``: a
tuple/list/set literal of strings equal (as a set) to a registered vocabulary, or a
literal assigned to a vocabulary name, outside that vocabulary's home module fails.
Derived views (``TARGETS = targets.TARGET_NAMES``, comprehensions over the registry)
are not copies and pass.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from importlib import metadata
from pathlib import Path

import pytest

from hdl import params, targets
from hdl.resources import Resources
from models import modelspec, qconfig
from qspec import fixed, leaky

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("qspec", "hdl", "models", "search", "bench")

# vocabulary name -> (home module, its value); the literals are the independent reference
VOCABULARY = {
    "LINEAR_IMPLS": ("hdl/params.py", params.LINEAR_IMPLS),
    "TARGET_NAMES": ("hdl/targets.py", targets.TARGET_NAMES),
    "DATASETS": ("models/modelspec.py", modelspec.DATASETS),
    "SPLITS": ("models/modelspec.py", modelspec.SPLITS),
    "ACTIVATIONS": ("models/modelspec.py", modelspec.ACTIVATIONS),
    "ROUNDINGS": ("qspec/fixed.py", fixed.ROUNDINGS),
    "OVERFLOWS": ("qspec/fixed.py", fixed.OVERFLOWS),
    "LEAKY_IMPLS": ("qspec/leaky.py", leaky.LEAKY_IMPLS),
    "CALIBRATIONS": ("models/qconfig.py", qconfig.CALIBRATIONS),
}
EXPECTED = {
    "LINEAR_IMPLS": {"adder_tree", "adder_tree_nosub", "mul"},
    "TARGET_NAMES": {"ecp5", "ice40"},
    "DATASETS": {"digits16", "jsc"},
    "SPLITS": {"val", "test"},
    "ACTIVATIONS": {"relu", "leaky_relu"},
    "ROUNDINGS": {"floor", "nearest"},
    "OVERFLOWS": {"saturate", "wrap"},
    "LEAKY_IMPLS": {"shift", "mult"},
    "CALIBRATIONS": {"mse", "max"},
}
# names that must not be bound to a literal outside their home (None: no module may)
NAME_HOMES = {
    **{name: home for name, (home, _) in VOCABULARY.items()},
    "IMPLS": None,
    "TARGETS": "hdl/targets.py",
    "MAX_STAGES": "hdl/params.py",
    "MAX_LANES": "hdl/params.py",
    "CELL_CLASSES": None,
    "CARRY_LUT_WEIGHT": None,
    "DSP_DEFAULT": None,
    "DEVICES": None,
    "PARTS": None,
    "NETWORK_DEVICE": None,
    "TABLE_OURS": None,
}


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


def _string_sets(tree: ast.AST):
    for node in ast.walk(tree):
        elts = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else []
        if elts and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts):
            yield node.lineno, frozenset(e.value for e in node.elts)


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _bindings(tree: ast.AST):
    """(line, name, value) of every assignment, tuple unpacking split element by element."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            pairs = [(node.target, node.value)]
        else:
            continue
        while pairs:
            target, value = pairs.pop()
            if isinstance(target, ast.Name):
                yield node.lineno, target.id, value
            elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                pairs.extend(zip(target.elts, value.elts, strict=False))


def copies(path: Path, source: str) -> list[str]:
    rel = path.relative_to(ROOT).as_posix() if path.is_absolute() else str(path)
    tree = ast.parse(source)
    found = []
    for line, values in _string_sets(tree):
        for name, (home, value) in VOCABULARY.items():
            if values == frozenset(value) and rel != home:
                found.append(f"{rel}:{line}: a copy of {name} (import it from {home})")
    for line, name, value in _bindings(tree):
        if name in NAME_HOMES and rel != NAME_HOMES[name] and _is_literal(value):
            how = f"derive it from {NAME_HOMES[name]}" if NAME_HOMES[name] else "derive it"
            found.append(f"{rel}:{line}: {name} redefined as a literal ({how})")
    return found


def test_vocabulary_values():
    for name, (_, value) in VOCABULARY.items():
        assert set(value) == EXPECTED[name], name
        assert len(set(value)) == len(value), name
    assert tuple(m.value for m in fixed.Rounding) == fixed.ROUNDINGS
    assert tuple(m.value for m in fixed.Overflow) == fixed.OVERFLOWS
    assert params.MAX_STAGES == 16


def test_no_copies_in_the_source():
    found = [c for p in _sources() for c in copies(p, p.read_text())]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        'IMPLS = ("adder_tree", "adder_tree_nosub", "mul")',
        'KINDS = ["mul", "adder_tree", "adder_tree_nosub"]',
        "MAX_STAGES = 8",
        'A, TARGETS = 1, ("ecp5", "ice40")',
        'def f(x):\n    return x in ("floor", "nearest")',
        'PARTS = {"ecp5": {"LFE5U-25F": ["--25k"]}}',
    ],
)
def test_a_copy_is_found(snippet):
    assert copies(Path("search/elsewhere.py"), snippet)


def test_derived_views_are_not_copies():
    ok = (
        "from hdl.params import LINEAR_IMPLS as IMPLS\n"
        "TARGETS = targets.TARGET_NAMES\n"
        "NETWORK_DEVICE = {n: t.network_device for n, t in TARGETS.items()}\n"
    )
    assert copies(Path("hdl/synth/elsewhere.py"), ok) == []


# --- the registry covers what the code reads ----------------------------------------------


RESOURCE_FIELDS = {"lut4", "ffs", "carries", "dsps", "brams"}


@pytest.mark.parametrize("name", targets.TARGET_NAMES)
def test_target_record(name):
    t = targets.target(name)
    assert t.name == name
    kinds = set(t.cell_classes.values())
    assert {"lut4", "carries"} <= kinds, "every target needs a LUT4 and a carry cell class"
    assert kinds <= RESOURCE_FIELDS <= {f.name for f in dataclasses.fields(Resources)}
    assert t.carry_lut_weight >= 0
    assert t.dsp_flag == ("-nodsp" if t.dsp_default else "-dsp")  # the flag flips the default
    assert "abc -dress -lut 4" in t.classic_luts and t.classic_luts.endswith("\n")
    assert t.devices and all(isinstance(a, tuple) and a for a in t.devices.values())
    assert t.default_device == next(iter(t.devices))
    assert t.network_device is None or t.network_device in t.devices
    assert t.linear_impl in params.LINEAR_IMPLS
    assert t.pnr_freq_mhz > 0
    assert importlib.util.find_spec(t.nextpnr_module) is not None
    assert metadata.version(t.nextpnr_dist)


def test_target_error_is_one_line():
    with pytest.raises(ValueError, match=r"^target must be one of ecp5, ice40, got 'xc7'$"):
        targets.target("xc7")


def test_views_derive_from_the_registry():
    from hdl import synth
    from hdl.synth import network, nextpnr
    from search import config

    assert synth.TARGETS is targets.TARGET_NAMES is config.TARGETS
    assert config.IMPLS is params.LINEAR_IMPLS and config.MAX_STAGES == params.MAX_STAGES
    assert config.DATASETS is modelspec.DATASETS and config.SPLITS is modelspec.SPLITS
    assert {n: dict(p) for n, p in nextpnr.PARTS.items()} == {
        n: dict(t.devices) for n, t in targets.TARGETS.items()
    }
    assert network.NETWORK_DEVICE == {"ecp5": "LFE5U-85F", "ice40": None}
    for name in targets.TARGET_NAMES:
        assert nextpnr.default_device(name) == targets.target(name).default_device
        assert nextpnr.check_device(name, None) == nextpnr.default_device(name)


def test_lut_equivalents_by_target():
    # independent numbers: ECP5 counts a CCU2C as two LUT4s, iCE40 its SB_CARRY as none
    assert Resources("ecp5", lut4=10, carries=3).lut_eq == 16
    assert Resources("ice40", lut4=10, carries=3).lut_eq == 10
    assert Resources("other", lut4=10, carries=3).lut_eq == 10


def test_preferred_impl_in_search_config():
    from search.config import loads_config

    base = '[model]\nname = "jsc-toy"\n[metrics.accuracy]\n[hardware]\ntarget = "{}"\n'
    impls = {t: loads_config(base.format(t)).hardware.impl for t in targets.TARGET_NAMES}
    assert impls == {"ecp5": "adder_tree", "ice40": "adder_tree_nosub"}
