"""RMSprop and Adagrad: step sizes scaled per coordinate by accumulated squared gradients.

Both follow ``torch.optim`` step for step (defaults included) and build on the
``Optimizer`` base of ``optimizers.py`` (per-parameter state keyed by the
``Parameter``, ``state_dict`` of plain arrays and ints, in-place updates, the
shared L2 weight decay ``_l2_grad``). They are re-exported at the top level:
``mdl.RMSprop``, ``mdl.Adagrad``.
"""

import numpy as np

from .._checks import finite_number
from .optimizer import Optimizer, _flag


class RMSprop(Optimizer):
    """RMSprop (Hinton), as ``torch.optim.RMSprop``.

    Per parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p                     # L2, if weight_decay != 0
        v = alpha * v + (1 - alpha) * g**2           # square_avg, starts at 0
        if centered:
            a = alpha * a + (1 - alpha) * g          # grad_avg, starts at 0
            d = sqrt(max(v - a**2, 0)) + eps         # an estimate of the standard deviation
        else:
            d = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / d                 # momentum_buffer, starts at 0
            p = p - lr * b
        else:
            p = p - lr * g / d

    The ``max(., 0)`` guards the centered variance against a rounding error below
    zero, where torch would produce NaN; everywhere else the results are torch's.

    Args:
        params: iterable of ``Parameter``.
        lr: >= 0 (default 1e-2). alpha: smoothing constant in [0, 1] (default 0.99).
        eps: >= 0 (default 1e-8), added to the root outside the square root.
        weight_decay: >= 0. momentum: >= 0. centered: bool.

    State per parameter: ``step``, ``square_avg``, plus ``momentum_buffer`` when
    ``momentum > 0`` and ``grad_avg`` when ``centered`` (torch's names).
    """

    _state_arrays = ("square_avg",)
    _optional_arrays = ("momentum_buffer", "grad_avg")
    _state_ints = ("step",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params)
        self._configure(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)

    def _configure(self, lr, alpha, eps, weight_decay, momentum, centered):
        lr = finite_number(lr, "lr", "RMSprop", minimum=0.0)
        alpha = finite_number(alpha, "alpha", "RMSprop", minimum=0.0, maximum=1.0)
        eps = finite_number(eps, "eps", "RMSprop", minimum=0.0)
        weight_decay = finite_number(weight_decay, "weight_decay", "RMSprop", minimum=0.0)
        momentum = finite_number(momentum, "momentum", "RMSprop", minimum=0.0)
        centered = _flag(centered, "centered", "RMSprop")
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.weight_decay, self.momentum, self.centered = weight_decay, momentum, centered

    def get_config(self):
        return {
            "lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
            "momentum": self.momentum, "centered": self.centered,
        }

    def _update(self, p, state):
        self._init_state(p, state, square_avg=0.0)
        # A loaded state, or a config changed after the first step, may lack the optional buffers.
        if self.momentum > 0.0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p.data, order="C")
        if self.centered and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(p.data, order="C")
        state["step"] += 1
        g = self._l2_grad(p)
        v, rho = state["square_avg"], 1.0 - self.alpha
        work = self._scratch(p, 1)
        np.multiply(g, g, out=work)
        work *= rho
        v *= self.alpha
        v += work
        if self.centered:
            a = state["grad_avg"]
            np.subtract(g, a, out=work)
            work *= rho
            a += work
            np.multiply(a, a, out=work)
            np.subtract(v, work, out=work)
            np.maximum(work, 0.0, out=work)
            np.sqrt(work, out=work)
        else:
            np.sqrt(v, out=work)
        work += self.eps
        np.divide(g, work, out=work)  # g / d
        if self.momentum > 0.0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += work
            np.multiply(buf, self.lr, out=work)
        else:
            work *= self.lr
        p.data -= work


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad``.

    Per parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                     # L2, if weight_decay != 0
        s = s + g**2                                 # sum, starts at initial_accumulator_value
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Args:
        params: iterable of ``Parameter``.
        lr: >= 0 (default 1e-2). lr_decay: >= 0. weight_decay: >= 0.
        initial_accumulator_value: >= 0. eps: >= 0 (default 1e-10).

    State per parameter: ``step`` and ``sum`` (torch's names).
    """

    _state_arrays = ("sum",)
    _state_ints = ("step",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params)
        self._configure(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps,
        )

    def _configure(self, lr, lr_decay, weight_decay, initial_accumulator_value, eps):
        lr = finite_number(lr, "lr", "Adagrad", minimum=0.0)
        lr_decay = finite_number(lr_decay, "lr_decay", "Adagrad", minimum=0.0)
        weight_decay = finite_number(weight_decay, "weight_decay", "Adagrad", minimum=0.0)
        initial = finite_number(initial_accumulator_value, "initial_accumulator_value", "Adagrad", minimum=0.0)
        eps = finite_number(eps, "eps", "Adagrad", minimum=0.0)
        self.lr, self.lr_decay, self.weight_decay = lr, lr_decay, weight_decay
        self.initial_accumulator_value, self.eps = initial, eps

    def get_config(self):
        return {
            "lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps,
        }

    def _update(self, p, state):
        self._init_state(p, state, sum=self.initial_accumulator_value)
        state["step"] += 1
        clr = self.lr / (1.0 + (state["step"] - 1) * self.lr_decay)
        g = self._l2_grad(p)
        s = state["sum"]
        work = self._scratch(p, 1)
        np.multiply(g, g, out=work)
        s += work
        np.sqrt(s, out=work)
        work += self.eps
        np.divide(g, work, out=work)
        work *= clr
        p.data -= work
