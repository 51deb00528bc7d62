"""PostgreSQL: the multi-machine storage (heartbeats) and the synthesis cache in the same database.

Needs a server: ``$HWFIRST_TEST_PG`` (``.ci/run`` starts one on loopback and sets it).
Without one the tests skip with a one-line reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid

import pytest

from tests.conftest import load_study
from tests.test_search_storage import all_points, done_points, fake_hw, tiny_cfg

PG_ENV = "HWFIRST_TEST_PG"


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    why = None
    if not url:
        why = f"no PostgreSQL: set {PG_ENV}=postgresql://USER:PW@127.0.0.1/DB (.ci/run does)"
    else:
        import psycopg

        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as e:
            why = f"PostgreSQL at {PG_ENV} unreachable: {str(e).splitlines()[0]}"
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return url


VERILOG = """// nonce {nonce}
module add3 (input [3:0] a, input [3:0] b, input [3:0] c, output [5:0] y);
  assign y = a + b + c;
endmodule
"""


def _synth_elsewhere(url: str, verilog: str, cache_dir: str, queue) -> None:
    """Another 'machine': its own local cache dir, the shared URL from the environment."""
    os.environ["HWFIRST_CACHE_DIR"] = cache_dir
    os.environ["HWFIRST_CACHE_URL"] = url
    from hdl.synth.flow import synthesise

    r = synthesise(verilog, "add3", "ecp5")
    queue.put((r.cached, r.lut4))


def test_cache_table_shared_across_processes(pg_url, tmp_path):
    from hdl.synth.cache import SynthCache
    from hdl.synth.flow import synthesise

    verilog = VERILOG.format(nonce=uuid.uuid4().hex)
    shared = SynthCache(url=pg_url)
    n0 = shared.count()
    first = synthesise(verilog, "add3", "ecp5", cache=shared)
    assert not first.cached and shared.misses == 1
    assert shared.count() == n0 + 1
    assert SynthCache(tmp_path / "local").count() == 0  # nothing went to a local file
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_synth_elsewhere, args=(pg_url, verilog, str(tmp_path / "b"), q))
    p.start()
    cached, luts = q.get(timeout=120)
    p.join(timeout=30)
    assert cached is True and luts == first.lut4, "the other process ran Yosys again"
    assert not (tmp_path / "b" / "synth.sqlite3").exists()


def test_cache_url_forms():
    from hdl.synth.cache import SynthCache, libpq_url

    assert libpq_url("postgresql+psycopg://u:p@h/d") == "postgresql://u:p@h/d"
    assert "p@" not in SynthCache(url="postgresql://u:p@h/d").where
    with pytest.raises(ValueError, match="cache url must start with postgresql://"):
        SynthCache(url="mysql://h/d")


def cache_hw(net, hw):
    """fake_hw that also records whether the default cache is the shared database."""
    from hdl.synth.cache import SynthCache

    return {**fake_hw(net, hw), "shared_cache": float(SynthCache().url is not None)}


def test_workers_on_postgres_exactly_once_and_shared_cache(pg_url, tmp_path, monkeypatch):
    from search.workers import run_workers

    monkeypatch.setenv("FAKE_HW_SLEEP", "0.2")
    monkeypatch.delenv("HWFIRST_CACHE_URL", raising=False)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    res = run_workers(
        tiny_cfg(), 2, storage=pg_url, study_name=name, out_dir=tmp_path,
        hardware=cache_hw, progress=False, reports=False,
    )  # fmt: skip
    assert res.died == 0 and res.run.total == 8
    study = load_study(pg_url, name)
    counts = done_points(study)
    assert set(counts) == all_points(tiny_cfg()) and set(counts.values()) == {1}
    assert {t.user_attrs["shared_cache"] for t in study.trials if "pid" in t.user_attrs} == {1.0}
    assert len({t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs}) == 2


@pytest.mark.parametrize("sleep", ["0.3", pytest.param("4", marks=pytest.mark.slow)])
def test_killed_worker_heartbeat_then_resume(pg_url, tmp_path, monkeypatch, sleep):
    """SIGKILL mid-trial: its heartbeat stops, the trial is failed once stale and redone.

    With slow trials the survivor usually outlives the heartbeat's grace and redoes the
    point itself; with fast ones the resume does.
    """
    from optuna.trial import TrialState

    from search.records import ERROR_ATTR, POINT_ATTR
    from search.storage import heartbeat
    from search.workers import run_workers

    monkeypatch.setenv("HWFIRST_HEARTBEAT", "1")  # grace 3 s
    monkeypatch.setenv("FAKE_HW_SLEEP", sleep)
    monkeypatch.setenv("FAKE_HW_STALL", str(tmp_path))  # one point's trial never returns
    name = f"pg-{uuid.uuid4().hex[:8]}"
    cfg = tiny_cfg()
    out: dict = {}

    def launch():
        out["res"] = run_workers(
            cfg, 2, storage=pg_url, study_name=name, out_dir=tmp_path,
            hardware=fake_hw, progress=False, reports=False,
        )  # fmt: skip

    th = threading.Thread(target=launch)
    th.start()
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("stall-*")):
        assert time.monotonic() < deadline, "no worker reached the stalling point"
        time.sleep(0.05)
    os.kill(int(next(tmp_path.glob("stall-*")).name.removeprefix("stall-")), signal.SIGKILL)
    th.join(timeout=180)
    assert not th.is_alive() and out["res"].died == 1
    before = {
        t.number: t.value
        for t in load_study(pg_url, name).get_trials(states=(TrialState.COMPLETE,))
    }

    time.sleep(heartbeat()[1] + 1)  # the dead trial's heartbeat is now stale
    monkeypatch.setenv("FAKE_HW_SLEEP", "0")
    monkeypatch.delenv("FAKE_HW_STALL")
    res = run_workers(
        cfg, 1, storage=pg_url, study_name=name, out_dir=tmp_path,
        hardware=fake_hw, progress=False, reports=False,
    )  # fmt: skip
    study = load_study(pg_url, name)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and ERROR_ATTR not in failed[0].user_attrs
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after[n] == v for n, v in before.items()), "a completed trial was lost"
    counts = done_points(study)
    assert set(counts) == all_points(cfg) and set(counts.values()) == {1}
    assert failed[0].user_attrs[POINT_ATTR] in counts
    assert res.run.total == 8


def test_no_password_stored_or_reported(pg_url, tmp_path):
    """A study whose config names the server with its password: neither the stored config,
    any study or trial attribute, nor best.json holds the password."""
    import json

    import optuna
    from sqlalchemy.engine import make_url

    from search.config import loads_config
    from search.run import run_study
    from search.storage import open_storage

    secret = f":{make_url(pg_url).password}@"
    assert secret != ":None@", "the test URL needs a password"
    name = f"pw-{uuid.uuid4().hex[:8]}"
    cfg = loads_config(tiny_cfg().source + f'\n[storage]\nurl = "{pg_url}"\n', name=name)
    res = run_study(cfg, n_trials=1, out_dir=tmp_path, hardware=fake_hw, progress=False)
    store = open_storage(pg_url)
    try:
        study = optuna.load_study(study_name=name, storage=store)
        sid = store.get_study_id_from_name(name)
        blobs = [study.user_attrs, store.get_study_system_attrs(sid)]
        blobs += [x for t in study.trials for x in (t.user_attrs, t.system_attrs)]
        text = json.dumps(blobs, default=str) + (tmp_path / name / "best.json").read_text()
        assert res.total == 1 and "[storage]" in study.user_attrs["config_source"]
        assert secret not in text
    finally:
        optuna.delete_study(study_name=name, storage=store)


def test_metric_names_on_postgresql(pg_url, tmp_path, monkeypatch):
    """``study.set_metric_names`` is a study system attribute: the RDB storage keeps it, and
    a reopened study without names gets them."""
    from search.run import run_study

    monkeypatch.delenv("HWFIRST_CACHE_URL", raising=False)
    name = f"mn_{uuid.uuid4().hex[:8]}"
    run_study(tiny_cfg(), n_trials=1, storage=pg_url, study_name=name, out_dir=tmp_path,
              hardware=fake_hw, progress=False, reports=False)  # fmt: skip
    assert load_study(pg_url, name).metric_names == ["score"]
    study = load_study(pg_url, name)
    study._storage.set_study_system_attr(study._study_id, "study:metric_names", None)
    run_study(tiny_cfg(), n_trials=2, storage=pg_url, study_name=name, out_dir=tmp_path,
              hardware=fake_hw, progress=False, reports=False)  # fmt: skip
    assert load_study(pg_url, name).metric_names == ["score"]
