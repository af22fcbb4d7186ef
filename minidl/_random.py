"""The generator behind every random choice minidl makes by default."""

import numpy as np

from . import _checks

_rng = None


def set_seed(seed):
    """Seed initial weights, dropout masks and default shuffling.

    A model built twice after the same ``set_seed`` is identical.

    Args:
        seed: int >= 0, the seed of minidl's global ``numpy.random.Generator``.

    Raises:
        TypeError: ``seed`` is not an int (a bool is refused too).
        ValueError: ``seed`` is negative.
    """
    global _rng
    _rng = np.random.default_rng(_checks.seed(seed, "seed", "set_seed"))


def get_rng():
    """Return the global ``numpy.random.Generator`` (created unseeded on first use)."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng
