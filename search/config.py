"""The search config: TOML validated into frozen dataclasses (torch-free, so errors are fast).

Every error is one line naming the key path as written in the file
(``space.layers.fc2.weight_width[1] must be ...``) and what is allowed.  The
sections may also sit under a top-level ``[search]`` table (MASE style); paths
then start with ``search.``.  Unknown keys are errors.  See ``search/configs/``
and the README's *Search* section for the shape.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hdl.hwmodel import IMPLS as MODELLED_IMPLS
from hdl.params import LINEAR_IMPLS as IMPLS
from hdl.params import MAX_STAGES
from hdl.pipeline import MAX_MHZ, MIN_MHZ
from hdl.targets import TARGET_NAMES as TARGETS
from hdl.targets import target as target_info
from models.modelspec import ACTIVATIONS, DATASETS, DEFAULT_SLOPE, MODELS, SPLITS, ModelSpec
from models.qconfig import LAYER_KEYS, LEAKY_KEYS, QuantConfig, check_choice  # the key schema
from qspec.files import BOM, ReadError, read_text
from qspec.limits import MAX_EPOCHS, MAX_SEED, MAX_TRIALS
from qspec.names import NAME, is_name, name_rule

from .pruning import PRUNER_OPTIONS, PRUNERS, PrunerConfig
from .records import LEGACY_METRICS

Choice = int | float | str  # a value a search dimension takes
MODES = ("weighted", "pareto")
DIRECTIONS = ("maximize", "minimize")
LAYER_TYPES = ("hidden", "output")  # hidden: Linear + activation; output: the last Linear


class ConfigError(ValueError):
    """A bad config: one line naming the key path and what is allowed."""


# --- metric catalogue (names a [metrics.NAME] table may use) -----------------------------


@dataclass(frozen=True)
class MetricInfo:
    name: str
    hardware: bool  # needs synthesis
    direction: str  # the natural one, used when the table gives none
    doc: str


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("accuracy", False, "maximize", "top-1 accuracy of the integer spec"),
        MetricInfo("loss", False, "minimize", "cross-entropy of the integer spec's logits"),
        MetricInfo("flops", False, "minimize", "ptflops count (constant for a given model)"),
        MetricInfo("bitops", False, "minimize", "sum of MACs x weight bits x input bits"),
        MetricInfo("average_bitwidth", False, "minimize", "mean bits per weight and bias"),
        MetricInfo("size", False, "minimize", "weight + bias storage in bits"),
        MetricInfo("adders", False, "minimize", "two-input adders of the generator's graphs"),
        MetricInfo("lut_eq", True, "minimize", "LUT-equivalents (ECP5: LUT4 + 2 x CCU2C)"),
        MetricInfo("ffs", True, "minimize", "flip-flops"),
        MetricInfo("carries", True, "minimize", "carry cells"),
        MetricInfo("dsps", True, "minimize", "DSP blocks"),
        MetricInfo("latency", True, "minimize", "cycles from input to output"),
        MetricInfo("fmax", True, "maximize", "MHz: nextpnr (hardware.fmax) or the model"),
        MetricInfo("latency_ns", True, "minimize", "latency cycles / fmax, in ns (needs fmax)"),
        MetricInfo("throughput", True, "maximize", "fmax / II: results per microsecond"),
    )
}


# --- dataclasses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    name: str
    activation: str = "relu"
    slope: float = DEFAULT_SLOPE
    dataset: str = "digits16"
    data_file: str | None = None  # the jsc dataset's file
    checkpoint_dir: str | None = None  # None: the shipped checkpoints, then the user dir
    seed: int = 0  # the training seed of the checkpoint
    split: str = "val"  # where accuracy/loss are measured

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(f"fc{i}" for i in range(1, len(MODELS[self.name]) + 2))

    @property
    def has_activation(self) -> bool:
        return bool(MODELS[self.name])


@dataclass(frozen=True)
class SpaceConfig:
    """Choices per key: ``default`` < ``types[hidden|output]`` < ``layers[NAME]``."""

    default: dict[str, tuple[Choice, ...]] = field(default_factory=dict)
    types: dict[str, dict[str, tuple[Choice, ...]]] = field(default_factory=dict)
    layers: dict[str, dict[str, tuple[Choice, ...]]] = field(default_factory=dict)
    impl: tuple[str, ...] | None = None  # None: hardware.impl
    stages: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class StrategyConfig:
    name: str = "tpe"
    n_trials: int | None = None  # None: the whole space for exhaustive strategies
    timeout: float | None = None  # seconds
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # sampler keyword arguments
    pruner: PrunerConfig = field(default_factory=PrunerConfig)  # search.pruning


@dataclass(frozen=True)
class StorageConfig:
    url: str | None = None  # None: sqlite:///<out>/<study>/study.db
    study: str = "search"


@dataclass(frozen=True)
class HardwareConfig:
    enabled: bool = True
    target: str = "ecp5"
    fmax: bool = False
    impl: str = "adder_tree"
    timeout: float = 600.0  # seconds per synthesis run
    # "synth": every trial synthesised (Yosys; nextpnr with fmax); "model": every trial
    # scored by the target's hardware model (hdl.hwmodel), the top ``confirm`` synthesised
    fidelity: str = "synth"
    confirm: int = 0
    # pipelined to this clock (hdl.pipeline: each layer's registers where the target's delay
    # model needs them) instead of space.stages, the manual override; None: not clocked
    clock_mhz: float | None = None

    @property
    def has_fmax(self) -> bool:
        """Whether trials get an fmax: placed by nextpnr, or predicted by the model."""
        return self.fmax or self.fidelity == "model"

    def fingerprint_part(self) -> str:
        """The fields of the first version as they were hashed, then any later field that
        is not at its default (so the studies made before those fields keep theirs)."""
        old = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIRST_HW_FIELDS)
        new = [(k, getattr(self, k)) for k in _LATER_HW_FIELDS]
        extra = [(k, v) for k, v in new if v != HardwareConfig.__dataclass_fields__[k].default]
        return _Verbatim(f"HardwareConfig({old})" + (repr(extra) if extra else ""))


class _Verbatim(str):
    """A string that is its own repr (it stands for a dataclass in the hashed list)."""

    def __repr__(self) -> str:
        return str(self)


_FIRST_HW_FIELDS = ("enabled", "target", "fmax", "impl", "timeout")
_LATER_HW_FIELDS = ("fidelity", "confirm", "clock_mhz")
FIDELITIES = ("synth", "model")
MAX_CONFIRM = 10_000  # designs one study may confirm by synthesis


MAX_BATCH = 1 << 20  # training.batch_size at most (a split is far smaller)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: quantisation-aware fine-tuning inside each trial (``epochs = 0``: PTQ).

    A trial fine-tunes the checkpoint (``from``, else the one ``[model]`` selects) through
    its own fake-quantised network for up to ``epochs`` epochs and keeps the epoch (0 =
    the starting weights) with the best validation accuracy; ``patience`` epochs without a
    better one stop it early.  ``l1``: the weight of the adder-aware regulariser added to
    the training loss (:func:`models.train.weight_l1`); several choices make it a searched
    dimension ``l1`` (the first is the reference design's).
    """

    epochs: int = 0
    lr: float = 1e-3
    batch_size: int = 128
    patience: int = 5
    seed: int = 0
    checkpoint: str | None = None  # TOML key ``from``: a checkpoint file (.pt)
    l1: tuple[float, ...] = (0.0,)  # choices; one: fixed

    @property
    def enabled(self) -> bool:
        return self.epochs > 0

    @property
    def searches_l1(self) -> bool:
        return len(self.l1) > 1

    def fingerprint_part(self) -> Any:
        """What of it changes results: nothing by default (so PTQ studies keep theirs),
        only ``from`` when ``epochs = 0``, everything otherwise -- the fields of the first
        version as they were hashed, then ``l1`` when it is not 0."""
        if not self.enabled:
            return None if self.checkpoint is None else ("from", self.checkpoint)
        old = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIRST_TRAINING_FIELDS)
        extra = "" if self.l1 == (0.0,) else repr([("l1", self.l1)])
        return _Verbatim(f"TrainingConfig({old}){extra}")

    def with_l1(self, l1: float | None) -> TrainingConfig:
        """The table one trial trains with: ``l1`` fixed to its point's value (None: the
        first choice)."""
        return replace(self, l1=(self.l1[0] if l1 is None else float(l1),))

    def to_dict(self) -> dict[str, Any]:
        """As the TOML table would write it (``from``, not ``checkpoint``; ``l1`` when set)."""
        d = {k: getattr(self, k) for k in _FIRST_TRAINING_FIELDS if k != "checkpoint"}
        d["from"] = self.checkpoint
        if self.l1 != (0.0,):  # absent at 0: the records and cache keys made before it hold
            d["l1"] = list(self.l1) if self.searches_l1 else self.l1[0]
        return d


_FIRST_TRAINING_FIELDS = ("epochs", "lr", "batch_size", "patience", "seed", "checkpoint")


@dataclass(frozen=True)
class MetricConfig:
    name: str
    scale: float = 1.0  # 0: recorded and bounded, not scored
    direction: str = "maximize"
    min: float | None = None
    max: float | None = None
    reference: float | None = None  # overrides the reference design's value

    @property
    def scored(self) -> bool:
        return self.scale != 0


@dataclass(frozen=True)
class ScoreConfig:
    mode: str = "weighted"
    reference: QuantConfig = field(default_factory=lambda: QuantConfig.uniform(8))


@dataclass(frozen=True)
class SearchConfig:
    model: ModelConfig
    space: SpaceConfig
    strategy: StrategyConfig
    storage: StorageConfig
    hardware: HardwareConfig
    metrics: tuple[MetricConfig, ...]
    score: ScoreConfig
    source: str = ""  # the TOML text (kept in the study so reports need no file)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def scored(self) -> tuple[MetricConfig, ...]:
        return tuple(m for m in self.metrics if m.scored)

    @property
    def fingerprint(self) -> str:
        """What a resumed study must share: model, space, metrics, score, hardware (and
        ``[training]`` when it changes results: see :meth:`TrainingConfig.fingerprint_part`)."""
        hardware = replace(self.hardware, timeout=0.0)  # a longer timeout changes no result
        # metrics under the names of their first version, so renaming one (luts -> lut_eq)
        # keeps the fingerprints of the studies made before it
        old = {new: old for old, new in LEGACY_METRICS.items()}
        metrics = tuple(replace(m, name=old.get(m.name, m.name)) for m in self.metrics)
        parts = [self.model, self.space, hardware.fingerprint_part(), metrics, self.score.mode]
        parts.append(sorted(self.score.reference.layers.items()))
        parts.append(self.score.reference.default)
        train = self.training.fingerprint_part()
        if train is not None:  # absent for PTQ: the fingerprints of earlier studies hold
            parts.append(train)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


# --- parsing helpers -------------------------------------------------------------------------


def _table(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be a table, got {value!r}")
    return value


def _keys(table: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{path}.{key} is not a key; allowed: {', '.join(allowed)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any, path: str, lo: int, hi: int | None = None) -> int:
    if not _is_int(v) or v < lo or (hi is not None and v > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConfigError(f"{path} must be an integer {rng}, got {v!r}")
    return v


def _pos(v: Any, path: str) -> float:
    if not _is_num(v) or v <= 0:
        raise ConfigError(f"{path} must be a number > 0, got {v!r}")
    return float(v)


def _enum(v: Any, path: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ConfigError(f"{path} must be one of {'|'.join(allowed)}, got {v!r}")
    return v


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{path} must be true or false, got {v!r}")
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{path} must be a non-empty string, got {v!r}")
    return v


def _choice(key: str, v: Any, path: str) -> Choice:
    """One choice of a layer key, checked by the key's schema (models.qconfig.SCHEMA)."""
    try:
        return check_choice(key, v, path)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _choices(key: str, value: Any, path: str, check) -> tuple[Any, ...]:
    """A list of choices (a bare value is one fixed choice); no empties, no duplicates."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(f"{path} must list at least one choice")
    out = []
    for i, v in enumerate(items):
        c = check(key, v, f"{path}[{i}]" if isinstance(value, list) else path)
        if c in out:
            raise ConfigError(f"{path}[{i}] repeats the choice {v!r}; list each choice once")
        out.append(c)
    return tuple(out)


def _layer_table(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, tuple]:
    table = _table(value, path)
    _keys(table, path, allowed)
    return {k: _choices(k, v, f"{path}.{k}", _choice) for k, v in table.items()}


# --- sections --------------------------------------------------------------------------------


MODEL_KEYS = (
    "name", "activation", "slope", "dataset", "data_file", "checkpoint_dir", "seed", "split"
)  # fmt: skip


def _model(d: dict[str, Any], p: str) -> ModelConfig:
    _keys(d, p, MODEL_KEYS)
    if "name" not in d:
        raise ConfigError(f"{p}.name is required; allowed: {'|'.join(MODELS)}")
    name = _enum(d["name"], f"{p}.name", tuple(MODELS))
    act = _enum(d.get("activation", "relu"), f"{p}.activation", ACTIVATIONS)
    slope = d.get("slope", DEFAULT_SLOPE)
    if not _is_num(slope) or not 0 < slope < 1:
        raise ConfigError(f"{p}.slope must be a real number in (0, 1), got {slope!r}")
    dataset = _enum(d.get("dataset", "digits16"), f"{p}.dataset", DATASETS)
    data_file = d.get("data_file")
    if data_file is not None:
        data_file = _str(data_file, f"{p}.data_file")
    if dataset == "jsc" and data_file is None:
        raise ConfigError(f"{p}.data_file is required for dataset jsc (a CSV or HDF5 file)")
    ck = d.get("checkpoint_dir")
    if ck is not None:
        ck = _str(ck, f"{p}.checkpoint_dir")
    seed = _int(d.get("seed", 0), f"{p}.seed", 0)
    split = _enum(d.get("split", "val"), f"{p}.split", SPLITS)
    ModelSpec(name, 1, 1, act, float(slope))
    return ModelConfig(name, act, float(slope), dataset, data_file, ck, seed, split)


def _space(d: dict[str, Any], p: str, model: ModelConfig) -> SpaceConfig:
    _keys(d, p, ("default", "types", "layers", "impl", "stages"))
    names = model.layer_names
    leaky = model.activation == "leaky_relu" and model.has_activation
    no_leaky = tuple(k for k in LAYER_KEYS if k not in LEAKY_KEYS)
    base = LAYER_KEYS if leaky else no_leaky

    def check_leaky(table: dict, path: str, output: bool) -> None:
        for k in table:
            if k in LEAKY_KEYS and not leaky:
                raise ConfigError(
                    f"{path}.{k}: {model.name} with {model.activation} has no LeakyReLU; "
                    f"allowed: {', '.join(no_leaky)}"
                )
            if k in LEAKY_KEYS and output:
                raise ConfigError(
                    f"{path}.{k}: the output layer has no activation; "
                    f"allowed: {', '.join(no_leaky)}"
                )

    default = _layer_table(d.get("default", {}), f"{p}.default", LAYER_KEYS)
    check_leaky(default, f"{p}.default", False)
    types = {}
    for t, table in _table(d.get("types", {}), f"{p}.types").items():
        if t not in LAYER_TYPES:
            allowed = ", ".join(LAYER_TYPES)
            raise ConfigError(f"{p}.types.{t} is not a layer type; allowed: {allowed}")
        if t == "hidden" and not model.has_activation:
            raise ConfigError(f"{p}.types.hidden: {model.name} has no hidden layers; use output")
        types[t] = _layer_table(table, f"{p}.types.{t}", base)
        check_leaky(types[t], f"{p}.types.{t}", t == "output")
    layers = {}
    for name, table in _table(d.get("layers", {}), f"{p}.layers").items():
        if name not in names:
            raise ConfigError(
                f"{p}.layers.{name} is not a layer of {model.name}; allowed: {', '.join(names)}"
            )
        layers[name] = _layer_table(table, f"{p}.layers.{name}", base)
        check_leaky(layers[name], f"{p}.layers.{name}", name == names[-1])
    impl = None
    if "impl" in d:
        impl = _choices("impl", d["impl"], f"{p}.impl", lambda k, v, q: _enum(v, q, IMPLS))
    stages = _choices(
        "stages", d.get("stages", [0]), f"{p}.stages", lambda k, v, q: _int(v, q, 0, MAX_STAGES)
    )
    return SpaceConfig(default, types, layers, impl, stages)


def _strategy(d: dict[str, Any], p: str) -> StrategyConfig:
    from .strategies import STRATEGIES, check_options  # a static table: no Optuna import

    _keys(d, p, ("name", "n_trials", "timeout", "seed", "options", "pruner", *PRUNER_OPTIONS))
    name = _enum(d.get("name", "tpe"), f"{p}.name", tuple(STRATEGIES))
    n = d.get("n_trials")
    n = None if n is None else _int(n, f"{p}.n_trials", 1, MAX_TRIALS)
    timeout = d.get("timeout")
    timeout = None if timeout is None else _pos(timeout, f"{p}.timeout")
    seed = _int(d.get("seed", 0), f"{p}.seed", 0)
    options = dict(_table(d.get("options", {}), f"{p}.options"))
    try:
        check_options(name, options, p)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return StrategyConfig(name, n, timeout, seed, options, _pruner(d, p))


def _pruner(d: dict[str, Any], p: str) -> PrunerConfig:
    name = _enum(d.get("pruner", "none"), f"{p}.pruner", PRUNERS)
    for key, pruners in PRUNER_OPTIONS.items():
        if key in d and name not in pruners:
            raise ConfigError(f"{p}.{key} applies to pruner = {'|'.join(pruners)} only")
    lo = {"pruner_warmup": 0, "pruner_startup": 0, "pruner_reduction": 2}
    opts = {k: _int(d[k], f"{p}.{k}", lo[k], MAX_EPOCHS) for k in PRUNER_OPTIONS if k in d}
    return replace(PrunerConfig(name), **{k.removeprefix("pruner_"): v for k, v in opts.items()})


def _storage(d: dict[str, Any], p: str, default_study: str) -> StorageConfig:
    _keys(d, p, ("url", "study"))
    url = d.get("url")
    url = None if url is None else _str(url, f"{p}.url")
    study = d.get("study", default_study)
    if not is_name(study, NAME):  # a directory under --out and the study's key in storage
        stem = "" if "study" in d else " (default: the config file's stem)"
        raise ConfigError(f"{p}.study{stem} must be {name_rule(NAME)}, got {study!r}")
    return StorageConfig(url, study)


def _hardware(d: dict[str, Any], p: str) -> HardwareConfig:
    _keys(d, p, (*_FIRST_HW_FIELDS, *_LATER_HW_FIELDS))
    target = _enum(d.get("target", "ecp5"), f"{p}.target", TARGETS)
    impl = target_info(target).linear_impl  # the target's preferred Linear impl
    hw = HardwareConfig(
        _bool(d.get("enabled", True), f"{p}.enabled"),
        target,
        _bool(d.get("fmax", False), f"{p}.fmax"),
        _enum(d.get("impl", impl), f"{p}.impl", IMPLS),
        _pos(d.get("timeout", 600.0), f"{p}.timeout"),
        _enum(d.get("fidelity", "synth"), f"{p}.fidelity", FIDELITIES),
        _int(d.get("confirm", 0), f"{p}.confirm", 0, MAX_CONFIRM),
        _clock(d["clock_mhz"], f"{p}.clock_mhz") if "clock_mhz" in d else None,
    )
    if hw.confirm and hw.fidelity != "model":
        why = 'confirms what the model scored; set hardware.fidelity = "model" or drop it'
        raise ConfigError(f"{p}.confirm {why}")
    return hw


def _clock(v: Any, path: str) -> float:
    if not _is_num(v) or not MIN_MHZ <= v <= MAX_MHZ:
        raise ConfigError(
            f"{path} must be a number of MHz in [{MIN_MHZ:g}, {MAX_MHZ:g}], got {v!r}"
        )
    return float(v)


def _check_clocked(hw: HardwareConfig, space: SpaceConfig, root: str) -> None:
    """``hardware.clock_mhz`` places the registers itself (``space.stages`` is the manual
    override) and needs the modelled Linear impls (the delay model is theirs)."""
    if hw.clock_mhz is None:
        return
    where = f"{root}hardware.clock_mhz"
    if any(space.stages):
        raise ConfigError(
            f"{where} places the registers itself; {root}space.stages must then be 0 "
            f"(the manual override), got {list(space.stages)}"
        )
    impls = space.impl if space.impl is not None else (hw.impl,)
    bad = [i for i in impls if i not in MODELLED_IMPLS]
    if bad:
        key = "space.impl" if space.impl is not None else "hardware.impl"
        raise ConfigError(
            f"{where} needs {root}{key} in {'|'.join(MODELLED_IMPLS)} (the modelled ones), "
            f"got {bad[0]!r}"
        )


def _metric(name: str, d: Any, p: str, hw: HardwareConfig) -> MetricConfig:
    name = LEGACY_METRICS.get(name, name)  # [metrics.luts] of earlier configs
    if name not in METRICS:
        raise ConfigError(f"{p} is not a metric; allowed: {', '.join(METRICS)}")
    info = METRICS[name]
    if info.hardware and not hw.enabled:
        raise ConfigError(f"{p} needs synthesis; set hardware.enabled = true or drop it")
    if name in ("fmax", "latency_ns", "throughput") and not hw.has_fmax:
        why = 'needs an fmax; set hardware.fmax = true or hardware.fidelity = "model"'
        raise ConfigError(f"{p} {why}, or drop it")
    d = _table(d, p)
    _keys(d, p, ("scale", "direction", "min", "max", "reference"))
    scale = d.get("scale", 1.0)
    if not _is_num(scale) or scale < 0:
        why = "(direction sets the sign)"
        raise ConfigError(f"{p}.scale must be a number >= 0 {why}, got {scale!r}")
    direction = _enum(d.get("direction", info.direction), f"{p}.direction", DIRECTIONS)
    bounds = {}
    for k in ("min", "max", "reference"):
        if k in d and not _is_num(d[k]):
            raise ConfigError(f"{p}.{k} must be a number, got {d[k]!r}")
        bounds[k] = float(d[k]) if k in d else None
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise ConfigError(f"{p}.min must be <= {p}.max, got {bounds['min']} > {bounds['max']}")
    if bounds["reference"] == 0:
        raise ConfigError(f"{p}.reference must be non-zero (metrics are divided by it)")
    return MetricConfig(name, float(scale), direction, **bounds)


def _score(d: dict[str, Any], p: str) -> ScoreConfig:
    _keys(d, p, ("mode", "reference"))
    mode = _enum(d.get("mode", "weighted"), f"{p}.mode", MODES)
    ref = d.get("reference")
    if ref is None:
        return ScoreConfig(mode)
    try:
        return ScoreConfig(mode, QuantConfig.from_dict(_table(ref, f"{p}.reference")))
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"{p}.reference.{e}") from None


TRAINING_KEYS = ("epochs", "lr", "batch_size", "patience", "seed", "from", "l1")


def _training(d: dict[str, Any], p: str) -> TrainingConfig:
    _keys(d, p, TRAINING_KEYS)
    epochs = _int(d.get("epochs", 0), f"{p}.epochs", 0, MAX_EPOCHS)
    lr = d.get("lr", TrainingConfig.lr)
    if not _is_num(lr) or not 0 < lr <= 1:
        raise ConfigError(f"{p}.lr must be a number in (0, 1], got {lr!r}")
    batch = _int(d.get("batch_size", TrainingConfig.batch_size), f"{p}.batch_size", 1, MAX_BATCH)
    patience = _int(d.get("patience", TrainingConfig.patience), f"{p}.patience", 1, MAX_EPOCHS)
    seed = _int(d.get("seed", 0), f"{p}.seed", 0, MAX_SEED)
    ck = d.get("from")
    if ck is not None:
        ck = _str(ck, f"{p}.from")
        if not ck.endswith(".pt"):
            raise ConfigError(f"{p}.from must be a checkpoint file ending in .pt, got {ck!r}")
    l1 = _choices("l1", d.get("l1", 0.0), f"{p}.l1", _l1)
    if l1 != (0.0,) and epochs == 0:
        raise ConfigError(f"{p}.l1 regularises fine-tuning; it needs {p}.epochs > 0")
    return TrainingConfig(epochs, float(lr), batch, patience, seed, ck, l1)


def _l1(key: str, v: Any, path: str) -> float:
    if not _is_num(v) or v < 0:
        why = "(a list of them: a searched dimension)"
        raise ConfigError(f"{path} must be a number >= 0 {why}, got {v!r}")
    return float(v)


SECTIONS = (
    "model", "space", "strategy", "storage", "hardware", "metrics", "score", "training"
)  # fmt: skip


def parse_config(data: dict[str, Any], *, name: str = "search", source: str = "") -> SearchConfig:
    """Validate a parsed TOML document; ``name`` is the default study name."""
    root = ""
    if set(data) == {"search"}:
        data, root = _table(data["search"], "search"), "search."
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"{root}{key} is not a section; allowed: {', '.join(SECTIONS)}")
    if "model" not in data:
        raise ConfigError(f"{root}model is required (a table with name = {'|'.join(MODELS)})")

    def sec(k: str) -> dict[str, Any]:
        return _table(data.get(k, {}), f"{root}{k}")

    model = _model(sec("model"), f"{root}model")
    space = _space(sec("space"), f"{root}space", model)
    hardware = _hardware(sec("hardware"), f"{root}hardware")
    _check_clocked(hardware, space, root)
    metrics = tuple(
        _metric(k, v, f"{root}metrics.{k}", hardware) for k, v in sec("metrics").items()
    )
    for old, new in LEGACY_METRICS.items():
        if old in sec("metrics") and new in sec("metrics"):
            where = f"{root}metrics"
            raise ConfigError(f"{where}.{old} is the old name of {where}.{new}; keep one")
    if not any(m.scored for m in metrics):
        raise ConfigError(f"{root}metrics needs at least one [metrics.NAME] with scale > 0")
    score = _score(sec("score"), f"{root}score")
    try:
        score.reference.check_layers(list(model.layer_names))
    except ValueError as e:
        raise ConfigError(f"{root}score.reference.{e}") from None
    strategy = _strategy(sec("strategy"), f"{root}strategy")
    storage = _storage(sec("storage"), f"{root}storage", name)
    training = _training(sec("training"), f"{root}training")
    if strategy.pruner.enabled:  # pruning watches the per-epoch val accuracy of one objective
        where = f"{root}strategy.pruner = {strategy.pruner.name!r}"
        if score.mode == "pareto":
            raise ConfigError(
                f"{where}: Optuna cannot prune a multi-objective (score.mode = pareto) "
                "study; use pruner = none or score.mode = weighted"
            )
        if not training.enabled:
            raise ConfigError(f"{where} needs [training] epochs > 0 (it prunes fine-tuning)")
    return SearchConfig(model, space, strategy, storage, hardware, metrics, score, source, training)


def load_config(path: str | Path) -> SearchConfig:
    """Read and validate a TOML config (the study name defaults to the file's stem)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = read_text(path, "config")
    except ReadError as e:
        raise ConfigError(str(e)) from None
    return loads_config(text, name=path.stem, where=str(path))


def loads_config(text: str, *, name: str = "search", where: str = "config") -> SearchConfig:
    try:
        data = tomllib.loads(text.removeprefix(BOM))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: {str(e).splitlines()[0]}") from None
    return parse_config(data, name=name, source=text)
