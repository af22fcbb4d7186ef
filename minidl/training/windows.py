"""The TBPTT(k1, k2) windows: which steps each update runs forward, backpropagates through and takes the loss on."""

from .._checks import positive_int


def tbptt_windows(T, k1=None, k2=None):
    """The updates of TBPTT(k1, k2) over a sequence of ``T`` steps.

    Returns a list of ``(s, p, e)``, one per update: the chunk ``[p, e)`` of at most
    ``k1`` steps whose outputs the loss is taken on, and the window ``[s, e)`` with
    ``s = max(0, e - k2)`` that runs forward from the state stored at ``s`` and is
    backpropagated through. ``k1`` defaults to ``T``, ``k2`` to ``k1``; ``k2 < k1``
    is a ``ValueError``.

    >>> tbptt_windows(7, k1=3, k2=5)
    [(0, 0, 3), (1, 3, 6), (2, 6, 7)]
    """
    T = positive_int(T, "T", "tbptt_windows")
    k1 = T if k1 is None else positive_int(k1, "k1", "tbptt_windows")
    k2 = k1 if k2 is None else positive_int(k2, "k2", "tbptt_windows")
    if k2 < k1:
        raise ValueError(f"tbptt_windows: k2 must be >= k1, got k1={k1}, k2={k2}")
    return [(max(0, e - k2), p, e) for p in range(0, T, k1) for e in [min(p + k1, T)]]
