"""search.scoring: the weighted formula (hand-computed), Pareto objectives, bounds, references."""

from __future__ import annotations

import pytest

from search.config import MetricConfig, loads_config
from search.scoring import (
    MissingMetric,
    Objective,
    constraints,
    objectives,
    reference_values,
    weighted_score,
)

SPEC = (
    MetricConfig("accuracy", 1.0, "maximize", min=0.8),
    MetricConfig("bitops", 0.2, "minimize"),
    MetricConfig("lut_eq", 0.5, "minimize", max=1000.0),
    MetricConfig("size", 0.0, "minimize"),  # recorded only
)
REF = {"accuracy": 0.9, "bitops": 10240.0, "lut_eq": 2000.0}


def test_weighted_score_hand_computed():
    m = {"accuracy": 0.81, "bitops": 2560.0, "lut_eq": 500.0, "size": 400.0}
    # +1.0 * 0.81/0.9 - 0.2 * 2560/10240 - 0.5 * 500/2000 = 0.9 - 0.05 - 0.125
    assert weighted_score(m, REF, SPEC) == pytest.approx(0.725, abs=1e-12)


def test_reference_design_scores_sum_of_signed_scales():
    assert weighted_score(REF, REF, SPEC) == pytest.approx(1.0 - 0.2 - 0.5, abs=1e-12)


def test_direction_is_honoured_not_ignored():
    """MASE adds every metric in weighted mode; here maximising lut_eq rewards more LUTs."""
    up = (MetricConfig("lut_eq", 1.0, "maximize"),)
    down = (MetricConfig("lut_eq", 1.0, "minimize"),)
    assert weighted_score({"lut_eq": 3000.0}, REF, up) == pytest.approx(1.5)
    assert weighted_score({"lut_eq": 3000.0}, REF, down) == pytest.approx(-1.5)


def test_missing_metric_fails_instead_of_a_default():
    with pytest.raises(MissingMetric, match="^metric lut_eq was not measured$"):
        weighted_score({"accuracy": 0.9, "bitops": 1.0}, REF, SPEC)


def test_pareto_objectives_are_raw_values_of_scored_metrics():
    m = {"accuracy": 0.81, "bitops": 2560.0, "lut_eq": 500.0, "size": 400.0}
    assert objectives(m, SPEC) == (0.81, 2560.0, 500.0)


def test_constraints_from_bounds():
    m = {"accuracy": 0.75, "bitops": 1.0, "lut_eq": 1200.0}
    c = constraints(m, SPEC)
    assert c == {"accuracy.min": pytest.approx(0.05), "lut_eq.max": 200.0}
    assert all(v <= 0 for v in constraints({**m, "accuracy": 0.9, "lut_eq": 900.0}, SPEC).values())


CFG = """
[model]
name = "jsc-tiny"
[hardware]
enabled = false
[metrics.accuracy]
[metrics.size]
scale = 2
reference = 1000
[metrics.loss]
scale = 0.5
"""


def test_objective_directions_and_reference_values():
    cfg = loads_config(CFG)
    assert Objective.of(cfg) == Objective(("score",), ("maximize",))
    pareto = loads_config(CFG + "[score]\nmode = 'pareto'\n")
    assert Objective.of(pareto) == Objective(
        ("accuracy", "size", "loss"), ("maximize", "minimize", "minimize")
    )
    measured = {"accuracy": 0.5, "size": 77.0, "loss": 0.25}
    assert reference_values(cfg, measured) == {"accuracy": 0.5, "size": 1000.0, "loss": 0.25}
    with pytest.raises(ValueError) as e:
        reference_values(cfg, {**measured, "loss": 0.0})
    assert str(e.value) == (
        "metrics.loss: the reference design has loss = 0, so it cannot normalise; "
        "set metrics.loss.reference to a non-zero value"
    )
