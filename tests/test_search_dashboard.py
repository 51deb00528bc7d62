"""optuna-dashboard serves a search study (SQLite URL and journal file, as the README says).

The dashboard runs as the real ``optuna-dashboard`` command on loopback on a free port;
its JSON API must list the study and its trials, within a bounded time.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from search.records import POINT_ATTR
from search.storage import open_storage

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small_study(url: str, name: str, n: int = 4) -> None:
    import optuna

    study = optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    for i in range(n):
        t = study.ask()
        x = t.suggest_int("fc1.weight_width", 2, 8, step=2)
        t.set_user_attr(POINT_ATTR, f"p{i}")
        t.set_user_attr("lut_eq", float(10 * x))
        study.tell(t, x / 10)


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:  # loopback only
        return json.loads(r.read())


def _dashboard(storage_arg: str):
    exe = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    if not Path(exe).exists():
        pytest.fail("optuna-dashboard is not installed (pip install -e '.[scale]')")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, storage_arg, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}"


def _studies(base: str, proc) -> list[dict]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"optuna-dashboard exited: {proc.stderr.read().decode()[-500:]}")
        try:
            return _get(f"{base}/api/studies")["study_summaries"]
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                pytest.fail(f"optuna-dashboard did not answer within {START_TIMEOUT} s")
            time.sleep(0.3)


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_dashboard_serves_the_study(tmp_path, kind):
    if kind == "sqlite":
        path = tmp_path / "demo" / "study.db"
        url = arg = f"sqlite:///{path}"
    else:
        path = tmp_path / "demo" / "study.journal"
        url, arg = f"journal://{path}", str(path)  # the dashboard takes the journal's path
    _small_study(url, "demo", n=4)
    proc, base = _dashboard(arg)
    try:
        studies = _studies(base, proc)
        assert [s["study_name"] for s in studies] == ["demo"]
        detail = _get(f"{base}/api/studies/{studies[0]['study_id']}")
        trials = detail["trials"]
        assert len(trials) == 4
        assert {a["key"] for a in trials[0]["user_attrs"]} >= {POINT_ATTR, "lut_eq"}
        for t in trials:  # the served values are the stored ones
            luts = {a["key"]: a["value"] for a in t["user_attrs"]}["lut_eq"]
            assert t["values"][0] == pytest.approx(float(luts) / 100)
    finally:
        _stop(proc)
    assert proc.returncode is not None
