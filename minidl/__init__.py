"""minidl: a small, object-oriented deep-learning framework in numpy for sequence models."""

from ._dtype import get_default_dtype, set_default_dtype
from ._grad_mode import is_grad_enabled, no_grad
from ._random import set_seed
from ._version import __version__
from . import data, diagnostics, init, interop, text  # modules: mdl.init.orthogonal, mdl.interop.from_torch(...)
from .gradcheck import gradcheck
from .layers import RNN, Cell, Dense, GRUCell, Layer, LSTMCell, ReLU, RNNCell, Sigmoid, Tanh
from .layers import Bidirectional, Dropout, Embedding, Flatten, LayerNorm, Masking, Reshape
from .layers import Concatenate, RepeatVector
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, Loss, MSELoss
from .model import Model
from .sequential import Sequential
from .optim import SGD, Adagrad, Adam, AdamW, ClipByGlobalNorm, ClipByValue, GradientClipper, Optimizer, RMSprop
from .optim import CosineAnnealingLR, ExponentialLR, LRScheduler, ReduceLROnPlateau, StepLR
from .parameter import Parameter
from .streaming import Stream
from .io import load_model
from .training import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    ModelCheckpoint,
    TBPTTTrainer,
)
