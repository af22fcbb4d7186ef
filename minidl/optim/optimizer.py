"""Optimizers with ``torch.optim``'s update rules, updating ``Parameter.data`` in place.

An optimizer is built on a list of parameters (``model.parameters()``) and keeps
its per-parameter state (momentum buffers, moment estimates) in ``self.state``,
a dict keyed by the ``Parameter`` object itself. ``state_dict()`` refers to a
parameter by its index in that list and holds only numpy arrays and JSON-able
scalars, so it can be saved as ``.npz`` + JSON (never pickle)::

    {"type": "Adam",
     "config": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
     "state": [{"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray},   # params[0]
               {}, ...]}                                                  # no step yet

New optimizers subclass ``Optimizer``: list their per-parameter state in
``_state_arrays`` (arrays shaped like the parameter, always present once the
parameter has stepped), ``_optional_arrays`` (present only in some
configurations, e.g. a momentum buffer) and ``_state_ints`` (counters),
implement ``_configure(**hyperparameters)`` (validate everything, then set),
``get_config()`` and ``_update(p, state)``. The base class provides the shared
pieces: ``_init_state`` (first-step state), ``_l2_grad`` (the gradient with L2
weight decay added) and ``_scratch`` (reusable work arrays).
More optimizers (RMSprop, Adagrad) are in ``optimizers_extra.py``.

One difference from PyTorch: ``zero_grad`` zeroes gradients instead of setting
them to ``None``, so every parameter takes part in every ``step`` (a parameter
without gradient still moves under momentum or Adam's moments).
"""

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from .._checks import finite_number, fmt_shape
from ..parameter import Parameter


def parameter_list(params, owner, allow_empty=False, allow_single=False):
    """Return ``params`` as a list of distinct ``Parameter`` objects, or raise.

    ``TypeError`` for a non-iterable, a set or mapping (no defined order) or an item
    that is not a ``Parameter``; ``ValueError`` for a duplicate, or for an empty list
    unless ``allow_empty``. With ``allow_single`` a lone ``Parameter`` is accepted.
    """
    if isinstance(params, Parameter):
        if allow_single:
            return [params]
        raise TypeError(f"{owner}: params must be an iterable of Parameter (e.g. model.parameters()), got a Parameter")
    if isinstance(params, (set, frozenset, Mapping)) or not isinstance(params, Iterable) or isinstance(params, str):
        kind = "an unordered set" if isinstance(params, (set, frozenset)) else type(params).__name__
        raise TypeError(
            f"{owner}: params must be an ordered iterable of Parameter (e.g. model.parameters()), got {kind}"
        )
    params = list(params)
    seen = {}
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: params[{i}] must be a Parameter, got {type(p).__name__}")
        if id(p) in seen:
            raise ValueError(
                f"{owner}: params[{i}] is the same Parameter as params[{seen[id(p)]}] ({p.name!r}); "
                "each parameter may appear only once"
            )
        seen[id(p)] = i
    if not params and not allow_empty:
        raise ValueError(f"{owner}: params is empty; expected at least one Parameter")
    return params


def _flag(value, name, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {value!r} ({type(value).__name__})")
    return bool(value)


class Optimizer:
    """Base class of optimizers.

    Attributes:
        params: list of ``Parameter``, in the order given.
        state: dict ``Parameter -> dict`` of per-parameter state, created at the first step.
        lr: learning rate (float >= 0); may be changed between steps (schedulers).
    """

    _state_arrays = ()
    _optional_arrays = ()
    _state_ints = ()

    def __init__(self, params):
        self.params = parameter_list(params, type(self).__name__)
        self.state = {}
        self._work = {}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = finite_number(value, "lr", type(self).__name__, minimum=0.0)

    # ---- the update --------------------------------------------------------------
    def step(self):
        """Update every parameter in place from its current ``grad``."""
        for p in self.params:
            self._update(p, self._param_state(p))

    def zero_grad(self):
        """Set the gradient of every parameter to zero (in place)."""
        for p in self.params:
            p.zero_grad()

    def _update(self, p, state):
        raise NotImplementedError(f"{type(self).__name__} does not implement _update")

    def _param_state(self, p):
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {}
        # Follow a parameter converted with Layer.astype after the optimizer was built.
        for key in self._state_arrays + self._optional_arrays:
            if key in state and state[key].dtype != p.data.dtype:
                state[key] = state[key].astype(p.data.dtype)
        return state

    def _init_state(self, p, state, **fills):
        """Fill an empty ``state`` at the first step: counters at 0, ``key=value`` arrays like ``p``."""
        if not state:
            state.update({key: 0 for key in self._state_ints})
            state.update({key: np.full_like(p.data, value, order="C") for key, value in fills.items()})
        return state

    def _l2_grad(self, p):
        """``p.grad + weight_decay * p`` (in scratch slot 0), or ``p.grad`` itself without decay."""
        if self.weight_decay == 0.0:
            return p.grad
        decayed = self._scratch(p, 0)
        np.multiply(p.data, self.weight_decay, out=decayed)
        decayed += p.grad
        return decayed

    def _scratch(self, p, slot):
        """A work array shaped like ``p`` in its dtype, shared by all parameters and steps (never saved)."""
        key = (p.data.dtype, slot)
        buf = self._work.get(key)
        if buf is None or buf.size < p.data.size:
            size = max(q.data.size for q in self.params if q.data.dtype == p.data.dtype)
            buf = self._work[key] = np.empty(size, dtype=p.data.dtype)
        return buf[: p.data.size].reshape(p.data.shape)

    # ---- configuration and state ---------------------------------------------------
    def _configure(self, **hyperparameters):
        raise NotImplementedError(f"{type(self).__name__} does not implement _configure")

    def get_config(self):
        """Hyperparameters (without params) as JSON-able values."""
        return {"lr": self.lr}

    def state_dict(self):
        """``{"type", "config", "state"}``: hyperparameters and a copy of the state of each parameter.

        ``state[i]`` belongs to ``params[i]``; it is ``{}`` until that parameter's first step.
        """
        state = []
        for p in self.params:
            own = self.state.get(p, {})
            entry = {key: own[key].copy() for key in self._state_arrays + self._optional_arrays if key in own}
            entry.update({key: int(own[key]) for key in self._state_ints if key in own})
            state.append(entry)
        return {"type": type(self).__name__, "config": self.get_config(), "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state from ``state_dict()`` output (arrays are copied).

        The parameters must be the same number, order and shapes as when it was saved;
        anything else is a ``ValueError`` and leaves the optimizer unchanged.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}: expected a mapping, got {type(state_dict).__name__}")
        _check_keys(state_dict, {"type", "config", "state"}, "state_dict", owner)
        if state_dict["type"] != type(self).__name__:
            raise ValueError(
                f"{owner}: the state is for a {state_dict['type']!r} optimizer, not {type(self).__name__!r}"
            )
        config = state_dict["config"]
        if not isinstance(config, Mapping):
            raise TypeError(f"{owner}: 'config' must be a mapping, got {type(config).__name__}")
        _check_keys(config, set(self.get_config()), "config", owner)
        entries = state_dict["state"]
        if not isinstance(entries, (list, tuple)):
            raise TypeError(f"{owner}: 'state' must be a list, got {type(entries).__name__}")
        if len(entries) != len(self.params):
            raise ValueError(
                f"{owner}: 'state' has {len(entries)} entries but the optimizer has {len(self.params)} parameters"
            )
        new_state = {p: self._load_entry(i, p, entry, owner) for i, (p, entry) in enumerate(zip(self.params, entries))}
        # _configure validates every value before setting any; only then is the state replaced.
        self._configure(**config)
        self.state = new_state

    def _load_entry(self, i, p, entry, owner):
        if not isinstance(entry, Mapping):
            raise TypeError(f"{owner}: state[{i}] must be a mapping, got {type(entry).__name__}")
        if not entry:
            return {}
        _check_keys(
            entry, set(self._state_arrays) | set(self._state_ints), f"state[{i}]", owner,
            optional=set(self._optional_arrays),
        )
        out = {}
        for key in self._state_arrays + tuple(k for k in self._optional_arrays if k in entry):
            value = np.asarray(entry[key])
            if value.dtype.kind not in "biuf":
                raise TypeError(f"{owner}: state[{i}][{key!r}] must be a real array, got dtype {value.dtype}")
            if value.shape != p.data.shape:
                raise ValueError(
                    f"{owner}: state[{i}][{key!r}] has shape {fmt_shape(value.shape)}, but params[{i}] "
                    f"({p.name!r}) has shape {fmt_shape(p.data.shape)}"
                )
            out[key] = np.array(value, dtype=p.data.dtype, order="C", copy=True)
        for key in self._state_ints:
            value = entry[key]
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{owner}: state[{i}][{key!r}] must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"{owner}: state[{i}][{key!r}] must be >= 0, got {value}")
            out[key] = int(value)
        return out

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def _check_keys(mapping, expected, what, owner, optional=frozenset()):
    missing = sorted(expected - set(mapping))
    extra = sorted(map(str, set(mapping) - expected - optional))
    if missing or extra:
        raise ValueError(f"{owner}: {what} has missing keys {missing} and unexpected keys {extra}")


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
        params: iterable of ``Parameter``.
        lr: learning rate, >= 0 (required).
        momentum: >= 0. nesterov: bool, needs momentum > 0. weight_decay: >= 0.
    """

    _state_arrays = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params)
        self._configure(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)

    def _configure(self, lr, momentum, nesterov, weight_decay):
        lr = finite_number(lr, "lr", "SGD", minimum=0.0)
        momentum = finite_number(momentum, "momentum", "SGD", minimum=0.0)
        nesterov = _flag(nesterov, "nesterov", "SGD")
        weight_decay = finite_number(weight_decay, "weight_decay", "SGD", minimum=0.0)
        if nesterov and momentum <= 0.0:
            raise ValueError(f"SGD: nesterov=True requires momentum > 0, got momentum={momentum}")
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _update(self, p, state):
        g = self._l2_grad(p)
        if self.momentum != 0.0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, order="C", copy=True)
            else:
                buf *= self.momentum
                buf += g
            if self.nesterov:
                ahead = self._scratch(p, 1)
                np.multiply(buf, self.momentum, out=ahead)
                ahead += g
                g = ahead
            else:
                g = buf
        delta = self._scratch(p, 1)  # may be g itself (nesterov): elementwise in place is safe
        np.multiply(g, self.lr, out=delta)
        p.data -= delta


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and L2 weight decay, as ``torch.optim.Adam``.

    Per parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p                     # L2 on the gradient (AdamW decays p instead)
        m = beta1 * m + (1 - beta1) * g              # computed as m += (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g**2
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``m`` and ``v`` start at zero. Args: ``lr >= 0``, ``betas = (beta1, beta2)`` each in
    ``[0, 1)``, ``eps >= 0``, ``weight_decay >= 0``.
    """

    _state_arrays = ("exp_avg", "exp_avg_sq")
    _state_ints = ("step",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self._configure(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _configure(self, lr, betas, eps, weight_decay):
        owner = type(self).__name__
        lr = finite_number(lr, "lr", owner, minimum=0.0)
        if isinstance(betas, (str, Mapping)) or not isinstance(betas, Iterable):
            raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r} ({type(betas).__name__})")
        betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {len(betas)} values {betas!r}")
        betas = tuple(finite_number(b, f"betas[{i}]", owner, minimum=0.0) for i, b in enumerate(betas))
        for i, b in enumerate(betas):
            if b >= 1.0:
                raise ValueError(f"{owner}: betas[{i}] must be in [0, 1), got {b}")
        eps = finite_number(eps, "eps", owner, minimum=0.0)
        weight_decay = finite_number(weight_decay, "weight_decay", owner, minimum=0.0)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay

    def get_config(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def _decay(self, p):
        """Apply weight decay; return the gradient the moments see. Adam: L2 on the gradient."""
        return self._l2_grad(p)

    def _update(self, p, state):
        beta1, beta2 = self.betas
        self._init_state(p, state, exp_avg=0.0, exp_avg_sq=0.0)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        g = self._decay(p)
        work = self._scratch(p, 1)
        np.subtract(g, m, out=work)
        work *= 1.0 - beta1
        m += work
        np.multiply(g, g, out=work)
        work *= 1.0 - beta2
        v *= beta2
        v += work
        step_size = self.lr / (1.0 - beta1**t)
        np.sqrt(v, out=work)
        work /= math.sqrt(1.0 - beta2**t)
        work += self.eps
        np.divide(m, work, out=work)
        work *= step_size
        p.data -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    The same update as ``Adam`` with ``weight_decay = 0``, after the parameter itself
    has been shrunk::

        p = p * (1 - lr * weight_decay)              # decoupled: not part of g, m or v
        (then Adam's step with the raw gradient g)

    Args as ``Adam``; the default ``weight_decay`` is ``1e-2`` (torch's).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _decay(self, p):
        if self.weight_decay != 0.0:
            p.data *= 1.0 - self.lr * self.weight_decay
        return p.grad
