"""Experiments built on the library (not part of the search): ``python -m studies.<name>``."""
