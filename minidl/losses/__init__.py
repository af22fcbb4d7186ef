"""Losses: the Loss base class (the contract and the tools for writing one) and the built-in losses."""

from .classification import BCEWithLogitsLoss, CrossEntropyLoss
from .loss import Loss
from .regression import HuberLoss, L1Loss, MSELoss

__all__ = ["Loss", "MSELoss", "L1Loss", "HuberLoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]
