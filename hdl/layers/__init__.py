"""Layer generators: Amaranth components for one network layer each."""
