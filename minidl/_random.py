"""The generator behind every random choice minidl makes by default."""

import numpy as np

_rng = None


def set_seed(seed):
    """Seed initial weights, dropout masks and default shuffling.

    A model built twice after the same ``set_seed`` is identical.
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_seed: expected a non-negative int seed, got {seed!r}")
    if seed < 0:
        raise ValueError(f"set_seed: expected a non-negative int seed, got {seed}")
    _rng = np.random.default_rng(int(seed))


def get_rng():
    """Return the global ``numpy.random.Generator`` (created unseeded on first use)."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng
