"""Hostile outputs: every writing CLI refuses a path that exists and is not a regular file
(FIFO, device, socket, directory, a symlink to one) and survives a failing disk (ENOSPC,
EROFS, EACCES) with one line naming the file, leaving what was there untouched and no
half-written design directory (``cls="writes"``)."""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from unittest import mock

import pytest

from tests.hostile import Case, params, verdict
from tests.hostile import run_main as _run_main


def run_main(cli: str, argv, seconds: float = 60, **kw):
    """``tests.hostile.run_main`` with an alarm: a read of a FIFO would block forever."""
    import signal
    import subprocess

    def alarm(*_):
        raise subprocess.TimeoutExpired(cli, seconds)

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return _run_main(cli, argv, **kw)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


SPEC = Path(__file__).parent / "data" / "jsc-tiny-4bit.spec.json"
LEAKY = ["export", "leaky-relu", "--impl", "shift", "--width", "8", "--frac-width", "4"]
LEAKY += ["--shift", "2"]


def _net_files() -> dict[str, str]:
    """The file names `hdl export network SPEC` writes (its top depends on the spec)."""
    from hdl.design import design_files
    from hdl.export import export_network
    from qspec.network import QuantisedNetwork

    net = QuantisedNetwork.read(SPEC)
    _, files = design_files(net, export_network(net))
    return files


def _leaky_file() -> str:
    from hdl.export import export_leaky
    from qspec.leaky import LeakyReLUSpec

    return export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2)).name + ".v"


# --- what sits where a file is expected ---------------------------------------------------


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _chardev(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null


def _devfull(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a /dev/full


_SOCKETS: list[socket.socket] = []


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    _SOCKETS.append(s)  # kept open (bound) for the case


def _directory(p: Path) -> None:
    p.mkdir()
    (p / "keep.txt").write_text("mine\n")


def _link_devnull(p: Path) -> None:
    p.symlink_to("/dev/null")


def _link_fifo(p: Path) -> None:
    os.mkfifo(p.with_name(p.name + ".fifo"))
    p.symlink_to(p.name + ".fifo")


KINDS = {
    "fifo": _fifo,
    "chardev": _chardev,
    "devfull": _devfull,
    "socket": _socket,
    "directory": _directory,
    "symlink-devnull": _link_devnull,
    "symlink-fifo": _link_fifo,
}


def _names_path(out: str):
    def check(tmp: Path, o) -> str | None:
        line = " ".join(o.lines)
        return None if out in line else f"the line does not name {out}: {line!r}"

    return check


# --- disk failures (in-process: the OS calls fail as a full or read-only disk would) -----


@contextlib.contextmanager
def failing_disk(code: int, after: int = 0):
    """The ``after``+1-th file opened for writing by ``qspec.files`` fails with ``code``."""
    real = os.fdopen
    seen = [0]

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(code, os.strerror(code))

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fdopen(fd, mode="r", *a, **k):
        f = real(fd, mode, *a, **k)
        if "w" not in mode:
            return f
        seen[0] += 1
        return Full(f) if seen[0] > after else f

    with mock.patch("qspec.files.os.fdopen", fdopen):
        yield


@contextlib.contextmanager
def failing_create(code: int):
    """Creating any file in a directory fails (EROFS, EACCES): root ignores chmod."""

    def mkstemp(*a, **k):
        raise OSError(code, os.strerror(code))

    with mock.patch("qspec.files.tempfile.mkstemp", mkstemp):
        yield


def _no_new_files(expected: set[str] | None = None):
    """Nothing this run created is left in ``out`` (the directory is all or nothing)."""

    def check(tmp: Path, o) -> str | None:
        out = tmp / "out"
        # the lock that serialises exports into one directory stays (removing it is racy)
        left = sorted(p.name for p in out.iterdir() if p.name != ".manifest.json.lock")
        if set(left) != (expected or set()):
            return f"left behind: {left}"
        if not o.lines or not any(str(out) in ln for ln in o.lines):
            return f"the line does not name a file in {out}: {o.stderr.strip()!r}"
        return None

    return check


# --- the cases --------------------------------------------------------------------------


def _hdl_leaky(kind: str):
    def run(tmp: Path):
        out = tmp / "out"
        out.mkdir()
        KINDS[kind](out / _leaky_file())
        return run_main("hdl", [*LEAKY, "--out", str(out)])

    return Case("writes", f"hdl-leaky/{kind}", run, check=_names_path(_leaky_file()))


def _hdl_manifest(kind: str):
    def run(tmp: Path):
        out = tmp / "out"
        out.mkdir()
        KINDS[kind](out / "manifest.json")
        return run_main("hdl", [*LEAKY, "--out", str(out)])

    return Case("writes", f"hdl-manifest/{kind}", run, check=_names_path("manifest.json"))


def _hdl_network(kind: str, which: int):
    def run(tmp: Path):
        out = tmp / "out"
        out.mkdir()
        KINDS[kind](out / list(_net_files())[which])
        return run_main("hdl", ["export", "network", str(SPEC), "--out", str(out)])

    name = ("spec", "v")[which != 0]
    return Case("writes", f"hdl-network-{name}/{kind}", run)


def _models_spec(kind: str):
    def run(tmp: Path):
        out = tmp / "net.json"
        KINDS[kind](out)
        return run_main("models", ["spec", "jsc-tiny", "--bits", "4", "--out", str(out)])

    return Case("writes", f"models-spec/{kind}", run)


def _network_disk(code: int, after: int, pre: bool):
    def run(tmp: Path):
        out = tmp / "out"
        out.mkdir()
        if pre:  # a design directory from an earlier export stays as it was
            (out / "other.v").write_text("module other(); endmodule\n")
        with failing_disk(code, after):
            return run_main("hdl", ["export", "network", str(SPEC), "--out", str(out)])

    name = f"hdl-network/{errno.errorcode[code]}-file{after}" + ("-over-old" if pre else "")
    keep = {"other.v"} if pre else set()
    return Case("writes", name, run, exits=(1, 2), check=_no_new_files(keep))


def _network_create(code: int):
    def run(tmp: Path):
        out = tmp / "out"
        out.mkdir()
        with failing_create(code):
            return run_main("hdl", ["export", "network", str(SPEC), "--out", str(out)])

    return Case("writes", f"hdl-network/{errno.errorcode[code]}", run, exits=(1, 2),
                check=_no_new_files())  # fmt: skip


def _models_disk(code: int):
    def run(tmp: Path):
        with failing_disk(code, 1):  # the inputs file is written, the spec is not
            return run_main(
                "models", ["spec", "jsc-tiny", "--bits", "4", "--out", str(tmp / "out" / "n.json")]
            )

    def check(tmp: Path, o):
        left = sorted(p.name for p in (tmp / "out").iterdir())
        return f"left behind: {left}" if left else None

    return Case("writes", f"models-spec/{errno.errorcode[code]}", run, exits=(1, 2), check=check)


def _dev_full(cli: str, argv: list[str]):
    """``--out`` a /dev/full node.  A clone in the case's directory, never the real one:
    the code under test may be the broken code that replaces the node by a file."""

    def run(tmp: Path):
        _devfull(tmp / "full")
        return run_main(cli, [*argv, "--out", str(tmp / "full")])

    return Case("writes", f"{cli}-out-dev-full", run)


SEARCH_CFG = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 3]
[strategy]
name = "random"
n_trials = 1
[storage]
study = "w"
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
"""


def _search_run(kind: str, name: str):
    def run(tmp: Path):
        (tmp / "w.toml").write_text(SEARCH_CFG)
        (tmp / "res" / "w").mkdir(parents=True)
        KINDS[kind](tmp / "res" / "w" / name)
        return run_main(
            "search", ["run", str(tmp / "w.toml"), "--out", str(tmp / "res"), "--no-progress"]
        )

    def check(tmp: Path, o):  # refused before the study was created
        return "ran trials" if (tmp / "res" / "w" / "study.db").exists() else None

    return Case("writes", f"search-run-{name}/{kind}", run, check=check)


_STUDY: list[Path] = []


def _a_study() -> Path:
    """A finished study (hardware disabled), made once per process and copied per case."""
    if not _STUDY:
        d = Path(tempfile.mkdtemp(prefix="hostile-study-"))
        atexit.register(shutil.rmtree, d, True)  # shared by the cases: gone at exit
        (d / "w.toml").write_text(SEARCH_CFG)
        o = run_main("search", ["run", str(d / "w.toml"), "--out", str(d), "--no-progress"])
        assert o.code == 0, o.stderr
        _STUDY.append(d / "w" / "study.db")
    return _STUDY[0]


def _copy_study(tmp: Path) -> Path:
    import sqlite3

    db = tmp / "study.db"
    src, dst = sqlite3.connect(_a_study()), sqlite3.connect(db)
    src.backup(dst)  # the study is in WAL mode: its -wal file holds part of it
    src.close(), dst.close()
    return db


def _search_report(kind: str, name: str):
    def run(tmp: Path):
        db = _copy_study(tmp)
        (tmp / "res" / "w").mkdir(parents=True)
        KINDS[kind](tmp / "res" / "w" / name)
        return run_main("search", ["report", str(db), "--study", "w", "--out", str(tmp / "res")])

    return Case("writes", f"search-report-{name}/{kind}", run, check=_names_path(name))


def _search_report_disk(code: int):
    def run(tmp: Path):
        db = _copy_study(tmp)
        with failing_disk(code):
            return run_main(
                "search", ["report", str(db), "--study", "w", "--out", str(tmp / "res")]
            )

    return Case("writes", f"search-report/{errno.errorcode[code]}", run, exits=(1, 2))


CASES = [
    *(_hdl_leaky(k) for k in KINDS),
    *(_hdl_manifest(k) for k in ("fifo", "chardev", "socket", "symlink-devnull")),
    *(_hdl_network(k, w) for k in ("fifo", "chardev", "directory") for w in (0, -1)),
    *(_models_spec(k) for k in ("fifo", "chardev", "socket", "symlink-devnull")),
    _network_disk(errno.ENOSPC, 1, False),  # the spec is written, the .v is not
    _network_disk(errno.ENOSPC, 1, True),
    _network_disk(errno.ENOSPC, 2, False),  # the manifest
    _network_create(errno.EROFS),
    _network_create(errno.EACCES),
    _models_disk(errno.ENOSPC),
    _dev_full("hdl", LEAKY),
    _dev_full("models", ["spec", "jsc-tiny", "--bits", "4"]),
    *(_search_run(k, n) for k in ("fifo", "chardev") for n in ("best.json", "trials.csv")),
    _search_run("directory", "pareto.png"),
    *(_search_report(k, "trials.csv") for k in ("fifo", "chardev", "symlink-devnull")),
    _search_report("directory", "best.json"),
    _search_report_disk(errno.ENOSPC),
]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile(case, tmp_path):
    assert verdict(case, tmp_path) is None
