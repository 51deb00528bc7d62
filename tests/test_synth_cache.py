"""hdl.synth caching: hits, keys, two processes at once, nothing cached on failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hdl.export import export_leaky
from hdl.synth import SynthTimeout, synthesise
from hdl.synth.cache import SynthCache
from qspec.leaky import LeakyReLUSpec

SHIFT8 = export_leaky(LeakyReLUSpec.shift_variant(8, 4, 2))


def test_second_call_hits(tmp_path):
    cache = SynthCache(tmp_path)
    first = synthesise(SHIFT8.verilog, SHIFT8.name, "ecp5", cache=cache)
    second = synthesise(SHIFT8.verilog, SHIFT8.name, "ecp5", cache=cache)
    assert (first.cached, second.cached) == (False, True)
    assert (cache.hits, cache.misses) == (1, 1) and first == second
    # Another target is another key.
    third = synthesise(SHIFT8.verilog, SHIFT8.name, "ice40", cache=cache)
    assert not third.cached and cache.count() == 2


def test_env_var_selects_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HWFIRST_CACHE_DIR", str(tmp_path / "c"))
    synthesise(SHIFT8.verilog, SHIFT8.name, "ecp5")
    assert SynthCache().count() == 1 and (tmp_path / "c" / "synth.sqlite3").exists()


_WORKER = """
import sys
from hdl.synth.cache import SynthCache
c = SynthCache(sys.argv[1])
for i in range(200):
    c.put(f"{sys.argv[2]}{i % 50}", {"i": i})
    assert c.get(f"{sys.argv[2]}{i % 50}") is not None
"""


def test_two_processes_share_the_cache(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), prefix])
        for prefix in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert SynthCache(tmp_path).count() == 100


def test_timeout_raises_typed_error_and_caches_nothing(tmp_path):
    cache = SynthCache(tmp_path)
    mult = export_leaky(LeakyReLUSpec.mult_variant(16, 8, 77 / 256))
    with pytest.raises(SynthTimeout, match="timeout") as info:  # a SynthError subclass
        synthesise(mult.verilog, mult.name, "ice40", cache=cache, timeout=0.05)
    assert isinstance(info.value.log_tail, str)
    assert cache.count() == 0


def test_bad_inputs_are_one_line_value_errors(tmp_path):
    cache = SynthCache(tmp_path)
    with pytest.raises(ValueError, match="top 'nope' is not a module"):
        synthesise(SHIFT8.verilog, "nope", "ecp5", cache=cache)
    with pytest.raises(ValueError, match="target must be one of ecp5, ice40"):
        synthesise(SHIFT8.verilog, SHIFT8.name, "xc7", cache=cache)
    with pytest.raises(ValueError, match="syntax error") as info:
        synthesise("module broken(input a; endmodule\n", "broken", "ecp5", cache=cache)
    assert "\n" not in str(info.value)
    assert cache.count() == 0


def test_network_total_is_cached_by_spec(tmp_path, monkeypatch):
    """synthesise_network_total: a repeated spec and options is a lookup, not a synthesis."""
    import types
    from pathlib import Path

    import hdl.synth.network as synth_network
    from hdl.resources import Resources
    from qspec.network import QuantisedNetwork

    spec = (
        Path(__file__).resolve().parent.parent / "verilog_out" / "specs" / "jsc-tiny_relu_8b.json"
    )
    net = QuantisedNetwork.from_json(spec.read_text())
    calls = []

    def fake(n, target, **kw):
        calls.append(kw)
        if kw["stages"] == 9:
            raise RuntimeError("yosys crashed")
        total = Resources(target, lut4=10 + kw["stages"], carries=2, latency=kw["stages"])
        return types.SimpleNamespace(total=total)

    monkeypatch.setattr(synth_network, "synthesise_network", fake)
    cache = SynthCache(tmp_path)
    opts = dict(impl="adder_tree", fmax=False, timeout=5.0, cache=cache)
    first = synth_network.synthesise_network_total(net, "ecp5", stages=1, **opts)
    again = synth_network.synthesise_network_total(net, "ecp5", stages=1, **opts)
    assert (first.cached, again.cached) == (False, True) and first == again
    assert again.lut_eq == 11 + 2 * 2 and len(calls) == 1
    other = synth_network.synthesise_network_total(net, "ecp5", stages=2, **opts)
    assert not other.cached and other.lut4 == 12 and cache.count() == 2
    with pytest.raises(RuntimeError):
        synth_network.synthesise_network_total(net, "ecp5", stages=9, **opts)
    assert cache.count() == 2  # a failure is never cached
    assert synth_network.synthesise_network_total("NET", "ecp5", stages=3, **opts).lut4 == 13
    assert cache.count() == 2  # not a spec: uncached
