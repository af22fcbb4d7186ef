"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s semantics.

A scheduler is built on an optimizer, remembers its learning rate then as
``base_lr``, and sets ``optimizer.lr`` each time ``step()`` advances it one epoch::

    opt = mdl.SGD(model.parameters(), lr=0.1)
    sched = mdl.StepLR(opt, step_size=10)          # last_epoch = 0, opt.lr = 0.1
    for epoch in range(epochs):
        ...train one epoch with opt...
        sched.step()                               # lr for the next epoch

Each schedule is also a trainer ``Callback`` whose ``on_epoch_end`` calls
``step()`` and writes the new ``lr`` into the epoch logs, so
``trainer.fit(..., callbacks=[mdl.StepLR(opt, 10)])`` schedules the training and
records ``history.history["lr"]``.

Differences from torch: our optimizers have a single ``lr`` (no parameter
groups), so ``get_last_lr()`` returns a float, not a list; ``step()`` takes no
epoch argument and the constructors no ``last_epoch`` (resume with
``load_state_dict``). The updates are torch's recursive ("chainable") forms: each
reads the optimizer's current ``lr``, so a change made by someone else (say
``ReduceLROnPlateau``) carries on. Without such changes they equal the closed forms
given in each class.

New schedules subclass ``LRScheduler`` and implement ``_next_lr(lr)`` (the lr for
``last_epoch``, already advanced, from the current one) and ``get_config()``.
"""

import math
import numbers
from collections.abc import Mapping

from .._checks import finite_number, positive_int
from .optimizer import Optimizer, _check_keys
from ..training.callbacks import Callback


class LRScheduler(Callback):
    """Base class of learning-rate schedules (and a ``Callback`` for ``TBPTTTrainer.fit``).

    Attributes:
        optimizer: the ``Optimizer`` whose ``lr`` is set.
        base_lr: ``optimizer.lr`` when the scheduler was built.
        last_epoch: epochs stepped so far (0 after construction).
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._last_lr = optimizer.lr

    def step(self):
        """Advance one epoch and set ``optimizer.lr`` to the schedule's value for it."""
        self.last_epoch += 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr)
        self._last_lr = self.optimizer.lr

    def get_last_lr(self):
        """The lr set by the last ``step()`` (``base_lr`` before any), as a float."""
        return self._last_lr

    def _next_lr(self, lr):
        raise NotImplementedError(f"{type(self).__name__} does not implement _next_lr")

    # ---- trainer callback ------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.trainer is not None and self.trainer.optimizer is not self.optimizer:
            raise ValueError(
                f"{type(self).__name__}: the scheduler was built on another optimizer than the trainer's "
                f"({type(self.optimizer).__name__} at {id(self.optimizer):#x} vs "
                f"{type(self.trainer.optimizer).__name__} at {id(self.trainer.optimizer):#x})"
            )

    def on_epoch_end(self, epoch, logs=None):
        """Step, and record the new lr (the one the next epoch uses) as ``logs["lr"]``."""
        self.step()
        if logs is not None:
            logs["lr"] = self.optimizer.lr

    # ---- configuration and state -------------------------------------------------------
    def get_config(self):
        """Constructor arguments (without the optimizer) as JSON-able values."""
        return {}

    def _configure(self, **config):
        raise NotImplementedError(f"{type(self).__name__} does not implement _configure")

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
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}: expected a mapping, got {type(state_dict).__name__}")
        _check_keys(state_dict, {"type", "config", "last_epoch", "base_lr", "last_lr"}, "state_dict", owner)
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"{owner}: the state is for a {state_dict['type']!r} scheduler, not {type(self).__name__!r}")
        config = state_dict["config"]
        if not isinstance(config, Mapping):
            raise TypeError(f"{owner}: 'config' must be a mapping, got {type(config).__name__}")
        _check_keys(config, set(self.get_config()), "config", owner)
        last_epoch = state_dict["last_epoch"]
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral):
            raise TypeError(f"{owner}: last_epoch must be an int, got {last_epoch!r}")
        if last_epoch < 0:
            raise ValueError(f"{owner}: last_epoch must be >= 0, got {last_epoch}")
        base_lr = finite_number(state_dict["base_lr"], "base_lr", owner, minimum=0.0)
        last_lr = finite_number(state_dict["last_lr"], "last_lr", owner, minimum=0.0)
        self._configure(**config)  # validates every value before setting any
        self.last_epoch, self.base_lr, self._last_lr = int(last_epoch), base_lr, last_lr

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch}, lr={self._last_lr!r})"


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs, as ``torch.optim.lr_scheduler.StepLR``.

    Closed form: ``lr(epoch) = base_lr * gamma ** (epoch // step_size)``.

    Args:
        optimizer: an ``Optimizer``. step_size: int >= 1. gamma: finite float > 0 (default 0.1).
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self._configure(step_size=step_size, gamma=gamma)

    def _configure(self, step_size, gamma):
        step_size = positive_int(step_size, "step_size", "StepLR")
        self.gamma = finite_number(gamma, "gamma", "StepLR", minimum=0.0, min_open=True)
        self.step_size = step_size

    def get_config(self):
        return {"step_size": self.step_size, "gamma": self.gamma}

    def _next_lr(self, lr):
        return lr * self.gamma if self.last_epoch % self.step_size == 0 else lr


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch, as ``torch.optim.lr_scheduler.ExponentialLR``.

    Closed form: ``lr(epoch) = base_lr * gamma ** epoch``.

    Args:
        optimizer: an ``Optimizer``. gamma: finite float > 0.
    """

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self._configure(gamma=gamma)

    def _configure(self, gamma):
        self.gamma = finite_number(gamma, "gamma", "ExponentialLR", minimum=0.0, min_open=True)

    def get_config(self):
        return {"gamma": self.gamma}

    def _next_lr(self, lr):
        return lr * self.gamma


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
        optimizer: an ``Optimizer``. T_max: int >= 1. eta_min: finite float >= 0 (default 0.0).
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self._configure(T_max=T_max, eta_min=eta_min)

    def _configure(self, T_max, eta_min):
        T_max = positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = finite_number(eta_min, "eta_min", "CosineAnnealingLR", minimum=0.0)
        self.T_max = T_max

    def get_config(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def _next_lr(self, lr):
        e, T = self.last_epoch, self.T_max
        if (e - 1 - T) % (2 * T) == 0:
            # the step just after a minimum, where the ratio below would be 0 / 0
            return lr + (self.base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
        ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
        return ratio * (lr - self.eta_min) + self.eta_min
