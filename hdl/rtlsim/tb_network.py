"""cocotb testbench: an exported network top (ports ``clk rst i__* o__*``).

Vectors come from the calling process in a JSON file named by
``HWFIRST_TB_VECTORS``: ``codes`` (beats x in_features), ``expected``
(beats x classes, from ``qspec.integer_forward``), ``labels`` for the first
``len(labels)`` beats (the dataset's test split) and ``reference_accuracy``
over them, the widths and the recorded ``latency`` (``null``: not known, not
checked).  One coroutine drives the clock by hand, so each check sees exactly
what the stream rules talk about:

* every beat comes out once, in order, bit for bit;
* ``o.valid``/``o.payload`` do not change when ``o.ready`` flips within a cycle;
* while ``o.valid and not o.ready`` the next cycle has the same valid payload;
* at full rate a beat enters every cycle and leaves ``latency`` cycles later;
* with ``argmax`` the class index above the logits is the first maximum;
* the hardware's accuracy on the labelled beats equals the reference's.

Each test also merges a report (beats in and out, mismatching beats, accuracy,
latencies, the first errors) into the JSON file ``HWFIRST_TB_RESULT`` under its
own name, for the caller (``hdl.rtlsim.verify``, the tests).  Other settings:
``HWFIRST_TB_SEED`` (stalls and junk payloads) and ``HWFIRST_TB_FULL_RATE_BEATS``
(beats of the full-rate test; default 200, ``all`` for every vector).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass

import cocotb

from hdl.rtlsim.streams import run_stream, settle
from hdl.rtlsim.tb_common import MAX_REPORTED, Trace, pack, phase_prob, unpack


@dataclass
class Vectors:
    codes: list[list[int]]
    expected: list[list[int]]
    labels: list[int]
    reference_accuracy: float
    in_width: int
    out_width: int
    latency: int | None  # None: not known (reported, not checked)
    argmax: bool  # o__payload holds the class index above the logits


def load_vectors() -> Vectors:
    with open(os.environ["HWFIRST_TB_VECTORS"]) as f:
        d = json.load(f)
    return Vectors(
        d["codes"],
        d["expected"],
        d["labels"],
        d["reference_accuracy"],
        d["in_width"],
        d["out_width"],
        d.get("latency"),
        d.get("argmax", False),
    )


def argmax(values: list[int]) -> int:
    return values.index(max(values))  # first maximum on ties, like the reference


class Harness:
    def __init__(self, dut, vec: Vectors):
        self.dut, self.vec = dut, vec
        self.features, self.classes = len(vec.codes[0]), len(vec.expected[0])
        assert len(dut.i__payload) == self.features * vec.in_width, "i__payload width"
        assert len(dut.o__payload) >= self.classes * vec.out_width, "o__payload width"

    async def tick(self) -> None:
        self.dut.clk.value = 1
        await settle()
        self.dut.clk.value = 0

    async def reset(self) -> None:
        dut = self.dut
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        dut.clk.value = 0
        dut.rst.value = 1
        await settle()
        for _ in range(2):
            await self.tick()
            await settle()
        dut.rst.value = 0
        await settle()

    def read_output(self) -> tuple[int, int]:
        word = self.dut.o__payload.value.to_unsigned()
        if not self.vec.argmax:  # bits above the logits are not part of the contract
            word &= (1 << self.classes * self.vec.out_width) - 1
        return int(self.dut.o__valid.value), word

    async def run(self, beats: int, rng: random.Random, p_valid, p_ready, drain: int = 4) -> Trace:
        """Push the first ``beats`` vectors through; ``p_valid``/``p_ready``: cycle -> prob."""
        vec = self.vec

        def accept(tr: Trace, word: int) -> None:
            tr.outputs.append(unpack(word, vec.out_width, self.classes))
            tr.classes.append(word >> (self.classes * vec.out_width))

        return await run_stream(
            self.dut,
            [pack(c, vec.in_width) for c in vec.codes[:beats]],
            rng,
            p_valid,
            p_ready,
            read_output=self.read_output,
            accept=accept,
            tick=self.tick,
            drain=drain + (16 if vec.latency is None else vec.latency),
        )


def check_outputs(tr: Trace, vec: Vectors, beats: int) -> tuple[int, int]:
    """Record errors for wrong, missing or extra beats; returns the number of beats (of the
    first ``beats``) that did not come out bit-exact, and of wrong class indices."""
    if len(tr.outputs) != beats:
        tr.error(f"{len(tr.outputs)} beats came out, {beats} went in")
    pairs = zip(tr.outputs, vec.expected[:beats], strict=False)
    bad = [k for k, (g, e) in enumerate(pairs) if g != e]
    missing = max(0, beats - len(tr.outputs))
    if bad:  # the count first: only MAX_REPORTED messages are kept
        tr.error(f"{len(bad)} of {beats} beats mismatch")
    bad_cls: list[int] = []
    if vec.argmax:
        want = [argmax(e) for e in vec.expected[:beats]]
        bad_cls = [k for k, (g, e) in enumerate(zip(tr.classes, want, strict=False)) if g != e]
        if bad_cls:
            k = bad_cls[0]
            tr.error(f"{len(bad_cls)} class indices mismatch, first beat {k}: "
                     f"{tr.classes[k]}, want {want[k]}")  # fmt: skip
    for k in bad[: MAX_REPORTED - 2]:
        tr.error(f"beat {k}: x={vec.codes[k]} -> {tr.outputs[k]}, want {vec.expected[k]}")
    return len(bad) + missing, len(bad_cls) + (missing if vec.argmax else 0)


def accuracy(tr: Trace, vec: Vectors, beats: int) -> tuple[int, int]:
    """(hits, labelled) of the hardware's classes on the labelled beats among the first
    ``beats``; a beat that did not come out is a miss."""
    labels = vec.labels[:beats]
    predicted = tr.classes if vec.argmax else [argmax(o) for o in tr.outputs]
    hits = sum(p == y for p, y in zip(predicted, labels, strict=False))
    return hits, len(labels)


def report(name: str, tr: Trace, vec: Vectors, beats: int, mismatches: tuple[int, int]) -> dict:
    """Merge this test's report into ``HWFIRST_TB_RESULT`` (when set); returns it."""
    hits, labelled = accuracy(tr, vec, beats)
    lat = sorted({o - i for i, o in zip(tr.in_cycles, tr.out_cycles, strict=False)})
    rep = {
        "beats": beats,
        "beats_out": len(tr.outputs),
        "mismatches": mismatches[0],
        "class_mismatches": mismatches[1],
        "hits": hits,
        "labelled": labelled,
        "hardware_accuracy": hits / labelled if labelled else None,
        "latencies": lat,
        "cycles": (tr.out_cycles[-1] + 1) if tr.out_cycles else 0,
        "errors": list(tr.errors),
    }
    path = os.environ.get("HWFIRST_TB_RESULT")
    if path:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            doc = {}
        doc[name] = rep
        with open(path, "w") as f:
            json.dump(doc, f)
    return rep


@cocotb.test()
async def network_random_stalls(dut):
    """Random stalls on both streams; bit-exact, in order, once; accuracy = reference."""
    vec = load_vectors()
    h = Harness(dut, vec)
    await h.reset()
    seed = int(os.environ.get("HWFIRST_TB_SEED", "1"))
    n = len(vec.codes)
    tr = await h.run(
        n,
        random.Random(seed),
        phase_prob(seed + 1, (0.2, 0.6, 0.9, 1.0), 48),
        phase_prob(seed + 2, (0.1, 0.5, 0.8, 1.0), 48),
    )
    bad = check_outputs(tr, vec, n)
    hits, labelled = accuracy(tr, vec, n)
    if labelled and hits / labelled != vec.reference_accuracy:
        tr.error(f"hardware accuracy {hits / labelled} != reference {vec.reference_accuracy}")
    report("network_random_stalls", tr, vec, n, bad)
    assert not tr.errors, "\n".join(tr.errors)
    dut._log.info("%d beats, hardware accuracy %d/%d on the labelled", n, hits, labelled)


def full_rate_beats(total: int) -> int:
    value = os.environ.get("HWFIRST_TB_FULL_RATE_BEATS", "200")
    return total if value == "all" else min(total, int(value))


@cocotb.test()
async def network_full_rate(dut):
    """No stalls: one beat per cycle (II = 1), each out after the recorded latency."""
    vec = load_vectors()
    h = Harness(dut, vec)
    await h.reset()
    n = full_rate_beats(len(vec.codes))
    tr = await h.run(n, random.Random(0), lambda c: 1.0, lambda c: 1.0)
    bad = check_outputs(tr, vec, n)
    if tr.in_cycles != list(range(n)):
        tr.error(f"inputs not accepted every cycle: {tr.in_cycles[:10]}...")
    lat = {o - i for i, o in zip(tr.in_cycles, tr.out_cycles, strict=False)}
    if vec.latency is not None and lat != {vec.latency}:
        tr.error(f"latencies {sorted(lat)}, want {vec.latency}")
    elif len(lat) > 1:
        tr.error(f"latencies {sorted(lat)}: not one fixed latency")
    report("network_full_rate", tr, vec, n, bad)
    assert not tr.errors, "\n".join(tr.errors)
