"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s semantics: plain objects.

A schedule is built on an optimizer, remembers its learning rate then as
``base_lr``, and sets ``optimizer.lr`` each time ``step()`` advances it one epoch::

    opt = mdl.SGD(model.parameters(), lr=0.1)
    sched = mdl.StepLR(opt, step_size=10)          # last_epoch = 0, opt.lr = 0.1
    for epoch in range(epochs):
        ...train one epoch with opt...
        sched.step()                               # lr for the next epoch

``ReduceLROnPlateau`` instead steps on a metric, ``step(value)``. Passed to
``TBPTTTrainer.fit(callbacks=[...])``, any schedule is stepped at each epoch end and
its new ``lr`` written into the epoch logs (the adapter lives with the callbacks, in
``minidl/training/callbacks.py``).

Differences from torch: our optimizers have a single ``lr`` (no parameter
groups), so ``get_last_lr()`` returns a float, not a list; ``step()`` takes no
epoch argument and the constructors no ``last_epoch`` (resume with
``load_state_dict``). The updates are torch's recursive ("chainable") forms: each
reads the optimizer's current ``lr``, so a change made by someone else (say
``ReduceLROnPlateau``) carries on. Without such changes they equal the closed forms
given in each class.

A new schedule subclasses ``LRScheduler``: it passes its hyperparameters to
``super().__init__(optimizer, **hyperparameters)`` (kept in ``self.defaults``, validated
by ``check_defaults``, saved by ``state_dict``) and implements ``next_lr(lr)``.
"""

import math
import numbers
from collections.abc import Mapping

from .._checks import finite_number, non_negative_int, one_of, positive_int, same_keys
from .optimizer import Optimizer


class LRScheduler:
    """Base class of learning-rate schedules stepped once per epoch.

    Subclass contract: pass the hyperparameters to ``super().__init__(optimizer, ...)``
    and implement ``next_lr(lr)``; override ``check_defaults`` to validate them.

    Attributes:
        optimizer: the ``Optimizer`` whose ``lr`` is set.
        defaults: dict of hyperparameters (numbers, bools, strings: JSON).
        base_lr: ``optimizer.lr`` when the scheduler was built.
        last_epoch: epochs stepped so far (0 after construction).
    """

    def __init__(self, optimizer, **hyperparameters):
        """Store the optimizer and the validated hyperparameters (``check_defaults``).

        Args:
            optimizer: the ``Optimizer`` whose ``lr`` the schedule sets; ``base_lr`` is its ``lr`` now.
            **hyperparameters: the subclass's own, stored in ``defaults``.

        Raises:
            TypeError: ``optimizer`` is not an ``Optimizer``, or a hyperparameter is not
                a number, bool, str or None.
            ValueError: a hyperparameter out of its range (the subclass's checks).
        """
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.defaults = self.check_defaults(hyperparameters)
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._last_lr = optimizer.lr

    def check_defaults(self, defaults):
        """Return the hyperparameters validated, or raise; called by ``__init__`` and ``load_state_dict``.

        The base checks that every value is a JSON scalar; a subclass checks its own.

        Args:
            defaults: dict of the hyperparameters.

        Returns:
            The validated dict.

        Raises:
            TypeError: a value that is not a number, bool, str or None (or the subclass's).
            ValueError: a value out of its range (the subclass's checks).
        """
        for name, value in defaults.items():
            if not (value is None or isinstance(value, (numbers.Real, str))):
                raise TypeError(
                    f"{type(self).__name__}: {name} must be a number, bool, str or None (to be saved), "
                    f"got {type(value).__name__}"
                )
        return dict(defaults)

    def next_lr(self, lr):
        """The lr for epoch ``self.last_epoch`` (already advanced by ``step``); a subclass implements it.

        Args:
            lr: float, the optimizer's current ``lr``.

        Returns:
            The new lr, a float >= 0.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement next_lr(lr)")

    def step(self):
        """Advance one epoch and set ``optimizer.lr`` to the schedule's value for it."""
        self.last_epoch += 1
        self.optimizer.lr = self.next_lr(self.optimizer.lr)
        self._last_lr = self.optimizer.lr

    def get_last_lr(self):
        """The lr set by the last ``step()`` (``base_lr`` before any), as a float."""
        return self._last_lr

    # ---- configuration and state -------------------------------------------------------
    def get_config(self):
        """The hyperparameters (without the optimizer) as JSON-able values."""
        return dict(self.defaults)

    def state_dict(self):
        """``{"type", "config", "last_epoch", "base_lr", "last_lr"}``: plain ints, floats and strings."""
        return {
            "type": type(self).__name__,
            "config": self.get_config(),
            "last_epoch": self.last_epoch,
            "base_lr": self.base_lr,
            "last_lr": self._last_lr,
        }

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict()`` returned; invalid input raises and changes nothing.

        As in torch this does not touch ``optimizer.lr``: restore the optimizer's own
        state (``optimizer.load_state_dict``, or a trainer checkpoint) as well.

        Args:
            state_dict: mapping ``{"type", "config", "last_epoch", "base_lr", "last_lr"}``.

        Raises:
            TypeError: ``state_dict`` or its config is not a mapping, or a value of the
                wrong type.
            ValueError: another scheduler's state, missing or extra keys, or a value out
                of range.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}: expected a mapping, got {type(state_dict).__name__}")
        same_keys(state_dict, {"type", "config", "last_epoch", "base_lr", "last_lr"}, "state_dict", owner)
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"{owner}: the state is for a {state_dict['type']!r} scheduler, not {type(self).__name__!r}")
        config = state_dict["config"]
        if not isinstance(config, Mapping):
            raise TypeError(f"{owner}: 'config' must be a mapping, got {type(config).__name__}")
        same_keys(config, self.defaults, "config", owner)
        last_epoch = non_negative_int(state_dict["last_epoch"], "last_epoch", owner)
        base_lr = finite_number(state_dict["base_lr"], "base_lr", owner, minimum=0.0)
        last_lr = finite_number(state_dict["last_lr"], "last_lr", owner, minimum=0.0)
        self.defaults = self.check_defaults({name: config[name] for name in self.defaults})
        self.last_epoch, self.base_lr, self._last_lr = last_epoch, base_lr, last_lr

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch}, lr={self._last_lr!r})"


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs, as ``torch.optim.lr_scheduler.StepLR``.

    Closed form: ``lr(epoch) = base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: the ``Optimizer`` whose ``lr`` the schedule sets; ``base_lr`` is its ``lr`` now.
        step_size: int >= 1, epochs between two multiplications.
        gamma: finite float > 0, the factor; default 0.1.

    Raises:
        TypeError: ``optimizer`` is not an ``Optimizer``, ``step_size`` not an int or
            ``gamma`` not a number.
        ValueError: ``step_size < 1``, or ``gamma`` not finite or not > 0.
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    def check_defaults(self, defaults):
        d = super().check_defaults(defaults)
        d["step_size"] = positive_int(d["step_size"], "step_size", type(self).__name__)
        d["gamma"] = finite_number(d["gamma"], "gamma", type(self).__name__, minimum=0.0, min_open=True)
        return d

    def next_lr(self, lr):
        return lr * self.defaults["gamma"] if self.last_epoch % self.defaults["step_size"] == 0 else lr


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch, as ``torch.optim.lr_scheduler.ExponentialLR``.

    Closed form: ``lr(epoch) = base_lr * gamma ** epoch``.

    Args:
        optimizer: the ``Optimizer`` whose ``lr`` the schedule sets; ``base_lr`` is its ``lr`` now.
        gamma: finite float > 0, the factor per epoch.

    Raises:
        TypeError: ``optimizer`` is not an ``Optimizer`` or ``gamma`` not a number.
        ValueError: ``gamma`` is not finite or not > 0.
    """

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer, gamma=gamma)

    def check_defaults(self, defaults):
        d = super().check_defaults(defaults)
        d["gamma"] = finite_number(d["gamma"], "gamma", type(self).__name__, minimum=0.0, min_open=True)
        return d

    def next_lr(self, lr):
        return lr * self.defaults["gamma"]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs, as
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` (without restarts).

    Closed form, periodic with period ``2 * T_max`` (the lr goes back up after ``T_max``)::

        lr(epoch) = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    Computed recursively as torch does (``e`` = the new ``last_epoch``)::

        lr_e = eta_min + (lr_{e-1} - eta_min) * (1 + cos(pi e / T_max)) / (1 + cos(pi (e-1) / T_max))
        lr_e = lr_{e-1} + (base_lr - eta_min) * (1 - cos(pi / T_max)) / 2     # when e - 1 - T_max
                                                                             # is a multiple of 2 T_max

    Args:
        optimizer: the ``Optimizer`` whose ``lr`` the schedule sets; ``base_lr`` is its ``lr`` now.
        T_max: int >= 1, the epochs of half a period.
        eta_min: finite float >= 0, the lowest lr; default 0.0.

    Raises:
        TypeError: ``optimizer`` is not an ``Optimizer``, ``T_max`` not an int or
            ``eta_min`` not a number.
        ValueError: ``T_max < 1``, or ``eta_min`` not finite or negative.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer, T_max=T_max, eta_min=eta_min)

    def check_defaults(self, defaults):
        d = super().check_defaults(defaults)
        d["T_max"] = positive_int(d["T_max"], "T_max", type(self).__name__)
        d["eta_min"] = finite_number(d["eta_min"], "eta_min", type(self).__name__, minimum=0.0)
        return d

    def next_lr(self, lr):
        e, T, eta_min = self.last_epoch, self.defaults["T_max"], self.defaults["eta_min"]
        if (e - 1 - T) % (2 * T) == 0:
            # the step just after a minimum, where the ratio below would be 0 / 0
            return lr + (self.base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
        return ratio * (lr - eta_min) + eta_min


class ReduceLROnPlateau:
    """Multiply the optimizer's ``lr`` by ``factor`` when a metric has stopped improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (``threshold_mode="abs"``) and Keras.

    ``step(value)`` takes one epoch's value of the metric. A value improves when it beats
    the best so far by more than ``min_delta`` (lower for ``mode="min"``, higher for
    ``"max"``; ``"auto"`` is ``"max"`` when ``monitor`` contains ``"acc"``). Epochs without
    improvement are counted; when the count reaches ``patience``, ``lr`` becomes
    ``max(lr * factor, min_lr)`` and the count restarts. After a reduction, ``cooldown``
    epochs pass before epochs are counted again (counted down at the start of each
    step, as in Keras, so its last epoch already counts).

    In ``TBPTTTrainer.fit(callbacks=[...])`` (through ``training.callbacks.PlateauCallback``)
    it starts afresh (``reset()``) at the beginning of each ``fit``, steps on
    ``logs[monitor]`` at each epoch end, and writes the optimizer's ``lr`` into the logs as
    ``"lr"``. Built without an optimizer (``follows_trainer``), it uses the optimizer of
    each trainer it is given to.

    Attributes:
        optimizer: the ``Optimizer`` stepped (None until a trainer gives one).
        best: the best value so far (``inf`` for ``"min"``, ``-inf`` for ``"max"`` after ``reset()``).
        wait: epochs without improvement since the last improvement or reduction.
        cooldown_left: cooldown epochs still to pass.

    Args:
        optimizer: the ``Optimizer`` whose ``lr`` is lowered, or None (the trainer's).
        monitor: the name of the metric in the epoch logs, e.g. ``"val_loss"``.
        factor: float in (0, 1), what the lr is multiplied by; default 0.1.
        patience: int >= 0, epochs without improvement before a reduction; default 10.
        min_delta: finite float (its size counts), the least change that is an
            improvement; default 1e-4.
        cooldown: int >= 0, epochs after a reduction before counting again; default 0.
        min_lr: finite float >= 0, the lowest lr; default 0.0.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (the default: ``"max"`` when
            ``monitor`` contains ``"acc"``).

    Raises:
        TypeError: ``optimizer`` is neither an ``Optimizer`` nor None, ``monitor`` is not
            a non-empty str, or a number is of the wrong type.
        ValueError: ``mode`` is not one of the three, ``factor`` not in (0, 1), or a
            number out of its range. ``step`` raises ``ValueError`` without an optimizer.
    """

    def __init__(self, optimizer=None, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0,
                 min_lr=0.0, mode="auto"):
        owner = "ReduceLROnPlateau"
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: optimizer must be an Optimizer or None, got {type(optimizer).__name__}")
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"{owner}: monitor must be a metric name such as 'val_loss', got {monitor!r}")
        one_of(mode, ("min", "max", "auto"), "mode", owner)
        self.factor = finite_number(factor, "factor", owner, minimum=0.0, min_open=True)
        if self.factor >= 1.0:
            raise ValueError(f"{owner}: factor must be < 1, got {factor}")
        self.patience = non_negative_int(patience, "patience", owner)
        self.cooldown = non_negative_int(cooldown, "cooldown", owner)
        self.min_delta = abs(finite_number(min_delta, "min_delta", owner))
        self.min_lr = finite_number(min_lr, "min_lr", owner, minimum=0.0)
        self.optimizer, self.monitor = optimizer, monitor
        self.follows_trainer = optimizer is None
        self.sign = 1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else -1.0
        self.reset()

    def reset(self):
        """Forget the best value and the counts of epochs without improvement and of cooldown."""
        self.best = -self.sign * math.inf
        self.wait = 0
        self.cooldown_left = 0

    def step(self, value):
        """Take one epoch's ``value`` of the metric; lower ``optimizer.lr`` on a plateau.

        Args:
            value: float, the metric's value at this epoch.

        Raises:
            ValueError: there is no optimizer (none given, and no trainer gave one).
        """
        if self.optimizer is None:
            raise ValueError(
                "ReduceLROnPlateau: no optimizer; pass one, or use it in TBPTTTrainer.fit(callbacks=[...])"
            )
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.sign * value - self.min_delta > self.sign * self.best:
            self.best, self.wait = value, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.cooldown_left, self.wait = self.cooldown, 0
