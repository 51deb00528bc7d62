"""Trial records: every user-attribute name a study and its trials carry, and what they mean.

Trial attributes: ``point`` (the point's key), ``config`` (the sampled design), ``formats``
(what calibration chose), every raw metric by name, ``score`` (weighted mode), ``error``
(why a trial failed: a recorded failure, not a dead worker), ``hw_source`` and
``clock_mhz`` (where its hardware figures came from, the clock its design was pipelined
to), ``skipped`` (a trial that
evaluated nothing: a duplicate, or no point left), ``duplicate_of``, and with ``[training]``
``training``, ``qat_epoch``, ``qat_val_accuracy`` and ``qat_spec_sha256`` (and
``pruned_epoch`` for a trial the pruner stopped).  Study attributes:
``fingerprint`` and ``config_source`` (the config that created it), ``reference_metrics``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from qspec.network import QuantisedNetwork

POINT_ATTR = "point"  # the point's key (brute force: set at enqueue time)
ERROR_ATTR = "error"
DUPLICATE_ATTR = "duplicate_of"
SKIPPED_ATTR = "skipped"
CONFIG_ATTR = "config"
FORMATS_ATTR = "formats"  # [width, frac_width] per layer and tensor
SCORE_ATTR = "score"
# [training] (epochs > 0 only): the training table (+ epochs_run), the epoch kept (0: the
# PTQ weights) and its validation accuracy -- the figure that chose it
TRAINING_ATTR = "training"
QAT_EPOCH_ATTR = "qat_epoch"
QAT_VAL_ACCURACY_ATTR = "qat_val_accuracy"
# the fine-tuned spec's hash: a report that rebuilds it (trains again) checks it got the same
QAT_SPEC_ATTR = "qat_spec_sha256"
TRAINING_ATTRS = (TRAINING_ATTR, QAT_EPOCH_ATTR, QAT_VAL_ACCURACY_ATTR, QAT_SPEC_ATTR)
# where a trial's hardware metrics came from: "model" (hdl.hwmodel), "yosys", "yosys+nextpnr"
HW_SOURCE_ATTR = "hw_source"
# hardware.clock_mhz: the clock each trial's design was pipelined to (absent: not clocked)
CLOCK_ATTR = "clock_mhz"
PRUNED_EPOCH_ATTR = "pruned_epoch"  # [strategy] pruner: the epoch after which it was pruned
# user attributes that are not raw metrics
RESERVED_ATTRS = (
    CONFIG_ATTR, FORMATS_ATTR, POINT_ATTR, ERROR_ATTR, DUPLICATE_ATTR, SKIPPED_ATTR, SCORE_ATTR,
    HW_SOURCE_ATTR, CLOCK_ATTR, *TRAINING_ATTRS, PRUNED_EPOCH_ATTR,
)  # fmt: skip

FINGERPRINT_ATTR = "fingerprint"  # study: what a resumed config must match
SOURCE_ATTR = "config_source"  # study: the TOML text it was created from
REFERENCE_ATTR = "reference_metrics"  # study: the reference design's measured metrics
# study: hardware.confirm's synthesised figures, {trial number: {metric: value, "source"}}
CONFIRMED_ATTR = "confirmed"

# metric names of earlier versions -> today's (``luts`` meant LUT-equivalents, now ``lut_eq``
# beside ``lut4``); old configs, studies and reference metrics are read through this
LEGACY_METRICS = {"luts": "lut_eq"}


def spec_hash(net: QuantisedNetwork) -> str:
    """A short content hash of a spec (``qat_spec_sha256``)."""
    import hashlib

    return hashlib.sha256(net.to_json().encode()).hexdigest()[:16]


def metric_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with the legacy metric names of an earlier version's trial renamed."""
    if not any(k in attrs for k in LEGACY_METRICS):
        return attrs
    out = {LEGACY_METRICS.get(k, k): v for k, v in attrs.items() if k not in LEGACY_METRICS}
    for old, new in LEGACY_METRICS.items():
        if old in attrs:
            out.setdefault(new, attrs[old])
    return out


def live(t: optuna.trial.FrozenTrial) -> bool:
    """Holds or will hold its point's result (a dead worker's trial does not)."""
    from optuna.trial import TrialState

    if t.state == TrialState.FAIL:
        return ERROR_ATTR in t.user_attrs
    return t.state != TrialState.PRUNED or SKIPPED_ATTR not in t.user_attrs


def counted(t: optuna.trial.FrozenTrial) -> bool:
    """Counts against the budget: finished, not skipped, and not a dead worker's."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    return t.state in done and SKIPPED_ATTR not in t.user_attrs and live(t)


def evaluated(study: optuna.Study) -> int:
    """Trials that count against the budget (:func:`counted`)."""
    return sum(counted(t) for t in study.get_trials(deepcopy=False))
