"""One trial: sample -> QuantConfig -> QuantisedNetwork [-> QAT fine-tuning] -> software +
hardware metrics -> score.

The model and dataset are loaded once per process (:func:`load_context`).  A
trial that fails -- an invalid point (e.g. an accumulator wider than 53 bits),
a synthesis crash or timeout, a metric that was not measured -- records the
reason in its ``error`` user attribute and ends FAIL; the study goes on.
Every trial records its sampled design (``config``) and every raw metric as
user attributes; bounds are set with ``Trial.set_constraint``.  With ``[training]``
(``epochs > 0``) the network is fine-tuned quantisation-aware before anything is measured
(:meth:`ModelContext.build`), and the trial records the epoch kept and its val accuracy; a
point trained before comes from the trained-weight cache (:mod:`search.traincache`), and
each epoch's val accuracy is reported to Optuna (``[strategy] pruner``: :mod:`search.pruning`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qspec.network import QuantisedNetwork

from .config import METRICS, ModelConfig, SearchConfig, TrainingConfig
from .hardware import HardwareError, HardwareEvaluator, HardwareParams, one_line
from .records import (
    CLOCK_ATTR,
    CONFIG_ATTR,
    DUPLICATE_ATTR,
    ERROR_ATTR,
    FORMATS_ATTR,
    HW_SOURCE_ATTR,
    POINT_ATTR,
    PRUNED_EPOCH_ATTR,
    QAT_EPOCH_ATTR,
    QAT_SPEC_ATTR,
    QAT_VAL_ACCURACY_ATTR,
    RESERVED_ATTRS,
    SCORE_ATTR,
    SKIPPED_ATTR,
    TRAINING_ATTR,
    spec_hash,
)
from .scoring import Objective, constraints
from .space import Candidate, SearchSpace
from .strategies import duplicate_of

if TYPE_CHECKING:
    import optuna

    from models.data import Dataset
    from models.fold import FoldedNet
    from models.qconfig import QuantConfig


PTQ = TrainingConfig()  # no [training]: post-training quantisation
EpochHook = Callable[[int, float], None]  # (epoch, val accuracy) after each fine-tuning epoch


class ReferenceFailed(RuntimeError):
    """The reference design could not be measured: a tool failure, before any trial."""


class TrialFailed(Exception):
    """This trial failed for a recorded reason (``error`` user attribute)."""


@dataclass(frozen=True)
class ModelContext:
    """The float model (BN folded), its dataset and the trial's training, loaded once per
    process."""

    model: ModelConfig
    folded: FoldedNet
    dataset: Dataset
    training: TrainingConfig = PTQ

    def quantise(self, qc: QuantConfig) -> QuantisedNetwork:
        """Post-training quantisation: formats calibrated on the train split."""
        from models.quant import quantise_network

        return quantise_network(self.folded, qc, self.dataset.train.x, name=self.model.name)

    @functools.cached_property
    def source_identity(self) -> str:
        """The checkpoint's weights and the data, hashed once (the trained-weight cache key)."""
        from .traincache import source_identity

        return source_identity(self.folded, self.dataset)

    def build(
        self, qc: QuantConfig, on_epoch: EpochHook | None = None, *, l1: float | None = None
    ) -> tuple[QuantisedNetwork, dict[str, Any]]:
        """The network a trial scores, exports and synthesises, and its training record.

        ``training.epochs = 0``: :meth:`quantise` and ``{}``.  Otherwise that network's
        formats are kept and its weights fine-tuned through the fake-quantised network
        (:func:`models.train.finetune_spec`): the epoch with the best validation
        accuracy (0: the PTQ weights).  Deterministic, so a report rebuilds it; a point
        trained before comes from the trained-weight cache (:mod:`search.traincache`), its
        epochs replayed to ``on_epoch(epoch, val_acc)`` as if trained (it may raise, e.g.
        ``optuna.TrialPruned``: nothing is cached then).  ``l1``: the point's value of a
        searched ``training.l1`` (None: the table's own).
        """
        t = self.training
        if not t.enabled:
            return self.quantise(qc), {}
        from . import traincache

        t = t.with_l1(l1)
        key = traincache.cache_key(qc, t, self.source_identity)
        done = traincache.get(key)
        if done is not None:
            for epoch, acc in enumerate(done.val_accuracies[1 : done.epochs_run + 1], 1):
                if on_epoch is not None:
                    on_epoch(epoch, acc)
        else:
            from models.quant import weight_rules
            from models.train import TrainConfig, finetune_spec

            net = self.quantise(qc)

            cfg = TrainConfig(
                epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, patience=t.patience,
                seed=t.seed,
            )  # fmt: skip
            hook = None if on_epoch is None else (lambda e, acc, _loss: on_epoch(e, acc))
            # the PTQ network's pruning masks and digit budgets hold through fine-tuning
            rules = weight_rules(self.folded, qc)
            tuned, _, info = finetune_spec(
                self.folded, net, self.dataset, cfg, on_epoch=hook, rules=rules, l1=t.l1[0]
            )
            done = traincache.Trained(
                tuned, info["epochs_run"], info["best_epoch"], info["best_val_acc"],
                tuple(info["val_accuracies"]),
            )  # fmt: skip
            traincache.put(key, done)
        return done.net, {
            TRAINING_ATTR: {**t.to_dict(), "epochs_run": done.epochs_run},
            QAT_EPOCH_ATTR: done.best_epoch,
            QAT_VAL_ACCURACY_ATTR: done.best_val_acc,
            QAT_SPEC_ATTR: spec_hash(done.net),
        }

    def software_metrics(self, net: QuantisedNetwork) -> dict[str, float]:
        """Scored from the spec's own integer codes on ``model.split``; ``val_accuracy`` and
        ``test_accuracy`` (the integer spec's, recorded, never scored: a front is chosen on
        val and reported on test) whatever the split."""
        from models.metrics import compute_metrics
        from models.train import accuracy_of_spec

        split = self.model.split
        m = compute_metrics(self.folded, net, self.dataset, split, per_layer_accuracy=False)
        return {
            "accuracy": m.accuracy,
            "loss": m.loss,
            "flops": float(m.flops),
            "bitops": float(m.bitops),
            "average_bitwidth": m.avg_param_bits,
            "size": float(m.size_bits),
            "macs": float(m.macs),
            "avg_weight_bits": m.avg_weight_bits,
            "avg_act_bits": m.avg_act_bits,
            "float_accuracy": m.float_accuracy,
            "float_loss": m.float_loss,
            "val_accuracy": accuracy_of_spec(net, self.dataset.val),
            "test_accuracy": accuracy_of_spec(net, self.dataset.test),
        }


@functools.cache
def load_context(model: ModelConfig, training: TrainingConfig = PTQ) -> ModelContext:
    """Load (once per process and config) the checkpoint and the dataset: ``training.from``
    if given, else the checkpoint ``model`` selects."""
    from models.data import load_dataset
    from models.fold import fold_batchnorm
    from models.train import load_float, load_float_file

    if training.checkpoint is not None:
        net, _ = load_float_file(
            training.checkpoint, model.name, model.dataset, model.activation, slope=model.slope
        )
    else:
        net, _ = load_float(
            model.name,
            model.dataset,
            model.activation,
            model.checkpoint_dir,
            slope=model.slope,
            seed=model.seed,
        )
    ds = load_dataset(model.dataset, model.data_file)
    return ModelContext(model, fold_batchnorm(net), ds, training)


def context_of(cfg: SearchConfig) -> ModelContext:
    """:func:`load_context` of a search config."""
    return load_context(cfg.model, cfg.training)


class Evaluator:
    """Measures designs: quantise, score the integer spec, synthesise."""

    def __init__(
        self, cfg: SearchConfig, context: ModelContext, hardware: HardwareEvaluator | None
    ) -> None:
        if cfg.hardware.enabled and hardware is None:
            raise ValueError("hardware.enabled = true needs a hardware evaluator")
        self.cfg = cfg
        self.context = context
        self.hardware = hardware if cfg.hardware.enabled else None

    @property
    def hw_source(self) -> str:
        """Where the trials' hardware metrics come from (``hw_source`` user attribute)."""
        h = self.cfg.hardware
        if h.fidelity == "model":
            return "model"
        return "yosys+nextpnr" if h.fmax else "yosys"

    def hw_params(self, impl: str, stages: int) -> HardwareParams:
        h = self.cfg.hardware
        return HardwareParams(h.target, impl, stages, h.fmax, h.timeout, h.fidelity, h.clock_mhz)

    def network(self, design: Candidate) -> QuantisedNetwork:
        return self.build(design)[0]

    def build(
        self, design: Candidate, on_epoch: EpochHook | None = None
    ) -> tuple[QuantisedNetwork, dict[str, Any]]:
        """The design's network (fine-tuned when ``[training]`` asks) and its record."""
        return self.context.build(design.quant_config(), on_epoch, l1=design.l1)

    def measure_network(self, net: QuantisedNetwork, hw: HardwareParams) -> dict[str, float]:
        metrics = self.context.software_metrics(net)
        if any(m.name == "adders" for m in self.cfg.metrics):  # only when asked: ~ms a layer
            from hdl.network import adder_count

            metrics["adders"] = float(adder_count(net, hw.impl))
        if self.hardware is not None:
            metrics.update(self.hardware(net, hw))
        return metrics

    def measure(
        self, design: Candidate, on_epoch: EpochHook | None = None
    ) -> tuple[QuantisedNetwork, dict[str, float], dict[str, Any]]:
        """(network, raw metrics, record: user attributes -- the training record, ``{}`` for
        PTQ, where the hardware figures came from and the clock); ``on_epoch`` sees each fine-tuning
        epoch (pruning, progress)."""
        net, record = self.build(design, on_epoch)
        metrics = self.measure_network(net, self.hw_params(design.impl, design.stages))
        if self.hardware is not None:
            record = {**record, HW_SOURCE_ATTR: self.hw_source}
            if self.cfg.hardware.clock_mhz is not None:
                record[CLOCK_ATTR] = self.cfg.hardware.clock_mhz
        return net, metrics, record

    def reference(self) -> dict[str, float]:
        """The reference design's metrics (``[score] reference``, hardware.impl, 0 stages),
        fine-tuned like every trial's design when ``[training]`` asks."""
        net, _ = self.context.build(self.cfg.score.reference)
        try:
            return self.measure_network(net, self.hw_params(self.cfg.hardware.impl, 0))
        except HardwareError as e:
            raise ReferenceFailed(
                f"the reference design failed to synthesise ({e}); fix the synthesis set-up "
                "(`python -m hdl synth` on one design shows it), or give every scored metric "
                "a metrics.NAME.reference"
            ) from e


class TrialObjective:
    """The Optuna objective: one call per trial."""

    def __init__(
        self,
        cfg: SearchConfig,
        space: SearchSpace,
        evaluator: Evaluator,
        reference: dict[str, float],
        *,
        dedupe: bool = False,
    ) -> None:
        self.cfg = cfg
        self.space = space
        self.evaluator = evaluator
        self.reference = reference
        self.objective = Objective.of(cfg)
        self.dedupe = dedupe  # Strategy.dedupe: only enqueued points, each once
        # (epoch, epochs, val accuracy) after each fine-tuning epoch: the progress bar
        self.progress: Callable[[int, int, float], None] | None = None

    def _epoch_hook(self, trial: optuna.Trial) -> EpochHook | None:
        """Per-epoch val accuracy -> intermediate value (single objective: the dashboard
        draws it), the pruner's verdict, the progress bar."""
        if not self.cfg.training.enabled:
            return None
        import optuna

        single = self.cfg.score.mode == "weighted"
        prune = self.cfg.strategy.pruner.enabled and single
        epochs = self.cfg.training.epochs

        def hook(epoch: int, acc: float) -> None:
            if self.progress is not None:
                self.progress(epoch, epochs, acc)
            if single:
                trial.report(acc, epoch)
            if prune and trial.should_prune():
                trial.set_user_attr(PRUNED_EPOCH_ATTR, epoch)
                raise optuna.TrialPruned(f"pruned after epoch {epoch} (val accuracy {acc:.4g})")

        return hook

    def _skip(self, trial: optuna.Trial, reason: str, **attrs: Any) -> None:
        import optuna

        trial.set_user_attr(SKIPPED_ATTR, reason)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        raise optuna.TrialPruned(reason)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        key = trial.user_attrs.get(POINT_ATTR)
        if self.dedupe:
            if key is None:  # the queue ran dry under us: another worker took the last point
                trial.study.stop()
                self._skip(trial, "no point left")
            owner = duplicate_of(trial.study, trial.number, key)
            if owner is not None:
                self._skip(trial, "duplicate", **{DUPLICATE_ATTR: owner})
        point = self.space.suggest(trial)
        if key is None:
            trial.set_user_attr(POINT_ATTR, self.space.key(point))
        design = self.space.design(point)
        trial.set_user_attr(CONFIG_ATTR, design.to_dict())
        try:
            hook = self._epoch_hook(trial)
            if hook is None:
                net, metrics, record = self.evaluator.measure(design)
            else:
                net, metrics, record = self.evaluator.measure(design, hook)
            if net is not None:
                trial.set_user_attr(FORMATS_ATTR, formats(net))
            for k, v in record.items():  # the epoch kept and its val accuracy, hw_source
                trial.set_user_attr(k, v)
            for k, v in metrics.items():
                trial.set_user_attr(k, v)
            for k, v in constraints(metrics, self.cfg.metrics).items():
                trial.set_constraint(k, v)
            values = self.objective.values(self.cfg, metrics, self.reference)
        except (ValueError, HardwareError) as e:
            msg = one_line(e)
            trial.set_user_attr(ERROR_ATTR, msg)
            raise TrialFailed(msg) from e
        if self.cfg.score.mode == "weighted":
            trial.set_user_attr(SCORE_ATTR, values[0])
            return values[0]
        return values


def formats(net: QuantisedNetwork) -> dict[str, dict[str, list[int]]]:
    """``{"fc1": {"in": [8, 5], "weight": [4, 3], ...}}``: the resolved fixed-point formats."""
    out = {}
    for ly in net.linear_layers:
        fmts = {"in": ly.in_fmt, "weight": ly.weight_fmt, "bias": ly.bias_fmt}
        fmts |= {"acc": ly.acc_fmt, "out": ly.out_fmt}
        out[ly.name] = {k: [f.width, f.frac_width] for k, f in fmts.items()}
    return out


def metric_names(attrs: dict[str, Any]) -> list[str]:
    """The raw metrics among a trial's user attributes, catalogue metrics first."""
    names = [k for k, v in attrs.items() if k not in RESERVED_ATTRS and isinstance(v, int | float)]
    order = {m: i for i, m in enumerate(METRICS)}
    return sorted(names, key=lambda k: (order.get(k, len(order)), k))
