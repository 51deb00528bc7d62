"""Pipelining to a clock, placed: every layer at ``--clock-mhz`` vs evenly spaced stages vs da4ml.

For each Linear group (Linear + ReLU) of the shipped checkpoints at 4/6/8 bits, on ECP5
(LFE5U-25F; 85F where a layer does not fit), synthesised (Yosys 0.70, ``-nodsp``) and
placed alone by nextpnr-ecp5 in the registered wrapper (``synthesise(..., fmax=True)``):

- ``clock``: ``LinearLayer(clock_mhz=F)`` (:mod:`hdl.pipeline`): placed Fmax, latency, FFs;
- ``even_same``: ``stages = that latency``, evenly spaced level cuts;
- ``even_model``: the fewest evenly spaced ``stages`` the delay model predicts to meet the
  same clock (with the same uncertainty): what evenly spaced stages need for it;
- ``even_reach``: evenly spaced stages from that latency up (at most ``REACH`` more) until
  one places at the clocked layer's Fmax;
- ``da4ml`` (``--da4ml``, 8-bit jsc-toy by default): da4ml 0.6.0's ``to_pipeline`` with the
  ``latency_cutoff`` that gives the clocked layer's stage count, its pipelined Verilog.

Every finished case is written to the JSON at once (``--resume`` skips those there).

    python bench/bench_clock.py [--models jsc-toy] [--bits 4,6,8] [--clock-mhz 200]
        [--variants clock,even_same,even_model] [--da4ml] [--resume] [--timeout 3600]

Writes bench/results/clock.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_network import hdl_version, load_spec  # noqa: E402

from hdl import hwmodel  # noqa: E402
from hdl.export import export_layer  # noqa: E402
from hdl.hwmodel import predict_layer  # noqa: E402
from hdl.layers.linear import LinearLayer  # noqa: E402
from hdl.params import MAX_STAGES  # noqa: E402
from hdl.pipeline import place_emitted  # noqa: E402
from hdl.synth import SynthError, SynthTimeout, synthesise  # noqa: E402
from hdl.synth.nextpnr import nextpnr_version  # noqa: E402
from hdl.targets import target as get_target  # noqa: E402
from hdl.timing import DelayModel  # noqa: E402
from qspec.files import atomic_write  # noqa: E402
from qspec.network import LinearSpec, group_layers  # noqa: E402

OUT = Path(__file__).parent / "results" / "clock.json"
TARGET = "ecp5"
VARIANTS = ("clock", "even_same", "even_model", "even_reach", "da4ml")
REACH = 3  # even_reach tries up to this many stages more than the clock-driven layer


def groups(models, bits, layers=None):
    """(model, bits, group), smallest layers first."""
    out = []
    for model in models:
        for b in bits:
            for g in group_layers(load_spec(model, b)):
                if isinstance(g[0], LinearSpec) and (not layers or g[0].name in layers):
                    s = g[0]
                    out.append((s.in_features * s.out_features * b, model, b, g))
    out.sort(key=lambda c: c[0])
    return [c[1:] for c in out]


def place(verilog: str, top: str, timeout: float, latency: int | None = None) -> dict:
    """Synthesise and place; on a part too small, the next one."""
    t = get_target(TARGET)
    t0 = time.perf_counter()
    err = None
    for device in t.devices:
        try:
            r = synthesise(verilog, top, TARGET, fmax=True, dsp=False, device=device,
                           latency=latency, timeout=timeout)  # fmt: skip
        except SynthTimeout:
            return {"status": "timeout", "seconds": round(time.perf_counter() - t0, 1)}
        except SynthError as e:
            err = str(e).splitlines()[0]
            if any(w in err.lower() for w in ("bel", "utilisation", "fit", "too many", "place")):
                continue  # try the larger part
            return {"status": "crash", "error": err}
        return {
            "status": "ok",
            "seconds": round(time.perf_counter() - t0, 1),
            "cached": r.cached,
            "device": device,
            "nextpnr": nextpnr_version(TARGET),  # yowasp, or a native build of its release
            "fmax_mhz": r.fmax_mhz,
            "lut_eq": r.lut_eq,
            "lut4": r.lut4,
            "carries": r.carries,
            "ffs": r.ffs,
            "notes": list(r.notes),
        }
    return {"status": "crash", "error": err}


def ours(group, impl: str, timeout: float, *, stages=0, clock_mhz=None) -> dict:
    comp = LinearLayer(group, impl=impl, stages=stages, clock_mhz=clock_mhz, target=TARGET)
    mod = export_layer(comp, group, impl, comp.stages)
    entry: dict = {"module": mod.name, "latency": comp.latency}
    if comp.placement is not None:
        p = comp.placement
        entry |= {"method": p.method, "predicted_fmax_mhz": round(1000 / p.delay_ns, 1),
                  "predicted_ffs": p.ffs, "met_by_model": p.met,
                  # what placed it (bench/fit_hwmodel.py re-places the case with these)
                  "delay_model": recorded_model()}  # fmt: skip
    else:
        pred = predict_layer(group, impl, comp.stages, TARGET)
        entry |= {"predicted_fmax_mhz": round(pred.fmax_mhz, 1), "predicted_ffs": pred.ffs}
    return entry | place(mod.verilog, mod.name, timeout, comp.latency)


@dataclasses.dataclass(frozen=True)
class _Log2DelayModel(DelayModel):
    """The size term before it scaled with sqrt: ``size * log2(carry bits)``."""

    SIZE_FORM: ClassVar[str] = "log2"

    def reg_for(self, carry_bits: int) -> float:
        return self.reg + self.size * math.log2(max(carry_bits, 1))


def recorded_delay(d: dict) -> DelayModel:
    """The delay model a clock-driven case was placed with, from its ``delay_model``
    (:func:`recorded_model`; records without ``size_form`` predate the sqrt form)."""
    d = dict(d)
    form = d.pop("size_form", "log2")
    forms = {m.SIZE_FORM: m for m in (DelayModel, _Log2DelayModel)}
    return forms[form](**d)


def same_as_recorded(cases: dict, base: str, mhz: float, group, impl: str):
    """Key of a measured clock-driven case of this layer whose recorded delay model placed
    every register where the current one does: the same Verilog, and the tools (Yosys,
    nextpnr seed 1, one thread) are deterministic, so its measurement stands; with the
    current placement (what the model predicts now).  ``(None, placement)`` if none."""
    em = hwmodel.emitted(tuple(group), impl)
    now = place_emitted(em, mhz, get_target(TARGET).delay)
    for key, c in cases.items():
        if not key.startswith(f"{base}/clock@{mhz:g}/") or c.get("status") != "ok":
            continue
        if "delay_model" not in c or "reused_from" in c:
            continue
        was = place_emitted(em, mhz, recorded_delay(c["delay_model"]))
        if was.tail_stage == now.tail_stage and all(
            was.stage_of(n) == now.stage_of(n) for n in em.reached
        ):
            return key, now
    return None, now


def recorded_model() -> dict:
    """The target's delay coefficients and the form of their size term (what
    ``bench/fit_hwmodel.recorded_delay`` rebuilds)."""
    dm = get_target(TARGET).delay
    return dataclasses.asdict(dm) | {"size_form": dm.SIZE_FORM}


def delay_tag() -> str:
    """Short content hash of the target's delay coefficients (and the size term's form)."""
    text = json.dumps(recorded_model(), sort_keys=True)
    return "dm" + hashlib.sha256(text.encode()).hexdigest()[:8]


def even_stages_for(group, impl: str, fmax_mhz: float) -> int:
    """Fewest evenly spaced stages the model predicts at ``fmax_mhz`` or faster."""
    for k in range(1, MAX_STAGES + 1):
        if predict_layer(group, impl, k, TARGET).fmax_mhz >= fmax_mhz - 1e-6:
            return k
    return MAX_STAGES


def da4ml_case(group, latency: int, timeout: float) -> dict:
    """da4ml's pipelined Verilog at the cutoff that gives ``latency`` stages (or the nearest)."""
    from da4ml.codegen.rtl.verilog.pipeline import pipeline_logic_gen
    from da4ml.trace.pipeline import to_pipeline
    from da4ml_ref import _helpers_verilog, da4ml_linear

    spec = group[0]
    note = "da4ml layer without the ReLU tail" if len(group) > 1 else ""
    ref = da4ml_linear(spec, f"da4ml_{spec.name}")
    comb = ref.comb
    total = max(comb.ops[i].latency for i in comb.out_idxs)
    best = None
    for k in range(1, 4 * latency + 1):  # the cutoff whose stage count is closest
        cut = total / k
        pipe = to_pipeline(comb, cut, verbose=False)
        n = len(pipe.solutions)
        if best is None or abs(n - latency) < abs(best[1] - latency):
            best = (cut, n, pipe)
        if n >= latency:
            break
    cut, n, pipe = best
    name = f"da4ml_{spec.name}_pipe"
    files = pipeline_logic_gen(pipe, name, timescale=None)
    text = "\n".join(files.values())
    text += "\n" + _helpers_verilog(text)
    # input register, a register between stages, output register
    entry = {"latency_cutoff": round(cut, 3), "stages": n, "latency": n + 1, "note": note}
    return entry | place(text, name, timeout, n + 1)


def summary(cases: dict, mhz: float) -> list[dict]:
    """Per layer, the clock-driven case of the current delay model beside the evenly spaced
    stages at its latency and at the model's count for the same Fmax, and da4ml's."""
    tag = delay_tag()
    out = []
    for key, c in cases.items():
        if c.get("variant") != "clock" or not key.endswith(f"@{mhz:g}/{tag}"):
            continue
        base = key.split("/clock@")[0]
        row = {"layer": base, "clock": _brief(c)}
        for k in range(1, MAX_STAGES + 1):
            e = cases.get(f"{base}/even_p{k}")
            if e and e.get("status") == "ok":
                row.setdefault("even", []).append(_brief(e))
        d = cases.get(f"{base}/da4ml_l{c['latency']}")
        if d:
            row["da4ml"] = _brief(d)
        out.append(row)
    return sorted(out, key=lambda r: r["layer"])


def table(data: dict) -> str:
    """The summary as a Markdown table (README)."""
    head = (
        "| layer | clock-driven: cycles, MHz, FFs | model: MHz | even, same cycles: MHz, FFs "
        "| even as fast: cycles, FFs | da4ml to_pipeline: cycles, MHz, FFs |"
    )
    rows = [head, "|" + "---|" * 6]
    for r in data.get("summary", []):
        c = r["clock"]
        evens = r.get("even", [])
        same = next((e for e in evens if e["latency"] == c["latency"]), None)
        fast = [e for e in evens if (e.get("fmax_mhz") or 0) >= (c.get("fmax_mhz") or 1e9)]
        reach = min(fast, key=lambda e: e["latency"]) if fast else None
        more = [e for e in evens if e["latency"] > c["latency"] and e.get("fmax_mhz")]
        best = max(more, key=lambda e: e["fmax_mhz"]) if more else None
        d = r.get("da4ml")

        def f(e, *keys):
            if not e or e.get("status") != "ok":
                return "–" if not e else e.get("status", "–")
            return ", ".join(str(round(e[k]) if isinstance(e[k], float) else e[k]) for k in keys)

        name = r["layer"].rsplit("/", 1)[0]
        if reach is not None:
            got = f(reach, "latency", "ffs")
        elif best is not None:  # none as fast within the stages tried: the fastest of them
            k = max(e["latency"] for e in more)
            got = f"not up to {k} (best {f(best, 'latency', 'fmax_mhz', 'ffs')})"
        else:
            got = "–"
        model = f"{c['predicted_fmax_mhz']:.0f}" if c.get("predicted_fmax_mhz") else "–"
        if c.get("met_by_model") is False:  # one adder a stage is already too slow
            fast = (c.get("predicted_fmax_mhz") or 0) >= (c.get("clock_mhz") or 1e9)
            model += " (only without the margin)" if fast else " (cannot meet)"
        rows.append(f"| {name} | {f(c, 'latency', 'fmax_mhz', 'ffs')} | {model} | "
                    f"{f(same, 'fmax_mhz', 'ffs')} | {got} | "
                    f"{f(d, 'latency', 'fmax_mhz', 'ffs')} |")  # fmt: skip
    return "\n".join(rows)


def _brief(c: dict) -> dict:
    keys = ("status", "clock_mhz", "latency", "fmax_mhz", "ffs", "lut_eq",
            "predicted_fmax_mhz", "met_by_model", "device")  # fmt: skip
    return {
        k: (round(c[k], 1) if isinstance(c.get(k), float) else c.get(k)) for k in keys if k in c
    }


def top_case(model: str, bits: int, timeout: float, *, clock_mhz=None, stages=0) -> dict:
    """The whole network (stream top, every layer) placed as one design, out of context."""
    from hdl.export import export_network

    net = load_spec(model, bits)
    impl = get_target(TARGET).linear_impl
    clock = {} if clock_mhz is None else {"clock_mhz": clock_mhz, "target": TARGET}
    exp = export_network(net, impl=impl, stages=stages, **clock)
    layers = [e.get("latency") for e in exp.params["layers"]]
    entry = {"module": exp.name, "latency": exp.latency, "layer_latencies": layers}
    return entry | place(exp.verilog, exp.name, timeout, exp.latency)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="jsc-toy")
    p.add_argument("--bits", default="4,6,8")
    p.add_argument("--layers", default="", help="only these layer names (default: all)")
    p.add_argument("--clock-mhz", type=float, default=200.0)
    p.add_argument("--variants", default="clock,even_same,even_model")
    p.add_argument("--da4ml", default="", help="also da4ml for these model/bits, e.g. jsc-toy/8")
    p.add_argument("--top", default="", help="also the whole top of these, e.g. jsc-toy/8")
    p.add_argument("--timeout", type=float, default=3600.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--table", action="store_true", help="print the summary table and stop")
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = p.parse_args(argv)
    if args.table or args.readme:
        data = json.loads(args.out.read_text())
        data["summary"] = summary(data["cases"], args.clock_mhz)
        text = table(data)
        if args.readme:
            from readme_section import write_sections

            write_sections(Path(__file__).parent.parent / "README.md", {"clock-table": text + "\n"})
        else:
            print(text)
        return 0
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        p.error(f"--variants must be from {','.join(VARIANTS)}, got {','.join(bad)}")
    da4ml_for = {x for x in args.da4ml.split(",") if x}
    data = json.loads(args.out.read_text()) if args.resume and args.out.exists() else {}
    meta = data.setdefault("meta", {})
    meta["what"] = (
        "nextpnr-ecp5 Fmax (registered wrapper, --freq 200, seed 1, 1 thread) of one layer group "
        "(Linear + ReLU) alone, Yosys 0.70 -nodsp counts; clock-driven placement vs evenly "
        "spaced stages vs da4ml 0.6.0 to_pipeline"
    )
    cmd = "python bench/bench_clock.py " + " ".join(argv or sys.argv[1:])
    meta["commands"] = meta.get("commands", []) + [cmd.strip()]
    meta["hdl"] = hdl_version()
    cases = data.setdefault("cases", {})
    impl = get_target(TARGET).linear_impl
    mhz = args.clock_mhz
    todo = groups(args.models.split(","), [int(b) for b in args.bits.split(",")],
                  [x for x in args.layers.split(",") if x])  # fmt: skip
    for model, b, group in todo:
        base = f"{model}/{b}bit/{group[0].name}/{impl}"

        def run(key: str, variant: str, fn, model=model, b=b, group=group) -> dict:
            if args.resume and cases.get(key, {}).get("status") in ("ok", "timeout"):
                return cases[key]
            entry = {"model": model, "bits": b, "layer": group[0].name, "impl": impl,
                     "variant": variant} | fn()  # fmt: skip
            cases[key] = entry
            atomic_write(args.out, json.dumps(data, indent=1) + "\n")
            print(key, entry.get("status"), entry.get("latency"), entry.get("fmax_mhz"),
                  entry.get("ffs"), entry.get("seconds"), flush=True)  # fmt: skip
            return entry

        def even(k: int, g=group) -> dict:
            return {"stages": k} | ours(g, impl, args.timeout, stages=k)

        # a placement depends on the delay model that made it: its tag is in the key
        key = f"{base}/clock@{mhz:g}/{delay_tag()}"
        was, p = (None, None) if key in cases else same_as_recorded(cases, base, mhz, group, impl)
        if was is not None:  # the same registers: reuse the measurement, say whose
            cases[key] = cases[was] | {
                "method": p.method, "predicted_fmax_mhz": round(1000 / p.delay_ns, 1),
                "predicted_ffs": p.ffs, "met_by_model": p.met,
                "delay_model": recorded_model(), "reused_from": was,
            }  # fmt: skip
            atomic_write(args.out, json.dumps(data, indent=1) + "\n")
            print(key, "reused from", was, flush=True)
        clocked = run(key, "clock",
                      lambda g=group: {"clock_mhz": mhz} | ours(g, impl, args.timeout,
                                                                clock_mhz=mhz))  # fmt: skip
        lat = clocked["latency"]
        if "even_same" in variants:
            run(f"{base}/even_p{lat}", "even", lambda k=lat: even(k))
        if "even_model" in variants:
            # what the same model asks of evenly spaced cuts for the same clock
            k = even_stages_for(group, impl, mhz / (1 - get_target(TARGET).delay.uncertainty))
            run(f"{base}/even_p{k}", "even", lambda k=k: even(k))
        if "even_reach" in variants and clocked.get("fmax_mhz"):
            # evenly spaced stages, one more at a time, until they place as fast
            for k in range(lat, min(lat + REACH, MAX_STAGES) + 1):
                e = run(f"{base}/even_p{k}", "even", lambda k=k: even(k))
                if (e.get("fmax_mhz") or 0) >= clocked["fmax_mhz"]:
                    break
        if f"{model}/{b}" in da4ml_for:
            run(
                f"{base}/da4ml_l{lat}",
                "da4ml",
                lambda g=group, k=lat: da4ml_case(g, k, args.timeout),
            )
    for spec in [x for x in args.top.split(",") if x]:
        model, b = spec.split("/")
        base = f"{model}/{b}bit/top/{impl}"
        key = f"{base}/clock@{mhz:g}/{delay_tag()}"
        if not (args.resume and cases.get(key, {}).get("status") == "ok"):
            cases[key] = {"model": model, "bits": int(b), "variant": "top_clock",
                          "clock_mhz": mhz} | top_case(model, int(b), args.timeout,
                                                       clock_mhz=mhz)  # fmt: skip
            atomic_write(args.out, json.dumps(data, indent=1) + "\n")
            print(key, cases[key].get("status"), cases[key].get("fmax_mhz"), flush=True)
        lats = cases[key].get("layer_latencies")
        ekey = f"{base}/even_p{'_'.join(map(str, lats))}"
        if lats and not (args.resume and cases.get(ekey, {}).get("status") == "ok"):
            cases[ekey] = {"model": model, "bits": int(b), "variant": "top_even",
                           "stages": lats} | top_case(model, int(b), args.timeout,
                                                      stages=lats)  # fmt: skip
            atomic_write(args.out, json.dumps(data, indent=1) + "\n")
            print(ekey, cases[ekey].get("status"), cases[ekey].get("fmax_mhz"), flush=True)
    data["summary"] = summary(cases, mhz)
    atomic_write(args.out, json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
