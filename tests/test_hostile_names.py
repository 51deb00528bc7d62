"""Hostile names: a layer, spec, top or study name is an identifier (or nothing), so none
reaches Yosys' RTLIL text, a Yosys script or a path unescaped (issue #16).

Layer names and module tops follow ``qspec.names.IDENTIFIER``; spec and study names may
also hold ``-`` (``jsc-toy``: ``qspec.names.NAME``).  The injection case runs a real
process with a fake ``yosys`` first on ``PATH``: it must never be called.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT
from tests.hostile import (
    Case,
    Outcome,
    params,
    python,
    ready,
    run_main,
    run_process,
    verdict,
)

SPEC = ROOT / "verilog_out" / "specs" / "jsc-tiny_relu_8b.json"  # one Linear layer, fc1
INJECT = "a\nend\nrtlil\n!touch PWNED\n#"
MARKER = "YOSYS_CALLED"


def spec_file(tmp: Path, *, layer=None, name=None) -> Path:
    """The shipped jsc-tiny spec with its layer name and/or spec name replaced."""
    d = json.loads(SPEC.read_text())
    if layer is not None:
        d["layers"][0]["name"] = layer
    if name is not None:
        d["name"] = name
    p = tmp / "spec.json"
    p.write_text(json.dumps(d))
    ready(tmp)  # the spec is an input: the command must not change it
    return p


def names(*words: str):
    """A check: the one stderr line names each of ``words`` (the key or option)."""

    def check(tmp: Path, out: Outcome) -> str | None:
        missing = [w for w in words if w not in out.stderr]
        return f"stderr does not name {missing}: {out.stderr.strip()[:200]!r}" if missing else None

    return check


def export(layer=None, name=None, *extra: str):
    def run(tmp: Path) -> Outcome:
        spec = spec_file(tmp, layer=layer, name=name)
        return run_main("hdl", ["export", "network", str(spec), "--out", str(tmp / "out"), *extra])

    return run


def verify(layer=None, name=None):
    def run(tmp: Path) -> Outcome:
        spec = spec_file(tmp, layer=layer, name=name)
        return run_main("hdl", ["verify", "network", str(spec), "--samples", "0", "--random", "1"])

    return run


BAD_LAYER = {
    "newline-injection": INJECT,
    "space": "fc 1",
    "unicode": "fç1",
    "empty": "",
    "too-long": "a" * 65,
    "leading-digit": "1fc",
    "dash": "fc-1",
    "dot": "fc.1",
    "backslash": "\\fc1",
    "semicolon": "fc1;",
    "dollar": "fc$1",
    "nul": "fc\x001",
    "tab": "fc\t1",
    "not-a-string": 5,
}
BAD_SPEC_NAME = {
    "newline": "net\nx",
    "space": "jsc toy",
    "unicode": "jsc-töy",
    "too-long": "n" * 65,
    "leading-digit": "1net",
    "slash": "../net",
    "leading-dash": "-net",
    "semicolon": "net;x",
}

CASES: list[Case] = []
for key, bad in BAD_LAYER.items():
    CASES.append(
        Case("names", f"export-layer-{key}", export(layer=bad), check=names("layers[0].name"))
    )
for key in ("newline-injection", "space", "unicode"):
    CASES.append(
        Case(
            "names",
            f"verify-layer-{key}",
            verify(layer=BAD_LAYER[key]),
            check=names("layers[0].name"),
        )
    )
for key, bad in BAD_SPEC_NAME.items():
    CASES.append(Case("names", f"export-spec-name-{key}", export(name=bad), check=names("name")))

# valid names are accepted exactly as before: the shipped ones, a 64-character one and none
for key, (layer, name) in {
    "shipped": (None, None),
    "longest-layer": ("a" * 64, None),
    "underscore-layer": ("_fc1", None),
    "no-spec-name": (None, ""),
    "longest-spec-name": (None, "n" * 64),
}.items():
    CASES.append(Case("names", f"export-valid-{key}", export(layer, name), exits=(0,)))


def _keyword(tmp: Path) -> Outcome:
    """A layer named like a Verilog keyword: an identifier, so accepted; Yosys escapes it."""
    out = export("module")(tmp)
    text = "".join(p.read_text() for p in (tmp / "out").glob("net_*.v"))
    if out.code == 0 and "\\module " not in text:
        return Outcome(1, out.stdout, "the keyword instance is not an escaped identifier")
    return out


CASES.append(Case("names", "export-layer-verilog-keyword", _keyword, exits=(0,)))


def _layer_option(value: str):
    def run(tmp: Path) -> Outcome:
        args = ["export", "network", str(SPEC), "--layer", value, "--out", str(tmp / "o")]
        return run_main("hdl", args)

    return run


for key, bad in {"newline": "fc1\n!x", "space": "fc 1", "empty": ""}.items():
    CASES.append(
        Case("names", f"export-layer-option-{key}", _layer_option(bad), check=names("--layer"))
    )


# --- hdl synth: a top module name reaches the Yosys script (``;`` separates commands) --------

EVIL_V = "module \\evil;!touch_PWNED (input a, output b);\n  assign b = a;\nendmodule\n"


def _synth(top: str | None):
    def run(tmp: Path) -> Outcome:
        (tmp / "evil.v").write_text(EVIL_V)
        args = ["synth", str(tmp / "evil.v"), "--no-cache", "--timeout", "60"]
        return run_main("hdl", args + ([] if top is None else ["--top", top]), cwd=tmp)

    return run


def _no_pwned(tmp: Path, out: Outcome) -> str | None:
    if any(tmp.rglob("PWNED")) or Path("PWNED").exists():
        return "a PWNED file was created"
    return names("top")(tmp, out)


CASES += [
    Case("names", "synth-top-option-escaped", _synth("evil;!touch_PWNED"), check=_no_pwned),
    Case("names", "synth-top-inferred-escaped", _synth(None), check=_no_pwned),
    Case("names", "synth-top-option-space", _synth("a b"), check=names("--top")),
]


# --- search: study names (config [storage] study and --study) become paths and study keys ----

BASE = (CONFIGS / "smoke.toml").read_text()


def _run_config(study: str | None, option: list[str], stem: str = "cfg"):
    def run(tmp: Path) -> Outcome:
        storage = "" if study is None else f"\n[storage]\nstudy = {json.dumps(study)}\n"
        cfg = tmp / f"{stem}.toml"
        cfg.write_text(BASE + storage)
        blocker = tmp / "out_is_a_file"  # a valid name gets only as far as --out: nothing runs
        blocker.write_text("x")
        return run_main("search", ["run", str(cfg), "--out", str(blocker), *option])

    return run


BAD_STUDY = {
    "newline": "s\nx",
    "space": "my study",
    "slash": "a/b",
    "dotdot": "..",
    "traversal": "../../etc",
    "unicode": "stüdy",
    "empty": "",
    "too-long": "s" * 65,
    "leading-digit": "1study",
    "not-a-string": 7,
}
for key, bad in BAD_STUDY.items():
    CASES.append(
        Case("names", f"config-study-{key}", _run_config(bad, []), check=names("storage.study"))
    )
for key in ("newline", "space", "slash", "dotdot", "unicode", "empty", "too-long"):
    CASES.append(
        Case(
            "names",
            f"run-study-option-{key}",
            _run_config(None, ["--study", BAD_STUDY[key]]),
            check=names("--study"),
        )  # fmt: skip
    )
CASES += [
    # the default study name is the file's stem: a stem that is not a name is named as such
    Case(
        "names", "config-stem-space", _run_config(None, [], "my cfg"), check=names("storage.study")
    ),
    # valid names get as far as the --out check (exit 2 naming --out, not the name)
    Case("names", "config-study-valid-dash", _run_config("my-study_2", []), check=names("--out")),
    Case(
        "names",
        "run-study-option-valid",
        _run_config(None, ["--study", "s1"]),
        check=names("--out"),
    ),
]


def _models_name(tmp: Path) -> Outcome:
    return run_main("models", ["eval", "jsc tiny\n!x", "--checkpoints", str(tmp)])


CASES.append(
    Case("names", "models-name-newline", _models_name, check=names("model must be one of"))
)


# --- the injection itself, as a real process with a fake yosys first on PATH ----------------


def _fake_yosys_env(tmp: Path) -> dict:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "yosys"
    fake.write_text(f"#!/bin/sh\ntouch '{tmp / MARKER}'\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if k != "AMARANTH_USE_YOSYS"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _process(layer: str):
    def run(tmp: Path) -> Outcome:
        spec = spec_file(tmp, layer=layer)
        argv = python("-m", "hdl", "export", "network", str(spec), "--out", str(tmp / "out"))
        return run_process(argv, cwd=tmp, env=_fake_yosys_env(tmp), timeout=60)

    return run


def _untouched(tmp: Path, out: Outcome) -> str | None:
    if (tmp / "PWNED").exists() or any(tmp.rglob("PWNED")):
        return "PWNED was created"
    if (tmp / MARKER).exists():
        return "the yosys on PATH was called"
    return None


CASES += [
    Case("names", "process-injection", _process(INJECT), check=_untouched),
    Case("names", "process-valid-no-system-yosys", _process("fc1"), exits=(0,), check=_untouched),
]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile(case, tmp_path):
    assert verdict(case, tmp_path) is None


def test_fake_yosys_is_callable(tmp_path):
    """The injection cases mean something only if the fake yosys is what PATH finds."""
    env = _fake_yosys_env(tmp_path)
    assert shutil.which("yosys", path=env["PATH"]) == str(tmp_path / "bin" / "yosys")


# --- which Yosys runs: never one from PATH unless the user asks -------------------------------


def _small_export():
    from hdl.export import export_leaky
    from qspec.leaky import LeakyReLUSpec

    return export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2))


def test_export_ignores_a_yosys_on_path(tmp_path, monkeypatch):
    env = _fake_yosys_env(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("AMARANTH_USE_YOSYS", raising=False)
    assert "module lrelu_shift_w8_f4_n2" in _small_export().verilog
    assert not (tmp_path / MARKER).exists()
    assert "AMARANTH_USE_YOSYS" not in os.environ  # restored after the conversion


def test_export_respects_an_explicit_amaranth_use_yosys(tmp_path, monkeypatch):
    env = _fake_yosys_env(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("AMARANTH_USE_YOSYS", "system")
    with pytest.raises(Exception):  # noqa: B017 - whatever the fake's exit 1 becomes
        _small_export()
    assert (tmp_path / MARKER).exists()  # the user's choice was honoured


@pytest.mark.parametrize("cli", ["synth", "search"])
def test_bad_yosys_backend_variable_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HWFIRST_YOSYS_BACKEND", "bogus")
    if cli == "synth":
        argv = ["synth", str(ROOT / "verilog_out" / "lrelu_shift_w8_f4_n2.v"), "--no-cache"]
        out = run_main("hdl", argv)
    else:
        out = run_main("search", ["run", str(CONFIGS / "smoke.toml"), "--out", str(tmp_path)])
    assert out.error == "" and out.code == 2, out
    assert out.lines == [
        f"python -m {'hdl' if cli == 'synth' else 'search'}: error: $HWFIRST_YOSYS_BACKEND must "
        "be one of pyosys, yowasp, got 'bogus'"
    ]
