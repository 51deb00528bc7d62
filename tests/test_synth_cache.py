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
