"""The optimizer base: hyperparameters in ``defaults``, one state dict per parameter, generic saving.

An optimizer is built on a list of parameters (``model.parameters()``). A subclass
passes its hyperparameters to ``Optimizer.__init__``, which validates them with
``check_defaults`` and keeps them in the dict ``self.defaults``, and implements
``update(param, grad, state)``: the rule for one parameter, in place::

    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, lr=lr)

        def update(self, param, grad, state):
            param -= self.defaults["lr"] * np.sign(grad)

``step()`` calls ``update`` for every parameter with its ``data`` (to change in place),
its ``grad`` (to read) and its own ``state`` dict, empty at its first step, kept in
``self.state`` keyed by the ``Parameter`` object. Floating state arrays stay in their
parameter's dtype (they follow a ``Layer.astype``).

``state_dict()`` holds the hyperparameters and a copy of every parameter's state
(``state[i]`` for ``params[i]``), nothing but arrays, numbers, strings and None, so it
saves as npz + JSON (never pickle)::

    {"type": "Adam",
     "config": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
     "state": [{"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray},   # params[0]
               {}, ...]}                                                  # not stepped yet

``load_state_dict`` validates the hyperparameters with ``check_defaults`` and checks
each saved state against the one ``update`` builds at a first step (it runs ``update``
once on a scratch copy of the parameter): the same keys, arrays of the same shape,
ints where there are ints. Keys named in ``optional_state`` (buffers that ``update``
adds by itself when they are missing) may be absent; present, they are arrays shaped
like the parameter. Every value must also be one a step can make: counters are ints
in ``[0, 2**63)`` (a step count of ``10**400`` would overflow ``beta**t``), floating
values finite in the parameter's dtype, and the buffers named in ``non_negative_state``
(running squares, such as Adam's ``exp_avg_sq``) ``>= 0``. Nothing changes unless all
of it holds.

One difference from PyTorch: ``zero_grad`` zeroes gradients instead of setting
them to ``None``, so every parameter takes part in every ``step`` (a parameter
without gradient still moves under momentum or Adam's moments).
"""

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from .._checks import finite_number, flag, fmt_shape, non_negative_int, same_keys
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


class Optimizer:
    """Base class of optimizers.

    Subclass contract: pass the hyperparameters to ``super().__init__(params, lr=lr, ...)``
    and implement ``update(param, grad, state)``; override ``check_defaults`` to validate
    your own hyperparameters (call ``super().check_defaults`` first).

    Attributes:
        params: list of ``Parameter``, in the order given.
        defaults: dict of hyperparameters, ``lr`` first (numbers, bools, strings, None,
            arrays, or tuples of these: everything in it is saved by ``state_dict``).
        state: dict ``Parameter -> dict`` of per-parameter state, filled by ``update``.
        lr: ``defaults["lr"]``, validated when set (schedules set it between steps).
        optional_state: (class attribute) state keys a saved state may lack; see the module.
        non_negative_state: (class attribute) state keys whose values are never negative
            (running squares); ``load_state_dict`` refuses a negative one.
    """

    optional_state = ()
    non_negative_state = ()

    def __init__(self, params, lr, **hyperparameters):
        """Store the parameters and the validated hyperparameters (``check_defaults``).

        Args:
            params: iterable of distinct ``Parameter`` in a defined order (``model.parameters()``).
            lr: learning rate, finite >= 0.
            **hyperparameters: the subclass's own, stored in ``defaults`` after ``lr``.

        Raises:
            TypeError: ``params`` is not an ordered iterable of ``Parameter``, or a
                hyperparameter is not valid or not saveable.
            ValueError: ``params`` is empty or holds a parameter twice, or a
                hyperparameter is out of its range.
        """
        self.params = parameter_list(params, type(self).__name__)
        self.defaults = self._checked_defaults({"lr": lr, **hyperparameters})
        self.state = {}

    @property
    def lr(self):
        return self.defaults["lr"]

    @lr.setter
    def lr(self, value):
        self.defaults["lr"] = finite_number(value, "lr", type(self).__name__, minimum=0.0)

    def check_defaults(self, defaults):
        """Return the hyperparameters ``defaults`` validated, or raise ``TypeError``/``ValueError``.

        Called by ``__init__`` and by ``load_state_dict`` (which changes nothing when it
        raises). The base checks that ``lr`` is a finite number >= 0; a subclass checks
        its own on the result and may normalize them (``Adam`` makes ``betas`` a tuple
        of floats). Afterwards every value must be one that ``state_dict`` can save.

        Args:
            defaults: dict of the hyperparameters, ``lr`` included.

        Returns:
            The validated dict.

        Raises:
            TypeError: a hyperparameter of the wrong type.
            ValueError: a hyperparameter out of its range.
        """
        return {**defaults, "lr": finite_number(defaults["lr"], "lr", type(self).__name__, minimum=0.0)}

    def _checked_defaults(self, defaults):
        defaults = self.check_defaults(defaults)
        for name, value in defaults.items():
            _check_saveable(value, name, type(self).__name__)
        return defaults

    # ---- the update --------------------------------------------------------------
    def update(self, param, grad, state):
        """Change ``param`` in place from ``grad``; a subclass implements it.

        Args:
            param: ndarray, the parameter's data (update it in place).
            grad: ndarray of param's shape, its gradient (do not change it).
            state: dict, this parameter's state (``{}`` at its first step), filled here.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement update(param, grad, state)")

    def step(self):
        """Update every parameter in place from its current ``grad``."""
        for p in self.params:
            state = self.state.setdefault(p, {})
            for key, value in state.items():  # follow a parameter converted with Layer.astype
                if isinstance(value, np.ndarray) and value.dtype != p.data.dtype and value.dtype.kind == "f":
                    state[key] = value.astype(p.data.dtype)
            self.update(p.data, p.grad, state)

    def zero_grad(self):
        """Set the gradient of every parameter to zero (in place)."""
        for p in self.params:
            p.zero_grad()

    # ---- saving and loading ---------------------------------------------------------
    def get_config(self):
        """The hyperparameters as JSON-able values (tuples as lists; arrays copied)."""
        return {name: _plain(value) for name, value in self.defaults.items()}

    def state_dict(self):
        """``{"type", "config", "state"}``: the hyperparameters and a copy of each parameter's state.

        ``state[i]`` belongs to ``params[i]``; it is ``{}`` until that parameter's first step.

        Raises:
            TypeError: a state entry that is neither an array nor a number (a subclass's
                ``update`` stored something else).
        """
        owner = f"{type(self).__name__}.state_dict"
        state = []
        for i, p in enumerate(self.params):
            own = self.state.get(p, {})
            for key, value in own.items():
                if not isinstance(value, (np.ndarray, np.bool_, numbers.Real)):
                    raise TypeError(
                        f"{owner}: state[{i}][{key!r}] is a {type(value).__name__}; an optimizer's state "
                        "can hold only arrays and numbers"
                    )
            state.append({key: _plain(value) for key, value in own.items()})
        return {"type": type(self).__name__, "config": self.get_config(), "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state from ``state_dict()`` output (arrays are copied).

        The parameters must be the same number, order and shapes as when it was saved;
        anything else is a ``ValueError`` or ``TypeError`` and leaves the optimizer unchanged.

        Args:
            state_dict: mapping ``{"type", "config", "state"}`` as ``state_dict()`` returns.

        Raises:
            TypeError: ``state_dict`` or one of its parts is not of the saved kind.
            ValueError: another optimizer's state, missing or extra keys, other
                parameters (number, order, shapes), or hyperparameters out of range.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}: expected a mapping, got {type(state_dict).__name__}")
        same_keys(state_dict, {"type", "config", "state"}, "state_dict", owner)
        if state_dict["type"] != type(self).__name__:
            raise ValueError(
                f"{owner}: the state is for a {state_dict['type']!r} optimizer, not {type(self).__name__!r}"
            )
        config = state_dict["config"]
        if not isinstance(config, Mapping):
            raise TypeError(f"{owner}: 'config' must be a mapping, got {type(config).__name__}")
        same_keys(config, self.defaults, "config", owner)
        entries = state_dict["state"]
        if not isinstance(entries, (list, tuple)):
            raise TypeError(f"{owner}: 'state' must be a list, got {type(entries).__name__}")
        if len(entries) != len(self.params):
            raise ValueError(
                f"{owner}: 'state' has {len(entries)} entries but the optimizer has {len(self.params)} parameters"
            )
        defaults = self._checked_defaults({name: config[name] for name in self.defaults})
        state = {p: self._loaded_state(i, p, entry, defaults, owner)
                 for i, (p, entry) in enumerate(zip(self.params, entries))}
        self.defaults, self.state = defaults, state

    def _loaded_state(self, i, p, entry, defaults, owner):
        """``entry`` (the saved state of ``params[i]``) checked against a first step's state, copied."""
        if not isinstance(entry, Mapping):
            raise TypeError(f"{owner}: state[{i}] must be a mapping, got {type(entry).__name__}")
        if not entry:
            return {}
        first = self._first_state(p, defaults)
        optional = set(self.optional_state)
        same_keys(entry, set(first) - optional, f"state[{i}]", owner, optional=optional | set(first))
        # an optional buffer the first step did not make is an array shaped like the parameter
        state = {key: _restored(value, first.get(key, p.data), f"state[{i}][{key!r}]", i, p, owner)
                 for key, value in entry.items()}
        for key in self.non_negative_state:
            if key in state and np.any(np.asarray(state[key]) < 0):
                raise ValueError(f"{owner}: state[{i}][{key!r}] holds negative values, which {type(self).__name__} "
                                 f"never makes (min {np.min(state[key])})")
        return state

    def _first_state(self, p, defaults):
        """The state ``update`` gives ``p`` at its first step under ``defaults`` (on scratch copies)."""
        state, kept = {}, self.defaults
        self.defaults = defaults
        try:
            with np.errstate(all="ignore"):
                self.update(p.data.copy(), np.zeros_like(p.grad), state)
        finally:
            self.defaults = kept
        return state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {args})"


def _check_saveable(value, name, owner):
    """Raise ``TypeError`` unless ``value`` is a number, bool, str, None, real array or a tuple/list of these."""
    if isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            _check_saveable(item, f"{name}[{k}]", owner)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: {name} must be a real array, got dtype {value.dtype}")
    elif not (value is None or isinstance(value, (numbers.Real, str))):
        raise TypeError(
            f"{owner}: {name} must be a number, bool, str, None, array or a tuple of these (to be saved), "
            f"got {type(value).__name__}"
        )


def _plain(value):
    """A saveable copy of ``value``: arrays copied, numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


MAX_COUNT = 2**63  # counters (a step count) are int64, as torch's are


def _restored(value, like, name, i, p, owner):
    """``value`` loaded in place of ``like`` (what a first step made): of its kind, shape and dtype,
    finite, a counter below ``MAX_COUNT``."""
    if isinstance(like, np.ndarray):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{owner}: {name} must be a real array, got dtype {array.dtype}")
        if array.shape != like.shape:
            where = (f"params[{i}] ({p.name!r}) has shape {fmt_shape(p.shape)}" if like.shape == p.shape
                     else f"for params[{i}] ({p.name!r}) it has shape {fmt_shape(like.shape)}")
            raise ValueError(f"{owner}: {name} has shape {fmt_shape(array.shape)}, but {where}")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, not warned
            restored = np.array(array, dtype=like.dtype, order="C", copy=True)
        if restored.dtype.kind == "f" and not np.isfinite(restored).all():
            bad = "non-finite" if not np.isfinite(array).all() else f"values too large for {restored.dtype}"
            raise ValueError(f"{owner}: {name} holds {bad} (at index {_first_bad(restored)})")
        return restored
    if isinstance(like, (bool, np.bool_)):
        return flag(value, name, owner)
    if isinstance(like, numbers.Integral):
        count = non_negative_int(value, name, owner)  # a counter, such as ``step``
        if count >= MAX_COUNT:
            shown = count if count < 10**20 else f"a {len(str(count))}-digit number"
            raise ValueError(f"{owner}: {name} must be a count below 2**63, got {shown}")
        return count
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    return finite_number(value, name, owner)


def _first_bad(array):
    """The index of the first non-finite element of ``array``, as a tuple."""
    return tuple(int(k) for k in np.argwhere(~np.isfinite(array))[0])
