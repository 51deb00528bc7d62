"""Test-vector files, once: the inputs file ``models spec`` writes and the vectors file an
export writes beside its Verilog.

* inputs (``X.inputs.json`` beside the spec ``X.json``): ``dataset, split, input_fmt,
  codes, labels`` -- the test split's input codes as the host quantises them;
* vectors (``<top>.vectors.json``): the same keys plus ``module, output_fmt, latency,
  argmax, expected, predicted, reference_accuracy`` (the integer reference's answers),
  so :func:`read_inputs` reads either.

Torch-free: ``models`` writes these files and ``hdl`` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import read_json
from .integer_forward import integer_forward, quantise_input
from .network import QuantisedNetwork
from .schema import fmt_to_dict

INPUT_KEYS = ("dataset", "split", "input_fmt", "codes", "labels")


@dataclass(frozen=True)
class InputSet:
    """Labelled input codes of one split of a dataset, in a network's input format."""

    dataset: str
    split: str
    input_fmt: dict[str, Any]  # {width, frac_width, signed}, as written
    codes: list[list[int]]
    labels: list[int]

    @classmethod
    def of(cls, net: QuantisedNetwork, dataset: str, split: str, x: Any, y: Any) -> InputSet:
        """Real inputs ``x`` quantised as the host does (``quantise_input``), labels ``y``."""
        codes = quantise_input(net, x)
        return cls(
            dataset,
            split,
            fmt_to_dict(net.input_fmt),
            [[int(c) for c in row] for row in codes],
            [int(v) for v in y],
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in INPUT_KEYS}

    def to_json(self) -> str:
        """The inputs file's text (compact: thousands of rows)."""
        return json.dumps(self.to_dict(), separators=(",", ":")) + "\n"

    def head(self, n: int | None) -> InputSet:
        """The first ``n`` samples (all when ``None``)."""
        if n is None:
            return self
        return InputSet(self.dataset, self.split, self.input_fmt, self.codes[:n], self.labels[:n])


def inputs_path(spec_path: str | Path) -> Path:
    """``X.json`` -> ``X.inputs.json`` (any other name gets ``.inputs.json`` appended)."""
    spec_path = Path(spec_path)
    base = spec_path.with_suffix("") if spec_path.suffix == ".json" else spec_path
    return base.with_name(base.name + ".inputs.json")


def check_inputs(d: Any, net: QuantisedNetwork, where: str = "inputs") -> InputSet:
    """``d`` (an inputs or vectors document) as an :class:`InputSet` for ``net``, else a
    one-line ``ValueError`` starting with ``where``."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: must be a JSON object")
    for key in INPUT_KEYS:
        if key not in d:
            raise ValueError(f"{where}: missing key {key!r}")
    want = fmt_to_dict(net.input_fmt)
    if d["input_fmt"] != want:
        raise ValueError(f"{where}: input_fmt must be the spec's {want}, got {d['input_fmt']!r}")
    codes, labels, fmt = d["codes"], d["labels"], net.input_fmt
    n = net.in_features

    def code_ok(c: Any) -> bool:
        return isinstance(c, int) and not isinstance(c, bool) and fmt.contains(c)

    if not isinstance(codes, list) or not codes:
        raise ValueError(f"{where}: codes must be a non-empty list of rows")
    for r, row in enumerate(codes):
        if not isinstance(row, list) or len(row) != n or not all(map(code_ok, row)):
            raise ValueError(
                f"{where}: codes[{r}] must be {n} ints in [{fmt.min_code}, {fmt.max_code}]"
            )
    if not isinstance(labels, list) or len(labels) != len(codes):
        raise ValueError(f"{where}: labels must be a list of {len(codes)} class indices")
    for r, y in enumerate(labels):
        if isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < net.num_classes:
            raise ValueError(f"{where}: labels[{r}] must be in [0, {net.num_classes}), got {y!r}")
    return InputSet(d["dataset"], d["split"], d["input_fmt"], codes, labels)


def read_inputs(path: str | Path, net: QuantisedNetwork, option: str = "--inputs") -> InputSet:
    """The inputs (or vectors) file at ``path``, checked against ``net``; a one-line
    ``ValueError`` naming ``option`` and the path otherwise."""
    where = f"{option} {str(path)!r}"
    d = read_json(path, option)
    return check_inputs(d, net, where)


def network_vectors(
    net: QuantisedNetwork, inputs: InputSet, *, module: str, latency: int | None, argmax: bool
) -> dict[str, Any]:
    """The vectors document of exported ``module``: inputs, reference outputs, classes,
    accuracy."""
    expected = np.asarray(integer_forward(net, inputs.codes))
    predicted = np.argmax(expected, axis=1)  # first maximum on ties
    labels = np.asarray(inputs.labels)
    return {
        "module": module,
        "dataset": inputs.dataset,
        "split": inputs.split,
        "input_fmt": fmt_to_dict(net.input_fmt),
        "output_fmt": fmt_to_dict(net.output_fmt),
        "latency": latency,
        "argmax": argmax,
        "codes": inputs.codes,
        "labels": inputs.labels,
        "expected": [[int(c) for c in row] for row in expected],
        "predicted": [int(c) for c in predicted],
        "reference_accuracy": float(np.mean(predicted == labels)),
    }


def compact_json(value: Mapping[str, Any]) -> str:
    """Deterministic JSON, one key per line and a list of rows one row per line (diffable)."""

    def dump(v: Any) -> str:
        if isinstance(v, list) and v and all(isinstance(r, list) for r in v):
            return "[\n  " + ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in v) + "\n ]"
        return json.dumps(v, sort_keys=True, separators=(",", ":"))

    body = ",\n".join(f" {json.dumps(k)}: {dump(value[k])}" for k in sorted(value))
    return "{\n" + body + "\n}\n"
