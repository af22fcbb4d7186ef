"""Flat state: an optimizer's arithmetic over all its parameters at once.

An elementwise optimizer such as Adam makes a dozen numpy calls per parameter and step; for
the small parameters of a recurrent model (a bias of 100 values, a head of 101) the calls,
not the arithmetic, are the time. ``FlatState`` keeps each per-parameter state array (Adam's
``exp_avg``, ``exp_avg_sq``) as a view into one flat array per key, so that one call updates
the moments of every parameter. ``Optimizer.state`` still maps each parameter to its own dict of
arrays, which ``state_dict`` and ``load_state_dict`` save and restore as before; whenever those
arrays are no longer the views (a loaded state, a first step, a converted dtype) the next step
copies them into fresh flat arrays.

The elementwise results are those of the per-parameter ``update``, bit for bit
(``tests/optim/test_flat.py``).
"""

import numpy as np


class FlatState:
    """Flat arrays behind the per-parameter state arrays of ``keys``, for ``params``.

    Args:
        keys: the names of the state arrays shaped like their parameter (``"exp_avg"``, ...).
    """

    def __init__(self, keys):
        self.keys = tuple(keys)
        self.flat = None  # key -> (n,) array; None until bound
        self._bounds = []

    def bind(self, params, state):
        """Make ``state[p][key]`` views into the flat arrays, copying them in when they are not.

        ``state`` is the optimizer's ``Parameter -> dict``; an empty dict is a first step (``step``
        0, zero arrays). Returns the common ``step`` of all parameters, or None (nothing changed)
        when the parameters cannot share flat arrays: several dtypes, or different step counts.
        """
        dtype = params[0].data.dtype
        steps = {state.get(p, {}).get("step", 0) for p in params}
        if len(steps) != 1 or any(p.data.dtype != dtype for p in params):
            return None
        if not self._bound(params, state, dtype):
            self._rebind(params, state, dtype)
        return steps.pop()

    def _bound(self, params, state, dtype):
        if self.flat is None or len(self._bounds) != len(params) or self.flat[self.keys[0]].dtype != dtype:
            return False
        for p, (start, stop) in zip(params, self._bounds):
            own = state.get(p)
            if not own or p.data.size != stop - start:
                return False
            for key in self.keys:
                if own.get(key) is None or own[key].base is not self.flat[key]:
                    return False
        return True

    def _rebind(self, params, state, dtype):
        sizes = np.cumsum([0] + [p.data.size for p in params])
        self._bounds = list(zip(sizes[:-1], sizes[1:]))
        self.flat = {key: np.zeros(sizes[-1], dtype) for key in self.keys}
        for p, (start, stop) in zip(params, self._bounds):
            own = state.setdefault(p, {})
            own.setdefault("step", 0)
            for key in self.keys:
                view = self.flat[key][start:stop].reshape(p.data.shape)
                if own.get(key) is not None:
                    view[...] = own[key]
                own[key] = view

    def gather(self, arrays):
        """``arrays`` (one per parameter, in order) as one new flat array."""
        return np.concatenate([a.reshape(-1) for a in arrays])

    def pieces(self, flat, params):
        """``flat`` cut back into one view per parameter, shaped like it."""
        return [flat[start:stop].reshape(p.data.shape) for p, (start, stop) in zip(params, self._bounds)]
