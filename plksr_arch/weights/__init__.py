"""Weights files: `read` (every layout, detection through `archs.registry`, `load_model`) and `write` (the one writer,
which stores the architecture name and its constructor arguments)."""
