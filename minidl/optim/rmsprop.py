"""RMSprop: step sizes scaled per coordinate by a moving average of squared gradients."""

import numpy as np

from .._checks import finite_number, flag
from .optimizer import Optimizer


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
        params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
        lr: learning rate, finite >= 0; default 1e-2.
        alpha: smoothing constant in [0, 1]; default 0.99.
        eps: finite >= 0, added to the root outside the square root; default 1e-8.
        weight_decay: finite >= 0, the L2 coefficient; default 0.
        momentum: finite >= 0; default 0 (no momentum buffer).
        centered: bool, divide by the estimated standard deviation; default False.

    Raises:
        TypeError: ``params`` is not an ordered iterable of ``Parameter`` (a set, a
            mapping, a lone ``Parameter``), or a hyperparameter is not a number (``centered`` not a bool).
        ValueError: ``params`` is empty or holds a parameter twice, or a hyperparameter
            is out of its range.

    State per parameter: ``step``, ``square_avg``, plus ``momentum_buffer`` when
    ``momentum > 0`` and ``grad_avg`` when ``centered`` (torch's names). Those two start
    at zero whenever they are missing, so momentum or centering may be switched on
    after some steps (or in a loaded state).
    """

    optional_state = ("momentum_buffer", "grad_avg")
    non_negative_state = ("square_avg",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                         centered=centered)

    def check_defaults(self, defaults):
        owner = type(self).__name__
        d = super().check_defaults(defaults)
        d["alpha"] = finite_number(d["alpha"], "alpha", owner, minimum=0.0, maximum=1.0)
        for name in ("eps", "weight_decay", "momentum"):
            d[name] = finite_number(d[name], name, owner, minimum=0.0)
        d["centered"] = flag(d["centered"], "centered", owner)
        return d

    def update(self, param, grad, state):
        lr, alpha, eps, weight_decay, momentum, centered = (
            self.defaults[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"))
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(param)
        if centered and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * param
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * (grad * grad)
        if centered:
            a = state["grad_avg"]
            a += (1 - alpha) * (grad - a)
            denom = np.sqrt(np.maximum(v - a * a, 0.0)) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / denom
            param -= lr * buf
        else:
            param -= lr * (grad / denom)
