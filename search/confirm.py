"""Multi-fidelity: the designs that matter, scored by the model, confirmed by synthesis.

With ``hardware.fidelity = "model"`` every trial's hardware metrics are the target
model's predictions (:func:`search.hardware.model_metrics`); ``hardware.confirm = K``
then synthesises (and, with ``hardware.fmax``, places) the Pareto front of a
multi-objective study or the top ``K`` of a weighted one, at most ``K`` designs.
The synthesised figures live beside the predicted ones, in the study's user attribute
``confirmed`` (``{trial number: {metric: value}}``), so reports can show both and say
where each came from; a design already confirmed is not synthesised again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hardware import HardwareError, confirm_params, one_line
from .records import CONFIRMED_ATTR, HW_SOURCE_ATTR, QAT_SPEC_ATTR, SCORE_ATTR
from .scoring import Objective
from .space import SearchSpace

if TYPE_CHECKING:
    import optuna

    from .config import SearchConfig
    from .trial import Evaluator

HW_METRICS = ("lut_eq", "lut4", "ffs", "carries", "dsps", "depth", "latency", "ii", "fmax")


def to_confirm(study: optuna.Study, cfg: SearchConfig) -> list[optuna.trial.FrozenTrial]:
    """The trials that matter, at most ``hardware.confirm``, feasible ones only: the front
    of a multi-objective study (spread evenly along its first objective when larger),
    or the best by score."""
    from .report import best_trials

    k = cfg.hardware.confirm
    if k <= 0:
        return []
    if len(Objective.of(cfg).names) > 1:
        front = sorted(best_trials(study), key=lambda t: (t.values[0], t.number))
        if len(front) <= k:
            return front
        # a larger front: k designs spread evenly along it, both ends included
        picks = sorted({round(i * (len(front) - 1) / max(k - 1, 1)) for i in range(k)})
        return [front[i] for i in picks]
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if SCORE_ATTR in t.user_attrs and all(v <= 0 for v in (t.constraints or {}).values())
    ]
    return sorted(done, key=lambda t: (-t.user_attrs[SCORE_ATTR], t.number))[:k]


def confirm_study(
    study: optuna.Study, cfg: SearchConfig, evaluator: Evaluator, *, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Synthesise every trial :func:`to_confirm` picks that is not confirmed yet; the
    study's ``confirmed`` record (also stored on the study)."""
    from tqdm.auto import tqdm

    done: dict[str, dict[str, Any]] = dict(study.user_attrs.get(CONFIRMED_ATTR) or {})
    space = SearchSpace.from_config(cfg)
    todo = [t for t in to_confirm(study, cfg) if str(t.number) not in done]
    for t in tqdm(todo, desc="confirm", unit="design", disable=not progress):
        design = space.design(dict(t.params))
        entry: dict[str, Any] = {}
        try:
            net, record = evaluator.build(design)
            scored = t.user_attrs.get(QAT_SPEC_ATTR)
            if scored is not None and record.get(QAT_SPEC_ATTR) != scored:
                entry["error"] = "the rebuilt spec is not the one the trial scored"
            else:
                hw = confirm_params(evaluator.hw_params(design.impl, design.stages))
                metrics = evaluator.hardware(net, hw)
                keep = (*HW_METRICS, "latency_ns", "throughput")
                entry |= {m: metrics[m] for m in keep if m in metrics}
                entry["source"] = "yosys+nextpnr" if hw.fmax else "yosys"
        except (ValueError, HardwareError) as e:
            entry["error"] = one_line(e)
        predicted = {m: t.user_attrs[m] for m in HW_METRICS if m in t.user_attrs}
        entry["predicted"] = predicted
        entry["predicted_source"] = t.user_attrs.get(HW_SOURCE_ATTR, "model")
        done[str(t.number)] = entry
        study.set_user_attr(CONFIRMED_ATTR, done)  # after each: a cut-off run keeps them
    return done
