"""Optimizers, learning-rate schedules and gradient clipping.

optimizer.py    the ``Optimizer`` base (hyperparameters in ``defaults``, per-parameter state,
                generic ``state_dict``) and ``parameter_list``
sgd.py          SGD (momentum, Nesterov)
adam.py         Adam, AdamW
rmsprop.py      RMSprop
adagrad.py      Adagrad
lr_scheduler.py LRScheduler, StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau
clipping.py     GradientClipper, ClipByValue, ClipByGlobalNorm, total_grad_norm
"""

from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clipping import ClipByGlobalNorm, ClipByValue, GradientClipper, total_grad_norm
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
    "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "ReduceLROnPlateau",
    "GradientClipper", "ClipByValue", "ClipByGlobalNorm", "total_grad_norm",
]
