"""Generator parameter vocabulary shared by hdl, its CLI and the search (pure Python, no Amaranth).

The search validates its config against these without importing the generators.
"""

LINEAR_IMPLS = ("adder_tree", "adder_tree_nosub", "mul")  # hdl.layers.linear.LinearLayer impl
MAX_STAGES = 16  # pipeline registers one layer may take
MAX_LANES = 1024  # values per beat of a streamed elementwise layer
