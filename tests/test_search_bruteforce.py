"""Brute force visits every point exactly once: in one run, across resumes, with duplicates
enqueued by two processes starting at once, and after a worker died mid-trial."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from search.config import loads_config
from search.records import DUPLICATE_ATTR, POINT_ATTR
from search.run import run_study
from search.space import SearchSpace
from search.strategies import (
    enqueue_missing,
    make_sampler,
    point_owners,
)
from search.trial import TrialObjective

CFG = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 3, 4]
act_width = [4, 8]
[strategy]
name = "brute_force"
[hardware]
enabled = false
[metrics.accuracy]
[metrics.bitops]
scale = 0.2
"""


class FakeEvaluator:
    """Metrics from the design alone (no model, no synthesis); counts evaluations."""

    def __init__(self):
        self.seen: list[str] = []

    def measure(self, design):
        fc1 = design.layers["fc1"]
        self.seen.append(json.dumps(fc1, sort_keys=True))
        w, a = fc1["weight_width"], fc1["act_width"]
        return None, {"accuracy": 0.5 + 0.05 * w + 0.01 * a, "bitops": 160.0 * w * 8}, {}


def _study(cfg, space):
    sampler = make_sampler("brute_force", space, 0, {})
    return optuna.create_study(sampler=sampler, direction="maximize")


def test_two_processes_enqueue_at_once_each_point_runs_once():
    cfg = loads_config(CFG)
    space = SearchSpace.from_config(cfg)
    study = _study(cfg, space)
    # two processes read the empty storage at once and both enqueue every point, interleaved
    for point in space.grid():
        for _ in range(2):
            study.enqueue_trial(point, user_attrs={POINT_ATTR: space.key(point)})
    ev = FakeEvaluator()
    ref = {"accuracy": 0.9, "bitops": 10240.0}
    objective = TrialObjective(cfg, space, ev, ref, dedupe=True)
    study.optimize(objective, n_trials=12, n_jobs=2)
    assert sorted(ev.seen) == sorted(set(ev.seen)) and len(ev.seen) == 6
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert sorted(t.number for t in done) == list(range(0, 12, 2))  # the first of each key
    dups = study.get_trials(states=(TrialState.PRUNED,))
    assert sorted(t.number for t in dups) == list(range(1, 12, 2))
    for t in dups:  # each names the trial that owns its point
        assert t.user_attrs[DUPLICATE_ATTR] == t.number - 1
        assert study.trials[t.number - 1].user_attrs[POINT_ATTR] == t.user_attrs[POINT_ATTR]
    assert enqueue_missing(study, space) == 0


def test_dead_worker_point_is_enqueued_again():
    cfg = loads_config(CFG)
    space = SearchSpace.from_config(cfg)
    study = _study(cfg, space)
    enqueue_missing(study, space)
    taken = study.ask()  # a worker takes trial 0 ...
    key = taken.user_attrs[POINT_ATTR]
    assert enqueue_missing(study, space) == 0  # ... and holds its point while RUNNING
    study.tell(taken, state=TrialState.FAIL)  # ... then dies: FAIL, no recorded error
    assert key not in point_owners(study)
    assert enqueue_missing(study, space) == 1
    ev = FakeEvaluator()
    study.optimize(TrialObjective(cfg, space, ev, {"accuracy": 1, "bitops": 1}, dedupe=True), 6)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(ev.seen) == 6 == len({t.user_attrs[POINT_ATTR] for t in done})
    assert enqueue_missing(study, space) == 0


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "bf.toml"
    path.write_text(CFG)
    return path


def test_resume_visits_the_rest_and_nothing_twice(tmp_path, config_file):
    from search.config import load_config

    cfg = load_config(config_file)
    out = tmp_path / "res"
    first = run_study(cfg, n_trials=2, out_dir=out, progress=False, reports=False)
    assert (first.ran, first.total, first.space_size) == (2, 2, 6)
    second = run_study(cfg, out_dir=out, progress=False, reports=False)
    assert (second.ran, second.total) == (4, 6)
    third = run_study(cfg, out_dir=out, progress=False, reports=False)
    assert (third.ran, third.total) == (0, 6)
    study = optuna.load_study(study_name="bf", storage=first.storage)
    keys = [t.user_attrs[POINT_ATTR] for t in study.trials]
    assert len(study.trials) == 6 and sorted(keys) == sorted(space_keys(cfg))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def space_keys(cfg):
    space = SearchSpace.from_config(cfg)
    return [space.key(p) for p in space.grid()]


def test_resume_with_another_config_is_refused(tmp_path, config_file):
    from search.config import load_config

    out = tmp_path / "res"
    run_study(load_config(config_file), n_trials=1, out_dir=out, progress=False, reports=False)
    config_file.write_text(CFG.replace("[2, 3, 4]", "[2, 3]"))
    with pytest.raises(ValueError, match=r"^study 'bf' in sqlite:///.* was created from a diff"):
        run_study(load_config(config_file), out_dir=out, progress=False, reports=False)
