"""Layers: the Layer base class, dense and activation layers, cells and RNN."""

from .activations import ReLU, Sigmoid, Tanh
from .base import Layer
from .cell import Cell
from .cells import GRUCell, LSTMCell, RNNCell
from .dense import Dense
from .recurrent import RNN

__all__ = ["Layer", "Dense", "Tanh", "Sigmoid", "ReLU", "Cell", "RNNCell", "LSTMCell", "GRUCell", "RNN"]
