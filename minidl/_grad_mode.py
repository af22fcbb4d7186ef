"""Switch off the keeping of history for backward (like ``torch.no_grad``)."""

import contextlib

_enabled = True


def is_grad_enabled():
    """True when layers keep what ``backward`` needs during ``forward``."""
    return _enabled


@contextlib.contextmanager
def no_grad():
    """Context manager: forwards inside it keep no history and cannot be backpropagated.

    Recurrent layers then hold only the current state, so memory does not grow with
    sequence length. ``Sequential.predict`` and the trainer's history-free steps use it.
    """
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous
