"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``."""

from .._checks import finite_number, flag
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    Per parameter ``p`` with gradient ``g`` (as ``torch.optim.SGD`` with ``dampening=0``)::

        g = g + weight_decay * p                     # if weight_decay != 0
        if momentum != 0:
            b = g            at the first step       # momentum buffer
            b = momentum * b + g   afterwards
            g = g + momentum * b   if nesterov else  b
        p = p - lr * g

    Args:
        params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
        lr: learning rate, finite >= 0 (required).
        momentum: finite >= 0; default 0 (plain SGD).
        nesterov: bool, Nesterov momentum; needs ``momentum > 0``; default False.
        weight_decay: finite >= 0, the L2 coefficient; default 0.

    Raises:
        TypeError: ``params`` is not an ordered iterable of ``Parameter`` (a set, a
            mapping, a lone ``Parameter``), or a hyperparameter is not a number (``nesterov`` not a bool).
        ValueError: ``params`` is empty or holds a parameter twice, or a hyperparameter
            is out of its range, or ``nesterov=True`` with ``momentum == 0``.

    State per parameter: ``momentum_buffer`` when ``momentum > 0`` (torch's name).
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def check_defaults(self, defaults):
        owner = type(self).__name__
        d = super().check_defaults(defaults)
        d["momentum"] = finite_number(d["momentum"], "momentum", owner, minimum=0.0)
        d["nesterov"] = flag(d["nesterov"], "nesterov", owner)
        d["weight_decay"] = finite_number(d["weight_decay"], "weight_decay", owner, minimum=0.0)
        if d["nesterov"] and d["momentum"] <= 0.0:
            raise ValueError(f"{owner}: nesterov=True requires momentum > 0, got momentum={d['momentum']}")
        return d

    def update(self, param, grad, state):
        lr, momentum, nesterov, weight_decay = (
            self.defaults[k] for k in ("lr", "momentum", "nesterov", "weight_decay"))
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()  # torch's first buffer: the gradient itself
            else:
                buf *= momentum
                buf += grad
            grad = grad + momentum * buf if nesterov else buf
        param -= lr * grad
