"""PyTorch side of hwfirst: datasets, the JSC model zoo, training, quantisation, metrics.

Data flow is one way: models -> qspec spec -> hdl; nothing here imports hdl or search.
"""
