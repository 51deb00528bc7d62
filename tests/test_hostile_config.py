"""Hostile inputs to reading and running: configs, specs and manifests that are not what
they claim (``cls="config"``), a reference design that cannot be measured or normalised
(``cls="reference"``: no study may be left behind), and runs that fail or would stall
(``cls="runs"``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import pytest

from tests.conftest import ROOT
from tests.hostile import Case, params, python, run_process, verdict
from tests.procs import children, kill_caller, reap
from tests.test_hostile_writes import SEARCH_CFG, SPEC, run_main

BOM = "\ufeff"

FAST = SEARCH_CFG.replace('study = "w"', 'study = "c"')  # hardware off, one trial


def _search(tmp: Path, text: str | bytes, *extra: str, name: str = "c.toml"):
    cfg = tmp / name
    cfg.write_bytes(text if isinstance(text, bytes) else text.encode())
    return run_main("search", ["run", str(cfg), "--out", str(tmp / "res"), "--no-progress", *extra])


def _says(*words: str):
    def check(tmp: Path, o) -> str | None:
        text = o.stderr.lower()
        missing = [w for w in words if w.lower() not in text]
        return f"stderr lacks {missing}: {o.stderr.strip()[-300:]!r}" if missing else None

    return check


def _export(tmp: Path, spec: Path, *extra: str):
    return run_main("hdl", ["export", "network", str(spec), "--out", str(tmp / "out"), *extra])


def _spec_bytes(data: bytes):
    def run(tmp: Path):
        p = tmp / "net.spec.json"
        p.write_bytes(data)
        return _export(tmp, p)

    return run


DEEP = b"[" * 100_000 + b"]" * 100_000


def _deep_inputs(tmp: Path):
    p = tmp / "in.json"
    p.write_bytes(DEEP)
    return _export(tmp, SPEC, "--inputs", str(p))


def _manifest_dir(tmp: Path):
    (tmp / "out" / "manifest.json").mkdir(parents=True)
    return _export(tmp, SPEC)


def _config_dir(tmp: Path):
    (tmp / "c.toml").mkdir()
    return run_main("search", ["run", str(tmp / "c.toml"), "--out", str(tmp / "res")])


@contextlib.contextmanager
def _no_module(name: str):
    with mock.patch.dict(sys.modules, {name: None}):
        yield


def _missing_optuna(tmp: Path):
    with _no_module("optuna"):
        return _search(tmp, FAST)


def _missing_torch(tmp: Path):
    with _no_module("torch"):
        return run_main("models", ["spec", "jsc-tiny", "--bits", "4", "--out", str(tmp / "n.json")])


def _quant_config(text: str | None):
    def run(tmp: Path):
        q = tmp / "q.toml"
        if text is None:
            q.mkdir()
        else:
            q.write_text(text)
        argv = ["spec", "jsc-tiny", "--config", str(q), "--out", str(tmp / "n.json")]
        return run_main("models", argv)

    return run


CONFIG = [
    Case("config", "quant-toml-directory", _quant_config(None), check=_says("directory")),
    Case("config", "quant-toml-bom", _quant_config(BOM + "[default]\nwidth = 4\n"), exits=(0,)),
    Case("config", "toml-bom", lambda tmp: _search(tmp, BOM + FAST), exits=(0,)),
    Case(
        "config",
        "toml-binary",
        lambda tmp: _search(tmp, b"\x00\xff\xfe" * 50),
        check=_says("c.toml"),
    ),
    Case("config", "toml-directory", _config_dir, check=_says("directory")),
    Case(
        "config",
        "toml-missing",
        lambda tmp: run_main("search", ["run", str(tmp / "no.toml")]),
        check=_says("no.toml"),
    ),
    Case("config", "spec-bom", _spec_bytes(BOM.encode() + SPEC.read_bytes()), exits=(0,)),
    Case("config", "spec-binary", _spec_bytes(b"\x00\xff\xfe" * 50), check=_says("net.spec")),
    Case("config", "spec-deep", _spec_bytes(DEEP), check=_says("net.spec")),
    Case(
        "config",
        "spec-directory",
        lambda tmp: (tmp / "d.json").mkdir() or _export(tmp, tmp / "d.json"),
        check=_says("directory"),
    ),
    Case("config", "inputs-deep", _deep_inputs, check=_says("in.json")),
    Case("config", "manifest-directory", _manifest_dir, check=_says("manifest.json")),
    Case("config", "missing-optuna", _missing_optuna, check=_says("pip install 'hwfirst[search]'")),
    Case("config", "missing-torch", _missing_torch, check=_says("pip install 'hwfirst[models]'")),
]

# --- the reference design ---------------------------------------------------------------

HW = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2]
act_width = [8]
[strategy]
name = "random"
n_trials = 1
[storage]
study = "r"
[hardware]
target = "ecp5"
[metrics.accuracy]
scale = 1.0
[metrics.lut_eq]
scale = 0.5
[score.reference.default]
weight_width = 2
act_width = 8
"""
ZERO_DSPS = HW + "[metrics.dsps]\nscale = 0.1\n"  # adder trees use no DSP: a zero reference

_CACHE: list[Path] = []


def _warm_cache() -> Path:
    """A synthesis cache holding the HW config's reference design (synthesised once)."""
    if not _CACHE:
        d = Path(tempfile.mkdtemp(prefix="hostile-cache-"))
        atexit.register(shutil.rmtree, d, True)  # shared by the cases: gone at exit
        with mock.patch.dict(os.environ, {"HWFIRST_CACHE_DIR": str(d / "cache")}):
            o = _search(d, HW)
        assert o.code == 0, o.stderr
        _CACHE.append(d / "cache")
    return _CACHE[0]


def _no_study(tmp: Path, o) -> str | None:
    db = tmp / "res" / "r" / "study.db"
    if db.exists():
        names = [r[0] for r in sqlite3.connect(db).execute("SELECT study_name FROM studies")]
        if names:
            return f"a study was left behind: {names}"
    return None


def _with_cache(tmp: Path, warm: bool) -> dict[str, str]:
    cache = tmp / "cache"
    if warm:
        shutil.copytree(_warm_cache(), cache)
    return {"HWFIRST_CACHE_DIR": str(cache)}


def _zero_reference(tmp: Path):
    with mock.patch.dict(os.environ, _with_cache(tmp, True)):
        return _search(tmp, ZERO_DSPS)


def _bogus_backend(tmp: Path):
    env = _with_cache(tmp, False) | {"HWFIRST_YOSYS_BACKEND": "bogus"}
    with mock.patch.dict(os.environ, env):
        return _search(tmp, HW)


def _crashing_yosys(tmp: Path, cfg: str | None = None):
    """``cfg`` (default: the reference-only HW config) with every Yosys run segfaulting."""

    def crash(code, args, cwd, timeout):
        return -11, "Segmentation fault\n", False

    env = _with_cache(tmp, False)
    with mock.patch.dict(os.environ, env), mock.patch("hdl.synth.yosys.run_child", crash):
        return _search(tmp, HW if cfg is None else cfg)


def _one_line_exit1(tmp: Path, o) -> str | None:
    if len(o.lines) != 1:
        return f"{len(o.lines)} stderr lines: {o.stderr.strip()[-300:]!r}"
    return _no_study(tmp, o)


def _garbage_cache(tmp: Path):
    env = _with_cache(tmp, False)
    Path(env["HWFIRST_CACHE_DIR"]).mkdir()
    (Path(env["HWFIRST_CACHE_DIR"]) / "synth.sqlite3").write_bytes(b"not a database\n" * 64)
    with mock.patch.dict(os.environ, env):
        return _search(tmp, HW)


def _read_only_cache(tmp: Path):
    """Every entry is cached, but the directory is read-only.  Root ignores chmod, so
    SQLite is made to behave as on a read-only mount: a read-write open of the WAL
    database fails (no ``-shm`` can be created), a read-only immutable open works."""
    env = _with_cache(tmp, True)
    real = sqlite3.connect

    def connect(database, *a, **k):
        if not (k.get("uri") and "mode=ro" in str(database)):
            raise sqlite3.OperationalError("unable to open database file")
        return real(database, *a, **k)

    with mock.patch.dict(os.environ, env), mock.patch("sqlite3.connect", connect):
        return _search(tmp, HW)


def _one_warning(tmp: Path, o) -> str | None:
    if len(o.lines) != 1 or "cache" not in o.stderr:
        return f"want one warning line naming the cache: {o.stderr.strip()[-300:]!r}"
    return None


REFERENCE = [
    Case("reference", "zero-dsps", _zero_reference, check=_says("metrics.dsps")),
    Case("reference", "zero-dsps-no-study", _zero_reference, check=_no_study),
    Case("reference", "bogus-backend", _bogus_backend, check=_says("HWFIRST_YOSYS_BACKEND")),
    Case("reference", "bogus-backend-no-study", _bogus_backend, check=_no_study),
    Case("reference", "crashing-yosys", _crashing_yosys, exits=(1,), check=_one_line_exit1),
    Case("reference", "garbage-cache", _garbage_cache, exits=(0,), check=_one_warning),
    Case("reference", "read-only-cache", _read_only_cache, exits=(0,), check=_one_warning),
]

# --- runs ---------------------------------------------------------------------------------

ALL_FAIL = HW.replace("[metrics.lut_eq]\n", "[metrics.lut_eq]\nreference = 1000.0\n")
ALL_FAIL = (
    ALL_FAIL.replace("scale = 1.0\n", "scale = 1.0\nreference = 1.0\n")
    .replace("n_trials = 1", "n_trials = 2")
    .replace("weight_width = [2]", "weight_width = [2, 3]")
)


def _all_failed(tmp: Path):
    return _crashing_yosys(tmp, ALL_FAIL)


BIG = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
act_width = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
bias_width = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
weight_frac_width = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
[strategy]
name = "brute_force"
[storage]
study = "big"
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
"""
BIG_HANG_S = 150  # enqueueing all 65,536 points first took ~9 minutes before trial 0


def _big_space(tmp: Path):
    """Brute force over 65,536 points, two trials: they run in a few seconds (batched
    enqueue), not after minutes.  No tight time limit: a loaded machine must not fail it."""
    (tmp / "big.toml").write_text(BIG)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = python("-m", "search", "run", str(tmp / "big.toml"), "--out", str(tmp / "res"))
    t = time.monotonic()
    o = run_process([*argv, "--trials", "2", "--no-progress"], env=env, timeout=BIG_HANG_S)
    o.stderr += f"\n(took {time.monotonic() - t:.0f} s)" if o.code else ""
    return o


def _trials_ran(tmp: Path, o) -> str | None:
    if "2 trials run" not in o.stdout:
        return f"no trial ran: {o.stdout.strip()[:200]!r}"
    return None


def _no_verilog(tmp: Path):
    """The best design's Verilog cannot be exported: said on stderr, not only in best.json."""
    from search.hardware import HardwareError

    o = _search(tmp, FAST)
    assert o.code == 0, o.stderr

    def fail(*a, **k):
        raise HardwareError("SynthError: the exporter broke")

    db = tmp / "res" / "c" / "study.db"
    with mock.patch("search.report.export_verilog", fail):
        return run_main("search", ["report", str(db), "--study", "c", "--out", str(tmp / "res")])


RUNS = [
    Case("runs", "best-without-verilog", _no_verilog, exits=(0,), check=_says("no verilog")),
    Case("runs", "all-failed", _all_failed, exits=(1,), check=_says("all 2 trials failed")),
    Case("runs", "brute-force-65536", _big_space, exits=(0,), check=_trials_ran),
]

CASES = [*CONFIG, *REFERENCE, *RUNS]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile(case, tmp_path):
    assert verdict(case, tmp_path) is None


# --- a killed run leaves no tool process and no work directory -------------------------


SILENT = """
import sys
from qspec.cli import run_cli
from hdl.synth.yosys import run_child, work_dir

def body():  # a tool that writes nothing (SIGPIPE would not end it): as ABC under yowasp
    with work_dir("yosys") as w:
        run_child("import time; time.sleep(120)", [], w, 600)
    return 0

sys.exit(run_cli("silent", body))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("tool", ["silent", "synth"])
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_run_leaves_no_child(sig, tool, tmp_path):
    """A run killed while its tool child runs (``python -m hdl synth``, or a child that
    never writes): the child dies too; SIGTERM removes the work directory at once, after
    SIGKILL the next run sweeps it."""
    import subprocess

    from hdl.synth.yosys import sweep_stale

    if tool == "synth":
        o = run_main("hdl", ["export", "network", str(SPEC), "--out", str(tmp_path / "d")])
        assert o.code == 0, o.stderr
        (verilog,) = (tmp_path / "d").glob("*.v")
        argv = python("-m", "hdl", "synth", str(verilog), "--no-cache", "--json")
    else:
        argv = python("-c", SILENT)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmpdir))
    kids: list[int] = []
    parent = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and parent.poll() is None:
            kids = children(parent.pid)
            if kids and list(tmpdir.glob("hwfirst-*/yosys-*")):
                break
            time.sleep(0.1)
        assert kids, f"no tool child seen: {parent.stderr.read().decode()[-300:]!r}"
        time.sleep(0.5)  # the tool is under way
        assert not kill_caller(parent, sig, kids), "a tool child outlived its run"
        (root,) = tmpdir.glob("hwfirst-*")
        if sig == "SIGKILL":
            assert list(root.iterdir())  # nobody was left to clean up ...
            sweep_stale(root)  # ... so the next run does
        assert not list(root.iterdir()), "a work directory was left behind"
    finally:
        reap(parent, kids)


def test_worker_reference_failure_is_a_tool_failure(tmp_path, monkeypatch):
    """A worker whose reference design fails reports it as such (the launcher exits 1)."""
    import queue

    from search.config import loads_config
    from search.workers import REFERENCE_FAILED, _worker

    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("hdl.synth.yosys.run_child", lambda *a: (-11, "Segfault\n", False))
    q = queue.Queue()
    url = f"journal://{tmp_path / 'r.journal'}"
    kwargs = dict(storage=url, study_name="r", out_dir=tmp_path)
    _worker(0, loads_config(HW), kwargs, q)
    index, ran, err = q.get_nowait()
    assert err.startswith(REFERENCE_FAILED) and "reference design failed" in err, err
    assert not (tmp_path / "r.journal").exists()  # the storage was never created
