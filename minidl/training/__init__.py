"""Training: the TBPTT trainer, its windows and update guard, callbacks, history and progress output."""

from .callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from .history import History
from .trainer import TBPTTTrainer

__all__ = ["TBPTTTrainer", "History", "Callback", "EarlyStopping", "ModelCheckpoint", "CSVLogger"]
