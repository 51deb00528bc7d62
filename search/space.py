"""The discrete search space: per-layer choices resolved into Optuna dimensions.

Each layer's choices are ``[space.default]``, overridden by ``[space.types.hidden]``
or ``[space.types.output]``, overridden by ``[space.layers.NAME]``.  A key with
several choices becomes one dimension per layer, named ``fc1.weight_width``;
a key with one choice is fixed.  ``width`` is one dimension setting every
``*_width`` of its layer (explicit keys at the same or a more specific level
win).  ``input_*`` (and the input part of ``width``) applies to the first layer;
on a later layer only when that layer's own table sets it (a requantise is then
inserted).  LeakyReLU keys of ``default`` do not apply to the output layer.
``impl`` and ``stages`` are network-wide dimensions, and so is ``l1`` when
``[training] l1`` lists several choices.

Integer choices in arithmetic progression are sampled with ``suggest_int`` (so
TPE and QMC see their order), everything else with ``suggest_categorical``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from models.qconfig import INPUT_KEYS, LAYER_KEYS, LEAKY_KEYS, SHORTHANDS, QuantConfig, layer_table

from .config import Choice, SearchConfig

if TYPE_CHECKING:
    import optuna

Point = dict[str, Choice]  # dimension name -> chosen value


@dataclass(frozen=True)
class Dimension:
    name: str
    choices: tuple[Choice, ...]

    @property
    def int_step(self) -> int | None:
        """The step when the choices are ascending ints in arithmetic progression."""
        c = self.choices
        if len(c) < 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in c):
            return None
        step = c[1] - c[0]
        ok = step > 0 and all(b - a == step for a, b in itertools.pairwise(c))
        return step if ok else None

    def suggest(self, trial: optuna.Trial) -> Choice:
        step = self.int_step
        if step is not None:
            return trial.suggest_int(self.name, self.choices[0], self.choices[-1], step=step)
        return trial.suggest_categorical(self.name, list(self.choices))


@dataclass(frozen=True)
class LayerChoices:
    name: str
    first: bool
    table: dict[str, tuple[Choice, ...]]  # merged over default/type/layer
    own_input: bool  # the layer's own table sets input_* (a later layer requantises)


@dataclass(frozen=True)
class Candidate:
    """One fully resolved point: what to quantise and how to build it."""

    layers: dict[str, dict[str, Choice]]  # per layer: the keys the space sets
    impl: str
    stages: int
    first: str  # the first layer's name
    own_input: frozenset[str] = frozenset()
    leaky: frozenset[str] = frozenset()  # layers followed by a LeakyReLU
    l1: float | None = None  # a searched training.l1's value (None: not searched)

    def quant_config(self) -> QuantConfig:
        tables = {
            name: layer_table(keys, keep_input=name == self.first or name in self.own_input)
            for name, keys in self.layers.items()
        }
        return QuantConfig.from_dict({"layers": tables})

    def to_dict(self) -> dict[str, Any]:
        """The effective per-layer quantisation (every key) plus impl and stages."""
        q = self.quant_config()
        layers = {}
        for name in self.layers:
            d = asdict(q.for_layer(name))
            if name not in self.leaky:  # these keys would not mean anything here
                d = {k: v for k, v in d.items() if k not in LEAKY_KEYS}
            layers[name] = {k: (v.value if hasattr(v, "value") else v) for k, v in d.items()}
        d = {"layers": layers, "impl": self.impl, "stages": self.stages}
        return d if self.l1 is None else d | {"l1": self.l1}


def _merge(levels: list[dict[str, tuple]]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for level in levels:
        for short, (_, targets) in SHORTHANDS.items():
            if short in level:  # a more specific `width` replaces inherited *_width keys
                for k in targets:
                    out.pop(k, None)
        out.update(level)
    return out


@dataclass(frozen=True)
class SearchSpace:
    layers: tuple[LayerChoices, ...]
    impl: tuple[str, ...]
    stages: tuple[int, ...]
    leaky: frozenset[str] = frozenset()  # layers followed by a LeakyReLU
    l1: tuple[float, ...] = ()  # training.l1's choices when searched (several), else ()

    @classmethod
    def from_config(cls, cfg: SearchConfig) -> SearchSpace:
        sp, names = cfg.space, cfg.model.layer_names
        leaky = frozenset(names[:-1] if cfg.model.activation == "leaky_relu" else ())
        layers = []
        for i, name in enumerate(names):
            kind = "output" if i == len(names) - 1 else "hidden"
            default = dict(sp.default)
            if name not in leaky:
                default = {k: v for k, v in default.items() if k not in LEAKY_KEYS}
            own = sp.layers.get(name, {})
            table = _merge([default, sp.types.get(kind, {}), own])
            layers.append(LayerChoices(name, i == 0, table, bool(set(INPUT_KEYS) & set(own))))
        impl = sp.impl if sp.impl is not None else (cfg.hardware.impl,)
        t = cfg.training
        l1 = t.l1 if t.enabled and t.searches_l1 else ()
        return cls(tuple(layers), impl, sp.stages, leaky, l1)

    @property
    def dims(self) -> tuple[Dimension, ...]:
        dims = []
        for ly in self.layers:
            for k in LAYER_KEYS:
                c = ly.table.get(k, ())
                if k in INPUT_KEYS and not (ly.first or ly.own_input):
                    continue
                if len(c) > 1:
                    dims.append(Dimension(f"{ly.name}.{k}", c))
        if len(self.impl) > 1:
            dims.append(Dimension("impl", self.impl))
        if len(self.stages) > 1:
            dims.append(Dimension("stages", self.stages))
        if self.l1:
            dims.append(Dimension("l1", self.l1))
        return tuple(dims)

    @property
    def size(self) -> int:
        return math.prod(len(d.choices) for d in self.dims)

    def grid(self) -> Iterator[Point]:
        """Every point, in a fixed order (the first dimension varies slowest)."""
        dims = self.dims
        for values in itertools.product(*(d.choices for d in dims)):
            yield dict(zip((d.name for d in dims), values, strict=True))

    @staticmethod
    def key(point: Point) -> str:
        """A deterministic key of a point (the same in every process)."""
        return json.dumps(point, sort_keys=True, separators=(",", ":"))

    def suggest(self, trial: optuna.Trial) -> Point:
        return {d.name: d.suggest(trial) for d in self.dims}

    def design(self, point: Point) -> Candidate:
        """The point's design; missing or unknown dimensions are errors."""
        names = [d.name for d in self.dims]
        if sorted(point) != sorted(names):
            raise ValueError(f"point has dimensions {sorted(point)}, expected {sorted(names)}")
        layers = {}
        for ly in self.layers:
            layers[ly.name] = {k: point.get(f"{ly.name}.{k}", c[0]) for k, c in ly.table.items()}
        own = frozenset(ly.name for ly in self.layers if ly.own_input)
        return Candidate(
            layers,
            str(point.get("impl", self.impl[0])),
            int(point.get("stages", self.stages[0])),
            self.layers[0].name,
            own,
            self.leaky,
            float(point["l1"]) if self.l1 else None,
        )
