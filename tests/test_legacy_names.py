"""``luts`` of earlier versions (LUT-equivalents in the search, LUT4 in ``Resources``) still
reads as ``lut_eq`` / ``lut4``: configs, their fingerprints, synthesis records and studies."""

from __future__ import annotations

import csv
import io
import json

import optuna
import pytest

from hdl.resources import Resources
from search.config import ConfigError, loads_config
from search.records import REFERENCE_ATTR, metric_attrs
from search.report import best_json, trials_csv

BASE = """
[model]
name = "jsc-tiny"
[space.default]
weight_width = [2, 4]
[strategy]
name = "brute_force"
[metrics.accuracy]
"""


def test_old_metric_name_is_an_alias_with_the_same_fingerprint():
    new = loads_config(BASE + "[metrics.lut_eq]\nscale = 0.5\n")
    old = loads_config(BASE + "[metrics.luts]\nscale = 0.5\n")
    assert [m.name for m in old.metrics] == [m.name for m in new.metrics] == ["accuracy", "lut_eq"]
    assert old.fingerprint == new.fingerprint
    # the name fingerprints were first made with: a study made before the rename resumes
    assert new.fingerprint != loads_config(BASE + "[metrics.ffs]\nscale = 0.5\n").fingerprint


def test_old_and_new_metric_name_together_is_an_error():
    with pytest.raises(ConfigError, match=r"^metrics\.luts is the old name of metrics\.lut_eq"):
        loads_config(BASE + "[metrics.luts]\n[metrics.lut_eq]\n")


def test_resources_read_old_records():
    old = {"target": "ecp5", "luts": 7, "carries": 2, "ffs": 1}
    r = Resources.from_dict(old)
    assert (r.lut4, r.lut_eq, r.ffs) == (7, 11, 1)
    assert Resources.from_dict(r.to_dict()) == r and r.to_dict()["lut_eq"] == 11


def test_metric_attrs_renames_only_legacy_keys():
    assert metric_attrs({"luts": 5.0, "ffs": 1.0}) == {"lut_eq": 5.0, "ffs": 1.0}
    both = {"luts": 5.0, "lut_eq": 6.0}
    assert metric_attrs(both) == {"lut_eq": 6.0}  # today's name wins
    plain = {"lut_eq": 1.0}
    assert metric_attrs(plain) is plain


def test_a_study_of_an_earlier_version_reports_lut_eq():
    cfg = loads_config(BASE + "[metrics.luts]\nscale = 0.5\n")
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(REFERENCE_ATTR, {"accuracy": 0.9, "luts": 800.0})
    dist = optuna.distributions.IntDistribution(2, 4, step=2)
    study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            params={"fc1.weight_width": 2},
            distributions={"fc1.weight_width": dist},
            user_attrs={"accuracy": 0.8, "luts": 204.0, "lut4": 150.0},
        )
    )
    (row,) = csv.DictReader(io.StringIO(trials_csv(study, cfg)))
    assert (row["lut_eq"], row["lut4"]) == ("204.0", "150.0") and "luts" not in row
    best = json.loads(best_json(study, cfg, study.trials, {}, None))
    assert best["reference_metrics"] == {"accuracy": 0.9, "lut_eq": 800.0}
    assert best["best"][0]["metrics"]["lut_eq"] == 204.0
