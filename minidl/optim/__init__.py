"""Optimizers, learning-rate schedules and gradient clipping."""

from .clipping import ClipByGlobalNorm, ClipByValue, GradientClipper, total_grad_norm
from .lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer
from .rmsprop import Adagrad, RMSprop
