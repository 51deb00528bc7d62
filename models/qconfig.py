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

from qspec.files import read_text
from qspec.fixed import OVERFLOWS, ROUNDINGS, Overflow, Rounding, parse_enum
from qspec.leaky import LEAKY_IMPLS

from .modelspec import ACTIVATIONS

MIN_WIDTH, MAX_WIDTH = 1, 16  # 16+16-bit products keep float64 fake-quant exact
MIN_FRAC, MAX_FRAC = -16, 32
CALIBRATIONS = ("mse", "max")
MAX_DIGITS = MAX_WIDTH  # a digit budget beyond the weight width changes nothing

CALIBRATE = "calibrate"  # a search choice of a frac width: calibrate it (None here)


@dataclass(frozen=True)
class Key:
    """The schema of one per-layer quantisation key (a :class:`LayerQuant` field's metadata).

    ``kind``: width | frac | int (integers in ``[lo, hi]``), real (in the open ``(lo, hi)``),
    ratio (real in the half-open ``[lo, hi)``) or enum (one of ``allowed``).  ``optional``:
    ``None`` is allowed (resolved elsewhere).  ``search``: a search dimension (``[space]``
    tables may set it).  ``group``: input | leaky -- the key applies only to the first layer
    / layers followed by a LeakyReLU.
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    allowed: tuple[str, ...] = ()
    optional: bool = False
    search: bool = True
    group: str | None = None
    parse: Any = None  # enum: the StrEnum a LayerQuant value is parsed into

    def check(self, name: str, value: Any) -> Any:
        """A :class:`LayerQuant` value (enums parsed), else a one-line ``ValueError``."""
        if value is None and self.optional:
            return None
        if self.kind == "enum" and self.parse is not None:
            return parse_enum(self.parse, value, name)
        return self._check(name, value, "")

    def check_choice(self, name: str, value: Any) -> Any:
        """A search choice (a frac width may be :data:`CALIBRATE`), else a ``ValueError``."""
        if self.kind == "frac":
            if value == CALIBRATE:
                return value
            return self._check(name, value, f' or "{CALIBRATE}"')
        value = self._check(name, value, "")
        return float(value) if self.kind in ("real", "ratio") else value

    def _check(self, name: str, value: Any, alt: str) -> Any:
        if self.kind == "enum":
            if value not in self.allowed:
                raise ValueError(f"{name} must be one of {'|'.join(self.allowed)}, got {value!r}")
            return value
        num = not isinstance(value, bool) and isinstance(value, int | float)
        if self.kind == "real":
            if not num or not self.lo < value < self.hi:
                raise ValueError(
                    f"{name} must be a real number in ({self.lo:g}, {self.hi:g}), got {value!r}"
                )
            return value
        if self.kind == "ratio":
            if not num or not self.lo <= value < self.hi:
                raise ValueError(
                    f"{name} must be a real number in [{self.lo:g}, {self.hi:g}), got {value!r}"
                )
            return float(value)
        if not num or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise ValueError(
                f"{name} must be an integer in [{self.lo}, {self.hi}]{alt}, got {value!r}"
            )
        return value


def _key(default: Any, key: Key) -> Any:
    return field(default=default, metadata={"key": key})


_WIDTH = Key("width", MIN_WIDTH, MAX_WIDTH)
_FRAC = Key("frac", MIN_FRAC, MAX_FRAC, optional=True)
_INPUT = {"group": "input"}


@dataclass(frozen=True)
class LayerQuant:
    """Quantisation of one Linear layer (+ its activation). ``None`` frac = calibrate.

    Each field's :class:`Key` (``SCHEMA``) is its check and its place in the search."""

    input_width: int = _key(8, replace(_WIDTH, **_INPUT))
    input_frac_width: int | None = _key(None, replace(_FRAC, **_INPUT))
    weight_width: int = _key(8, _WIDTH)
    weight_frac_width: int | None = _key(None, _FRAC)
    bias_width: int = _key(8, _WIDTH)
    bias_frac_width: int | None = _key(None, _FRAC)
    act_width: int = _key(8, _WIDTH)  # the layer's output (and its activation's) width
    act_frac_width: int | None = _key(None, _FRAC)
    rounding: Rounding = _key(Rounding.FLOOR, Key("enum", allowed=ROUNDINGS, parse=Rounding))
    overflow: Overflow = _key(Overflow.SATURATE, Key("enum", allowed=OVERFLOWS, parse=Overflow))
    # None: the model's own activation
    activation: str | None = _key(
        None, Key("enum", allowed=ACTIVATIONS, optional=True, search=False)
    )
    # shift: qspec.leaky.nearest_shift (linear distance)
    leaky_impl: str = _key("mult", Key("enum", allowed=LEAKY_IMPLS, group="leaky"))
    # None: the model's slope
    slope: float | None = _key(None, Key("real", 0, 1, optional=True, group="leaky"))
    # mult: default the activation width
    slope_width: int | None = _key(None, Key("int", 2, MAX_WIDTH, optional=True, group="leaky"))
    # mult: default the finest holding the slope
    slope_frac_width: int | None = _key(None, replace(_FRAC, kind="int", group="leaky"))
    # how omitted frac widths are chosen: mse | max
    calibration: str = _key("mse", Key("enum", allowed=CALIBRATIONS))
    # the fraction of the Linear weights pruned by magnitude (models.quant.prune_mask)
    sparsity: float = _key(0.0, Key("ratio", 0, 1))
    # nonzero CSD digits per weight code (qspec.digits.round_to_digits); 0: unlimited
    max_digits: int = _key(0, Key("int", 0, MAX_DIGITS))

    def __post_init__(self) -> None:
        for name, key in SCHEMA.items():
            value = key.check(name, getattr(self, name))
            if value is not getattr(self, name):
                object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        # keys added later are left out at their defaults, so the repr -- part of a search
        # config's fingerprint -- of a config that does not use them is what it was
        shown = (
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if not (f.name in LATER_KEYS and getattr(self, f.name) == f.default)
        )
        return f"LayerQuant({', '.join(shown)})"


LATER_KEYS = ("sparsity", "max_digits")  # see LayerQuant.__repr__
SCHEMA: dict[str, Key] = {f.name: f.metadata["key"] for f in fields(LayerQuant)}
KEYS = tuple(SCHEMA)


def keys_where(**match: Any) -> tuple[str, ...]:
    """The keys whose :class:`Key` has every given attribute value, in field order."""
    items = match.items()
    return tuple(k for k, key in SCHEMA.items() if all(getattr(key, a) == v for a, v in items))


WIDTH_KEYS = keys_where(kind="width")
FRAC_KEYS = keys_where(kind="frac")
INPUT_KEYS = keys_where(group="input")
LEAKY_KEYS = keys_where(group="leaky")
# shorthand: one choice setting every *_width of a layer (not a field)
SHORTHANDS: dict[str, tuple[Key, tuple[str, ...]]] = {"width": (_WIDTH, WIDTH_KEYS)}


def _search_rank(name: str) -> int:
    key = SCHEMA[name]
    return {"width": 0, "frac": 1}.get(key.kind, 3 if key.group == "leaky" else 2)


# every key a search layer table may hold, in the order parameters are named and sampled:
# the shorthands, widths, frac widths, the other keys, then the LeakyReLU keys
LAYER_KEYS = (*SHORTHANDS, *sorted(keys_where(search=True), key=_search_rank))


def check_choice(key: str, value: Any, path: str) -> Any:
    """One search choice of layer key ``key`` (see :data:`LAYER_KEYS`); ``path`` names it."""
    schema = SHORTHANDS[key][0] if key in SHORTHANDS else SCHEMA[key]
    return schema.check_choice(path, value)


def layer_table(choices: dict[str, Any], *, keep_input: bool = True) -> dict[str, Any]:
    """The :class:`LayerQuant` keys a layer's search choices set: shorthands expanded
    (explicit keys win), :data:`CALIBRATE` left out (calibrated), input keys only with
    ``keep_input``."""
    out: dict[str, Any] = {}
    for short, (_, targets) in SHORTHANDS.items():
        if short in choices:
            out |= {k: choices[short] for k in targets if keep_input or k not in INPUT_KEYS}
    for k, v in choices.items():
        if k in SHORTHANDS or v == CALIBRATE or (k in INPUT_KEYS and not keep_input):
            continue
        out[k] = v
    return out


# the keys whose presence in a layer's own table sets its input format
_INPUT_SETTERS = {*INPUT_KEYS, *(s for s, (_, t) in SHORTHANDS.items() if set(INPUT_KEYS) & set(t))}


def _layer_from_dict(base: LayerQuant, d: dict[str, Any], where: str) -> LayerQuant:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a table of keys, got {d!r}")
    d = dict(d)
    unknown = sorted(set(d) - set(KEYS) - set(SHORTHANDS))
    if unknown:
        allowed = ", ".join((*SHORTHANDS, *KEYS))
        raise ValueError(f"{where}.{unknown[0]} is not a key; allowed: {allowed}")
    for short, (_, targets) in SHORTHANDS.items():
        if short in d:
            w = d.pop(short)
            d = {**dict.fromkeys(targets, w), **d}
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
            if _INPUT_SETTERS & set(table):
                explicit.add(name)
        return cls(default, layers, frozenset(explicit))

    @classmethod
    def from_toml(cls, path: str | Path) -> QuantConfig:
        """Read a TOML file; a top-level ``[quant]`` table is used if present."""
        path = Path(path)
        if not path.exists():
            raise ValueError(f"config file not found: {path}")
        text = read_text(path, "config")  # a directory, FIFO, binary file: one line
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
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
