"""Adam and AdamW, as ``torch.optim.Adam`` and ``torch.optim.AdamW``."""

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .._checks import finite_number
from .flat import FlatState
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and L2 weight decay, as ``torch.optim.Adam``.

    Per parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                     # L2 on the gradient (AdamW decays p instead)
        m = beta1 * m + (1 - beta1) * g              # computed as m += (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``m`` and ``v`` start at zero.

    Args:
        params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
        lr: learning rate, finite >= 0; default 1e-3.
        betas: pair ``(beta1, beta2)``, each in ``[0, 1)``; default ``(0.9, 0.999)``.
        eps: finite >= 0, added to the root; default 1e-8.
        weight_decay: finite >= 0, the L2 coefficient added to the gradient; default 0.

    Raises:
        TypeError: ``params`` is not an ordered iterable of ``Parameter`` (a set, a
            mapping, a lone ``Parameter``), or a hyperparameter is not a number or ``betas`` is not a pair.
        ValueError: ``params`` is empty or holds a parameter twice, or a hyperparameter
            is out of its range (``betas`` not of 2 values, a beta >= 1).

    State per parameter: ``step``, ``exp_avg`` (m) and ``exp_avg_sq`` (v), torch's names.
    """

    non_negative_state = ("exp_avg_sq",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self._flat = FlatState(("exp_avg", "exp_avg_sq"))  # step's fast path

    def check_defaults(self, defaults):
        owner = type(self).__name__
        d = super().check_defaults(defaults)
        betas = d["betas"]
        if isinstance(betas, (str, Mapping)) or not isinstance(betas, Iterable):
            raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r} ({type(betas).__name__})")
        betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {len(betas)} values {betas!r}")
        d["betas"] = tuple(finite_number(b, f"betas[{i}]", owner, minimum=0.0) for i, b in enumerate(betas))
        for i, b in enumerate(d["betas"]):
            if b >= 1.0:
                raise ValueError(f"{owner}: betas[{i}] must be in [0, 1), got {b}")
        d["eps"] = finite_number(d["eps"], "eps", owner, minimum=0.0)
        d["weight_decay"] = finite_number(d["weight_decay"], "weight_decay", owner, minimum=0.0)
        return d

    def update(self, param, grad, state):
        weight_decay = self.defaults["weight_decay"]
        if weight_decay != 0:
            grad = grad + weight_decay * param       # L2: the decay goes through the moments
        self._adam_step(param, grad, state)

    def _adam_step(self, param, grad, state):
        """Adam's step of ``param`` from ``grad``, weight decay already applied."""
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        param -= self._direction(grad, state["exp_avg"], state["exp_avg_sq"], state["step"], np.empty_like(param))

    def _direction(self, grad, m, v, t, out):
        """Update the moments ``m`` and ``v`` in place from ``grad`` at step ``t``; return the step
        ``lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)`` in ``out`` (each line
        is one in-place call)."""
        lr, (beta1, beta2), eps = self.defaults["lr"], self.defaults["betas"], self.defaults["eps"]
        np.subtract(grad, m, out=out)
        out *= 1 - beta1
        m += out                                     # m = beta1 * m + (1 - beta1) * g (torch's lerp)
        v *= beta2
        np.multiply(grad, grad, out=out)
        out *= 1 - beta2
        v += out                                     # v = beta2 * v + (1 - beta2) * g**2
        denom = np.sqrt(v, out=out)
        denom /= math.sqrt(1 - beta2**t)             # the bias corrections of v ...
        denom += eps
        np.divide(m, denom, out=out)
        out *= lr / (1 - beta1**t)                   # ... and of m
        return out

    def step(self):
        """Update every parameter in place from its current ``grad``.

        The fast path: with one dtype and one step count for all parameters, and ``update``
        not overridden, the arithmetic runs once over all of them (``flat.FlatState``; the
        same numbers as ``update`` parameter by parameter, a fifth of the numpy calls).
        """
        flat_ok = type(self).update is Adam.update and type(self)._adam_step is Adam._adam_step
        if flat_ok and self._flat_step():
            return
        super().step()

    def _flat_step(self):
        """The fast path of ``step``; returns False, having changed nothing, when it does not apply."""
        flat = self._flat
        t = flat.bind(self.params, self.state)
        if t is None:
            return False
        grad = flat.gather([p.grad for p in self.params])
        weight_decay = self.defaults["weight_decay"]
        if weight_decay != 0:
            grad += weight_decay * flat.gather([p.data for p in self.params])
        t += 1
        for p in self.params:
            self.state[p]["step"] = t
        direction = self._direction(grad, flat.flat["exp_avg"], flat.flat["exp_avg_sq"], t, np.empty_like(grad))
        for p, piece in zip(self.params, flat.pieces(direction, self.params)):
            p.data -= piece
        return True


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    The same update as ``Adam`` with ``weight_decay = 0``, after the parameter itself
    has been shrunk::

        p = p * (1 - lr * weight_decay)              # decoupled: not part of g, m or v
        (then Adam's step with the raw gradient g)

    Args:
        params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
        lr: learning rate, finite >= 0; default 1e-3.
        betas: pair ``(beta1, beta2)``, each in ``[0, 1)``; default ``(0.9, 0.999)``.
        eps: finite >= 0, added to the root; default 1e-8.
        weight_decay: finite >= 0, the decoupled decay; default 1e-2 (torch's).

    Raises:
        TypeError: ``params`` is not an ordered iterable of ``Parameter`` (a set, a
            mapping, a lone ``Parameter``), or a hyperparameter is not a number or ``betas`` is not a pair.
        ValueError: ``params`` is empty or holds a parameter twice, or a hyperparameter
            is out of its range (``betas`` not of 2 values, a beta >= 1).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, param, grad, state):
        lr, weight_decay = (self.defaults[k] for k in ("lr", "weight_decay"))
        if weight_decay != 0:
            param *= 1 - lr * weight_decay
        self._adam_step(param, grad, state)
