"""Gradient clippers: called on parameters between ``backward`` and ``Optimizer.step``.

``clipper(params) -> total_norm`` modifies each ``Parameter.grad`` in place and
returns the L2 norm of all gradients together *before* clipping,
``sqrt(sum_p sum_i grad_p[i]**2)``, accumulated in float64 whatever the
gradients' dtype (useful for logging and for spotting exploding gradients).

A new clipper subclasses ``GradientClipper`` and implements the public
``clip(params) -> float``: it receives a validated list of distinct parameters,
changes their ``grad`` in place and returns the total norm before clipping
(``total_grad_norm`` computes it).
"""

import math

import numpy as np

from .._checks import finite_number, flag
from .optimizer import parameter_list


def total_grad_norm(params):
    """L2 norm of the gradients of ``params`` taken together, as a float (float64 accumulation)."""
    grads = [p.grad for p in parameter_list(params, "total_grad_norm", allow_empty=True, allow_single=True)]
    return _total_norm(grads)


def _total_norm(grads):
    sum_sq = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for g in grads:
            flat = g.reshape(-1).astype(np.float64, copy=False)
            sum_sq += float(np.dot(flat, flat))
    total = math.sqrt(sum_sq)  # inf and nan pass through
    if math.isinf(total) and all(np.isfinite(g).all() for g in grads):
        # Squares of float64 entries above ~1e154 overflow although the norm may not:
        # recompute with every entry divided by the largest magnitude.
        largest = max(float(np.max(np.abs(g))) for g in grads if g.size)
        scaled = sum(float(np.sum(np.square(g / largest, dtype=np.float64))) for g in grads)
        total = largest * math.sqrt(scaled)
    return total


class GradientClipper:
    """Base class of gradient clippers.

    ``clipper(params) -> float``: ``params`` is an iterable of distinct ``Parameter``
    (``model.parameters()``) or a single one; an empty list gives 0.0. Returns the
    total L2 norm of the gradients before clipping. ``__call__`` validates ``params``
    and calls ``clip``, which a subclass implements.
    """

    def __call__(self, params):
        return self.clip(parameter_list(params, type(self).__name__, allow_empty=True, allow_single=True))

    def clip(self, params):
        """Clip the ``grad`` of each of ``params`` in place; a subclass implements it.

        Args:
            params: list of distinct ``Parameter`` (``__call__`` has validated it).

        Returns:
            The total L2 norm of their gradients before clipping, a float.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement clip(params)")

    def get_config(self):
        """Constructor arguments as JSON-able values."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ClipByValue(GradientClipper):
    """Clamp every gradient element to ``[-clip_value, clip_value]``.

    Args:
        clip_value: finite float > 0, the bound of every element. NaN gradient entries
            stay NaN.

    Raises:
        TypeError: ``clip_value`` is not a real number.
        ValueError: ``clip_value`` is not finite or not > 0.
    """

    def __init__(self, clip_value):
        self.clip_value = finite_number(clip_value, "clip_value", "ClipByValue", minimum=0.0, min_open=True)

    def get_config(self):
        return {"clip_value": self.clip_value}

    def clip(self, params):
        total = _total_norm([p.grad for p in params])
        for p in params:
            np.clip(p.grad, -self.clip_value, self.clip_value, out=p.grad)
        return total


class ClipByGlobalNorm(GradientClipper):
    """Rescale all gradients together when their total L2 norm reaches ``max_norm``.

    Exactly ``torch.nn.utils.clip_grad_norm_``: with ``n`` the total norm, every
    gradient is multiplied by ``min(1, max_norm / (n + 1e-6))``. The factor is below 1
    whenever ``n > max_norm - 1e-6``, so a norm just under ``max_norm`` (in the band
    ``max_norm - 1e-6 < n <= max_norm``) is scaled too, by a factor within about
    ``1e-6 / max_norm`` of 1; a smaller norm leaves the gradients as they are.
    The direction is kept and the norm ends just under ``max_norm``.

    A non-finite total norm (a NaN or inf gradient) cannot be rescaled meaningfully:
    with ``error_if_nonfinite=True`` it raises ``FloatingPointError`` naming the norm
    and the first offending parameter; with ``False`` (the default) the gradients
    are left untouched and the non-finite norm is returned, so the caller can skip
    the step. Unlike ``clip_grad_norm_``, the gradients never become all-NaN here.

    Args:
        max_norm: finite float > 0, the largest total norm left unscaled.
        error_if_nonfinite: bool, raise ``FloatingPointError`` on a non-finite total
            norm instead of returning it; default False.

    Raises:
        TypeError: ``max_norm`` is not a real number, or ``error_if_nonfinite`` not a bool.
        ValueError: ``max_norm`` is not finite or not > 0.
    """

    def __init__(self, max_norm, error_if_nonfinite=False):
        self.max_norm = finite_number(max_norm, "max_norm", "ClipByGlobalNorm", minimum=0.0, min_open=True)
        self.error_if_nonfinite = flag(error_if_nonfinite, "error_if_nonfinite", "ClipByGlobalNorm")

    def get_config(self):
        return {"max_norm": self.max_norm, "error_if_nonfinite": self.error_if_nonfinite}

    def clip(self, params):
        total = _total_norm([p.grad for p in params])
        if not math.isfinite(total):
            if self.error_if_nonfinite:
                bad = [(i, p.name) for i, p in enumerate(params) if not np.isfinite(p.grad).all()]
                where = (
                    f"first non-finite gradient in params[{bad[0][0]}] ({bad[0][1]!r})"
                    if bad
                    else "the gradients are finite but their norm overflows float64"
                )
                raise FloatingPointError(
                    f"ClipByGlobalNorm: the total norm of the gradients is {total} (non-finite); {where}"
                )
            return total
        scale = self.max_norm / (total + 1e-6)
        if scale < 1.0:
            for p in params:
                p.grad *= scale
        return total
