"""``python -m search compare``: strategies x seeds on a tiny space with a fake synthesis step."""

from __future__ import annotations

import json
import math

import pytest

from search.compare import StrategyRuns, compare, parse_strategies, trials_to
from tests.conftest import csv_rows
from tests.test_search_storage import TINY, fake_hw

# fake_hw's LUTs grow with the widths while accuracy saturates (ties are possible);
# accuracy >= 0.85 makes the 2-bit weights infeasible
CFG = TINY.replace("[metrics.accuracy]\nscale = 1.0", "[metrics.accuracy]\nscale = 1.0\nmin = 0.85")


def test_trials_to_and_stats():
    assert trials_to([-math.inf, 0.1, 0.5, 0.5], 0.5) == 3
    assert trials_to([0.1, 0.2], 0.5) is None
    r = StrategyRuns("x", (0, 1, 2), ((0.5,), (0.1, 0.5), (0.1, 0.1)), (1, 2, None))
    st = r.stats()
    assert (st["runs"], st["reached"], st["median"], st["min"], st["max"]) == (3, 2, 2, 1, None)
    r = StrategyRuns("x", (0, 1, 2), ((), (), ()), (None, None, 4))
    assert r.stats()["median"] is None  # most runs never reached it


def test_parse_strategies():
    assert parse_strategies("tpe, random") == ["tpe", "random"]
    for bad in ("tpe,annealing", "", "tpe,tpe"):
        with pytest.raises(ValueError, match="--strategies"):
            parse_strategies(bad)


def test_compare_tiny_space(tmp_path):
    import optuna

    from search.config import loads_config
    from search.storage import open_storage

    cfg = loads_config(CFG, name="tiny")
    res = compare(
        cfg, ["random", "tpe"], 2, n_trials=5, out_dir=tmp_path, hardware=fake_hw,
        progress=False,
    )  # fmt: skip
    out = tmp_path / "tiny-compare"
    assert res.out_dir == out and res.space_size == 8
    for f in ("curves.csv", "trials_to_optimum.csv", "summary.json", "compare.md"):
        assert (out / f).stat().st_size > 0
    assert (out / "best_so_far.png").read_bytes()[:4] == b"\x89PNG"
    # the optimum is the brute-force study's best feasible value, reached where it was found
    bf = optuna.load_study(
        study_name="tiny-compare-brute_force-s0", storage=open_storage(res.storage)
    )
    feasible = [t for t in bf.trials if t.values and all(c <= 0 for c in t.constraints.values())]
    assert len(bf.trials) == 8 and len(feasible) < 8  # the constraint bites
    best = max(feasible, key=lambda t: t.value)
    assert res.optimum == best.value
    assert res.runs.keys() == {"random", "tpe"}  # brute force ran, but was not asked for
    summary = json.loads((out / "summary.json").read_text())
    assert summary["optimum"] == best.value
    for s in ("random", "tpe"):
        runs = res.runs[s]
        assert runs.seeds == (0, 1) and all(len(c) == 5 for c in runs.curves)
        assert all(list(c) == sorted(c) for c in runs.curves)  # best so far never drops
        for c, n in zip(runs.curves, runs.to_optimum, strict=True):
            assert n == trials_to(c, best.value)
            assert n is None or (c[n - 1] == best.value and (n == 1 or c[n - 2] < best.value))
        assert summary["strategies"][s]["to_optimum"] == list(runs.to_optimum)
    rows = csv_rows(out / "trials_to_optimum.csv")
    assert len(rows) == 4
    # a rerun resumes: no new trials, the same numbers
    again = compare(
        cfg, ["random", "tpe"], 2, n_trials=5, out_dir=tmp_path, hardware=fake_hw,
        progress=False,
    )  # fmt: skip
    assert again.runs == res.runs


def test_compare_cli_errors(tmp_path, capsys):
    from search.cli import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CFG)
    assert main(["compare", str(cfg), "--strategies", "tpe,annealing"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--strategies" in err and "\n" not in err
    assert main(["compare", str(cfg), "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err
