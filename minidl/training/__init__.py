"""Training: the TBPTT trainer, callbacks and history."""

from .callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from .history import History
from .trainer import TBPTTTrainer

__all__ = ["TBPTTTrainer", "History", "Callback", "EarlyStopping", "ModelCheckpoint", "CSVLogger"]
