"""search.hardware: the synthesis result -> metrics mapping, and failures as HardwareError."""

from __future__ import annotations

import types

import pytest

import hdl.synth.network as synth_network
from hdl.resources import Resources
from hdl.synth.flow import SynthTimeout
from search.hardware import HardwareError, HardwareParams, hardware_metrics


def test_metrics_from_the_network_total(monkeypatch):
    calls = []

    def fake(net, target, **kw):
        calls.append((net, target, kw))
        total = Resources("ecp5", lut4=100, ffs=20, carries=7, dsps=1, cells=130, depth=9,
                          latency=3, initiation_interval=1)  # fmt: skip
        return types.SimpleNamespace(total=total)

    monkeypatch.setattr(synth_network, "synthesise_network", fake)
    hw = HardwareParams("ecp5", "mul", 1, False, 5.0)
    m = hardware_metrics("NET", hw)
    assert calls == [("NET", "ecp5", {"impl": "mul", "stages": 1, "fmax": False, "timeout": 5.0})]
    assert m == {
        "lut_eq": 114.0,
        "lut4": 100.0,
        "ffs": 20.0,
        "carries": 7.0,
        "dsps": 1.0,
        "brams": 0.0,
        "cells": 130.0,
        "depth": 9.0,
        "latency": 3.0,
        "ii": 1.0,
    }  # lut_eq = LUT-equivalents: 100 + 2 x 7 CCU2C; no fmax unless measured


def test_synthesis_failure_is_a_hardware_error(monkeypatch):
    def timeout(net, target, **kw):
        raise SynthTimeout("yosys timed out after 5 s\nlog tail ...")

    monkeypatch.setattr(synth_network, "synthesise_network", timeout)
    with pytest.raises(HardwareError) as e:
        hardware_metrics("NET", HardwareParams())
    assert str(e.value) == "SynthTimeout: yosys timed out after 5 s"
