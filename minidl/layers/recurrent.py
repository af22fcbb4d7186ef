"""Transitional: ``RNN`` now lives in ``rnn.py``; remove this file once ``bidirectional.py``
imports ``from .rnn import RNN``."""

from .rnn import RNN

__all__ = ["RNN"]
