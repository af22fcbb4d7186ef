"""Callbacks: hooks into ``TBPTTTrainer.fit`` (Keras style).

A callback sees the trainer as ``self.trainer`` and the model as ``self.model``;
setting ``self.trainer.stop_training = True`` ends ``fit`` after the current batch.
``logs`` at epoch end holds ``"loss"``, each metric by its name and, with validation
data, ``"val_loss"`` and ``"val_<metric>"``. ``on_update_end`` runs after every
optimizer step (one per TBPTT chunk), with that update's loss.

A learning-rate schedule (``minidl.optim.lr_scheduler``: an ``LRScheduler`` or
``ReduceLROnPlateau``, plain objects) may be listed among the callbacks too:
``CallbackList`` wraps it in an adapter (``ScheduleCallback``, ``PlateauCallback``) that
steps it at each epoch end and writes the new rate to ``logs["lr"]``. The adapters run
before every other callback, whatever the order of the list, so each callback sees the
epoch's logs complete (a ``CSVLogger`` listed before a ``StepLR`` still has the ``lr``
column).
"""

import csv
import math
import os
import string
import warnings

from .._checks import finite_number, flag, non_negative_int, one_of
from ..optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from .metrics import BUILT_IN


class Callback:
    """Base class: override any of the hooks; each default does nothing."""

    trainer = None

    @property
    def model(self):
        return None if self.trainer is None else self.trainer.model

    def set_trainer(self, trainer):
        """Called by ``fit`` before training, so that hooks can reach ``self.trainer`` and ``self.model``.

        Args:
            trainer: the ``TBPTTTrainer`` that runs this callback.
        """
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        """At the start of ``fit``, before the first epoch.

        Args:
            logs: None (the trainer passes nothing).
        """

    def on_train_end(self, logs=None):
        """At the end of ``fit``, after the last epoch (also after an early stop).

        Args:
            logs: None (the trainer passes nothing).
        """

    def on_epoch_begin(self, epoch, logs=None):
        """At the start of each epoch.

        Args:
            epoch: int, the trainer's epoch count, 0-based (it continues across ``fit`` calls).
            logs: None (the trainer passes nothing).
        """

    def on_epoch_end(self, epoch, logs=None):
        """At the end of each epoch, after validation; set ``self.trainer.stop_training`` to stop.

        Args:
            epoch: int, the epoch just finished, 0-based.
            logs: dict of that epoch's values: ``"loss"``, the metrics, ``"val_..."`` with
                validation data, ``"lr"`` with a schedule.
        """

    def on_batch_begin(self, batch, logs=None):
        """Before each batch of an epoch.

        Args:
            batch: int, the batch's index within the epoch, 0-based.
            logs: None (the trainer passes nothing).
        """

    def on_batch_end(self, batch, logs=None):
        """After each batch (all its TBPTT chunks).

        Args:
            batch: int, the batch's index within the epoch, 0-based.
            logs: dict with ``"loss"``, the batch's mean loss over its real targets.
        """

    def on_update_end(self, update, logs=None):
        """After every optimizer step; a TBPTT batch makes one update per chunk.

        Args:
            update: int, the trainer's steps so far (1, 2, ...; kept by checkpoints).
            logs: dict with that update's ``"loss"`` (the mean over its chunk's real
                targets) and ``"grad_norm"`` (before clipping).
        """


class CallbackList(Callback):
    """Calls each hook on every callback: the schedules' adapters first, then the other
    callbacks in the order given."""

    def __init__(self, callbacks, trainer):
        callbacks = [_as_callback(cb) for cb in callbacks or ()]
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"fit: callbacks[{i}] must be a Callback or a learning-rate schedule, got {type(cb).__name__}"
                )
            cb.set_trainer(trainer)
        schedules = [cb for cb in callbacks if isinstance(cb, (ScheduleCallback, PlateauCallback))]
        self.callbacks = schedules + [cb for cb in callbacks if cb not in schedules]

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_batch_begin(self, batch, logs=None): self._call("on_batch_begin", batch, logs)
    def on_batch_end(self, batch, logs=None): self._call("on_batch_end", batch, logs)
    def on_update_end(self, update, logs=None): self._call("on_update_end", update, logs)


class ScheduleCallback(Callback):
    """An ``LRScheduler`` in ``fit``'s callbacks: stepped at each epoch end, its new lr (the one
    the next epoch uses) written to ``logs["lr"]``. It must be built on the trainer's optimizer."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_train_begin(self, logs=None):
        schedule, trainer = self.schedule, self.trainer
        if trainer.optimizer is not schedule.optimizer:
            raise ValueError(
                f"{type(schedule).__name__}: the scheduler was built on another optimizer than the trainer's "
                f"({type(schedule.optimizer).__name__} at {id(schedule.optimizer):#x} vs "
                f"{type(trainer.optimizer).__name__} at {id(trainer.optimizer):#x})"
            )

    def on_epoch_end(self, epoch, logs=None):
        self.schedule.step()
        if logs is not None:
            logs["lr"] = self.schedule.optimizer.lr


class PlateauCallback(Callback):
    """A ``ReduceLROnPlateau`` in ``fit``'s callbacks: it takes the trainer's optimizer if built
    without one (else it must be built on that one), starts afresh at train begin, steps on
    ``logs[monitor]`` at each epoch end (a warning if the logs lack it) and writes ``logs["lr"]``."""

    def __init__(self, plateau):
        self.plateau = plateau

    def set_trainer(self, trainer):
        super().set_trainer(trainer)
        plateau = self.plateau
        if plateau.follows_trainer:
            plateau.optimizer = trainer.optimizer
        elif plateau.optimizer is not trainer.optimizer:
            raise ValueError(
                "ReduceLROnPlateau: built on another optimizer than the trainer's "
                f"({type(plateau.optimizer).__name__} at {id(plateau.optimizer):#x} vs "
                f"{type(trainer.optimizer).__name__} at {id(trainer.optimizer):#x})"
            )

    def on_train_begin(self, logs=None):
        self.plateau.reset()

    def on_epoch_end(self, epoch, logs=None):
        plateau = self.plateau
        value = (logs or {}).get(plateau.monitor)
        if value is None:
            warnings.warn(f"ReduceLROnPlateau: metric {plateau.monitor!r} is not in the logs {sorted(logs or {})}; "
                          "doing nothing", RuntimeWarning, stacklevel=2)
        else:
            plateau.step(value)
        if logs is not None:
            logs["lr"] = plateau.optimizer.lr


def _as_callback(cb):
    """``cb``, or the adapter that lets ``fit`` drive a learning-rate schedule."""
    if isinstance(cb, LRScheduler):
        return ScheduleCallback(cb)
    if isinstance(cb, ReduceLROnPlateau):
        return PlateauCallback(cb)
    return cb


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
    are put back when training ends. A metric missing from the logs is a
    ``RuntimeWarning`` and the epoch is skipped.

    Args:
        monitor: str, the metric's name in the epoch logs; default ``"val_loss"``.
        patience: int >= 0, epochs without improvement before stopping; default 0.
        min_delta: finite float (its size counts), the least change that is an
            improvement; default 0.0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (the default: ``"max"`` when ``monitor``
            contains ``"acc"``, else ``"min"``).
        restore_best_weights: bool, put back the best epoch's weights at the end; default False.

    Raises:
        TypeError: ``monitor`` is not a non-empty str, ``patience`` not an int,
            ``min_delta`` not a number or ``restore_best_weights`` not a bool.
        ValueError: ``mode`` is not one of the three, ``patience < 0`` or ``min_delta``
            not finite.
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False):
        super().__init__(monitor, mode, min_delta, "EarlyStopping")
        self.patience = non_negative_int(patience, "patience", "EarlyStopping")
        self.restore_best_weights = flag(restore_best_weights, "restore_best_weights", "EarlyStopping")

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
    ``{epoch}`` (1-based), ``{lr}``, ``{loss}`` and the built-in metrics (``{accuracy}``,
    ``{mae}``), these two also with ``val_`` in front, and ``monitor``'s name,
    e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. Any other field, or a field that is
    not a plain name (``{}``, ``{0}``, ``{epoch.real}``), is a ``ValueError`` when the
    callback is built; a field the epoch's logs lack is one at the save.

    Args:
        path: str or path-like, the file (a format template as above).
        monitor: str, the metric's name in the epoch logs; default ``"val_loss"``.
        save_best_only: bool, save only when ``monitor`` improves; default False.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (the default: ``"max"`` when ``monitor``
            contains ``"acc"``, else ``"min"``).

    Raises:
        TypeError: ``path`` is not a str or path, ``monitor`` not a non-empty str or
            ``save_best_only`` not a bool; at the start of ``fit``, a model without ``save``.
        ValueError: ``mode`` is not one of the three, or ``path`` is not a valid template
            of the fields above.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__(monitor, mode, 0.0, "ModelCheckpoint")
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: path must be a str or path, got {type(path).__name__}")
        self.path = os.fspath(path)
        self.save_best_only = flag(save_best_only, "save_best_only", "ModelCheckpoint")
        self._fields = _template_fields(self.path, monitor)

    def on_train_begin(self, logs=None):
        if not callable(getattr(self.model, "save", None)):
            raise TypeError(f"ModelCheckpoint: the model ({type(self.model).__name__}) has no save(path) method")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if value is None or not self._improved(value):
                return
        missing = [f for f in self._fields if f != "epoch" and f not in logs]
        if missing:
            raise ValueError(
                f"ModelCheckpoint: path {self.path!r} uses {', '.join(map(repr, missing))}, which the logs of "
                f"epoch {epoch + 1} lack (they hold {sorted(logs)})"
            )
        self.model.save(self.path.format(epoch=epoch + 1, **logs))


def _template_fields(path, monitor):
    """The field names of the format template ``path``, checked: plain names that ``ModelCheckpoint``
    can fill (see its docstring), each format spec valid for the value it gets."""
    logs = ["loss", *BUILT_IN]
    allowed = ["epoch", "lr", *logs, *(f"val_{name}" for name in logs)]
    documented = ", ".join("{" + f + "}" for f in allowed)
    allowed.append(monitor)
    where = f"ModelCheckpoint: path {path!r}"
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(path) if name is not None]
    except ValueError as err:
        raise ValueError(f"{where} is not a valid format template ({err}); write a literal brace as '{{{{' or '}}}}'") \
            from None
    for name, spec, conv in fields:
        if name not in allowed:
            raise ValueError(
                f"{where} has the field {{{name}}}; the fields it may hold are {documented} "
                f"and the monitored metric {{{monitor}}}"
            )
        if "{" in (spec or ""):
            raise ValueError(f"{where}: the format spec of {{{name}}} must not hold fields, got {spec!r}")
        try:
            ("{0" + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}").format(
                1 if name == "epoch" else 0.5)
        except ValueError as err:
            raise ValueError(f"{where}: bad format spec for {{{name}}}: {err}") from None
    return [name for name, _, _ in fields]


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` then the logs) to ``path``.

    The columns are ``epoch`` then the first epoch's log keys, sorted; a value a later
    epoch lacks is left empty.

    Args:
        path: str or path-like, the CSV file; replaced at the start of ``fit`` unless
            ``append``.
        separator: str, the field delimiter; default ``","``.
        append: bool, add rows to an existing file (keeping its columns); default False.

    Raises:
        TypeError: ``path`` is not a str or path, or ``append`` is not a bool.
    """

    def __init__(self, path, separator=",", append=False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: path must be a str or path, got {type(path).__name__}")
        self.path, self.separator = os.fspath(path), separator
        self.append = flag(append, "append", "CSVLogger")
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
