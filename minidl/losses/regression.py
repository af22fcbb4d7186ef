"""Regression losses on real-valued targets of pred's shape: MSELoss, L1Loss, HuberLoss.

Each is ``reduce`` of an elementwise term and ``reduce_grad`` of its derivative (see
``loss.py``): the mean over the real entries of a mask, or the sum.
"""

import numpy as np

from .._checks import finite_number, one_of
from .loss import Loss


class MSELoss(Loss):
    """Mean squared error over all (real) elements.

    pred, target: any shape, equal (e.g. ``(batch, time, out)``); ``N`` the number of real elements::

        L = sum((pred - target)**2) / N        dL/dpred = 2 * (pred - target) / N
    """

    takes_class_indices = False  # real-valued targets: the trainer converts integers to floats

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        self._diff = pred - target
        return self.reduce(np.square(self._diff), self._mask)

    def backward(self):
        return 2.0 * self.reduce_grad(self._diff, self._mask)  # scaled first: no overflow of 2 * diff


class L1Loss(Loss):
    """Mean absolute error, as ``torch.nn.L1Loss``.

    pred, target: any shape, equal. ``L = mean(|pred - target|)`` (or the sum with
    ``reduction="sum"``); ``dL/dpred = sign(pred - target) / N`` with ``sign(0) = 0``
    (the subgradient torch uses).

    Args:
        reduction: ``"mean"`` (the default: over the real elements) or ``"sum"``.

    Raises:
        ValueError: ``reduction`` is not ``"mean"`` or ``"sum"``.
    """

    takes_class_indices = False

    def __init__(self, reduction="mean"):
        self.reduction = one_of(reduction, ("mean", "sum"), "reduction", "L1Loss")

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        self._diff = pred - target
        return self.reduce(np.abs(self._diff), self._mask)

    def backward(self):
        return self.reduce_grad(np.sign(self._diff), self._mask)

    def get_config(self):
        return {"reduction": self.reduction}


class HuberLoss(Loss):
    """Huber loss, as ``torch.nn.HuberLoss``: quadratic near zero, linear beyond ``delta``.

    pred, target: any shape, equal; ``d = pred - target``::

        term = 0.5 * d**2                    if |d| <= delta
             = delta * (|d| - 0.5 * delta)   otherwise
        d term / d pred = clip(d, -delta, delta)

    ``L`` is the mean of the terms (or their sum with ``reduction="sum"``).

    Args:
        delta: finite float > 0, where the quadratic becomes linear; default 1.0.
        reduction: ``"mean"`` (the default: over the real elements) or ``"sum"``.

    Raises:
        TypeError: ``delta`` is not a real number.
        ValueError: ``delta`` is not finite or not > 0, or ``reduction`` is not
            ``"mean"`` or ``"sum"``.
    """

    takes_class_indices = False

    def __init__(self, delta=1.0, reduction="mean"):
        self.delta = finite_number(delta, "delta", "HuberLoss", minimum=0.0, min_open=True)
        self.reduction = one_of(reduction, ("mean", "sum"), "reduction", "HuberLoss")

    def forward(self, pred, target, mask=None):
        pred, target, self._mask = self.prepare(pred, target, mask)
        d = self._diff = pred - target
        a = np.abs(d)
        return self.reduce(np.where(a <= self.delta, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)), self._mask)

    def backward(self):
        return self.reduce_grad(np.clip(self._diff, -self.delta, self.delta), self._mask)

    def get_config(self):
        return {"delta": self.delta, "reduction": self.reduction}
