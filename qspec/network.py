"""The quantised network spec: integer codes + formats, the input of ``hdl``.

A :class:`QuantisedNetwork` is an input format and a chain of layer specs, each
reading the previous one's output format:

* :class:`LinearSpec` -- ``y = W x + b`` on integer codes (semantics below);
* :class:`ReLUSpec` -- ``y = max(x, 0)``, same format;
* :class:`~qspec.leaky.LeakyReLUSpec` -- shift or mult variant;
* :class:`RequantiseSpec` -- re-express codes in another format.

Linear semantics (all integer, exact)::

    prod_fmt = in_fmt * weight_fmt             (width w_i + w_w, frac f_i + f_w)
    acc      = sum_j x[j] * W[k][j]            (exact; codes in prod_fmt)
             + b[k] << (prod_frac - bias_frac) (exact: bias_frac <= prod_frac)
    y[k]     = requantise(acc, acc_fmt, out_fmt, rounding, overflow)

``acc_fmt`` has ``prod_frac`` fractional bits and holds every value the sum can
take (:func:`min_accumulator_format`).  Every spec is validated, and its modes
normalised, however it is built (constructor, ``dataclasses.replace``,
``from_dict``); ``to_dict``/``from_dict`` let a spec be saved next to its Verilog.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

from .files import BOM, read_json
from .fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    check_int,
    parse_enum,
    product_format,
    range_format,
)
from .leaky import LeakyReLUSpec
from .names import NAME, check_name
from .schema import Reader, at, check_fmt, check_kind, fmt_from_dict, fmt_to_dict, join

SPEC_VERSION = 1

__all__ = [
    "LayerSpec",
    "LeakyReLUSpec",
    "LinearSpec",
    "QuantisedNetwork",
    "ReLUSpec",
    "RequantiseSpec",
    "fmt_from_dict",
    "fmt_to_dict",
    "group_layers",
    "layer_from_dict",
    "layer_to_dict",
    "min_accumulator_format",
]


def accumulator_range(
    in_fmt: FixedFormat, weight_fmt: FixedFormat, bias_fmt: FixedFormat, terms: int
) -> tuple[int, int]:
    """The exact [min, max] of ``sum of terms products + aligned bias``, in product codes."""
    check_int("terms", terms, 1)
    shift = in_fmt.frac_width + weight_fmt.frac_width - bias_fmt.frac_width
    if shift < 0:
        raise ValueError(
            f"bias_fmt.frac_width must be <= input+weight frac width "
            f"{in_fmt.frac_width + weight_fmt.frac_width}, got {bias_fmt.frac_width}"
        )
    ends = [
        a * b
        for a in (in_fmt.min_code, in_fmt.max_code)
        for b in (weight_fmt.min_code, weight_fmt.max_code)
    ]
    lo = terms * min(ends) + (bias_fmt.min_code << shift)
    hi = terms * max(ends) + (bias_fmt.max_code << shift)
    return lo, hi


def min_accumulator_format(
    in_fmt: FixedFormat, weight_fmt: FixedFormat, bias_fmt: FixedFormat, terms: int
) -> FixedFormat:
    """The narrowest accumulator holding every sum of ``terms`` products plus the aligned
    bias: :func:`~qspec.fixed.range_format` of the exact extreme range, at product frac."""
    lo, hi = accumulator_range(in_fmt, weight_fmt, bias_fmt, terms)
    return range_format(lo, hi, in_fmt.frac_width + weight_fmt.frac_width)


def _codes(name: str, rows: Any, fmt: FixedFormat, what: str) -> tuple[int, ...]:
    """A sequence of integer codes of ``fmt`` as a tuple of ints."""
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
        raise ValueError(f"{name} must be a list of integer codes, got {rows!r}")
    out = []
    for j, c in enumerate(rows):
        c = check_int(join(name, j), c)
        if not fmt.contains(c):
            raise ValueError(
                f"{join(name, j)} must be in [{fmt.min_code}, {fmt.max_code}] for {what} "
                f"format {fmt}, got {c}"
            )
        out.append(c)
    return tuple(out)


def _modes(spec: Any) -> None:
    object.__setattr__(spec, "rounding", parse_enum(Rounding, spec.rounding, "rounding"))
    object.__setattr__(spec, "overflow", parse_enum(Overflow, spec.overflow, "overflow"))


@dataclass(frozen=True)
class LinearSpec:
    """A fully connected layer on integer codes; ``weight[k][j]`` maps input j to output k."""

    kind: ClassVar[str] = "linear"
    name: str
    weight: tuple[tuple[int, ...], ...]
    bias: tuple[int, ...]
    in_fmt: FixedFormat
    weight_fmt: FixedFormat
    bias_fmt: FixedFormat
    acc_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        check_name("name", self.name)  # it names the layer's instance in the RTLIL
        for k in ("in_fmt", "weight_fmt", "bias_fmt", "acc_fmt", "out_fmt"):
            check_fmt(k, getattr(self, k))
        _modes(self)
        rows = self.weight
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
            raise ValueError(f"weight must be a list of rows, got {rows!r}")
        w = tuple(_codes(f"weight[{k}]", r, self.weight_fmt, "weight") for k, r in enumerate(rows))
        if not w or not w[0] or any(len(row) != len(w[0]) for row in w):
            raise ValueError("weight must be a non-empty rectangular matrix")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", _codes("bias", self.bias, self.bias_fmt, "bias"))
        if len(self.bias) != len(w):
            raise ValueError(f"bias must have {len(w)} entries, got {len(self.bias)}")
        pf = self.product_fmt.frac_width
        if self.bias_fmt.frac_width > pf:
            raise ValueError(
                f"bias_fmt.frac_width must be <= input+weight frac width {pf}, "
                f"got {self.bias_fmt.frac_width}"
            )
        lo, hi = accumulator_range(self.in_fmt, self.weight_fmt, self.bias_fmt, self.in_features)
        acc = self.acc_fmt
        if acc.frac_width != pf or not (acc.contains(lo) and acc.contains(hi)):
            need = range_format(lo, hi, pf)
            raise ValueError(
                f"acc_fmt must hold [{lo}, {hi}] with frac_width {pf} (at least {need}), got {acc}"
            )

    @property
    def in_features(self) -> int:
        return len(self.weight[0])

    @property
    def out_features(self) -> int:
        return len(self.weight)

    @property
    def product_fmt(self) -> FixedFormat:
        return product_format(self.in_fmt, self.weight_fmt)

    @property
    def bias_shift(self) -> int:
        """Left shift aligning a bias code with the product's fractional bits."""
        return self.product_fmt.frac_width - self.bias_fmt.frac_width

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "weight": [list(row) for row in self.weight],
            "bias": list(self.bias),
            **{k: fmt_to_dict(getattr(self, k)) for k in _LINEAR_FMTS},
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    @classmethod
    def from_dict(cls, d: Any, path: str = "") -> LinearSpec:
        r = Reader(d, path)
        check_kind(r, cls.kind)
        name, weight, bias = r.get("name"), r.get("weight"), r.get("bias")
        fmts = {k: r.sub(k, fmt_from_dict) for k in _LINEAR_FMTS}
        rounding, overflow = r.get("rounding"), r.get("overflow")
        r.done()
        with at(path):
            return cls(name, weight, bias, **fmts, rounding=rounding, overflow=overflow)


_LINEAR_FMTS = ("in_fmt", "weight_fmt", "bias_fmt", "acc_fmt", "out_fmt")


@dataclass(frozen=True)
class ReLUSpec:
    """``y = max(x, 0)``; the output format is the input format."""

    kind: ClassVar[str] = "relu"
    fmt: FixedFormat

    def __post_init__(self) -> None:
        check_fmt("fmt", self.fmt)

    @property
    def in_fmt(self) -> FixedFormat:
        return self.fmt

    @property
    def out_fmt(self) -> FixedFormat:
        return self.fmt

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fmt": fmt_to_dict(self.fmt)}

    @classmethod
    def from_dict(cls, d: Any, path: str = "") -> ReLUSpec:
        r = Reader(d, path)
        check_kind(r, cls.kind)
        fmt = r.sub("fmt", fmt_from_dict)
        r.done()
        return cls(fmt)


@dataclass(frozen=True)
class RequantiseSpec:
    """``y = requantise(x, in_fmt, out_fmt, rounding, overflow)``: a format change."""

    kind: ClassVar[str] = "requantise"
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        check_fmt("in_fmt", self.in_fmt)
        check_fmt("out_fmt", self.out_fmt)
        _modes(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "in_fmt": fmt_to_dict(self.in_fmt),
            "out_fmt": fmt_to_dict(self.out_fmt),
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    @classmethod
    def from_dict(cls, d: Any, path: str = "") -> RequantiseSpec:
        r = Reader(d, path)
        check_kind(r, cls.kind)
        in_fmt, out_fmt = r.sub("in_fmt", fmt_from_dict), r.sub("out_fmt", fmt_from_dict)
        rounding, overflow = r.get("rounding"), r.get("overflow")
        r.done()
        with at(path):
            return cls(in_fmt, out_fmt, rounding, overflow)


LayerSpec = LinearSpec | ReLUSpec | LeakyReLUSpec | RequantiseSpec
LAYER_KINDS: dict[str, type] = {
    cls.kind: cls for cls in (LinearSpec, ReLUSpec, LeakyReLUSpec, RequantiseSpec)
}


def layer_to_dict(layer: LayerSpec) -> dict[str, Any]:
    """``layer.to_dict()`` (every layer kind serialises itself)."""
    return layer.to_dict()


def group_layers(net: QuantisedNetwork) -> list[tuple[LayerSpec, ...]]:
    """Each Linear with the element-wise layers after it; leading element-wise layers alone
    (the groups ``hdl.network`` builds one module each from)."""
    groups: list[list[LayerSpec]] = [[]]
    for layer in net.layers:
        if isinstance(layer, LinearSpec) and groups[-1]:
            groups.append([])
        groups[-1].append(layer)
    return [tuple(g) for g in groups]


def layer_from_dict(d: Any, path: str = "") -> LayerSpec:
    """Any layer spec from its ``to_dict`` form, dispatched on ``kind``."""
    kind = Reader(d, path).get("kind")
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        allowed = "|".join(LAYER_KINDS)
        raise ValueError(f"{join(path, 'kind')} must be one of {allowed}, got {kind!r}")
    return LAYER_KINDS[kind].from_dict(d, path)


@dataclass(frozen=True)
class QuantisedNetwork:
    """Input format + a chain of layer specs whose formats line up + class count."""

    input_fmt: FixedFormat
    layers: tuple[LayerSpec, ...]
    num_classes: int
    name: str = ""

    def __post_init__(self) -> None:
        check_fmt("input_fmt", self.input_fmt)
        if isinstance(self.layers, str | bytes | Mapping) or not isinstance(self.layers, Iterable):
            raise ValueError(f"layers must be a list of layer specs, got {self.layers!r}")
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "num_classes", check_int("num_classes", self.num_classes, 1))
        check_name("name", self.name, NAME, empty=True)
        fmt = self.input_fmt
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, tuple(LAYER_KINDS.values())):
                raise ValueError(f"layers[{i}] must be a layer spec, got {layer!r}")
            if layer.in_fmt != fmt:
                src = "input_fmt" if i == 0 else "the previous out_fmt"
                raise ValueError(f"layers[{i}].in_fmt must be {fmt} ({src}), got {layer.in_fmt}")
            fmt = layer.out_fmt
        lin = self.linear_layers
        if not lin:
            raise ValueError("layers must contain at least one linear layer")
        for a, b in pairwise(lin):
            if a.out_features != b.in_features:
                i = self.layers.index(b)
                raise ValueError(
                    f"layers[{i}].in_features must be {a.out_features} (the previous linear "
                    f"layer's out_features), got {b.in_features}"
                )
        if lin[-1].out_features != self.num_classes:
            raise ValueError(
                f"num_classes must equal the last layer's out_features {lin[-1].out_features}, "
                f"got {self.num_classes}"
            )

    @property
    def linear_layers(self) -> list[LinearSpec]:
        return [ly for ly in self.layers if isinstance(ly, LinearSpec)]

    @property
    def in_features(self) -> int:
        return self.linear_layers[0].in_features

    @property
    def output_fmt(self) -> FixedFormat:
        return self.layers[-1].out_fmt

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "input_fmt": fmt_to_dict(self.input_fmt),
            "num_classes": self.num_classes,
            "layers": [ly.to_dict() for ly in self.layers],
        }

    @classmethod
    def from_dict(cls, d: Any) -> QuantisedNetwork:
        r = Reader(d, "", "a JSON object")
        version = r.get("version")
        if type(version) is not int or version != SPEC_VERSION:
            raise ValueError(f"version must be {SPEC_VERSION}, got {version!r}")
        input_fmt = r.sub("input_fmt", fmt_from_dict)
        layers = r.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"layers must be a list, got {layers!r}")
        specs = tuple(layer_from_dict(ly, f"layers[{i}]") for i, ly in enumerate(layers))
        num_classes, name = r.get("num_classes"), r.get("name", "")
        r.done()
        return cls(input_fmt, specs, num_classes, name)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> QuantisedNetwork:
        try:
            d = json.loads(text.removeprefix(BOM) if isinstance(text, str) else text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"spec is not valid JSON: {e}") from None
        except RecursionError:
            raise ValueError("spec is not valid JSON: nested too deeply") from None
        return cls.from_dict(d)

    @classmethod
    def read(cls, path: str | Path, what: str = "spec") -> QuantisedNetwork:
        """The spec JSON at ``path``; any problem is a one-line ``ValueError`` naming
        ``what`` and the path (unreadable, not JSON, not a valid spec)."""
        d = read_json(path, what)  # one reader: BOM, FIFOs, binary files, too deep
        try:
            return cls.from_dict(d)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            why = f"missing key {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
            raise ValueError(f"{what} {str(path)!r}: not a network spec: {why}") from None
