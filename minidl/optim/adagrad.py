"""Adagrad: step sizes scaled per coordinate by the sum of all squared gradients."""

import numpy as np

from .._checks import finite_number
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as ``torch.optim.Adagrad``.

    Per parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                     # L2, if weight_decay != 0
        s = s + g**2                                 # sum, starts at initial_accumulator_value
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    Args:
        params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
        lr: learning rate, finite >= 0; default 1e-2.
        lr_decay: finite >= 0, the step size's decay per step; default 0.
        weight_decay: finite >= 0, the L2 coefficient; default 0.
        initial_accumulator_value: finite >= 0, where ``s`` starts; default 0.
        eps: finite >= 0, added to ``sqrt(s)``; default 1e-10.

    Raises:
        TypeError: ``params`` is not an ordered iterable of ``Parameter`` (a set, a
            mapping, a lone ``Parameter``), or a hyperparameter is not a number.
        ValueError: ``params`` is empty or holds a parameter twice, or a hyperparameter
            is out of its range.

    State per parameter: ``step`` and ``sum`` (torch's names).
    """

    non_negative_state = ("sum",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    def check_defaults(self, defaults):
        owner = type(self).__name__
        d = super().check_defaults(defaults)
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            d[name] = finite_number(d[name], name, owner, minimum=0.0)
        return d

    def update(self, param, grad, state):
        lr, lr_decay, weight_decay, eps = (self.defaults[k] for k in ("lr", "lr_decay", "weight_decay", "eps"))
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, self.defaults["initial_accumulator_value"])
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * param
        clr = lr / (1 + (state["step"] - 1) * lr_decay)
        s = state["sum"]
        s += grad * grad
        param -= clr * (grad / (np.sqrt(s) + eps))
