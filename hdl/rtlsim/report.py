"""What one simulation of an exported network showed (:class:`VerifyResult`) and the
command line's report of it (:func:`format_result`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class VerifyResult:
    """What one simulation of an exported network top showed."""

    sim: str  # verilator | icarus
    sim_version: str
    top: str  # the Verilog module simulated
    design: str  # what was given: the .v, or the spec it was exported from (or "<network>")
    impl: str | None  # Linear layers (from the export's manifest entry)
    stages: tuple[int, ...] | None  # pipeline stages per layer (ditto)
    dataset: str | None  # of the labelled samples
    samples: int  # labelled test-split samples simulated (first N)
    random_codes: int  # seeded random input codes simulated after them
    stalls: bool  # random valid/ready stalls on both streams (else full rate only)
    seed: int
    mismatches: int  # beats whose logits differ from the integer reference or never came out
    class_mismatches: int  # argmax designs: beats with a wrong class index
    hw_accuracy: float | None  # on the labelled samples (None: none simulated)
    ref_accuracy: float | None  # the integer reference's, same samples
    latency: int | None  # cycles in -> out seen at full rate (None: not one value)
    expected_latency: int | None  # what the export recorded (None: not known)
    latencies: tuple[int, ...]  # every latency seen at full rate
    errors: tuple[str, ...]  # the testbench's first failure messages (protocol, counts)
    tests_run: int  # from the results XML
    tests_failed: int
    build_seconds: float
    run_seconds: float
    log: str | None  # the simulator log (None: removed, the design passed)
    notes: tuple[str, ...] = ()
    netlist: str | None = None  # the target whose mapped netlist was simulated (None: the RTL)
    netlist_flow: str | None = None  # the mapping that wrote it (hdl.synth.flow.FLOWS)
    synth_seconds: float | None = None  # writing the netlist (None: a given one, or the RTL)
    clock_mhz: float | None = None  # the clock its registers were placed for (None: stages)
    clock_target: str | None = None  # whose delay model placed them

    @property
    def beats(self) -> int:
        return self.samples + self.random_codes

    @property
    def passed(self) -> bool:
        """Bit-exact against the reference, stream rules kept, every cocotb test passed."""
        return (
            self.mismatches == 0
            and self.class_mismatches == 0
            and not self.errors
            and self.tests_failed == 0
            and self.tests_run > 0
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latencies"] = list(self.latencies)
        d["stages"] = None if self.stages is None else list(self.stages)
        d["errors"] = list(self.errors)
        d["notes"] = list(self.notes)
        return {**d, "beats": self.beats, "passed": self.passed}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def format_result(r: VerifyResult) -> str:
    """The command line's report: a few aligned lines, the verdict last."""
    how = []
    if r.impl is not None:
        how.append(r.impl)
    if r.stages is not None:
        how.append("stages " + ",".join(map(str, r.stages)))
    if r.clock_mhz is not None:
        how.append(f"placed for {r.clock_mhz:g} MHz by the {r.clock_target} delay model")
    source = r.design if r.design.endswith(".v") else f"exported from {r.design}"
    beats = []
    if r.samples:
        beats.append(f"{r.samples} test samples" + (f" ({r.dataset})" if r.dataset else ""))
    if r.random_codes:
        beats.append(f"{r.random_codes} random codes")
    mode = "random stalls on both streams" if r.stalls else "full rate, no stalls"
    if r.latency is not None:
        latency = f"{r.latency} cycle{'s' * (r.latency != 1)} at full rate"
    else:
        latency = "not one value: " + (",".join(map(str, r.latencies)) or "nothing came out")
    if r.expected_latency is not None:
        latency += f" (recorded {r.expected_latency})"
    named = r.sim_version.lower().startswith(r.sim[:6])  # "Verilator 5.48.0 ...", "Icarus ..."
    simulator = r.sim_version if named else f"{r.sim} ({r.sim_version})"
    lines = [
        ("simulator", simulator),
        ("design", f"{r.top}, {source}" + (f" ({', '.join(how)})" if how else "")),
        ("beats", f"{' + '.join(beats)}; {mode}; seed {r.seed}"),
        ("mismatches", f"{r.mismatches} of {r.beats} beats vs the integer reference"
         + (f", {r.class_mismatches} class indices" if r.class_mismatches else "")),
        ("hw accuracy", _pct(r.hw_accuracy) + (" (test split)" if r.samples else "")),
        ("ref accuracy", _pct(r.ref_accuracy)),
        ("latency", latency),
    ]  # fmt: skip
    if r.netlist is not None:
        how_mapped = f"synth_{r.netlist}, {r.netlist_flow}" if r.netlist_flow else "given"
        lines.append(("netlist", f"{r.netlist} mapped netlist ({how_mapped}), Yosys cell models"))
    synth = f"synthesis {r.synth_seconds:.1f} s, " if r.synth_seconds is not None else ""
    lines.append(("time", f"{synth}build {r.build_seconds:.1f} s, run {r.run_seconds:.1f} s"))
    lines += [("note", n) for n in r.notes]
    if r.passed:
        lines.append(("result", "bit-exact"))
    else:
        lines.append(("result", "FAILED: not bit-exact" if r.mismatches else "FAILED"))
        lines += [("error", e) for e in r.errors]
        lines.append(("log", r.log or "-"))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
