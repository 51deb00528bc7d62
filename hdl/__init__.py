"""Amaranth generators for quantised NN layers, Verilog export and synthesis metrics.

Torch-free; shares its fixed-point vocabulary with ``models`` through ``qspec``.
"""
