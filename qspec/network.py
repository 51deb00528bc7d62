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

``acc_fmt`` has ``prod_frac`` fractional bits and is wide enough that the sum
can never overflow (:func:`min_accumulator_format`).  Everything is plain data
with ``to_dict``/``from_dict`` so a spec can be saved next to its Verilog.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .fixed import FixedFormat, Overflow, Rounding, parse_enum, product_format
from .leaky import LeakyReLUSpec

SPEC_VERSION = 1


def fmt_to_dict(fmt: FixedFormat) -> dict[str, Any]:
    return {"width": fmt.width, "frac_width": fmt.frac_width, "signed": fmt.signed}


def fmt_from_dict(d: dict[str, Any]) -> FixedFormat:
    return FixedFormat(d["width"], d["frac_width"], d.get("signed", True))


def min_accumulator_format(
    in_fmt: FixedFormat, weight_fmt: FixedFormat, bias_fmt: FixedFormat, terms: int
) -> FixedFormat:
    """The narrowest accumulator that holds ``terms`` products plus the aligned bias."""
    prod = product_format(in_fmt, weight_fmt)
    shift = prod.frac_width - bias_fmt.frac_width
    # every term (products and the shifted bias) fits in `width` bits, so the
    # sum of terms + 1 of them fits in width + ceil(log2(terms + 1)) bits
    width = max(prod.width, bias_fmt.width + shift)
    return FixedFormat(width + math.ceil(math.log2(terms + 1)), prod.frac_width, True)


def _check_codes(name: str, codes: tuple[int, ...], fmt: FixedFormat) -> None:
    for c in codes:
        if isinstance(c, bool) or not isinstance(c, int) or not fmt.contains(c):
            raise ValueError(
                f"{name} codes must be ints in [{fmt.min_code}, {fmt.max_code}], got {c!r}"
            )


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
        w = tuple(tuple(int(c) for c in row) for row in self.weight)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", tuple(int(c) for c in self.bias))
        object.__setattr__(self, "rounding", parse_enum(Rounding, self.rounding, "rounding"))
        object.__setattr__(self, "overflow", parse_enum(Overflow, self.overflow, "overflow"))
        if not w or not w[0] or any(len(row) != len(w[0]) for row in w):
            raise ValueError(f"{self.name}: weight must be a non-empty rectangular matrix")
        if len(self.bias) != len(w):
            raise ValueError(f"{self.name}: bias must have {len(w)} entries, got {len(self.bias)}")
        for row in w:
            _check_codes(f"{self.name}: weight", row, self.weight_fmt)
        _check_codes(f"{self.name}: bias", self.bias, self.bias_fmt)
        pf = self.product_fmt.frac_width
        if self.bias_fmt.frac_width > pf:
            raise ValueError(
                f"{self.name}: bias_frac_width must be <= input+weight frac width {pf}, "
                f"got {self.bias_fmt.frac_width}"
            )
        need = min_accumulator_format(self.in_fmt, self.weight_fmt, self.bias_fmt, self.in_features)
        if self.acc_fmt.frac_width != pf or self.acc_fmt.width < need.width:
            raise ValueError(f"{self.name}: acc_fmt must be at least {need}, got {self.acc_fmt}")

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
            **{
                k: fmt_to_dict(getattr(self, k))
                for k in ("in_fmt", "weight_fmt", "bias_fmt", "acc_fmt", "out_fmt")
            },
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearSpec:
        fmts = {
            k: fmt_from_dict(d[k])
            for k in ("in_fmt", "weight_fmt", "bias_fmt", "acc_fmt", "out_fmt")
        }
        return cls(
            d["name"],
            d["weight"],
            d["bias"],
            **fmts,
            rounding=d["rounding"],
            overflow=d["overflow"],
        )


@dataclass(frozen=True)
class ReLUSpec:
    """``y = max(x, 0)``; the output format is the input format."""

    kind: ClassVar[str] = "relu"
    fmt: FixedFormat

    @property
    def in_fmt(self) -> FixedFormat:
        return self.fmt

    @property
    def out_fmt(self) -> FixedFormat:
        return self.fmt

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fmt": fmt_to_dict(self.fmt)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReLUSpec:
        return cls(fmt_from_dict(d["fmt"]))


@dataclass(frozen=True)
class RequantiseSpec:
    """``y = requantise(x, in_fmt, out_fmt, rounding, overflow)``: a format change."""

    kind: ClassVar[str] = "requantise"
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    rounding: Rounding = Rounding.FLOOR
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", parse_enum(Rounding, self.rounding, "rounding"))
        object.__setattr__(self, "overflow", parse_enum(Overflow, self.overflow, "overflow"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "in_fmt": fmt_to_dict(self.in_fmt),
            "out_fmt": fmt_to_dict(self.out_fmt),
            "rounding": self.rounding.value,
            "overflow": self.overflow.value,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RequantiseSpec:
        return cls(
            fmt_from_dict(d["in_fmt"]), fmt_from_dict(d["out_fmt"]), d["rounding"], d["overflow"]
        )


def leaky_to_dict(spec: LeakyReLUSpec) -> dict[str, Any]:
    return {
        "kind": "leaky_relu",
        "impl": spec.impl,
        "in_fmt": fmt_to_dict(spec.in_fmt),
        "out_fmt": fmt_to_dict(spec.out_fmt),
        "rounding": spec.rounding.value,
        "overflow": spec.overflow.value,
        "shift": spec.shift,
        "slope_fmt": None if spec.slope_fmt is None else fmt_to_dict(spec.slope_fmt),
        "slope_code": spec.slope_code,
        "slope_requested": spec.slope_requested,
    }


def leaky_from_dict(d: dict[str, Any]) -> LeakyReLUSpec:
    return LeakyReLUSpec(
        d["impl"],
        fmt_from_dict(d["in_fmt"]),
        fmt_from_dict(d["out_fmt"]),
        Rounding(d["rounding"]),
        Overflow(d["overflow"]),
        shift=d["shift"],
        slope_fmt=None if d["slope_fmt"] is None else fmt_from_dict(d["slope_fmt"]),
        slope_code=d["slope_code"],
        slope_requested=d.get("slope_requested"),
    )


LayerSpec = LinearSpec | ReLUSpec | LeakyReLUSpec | RequantiseSpec
_FROM_DICT = {
    "linear": LinearSpec.from_dict,
    "relu": ReLUSpec.from_dict,
    "leaky_relu": leaky_from_dict,
    "requantise": RequantiseSpec.from_dict,
}


def layer_to_dict(layer: LayerSpec) -> dict[str, Any]:
    return leaky_to_dict(layer) if isinstance(layer, LeakyReLUSpec) else layer.to_dict()


def layer_from_dict(d: dict[str, Any]) -> LayerSpec:
    kind = d.get("kind")
    if kind not in _FROM_DICT:
        raise ValueError(f"layer kind must be one of {'|'.join(_FROM_DICT)}, got {kind!r}")
    return _FROM_DICT[kind](d)


@dataclass(frozen=True)
class QuantisedNetwork:
    """Input format + a chain of layer specs whose formats line up + class count."""

    input_fmt: FixedFormat
    layers: tuple[LayerSpec, ...]
    num_classes: int
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        fmt = self.input_fmt
        for i, layer in enumerate(self.layers):
            if layer.in_fmt != fmt:
                src = "input_fmt" if i == 0 else "the previous out_fmt"
                raise ValueError(f"layers[{i}].in_fmt must be {fmt} ({src}), got {layer.in_fmt}")
            fmt = layer.out_fmt
        lin = self.linear_layers
        if not lin:
            raise ValueError("layers must contain at least one linear layer")
        for a, b in zip(lin, lin[1:], strict=False):
            if a.out_features != b.in_features:
                raise ValueError(
                    f"{b.name}: in_features must be {a.out_features}, got {b.in_features}"
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
        return self.layers[-1].out_fmt if self.layers else self.input_fmt

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "input_fmt": fmt_to_dict(self.input_fmt),
            "num_classes": self.num_classes,
            "layers": [layer_to_dict(ly) for ly in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantisedNetwork:
        if d.get("version") != SPEC_VERSION:
            raise ValueError(f"version must be {SPEC_VERSION}, got {d.get('version')!r}")
        return cls(
            fmt_from_dict(d["input_fmt"]),
            tuple(layer_from_dict(ly) for ly in d["layers"]),
            d["num_classes"],
            d.get("name", ""),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> QuantisedNetwork:
        return cls.from_dict(json.loads(text))
