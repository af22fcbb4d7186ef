"""Layers: the Layer base class, dense and activation layers, cells and RNN."""

from .activations import ReLU, Sigmoid, Tanh
from .layer import Layer
from .bidirectional import Bidirectional
from .cell import Cell
from .gru import GRUCell
from .lstm import LSTMCell
from .rnn_cell import RNNCell
from .dense import Dense
from .dropout import Dropout
from .embedding import Embedding
from .masking import Masking
from .normalization import LayerNorm
from .rnn import RNN
from .reshape import Flatten, Reshape
from .repeat_vector import RepeatVector
from .concatenate import Concatenate

__all__ = ["Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "Cell", "RNNCell", "LSTMCell", "GRUCell", "RNN"]
__all__ += ["Embedding", "Dropout", "LayerNorm", "Bidirectional", "Flatten", "Reshape"]
__all__ += ["RepeatVector", "Concatenate", "Masking"]
