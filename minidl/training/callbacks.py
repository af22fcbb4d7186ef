"""Callbacks: hooks into ``TBPTTTrainer.fit`` (Keras style).

A callback sees the trainer as ``self.trainer`` and the model as ``self.model``;
setting ``self.trainer.stop_training = True`` ends ``fit`` after the current batch.
``logs`` at epoch end holds ``"loss"`` and, with validation data, ``"val_loss"``.
"""

import csv
import math
import os
import warnings


from .._checks import finite_number, one_of


class Callback:
    """Base class: override any of the hooks; each default does nothing."""

    trainer = None

    @property
    def model(self):
        return None if self.trainer is None else self.trainer.model

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class CallbackList(Callback):
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks, trainer):
        callbacks = list(callbacks or ())
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks[{i}] must be a Callback, got {type(cb).__name__}")
            cb.set_trainer(trainer)
        self.callbacks = callbacks

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_batch_begin(self, batch, logs=None): self._call("on_batch_begin", batch, logs)
    def on_batch_end(self, batch, logs=None): self._call("on_batch_end", batch, logs)


class _Monitor(Callback):
    """Shared logic of callbacks that watch one metric for improvement."""

    def __init__(self, monitor, mode, min_delta, owner):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be a metric name such as 'val_loss', got {monitor!r}")
        one_of(mode, ("min", "max", "auto"), "mode", owner)
        self.monitor, self.owner = monitor, owner
        self.min_delta = abs(finite_number(min_delta, "min_delta", owner))
        self.sign = 1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else -1.0
        self.best = -math.inf

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{self.owner}: metric {self.monitor!r} is not in the logs {sorted(logs or {})}; doing nothing",
                          RuntimeWarning, stacklevel=3)
        return value

    def _improved(self, value):
        """True (and remember it) when ``value`` beats the best by more than min_delta."""
        score = self.sign * value
        if score - self.min_delta > self.best:
            self.best = score
            return True
        return False

    @property
    def best_value(self):
        return self.sign * self.best


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs. With ``restore_best_weights`` the weights of the best epoch
    are put back when training ends."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        super().__init__(monitor, mode, min_delta, "EarlyStopping")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self.patience, self.restore_best_weights = patience, bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch, self.best_epoch = 0, -math.inf, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if self._improved(value):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model (``model.save(path)``) at each epoch end, or only when
    ``monitor`` improves with ``save_best_only``. ``path`` may hold format fields
    ``{epoch}`` (1-based) and any metric, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__(monitor, mode, 0.0, "ModelCheckpoint")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: path must be a str or path, got {type(path).__name__}")
        self.path, self.save_best_only = os.fspath(path), bool(save_best_only)

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "save", None)):
            raise TypeError(f"ModelCheckpoint: the model ({type(self.model).__name__}) has no save(path) method")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if value is None or not self._improved(value):
                return
        self.model.save(self.path.format(epoch=epoch + 1, **logs))


class ReduceLROnPlateau(_Monitor):
    """Multiply the optimizer's ``lr`` by ``factor`` when ``monitor`` has not
    improved for ``patience`` epochs; wait ``cooldown`` epochs after a reduction;
    never go below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0, mode="auto"):
        super().__init__(monitor, mode, min_delta, "ReduceLROnPlateau")
        self.factor = finite_number(factor, "factor", "ReduceLROnPlateau", minimum=0.0, min_open=True)
        if self.factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        for name, v in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be an int >= 0, got {v!r}")
        self.patience, self.cooldown = patience, cooldown
        self.min_lr = finite_number(min_lr, "min_lr", "ReduceLROnPlateau", minimum=0.0)

    def on_train_begin(self, logs=None):
        self.wait, self.cooldown_left, self.best = 0, 0, -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is not None:
            self._watch(value)
        if logs is not None:
            logs["lr"] = self.trainer.optimizer.lr

    def _watch(self, value):
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self._improved(value):
            self.wait = 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.trainer.optimizer
            opt.lr = max(opt.lr * self.factor, self.min_lr)
            self.cooldown_left, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` then the logs) to ``path``."""

    def __init__(self, path, separator=",", append=False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: path must be a str or path, got {type(path).__name__}")
        self.path, self.separator, self.append = os.fspath(path), separator, bool(append)
        self._keys = None

    def on_train_begin(self, logs=None):
        self._keys = None
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self._keys = header[1:] if header else None
        elif not self.append and os.path.exists(self.path):
            os.remove(self.path)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        new_file = self._keys is None
        if new_file:
            self._keys = sorted(logs)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if new_file:
                writer.writerow(["epoch"] + self._keys)
            writer.writerow([epoch] + [repr(float(logs[k])) if k in logs else "" for k in self._keys])
