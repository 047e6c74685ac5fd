"""Miniature raw copies of each source in its real layout, for the demo and the tests.

Each module `medshard/demo/<source>.py` has `write_raw(root: Path, **kw)` that writes
the source's raw layout under `root` from real recordings shipped inside dependencies.
"""
