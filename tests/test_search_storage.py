"""Storages and ``--workers``: URL forms, N processes on one journal file sharing a brute-force
space exactly once, and a worker killed with SIGKILL mid-trial losing nothing.

The hardware step is :func:`fake_hw` (no synthesis): it records the worker's pid as a metric
and, with ``$FAKE_HW_DIR``, drops a marker file per call and sleeps ``$FAKE_HW_SLEEP`` seconds
so a test can kill a worker while its trial runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from search.config import loads_config
from search.records import ERROR_ATTR, POINT_ATTR, SKIPPED_ATTR
from search.storage import default_path, storage_url
from tests.conftest import load_study

TINY = """
[model]
name = "jsc-tiny"
dataset = "digits16"

[space.default]
weight_width = [2, 4, 6, 8]
act_width = [4, 8]

[strategy]
name = "brute_force"

[hardware]
target = "ecp5"

[metrics.accuracy]
scale = 1.0

[metrics.lut_eq]
scale = 0.5
"""


STALL_BITS = 14  # the point weight_width = 6, act_width = 8 (the reference design is 16)


def fake_hw(net, hw):
    """A stand-in for synthesis: LUTs from the weight widths, the worker's pid.

    ``$FAKE_HW_DIR``: a marker file per call; ``$FAKE_HW_SLEEP``: seconds per call;
    ``$FAKE_HW_STALL``: the point of :data:`STALL_BITS` writes ``stall-<pid>`` there and
    never returns (the first time), so a test can kill its worker mid-trial."""
    d = os.environ.get("FAKE_HW_DIR")
    if d:
        (Path(d) / f"{os.getpid()}-{time.monotonic_ns()}").touch()
    time.sleep(float(os.environ.get("FAKE_HW_SLEEP", "0")))
    bits = sum(lin.weight_fmt.width + lin.out_fmt.width for lin in net.linear_layers)
    stall = os.environ.get("FAKE_HW_STALL")
    # once only: a survivor still running when the killed trial's heartbeat goes stale
    # fails that trial and redoes its point itself (slow machines), and must not stall
    if stall and bits == STALL_BITS and not any(Path(stall).glob("stall-*")):
        (Path(stall) / f"stall-{os.getpid()}").touch()
        time.sleep(3600)
    return {"lut_eq": float(10 * bits), "latency": 1.0, "pid": float(os.getpid())}


def tiny_cfg():
    return loads_config(TINY, name="tiny")


def done_points(study) -> Counter:
    """Point key -> how many evaluated (complete, not skipped) trials hold it."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return Counter(t.user_attrs[POINT_ATTR] for t in trials if SKIPPED_ATTR not in t.user_attrs)


def all_points(cfg) -> set[str]:
    from search.space import SearchSpace

    space = SearchSpace.from_config(cfg)
    return {space.key(p) for p in space.grid()}


def load(url: str, name: str = "tiny"):
    return load_study(url, name)


def test_storage_urls(tmp_path):
    j = tmp_path / "s.journal"
    assert storage_url(str(j), "x") == f"journal://{j}"
    assert storage_url(f"journal://{j}", "x") == f"journal://{j}"
    assert storage_url("a.db", "x") == "sqlite:///a.db"
    assert storage_url(None, "x", tmp_path).startswith("sqlite:///")
    assert storage_url(None, "x", tmp_path, workers=2) == f"journal://{tmp_path}/x/study.journal"
    # a study started with workers resumes from its journal without them
    default_path("x", tmp_path, journal=True).parent.mkdir(parents=True)
    default_path("x", tmp_path, journal=True).touch()
    assert storage_url(None, "x", tmp_path) == f"journal://{tmp_path}/x/study.journal"
    with pytest.raises(ValueError, match=r"storage\.url\) must start with"):
        storage_url("redis://h/0", "x")


def test_workers_refuse_sqlite(tmp_path):
    from search.workers import run_workers

    with pytest.raises(ValueError, match="--workers 2 needs --storage journal"):
        run_workers(tiny_cfg(), 2, storage=f"sqlite:///{tmp_path}/a.db", out_dir=tmp_path)


def test_two_workers_brute_force_exactly_once(tmp_path, monkeypatch):
    from search.workers import run_workers

    monkeypatch.setenv("FAKE_HW_SLEEP", "0.3")  # long enough that both workers get points
    cfg = tiny_cfg()
    res = run_workers(
        cfg, 2, out_dir=tmp_path, hardware=fake_hw, progress=False, reports=False
    )  # the default storage with workers: the journal file
    assert res.run.storage == f"journal://{tmp_path}/tiny/study.journal"
    assert res.died == 0
    study = load(res.run.storage)
    counts = done_points(study)
    assert set(counts) == all_points(cfg) and set(counts.values()) == {1}
    assert res.run.total == 8
    pids = {t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs}
    assert len(pids) == 2, "both workers evaluated points"


def test_sigkill_worker_then_resume(tmp_path, monkeypatch):
    from optuna.trial import TrialState

    from search.workers import run_workers

    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("FAKE_HW_STALL", str(markers))
    monkeypatch.setenv("FAKE_HW_SLEEP", "0.3")  # both workers get points
    cfg = tiny_cfg()
    url = f"journal://{tmp_path}/s.journal"
    out: dict = {}

    def launch():
        out["res"] = run_workers(
            cfg, 2, storage=url, out_dir=tmp_path, hardware=fake_hw, progress=False, reports=False
        )

    th = threading.Thread(target=launch)
    th.start()
    deadline = time.monotonic() + 120
    while not any(markers.iterdir()):  # a worker is stuck inside the trial of one point
        assert time.monotonic() < deadline, "no worker reached the stalling point"
        time.sleep(0.05)
    victim = int(next(markers.iterdir()).name.removeprefix("stall-"))
    os.kill(victim, signal.SIGKILL)
    th.join(timeout=180)
    assert not th.is_alive()
    res = out["res"]
    # the launcher fails the dead trial, unless the other worker joined after the kill and
    # did so itself (then it also redid the point)
    assert res.died == 1 and res.recovered in (0, 1)

    study = load(url)
    dead = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(dead) == 1 and ERROR_ATTR not in dead[0].user_attrs
    assert dead[0].user_attrs.get("pid") is None  # killed before its metrics were recorded
    before = {
        t.number: t.value
        for t in study.get_trials(states=(TrialState.COMPLETE,))
        if SKIPPED_ATTR not in t.user_attrs
    }
    assert len(before) == 8 - res.recovered
    done = {study.trials[n].user_attrs[POINT_ATTR] for n in before}
    assert (dead[0].user_attrs[POINT_ATTR] in done) == (res.recovered == 0)

    monkeypatch.setenv("FAKE_HW_SLEEP", "0")
    monkeypatch.delenv("FAKE_HW_STALL")
    res2 = run_workers(
        cfg, 2, storage=url, out_dir=tmp_path, hardware=fake_hw, progress=False, reports=False
    )
    assert res2.died == 0
    study = load(url)
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after[n] == v for n, v in before.items()), "a completed trial was lost"
    counts = done_points(study)
    assert set(counts) == all_points(cfg) and set(counts.values()) == {1}
    assert res2.run.total == 8


def test_dead_trial_recovered_by_a_single_process_run(tmp_path):
    """A RUNNING trial nobody holds (its process died) is failed and redone on resume."""
    import optuna
    from optuna.trial import TrialState

    from search.run import run_study
    from search.storage import open_storage
    from search.strategies import enqueue_missing

    cfg = tiny_cfg()
    url = f"sqlite:///{tmp_path}/s.db"
    run_study(cfg, storage=url, n_trials=3, hardware=fake_hw, progress=False, reports=False)
    study = optuna.load_study(study_name="tiny", storage=open_storage(url))
    from search.space import SearchSpace

    enqueue_missing(study, SearchSpace.from_config(cfg), limit=1)
    orphan = study.ask()  # takes the waiting point and is left RUNNING, as by a killed worker
    assert study.trials[orphan.number].state == TrialState.RUNNING
    res = run_study(cfg, storage=url, hardware=fake_hw, progress=False, reports=False)
    study = optuna.load_study(study_name="tiny", storage=open_storage(url))
    assert study.trials[orphan.number].state == TrialState.FAIL
    counts = done_points(study)
    assert set(counts) == all_points(cfg) and set(counts.values()) == {1}
    assert res.total == 8


def test_cli_workers_with_sqlite_is_one_line(tmp_path, capsys):
    from search.cli import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    argv = ["run", str(cfg), "--workers", "2", "--storage", f"sqlite:///{tmp_path}/a.db"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--workers 2 needs --storage journal" in err and "\n" not in err
    assert not (tmp_path / "a.db").exists()


def test_repeated_design_skips_export_and_synthesis(tmp_path, monkeypatch):
    """hardware_metrics of a design seen before comes from the cache: no export, no Yosys;
    another pipeline depth is another key."""
    import types

    import hdl.synth.network as synth_network
    from hdl.resources import Resources
    from qspec.network import QuantisedNetwork
    from search.hardware import HardwareParams, hardware_metrics

    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HWFIRST_CACHE_URL", raising=False)
    calls = []

    def fake(net, target, **kw):
        calls.append(kw["stages"])
        return types.SimpleNamespace(total=Resources("ecp5", lut4=10 + kw["stages"], cells=1))

    monkeypatch.setattr(synth_network, "synthesise_network", fake)
    data = Path(__file__).parent / "data" / "jsc-tiny-4bit.spec.json"
    net = QuantisedNetwork.from_json(data.read_text())
    a = hardware_metrics(net, HardwareParams(stages=0))
    assert hardware_metrics(net, HardwareParams(stages=0)) == a and calls == [0]
    b = hardware_metrics(net, HardwareParams(stages=1))
    assert calls == [0, 1] and b["lut4"] == 11.0 and a["lut4"] == 10.0


def test_cli_workers_exit_1_when_a_worker_died(tmp_path, monkeypatch, capsys):
    """A dead worker leaves the study consistent but unfinished: say so and exit 1."""
    import search.workers
    from search.cli import main
    from search.run import run_study
    from search.workers import WorkersResult

    def one_dead(cfg, workers, **kw):
        kw = {k: v for k, v in kw.items() if k in ("storage", "study_name", "out_dir")}
        run = run_study(cfg, n_trials=2, hardware=fake_hw, progress=False, reports=False, **kw)
        return WorkersResult(run, workers, died=1, recovered=1)

    monkeypatch.setattr(search.workers, "run_workers", one_dead)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    url = f"journal://{tmp_path}/s.journal"
    argv = ["run", str(cfg), "--workers", "2", "--storage", url, "--out", str(tmp_path)]
    assert main([*argv, "--no-progress"]) == 1
    assert "1 worker(s) died; rerun the same command" in capsys.readouterr().out
