"""Per-layer quantisation config: typed, validated, loadable from a dict/TOML.

TOML shape (all keys optional; ``width`` is shorthand for every ``*_width``)::

    [default]
    width = 8
    rounding = "floor"          # floor | nearest
    [layers.fc2]
    weight_width = 4
    weight_frac_width = 3       # omitted frac widths are calibrated (see models.quant)
    calibration = "mse"         # mse | max
    leaky_impl = "shift"        # shift (slope -> nearest 2^-n) | mult (see qspec.leaky)

``input_*`` of the first layer is the network input format; on later layers it
defaults to the previous layer's output format (set it to insert a requantise).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qspec.fixed import Overflow, Rounding, parse_enum
from qspec.leaky import LEAKY_IMPLS

from .modelspec import ACTIVATIONS

MIN_WIDTH, MAX_WIDTH = 1, 16  # 16+16-bit products keep float64 fake-quant exact
MIN_FRAC, MAX_FRAC = -16, 32
CALIBRATIONS = ("mse", "max")

WIDTH_KEYS = ("input_width", "weight_width", "bias_width", "act_width")
FRAC_KEYS = ("input_frac_width", "weight_frac_width", "bias_frac_width", "act_frac_width")


@dataclass(frozen=True)
class LayerQuant:
    """Quantisation of one Linear layer (+ its activation). ``None`` frac = calibrate."""

    input_width: int = 8
    input_frac_width: int | None = None
    weight_width: int = 8
    weight_frac_width: int | None = None
    bias_width: int = 8
    bias_frac_width: int | None = None
    act_width: int = 8  # the layer's output (and its activation's) width
    act_frac_width: int | None = None
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE
    activation: str | None = None  # None: the model's own activation
    leaky_impl: str = "mult"  # shift: qspec.leaky.nearest_shift (linear distance)
    slope: float | None = None  # None: the model's slope
    slope_width: int | None = None  # mult: default the activation width
    slope_frac_width: int | None = None  # mult: default the finest holding the slope
    calibration: str = "mse"  # how omitted frac widths are chosen: mse | max

    def __post_init__(self) -> None:
        for k in WIDTH_KEYS:
            _check_int(k, getattr(self, k), MIN_WIDTH, MAX_WIDTH)
        for k in FRAC_KEYS:
            if getattr(self, k) is not None:
                _check_int(k, getattr(self, k), MIN_FRAC, MAX_FRAC)
        if self.slope_width is not None:
            _check_int("slope_width", self.slope_width, 2, MAX_WIDTH)
        if self.slope_frac_width is not None:
            _check_int("slope_frac_width", self.slope_frac_width, MIN_FRAC, MAX_FRAC)
        object.__setattr__(self, "rounding", parse_enum(Rounding, self.rounding, "rounding"))
        object.__setattr__(self, "overflow", parse_enum(Overflow, self.overflow, "overflow"))
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {'|'.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {'|'.join(CALIBRATIONS)}, got {self.calibration!r}"
            )
        if self.leaky_impl not in LEAKY_IMPLS:
            raise ValueError(
                f"leaky_impl must be one of {'|'.join(LEAKY_IMPLS)}, got {self.leaky_impl!r}"
            )
        if self.slope is not None and (
            isinstance(self.slope, bool)
            or not isinstance(self.slope, int | float)
            or not 0 < self.slope < 1
        ):
            raise ValueError(f"slope must be a real number in (0, 1), got {self.slope!r}")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


KEYS = tuple(f.name for f in fields(LayerQuant))


def _layer_from_dict(base: LayerQuant, d: dict[str, Any], where: str) -> LayerQuant:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a table of keys, got {d!r}")
    d = dict(d)
    unknown = sorted(set(d) - set(KEYS) - {"width"})
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not a key; allowed: width, {', '.join(KEYS)}")
    if "width" in d:
        w = d.pop("width")
        d = {**dict.fromkeys(WIDTH_KEYS, w), **d}
    try:
        return replace(base, **d)
    except ValueError as e:
        raise ValueError(f"{where}.{e}") from None


@dataclass(frozen=True)
class QuantConfig:
    """A default :class:`LayerQuant` plus per-layer overrides (by Linear name)."""

    default: LayerQuant = field(default_factory=LayerQuant)
    layers: dict[str, LayerQuant] = field(default_factory=dict)
    explicit_input: frozenset[str] = frozenset()  # layers whose own table sets input_*

    @classmethod
    def uniform(cls, bits: int, **kw: Any) -> QuantConfig:
        """Every width = ``bits``; fractional widths calibrated."""
        return cls(_layer_from_dict(LayerQuant(), {"width": bits, **kw}, "default"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantConfig:
        if not isinstance(d, dict):
            raise ValueError(f"quant must be a table ([default], [layers.NAME]), got {d!r}")
        unknown = sorted(set(d) - {"default", "layers"})
        if unknown:
            raise ValueError(
                f"{unknown[0]} is not a quantisation section; allowed: default, layers"
            )
        default = _layer_from_dict(LayerQuant(), d.get("default", {}), "default")
        layers, explicit = {}, set()
        tables = d.get("layers", {})
        if not isinstance(tables, dict):
            raise ValueError(f"layers must be a table of [layers.NAME] tables, got {tables!r}")
        for name, table in tables.items():
            layers[name] = _layer_from_dict(default, table, f"layers.{name}")
            if {"input_width", "input_frac_width", "width"} & set(table):
                explicit.add(name)
        return cls(default, layers, frozenset(explicit))

    @classmethod
    def from_toml(cls, path: str | Path) -> QuantConfig:
        """Read a TOML file; a top-level ``[quant]`` table is used if present."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file not found: {path}")
        try:
            data = tomllib.loads(path.read_text())
        except OSError as e:
            raise ValueError(f"config {path} is not readable: {e.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"config {path}: {str(e).splitlines()[0]}") from None
        return cls.from_dict(data.get("quant", data))

    def check_layers(self, names: list[str]) -> None:
        """A config naming a layer the model lacks is an error."""
        for name in self.layers:
            if name not in names:
                raise ValueError(
                    f"layers.{name} is not a layer of this model; allowed: {', '.join(names)}"
                )

    def for_layer(self, name: str) -> LayerQuant:
        return self.layers.get(name, self.default)
