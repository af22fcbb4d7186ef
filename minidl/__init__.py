"""minidl: a small, object-oriented deep-learning framework in numpy for sequence models."""

from ._dtype import get_default_dtype, set_default_dtype
from ._grad_mode import is_grad_enabled, no_grad
from ._random import set_seed
from .gradcheck import gradcheck
from .layers import RNN, Cell, Dense, GRUCell, Layer, LSTMCell, ReLU, RNNCell, Sigmoid, Tanh
from .model import Sequential
from .parameter import Parameter

__version__ = "0.1.0"
