"""Scores from raw metrics: a direction-aware weighted sum, or Pareto objectives.

Weighted mode (one maximised objective)::

    score = sum over metrics m with scale_m > 0 of  sign_m * scale_m * value_m / |ref_m|

``sign_m`` is +1 for ``direction = "maximize"`` and -1 for ``"minimize"``;
``ref_m`` is ``metrics.m.reference`` if given, else m measured on the reference
design (``[score] reference``, default: the same model uniformly quantised to
8 bits).  Dividing by the reference makes metrics of different units addable: the
reference design itself scores ``sum(sign_m * scale_m)``.  (MASE adds raw values and
ignores ``direction`` in this mode, and uses 32.0 for a metric it lacks; here a
missing metric fails the trial.)

Pareto mode: the raw values of the scored metrics are the objectives of a
multi-objective study, with their directions; scales do not matter.

Bounds (``min``/``max``) become constraints ``min - value <= 0`` and
``value - max <= 0``, in the metric's own units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .config import MetricConfig, SearchConfig


class MissingMetric(ValueError):
    """A scored or bounded metric was not measured for this trial."""


def _value(metrics: Mapping[str, float], name: str) -> float:
    if name not in metrics:
        raise MissingMetric(f"metric {name} was not measured")
    return float(metrics[name])


def weighted_score(
    metrics: Mapping[str, float], reference: Mapping[str, float], spec: tuple[MetricConfig, ...]
) -> float:
    """The weighted sum above (``reference`` holds ``ref_m`` for every scored metric)."""
    total = 0.0
    for m in spec:
        if not m.scored:
            continue
        sign = 1.0 if m.direction == "maximize" else -1.0
        total += sign * m.scale * _value(metrics, m.name) / abs(reference[m.name])
    return total


def objectives(metrics: Mapping[str, float], spec: tuple[MetricConfig, ...]) -> tuple[float, ...]:
    """Pareto mode: the raw values of the scored metrics, in config order."""
    return tuple(_value(metrics, m.name) for m in spec if m.scored)


def constraints(metrics: Mapping[str, float], spec: tuple[MetricConfig, ...]) -> dict[str, float]:
    """``{"accuracy.min": 0.9 - acc, ...}``; feasible when every value is <= 0."""
    out = {}
    for m in spec:
        if m.min is not None:
            out[f"{m.name}.min"] = m.min - _value(metrics, m.name)
        if m.max is not None:
            out[f"{m.name}.max"] = _value(metrics, m.name) - m.max
    return out


@dataclass(frozen=True)
class Objective:
    """What the Optuna study optimises: names and directions of its objective values."""

    names: tuple[str, ...]
    directions: tuple[str, ...]

    @classmethod
    def of(cls, cfg: SearchConfig) -> Objective:
        if cfg.score.mode == "weighted":
            return cls(("score",), ("maximize",))
        scored = cfg.scored
        return cls(tuple(m.name for m in scored), tuple(m.direction for m in scored))

    def values(
        self, cfg: SearchConfig, metrics: Mapping[str, float], reference: Mapping[str, float]
    ) -> tuple[float, ...]:
        if cfg.score.mode == "weighted":
            return (weighted_score(metrics, reference, cfg.metrics),)
        return objectives(metrics, cfg.metrics)


def reference_values(cfg: SearchConfig, measured: Mapping[str, float] | None) -> dict[str, float]:
    """``ref_m`` per scored metric: the explicit reference, else the measured one (non-zero)."""
    out = {}
    for m in cfg.scored:
        if m.reference is not None:
            out[m.name] = m.reference
            continue
        if measured is None or m.name not in measured:
            raise ValueError(f"metrics.{m.name}: the reference design did not measure it")
        if measured[m.name] == 0:
            raise ValueError(
                f"metrics.{m.name}: the reference design has {m.name} = 0, so it cannot "
                f"normalise; set metrics.{m.name}.reference to a non-zero value"
            )
        out[m.name] = float(measured[m.name])
    return out


def needs_reference(cfg: SearchConfig) -> bool:
    return cfg.score.mode == "weighted" and any(m.reference is None for m in cfg.scored)
