"""Cell: the interface a recurrent cell implements to run inside ``RNN``."""

import numpy as np

from .. import init as _init
from .._checks import (batch_input, kept_grads, positive_int, returned_array, returned_arrays, returned_tuple,
                       state_tuple)
from .layer import Layer

CHUNK_BYTES = 2**18  # 256 KiB: one chunk's (steps, batch, width) array when no history is kept (time_chunk)


def time_chunk(cell, batch):
    """Steps per chunk of time when ``RNN`` keeps no history (``no_grad``, ``predict``).

    ``max(1, CHUNK_BYTES // (batch * width * itemsize))`` with ``width`` the widest of the
    input and the state arrays: each ``(steps, batch, width)`` array of one chunk takes at most
    256 KiB (an LSTM's gate block, ``4H`` wide, at most 1 MiB), whatever the sequence length.
    The fused kernels project the input in these same chunks when they keep history, so that
    both make the same matrix products (BLAS rounds differently for different row counts).
    """
    width = max(cell.input_size, *cell.state_size)
    return max(1, CHUNK_BYTES // (batch * width * np.dtype(cell.dtype).itemsize))


class Cell(Layer):
    """Base class of recurrent cells: one time step with explicit state in and out.

    A cell computes one step for a whole batch and keeps nothing between calls:
    everything the backward step needs travels in the ``cache`` it returns, so
    ``RNN`` (which owns the loop over time) can store it per step.

    To write a cell, subclass ``Cell`` and implement:

    ``step(x, state) -> (new_state, cache)``
        ``x: (batch, input_size)``; ``state``: tuple of arrays ``(batch, n)``, one per
        entry of ``state_size``. The cell's output at this step is ``new_state[0]``.
    ``step_backward(dstate, cache) -> (dx, dstate_prev)``
        ``dstate``: tuple of gradients with respect to ``new_state`` (the output's
        gradient already added into ``dstate[0]``). Returns the gradient with respect
        to ``x`` and to the previous state, and *adds* into each ``Parameter.grad``.

    and, when the state is not a single ``(batch, hidden_size)`` array, override
    ``state_size`` (LSTM: ``(H, H)``).

    What the step methods return is checked at the first step of each call (the pair, the
    state tuple and every shape; after the first ``step_backward``, each ``Parameter.grad``'s
    shape): a ``TypeError`` or ``ValueError`` names the cell, the method, what was expected
    and what was received.

    ``RNN`` calls the sequence methods ``forward_sequence`` / ``backward_sequence`` /
    ``state_at``. Their defaults here loop over ``step`` and ``step_backward``, so a
    cell that only has the step methods works in ``RNN``, the trainer and
    ``gradcheck`` unchanged. The built-in cells replace them with the fused kernels
    of ``minidl.layers.fused`` (the same numbers, faster).
    """

    def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None,
                 bias_initializer=None):
        """Store the sizes and the initializers for the subclass to build its weights with.

        The initializers are stored as attributes (built with ``minidl.init.make_weight``)
        and saved by ``get_config`` when given.

        Args:
            input_size: int >= 1, the features of ``x`` at each step.
            hidden_size: int >= 1, the width ``H`` of the output (the first state).
            kernel_initializer: initializer of the input weights: a name, a
                ``minidl.init`` initializer or None for the default.
            recurrent_initializer: initializer of the recurrent weights, as above.
            bias_initializer: initializer of the biases, as above.

        Raises:
            TypeError: a size is not an int, or an initializer is not a name, an
                initializer or None.
            ValueError: a size is < 1, or an initializer name is unknown.
        """
        super().__init__()
        owner = type(self).__name__
        self.input_size = positive_int(input_size, "input_size", owner)
        self.hidden_size = positive_int(hidden_size, "hidden_size", owner)
        self.kernel_initializer = _init.get(kernel_initializer, owner, "kernel_initializer")
        self.recurrent_initializer = _init.get(recurrent_initializer, owner, "recurrent_initializer")
        self.bias_initializer = _init.get(bias_initializer, owner, "bias_initializer")

    @property
    def state_size(self):
        """Tuple with the width of each state array; the first is the output."""
        return (self.hidden_size,)

    def get_config(self):
        config = {"input_size": self.input_size, "hidden_size": self.hidden_size}
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            value = getattr(self, key, None)  # a user's cell may skip Cell.__init__'s arguments
            if value is not None:
                config[key] = _init.serialize(value)
        return config

    def add_weight(self, name, shape, bound=None):
        """Create a Parameter drawn from ``U(-bound, bound)``.

        Args:
            name: str, the parameter's name (its attribute name in the cell).
            shape: tuple of ints, the array's shape.
            bound: float > 0, or None for ``1/sqrt(hidden_size)`` (PyTorch's
                initialization of recurrent cells).

        Returns:
            The new ``Parameter``.
        """
        return super().add_weight(name, shape, 1.0 / np.sqrt(self.hidden_size) if bound is None else bound)

    def initial_state(self, batch_size, dtype=None):
        """Zero state: a tuple of ``(batch_size, n)`` arrays, one per ``state_size`` entry.

        Args:
            batch_size: int, the batch.
            dtype: the arrays' dtype; None for the cell's dtype.

        Returns:
            Tuple of zero arrays ``(batch_size, n)`` for ``n`` in ``state_size``.
        """
        dtype = self.dtype if dtype is None else dtype
        return tuple(np.zeros((batch_size, n), dtype) for n in self.state_size)

    def forward(self, x, state=None):
        """One step on ``x`` from ``state``; no history is kept (use ``RNN`` to train).

        Args:
            x: ``(batch, input_size)``.
            state: tuple of ``(batch, n)`` arrays, one per ``state_size`` entry, or None
                for zeros.

        Returns:
            The new state tuple; its first array is the output ``(batch, H)``.

        Raises:
            ValueError: ``x`` or ``state`` has the wrong shape, or what ``step`` returns
                does not have the state's shapes.
            TypeError: ``x`` is not numeric, or ``step`` does not return a pair.
        """
        x = batch_input(x, self.input_size, self, self.dtype)
        if state is None:
            state = self.initial_state(len(x))
        else:
            state = state_tuple(state, self.state_size, self, self.dtype, batch=len(x))
        return self._checked_step(x, state)[0]

    # ---- the step interface (what a user's cell implements) -----------------------
    def step(self, x, state):
        """One step; a subclass implements it.

        Args:
            x: ``(batch, input_size)``.
            state: tuple of ``(batch, n)`` arrays, one per ``state_size`` entry.

        Returns:
            ``(new_state, cache)``: the new state tuple (its first array is the output)
            and whatever ``step_backward`` needs.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step(x, state)")

    def step_backward(self, dstate, cache):
        """Backward of one step, adding into each ``Parameter.grad``; a subclass implements it.

        Args:
            dstate: tuple of gradients with respect to ``new_state``, shaped like it.
            cache: what ``step`` returned beside ``new_state``.

        Returns:
            ``(dx, dstate_prev)``: ``dx: (batch, input_size)`` and the gradient tuple with
            respect to the previous state.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement step_backward(dstate, cache)")

    # ---- the sequence interface (RNN calls these; the built-in cells use fused/) ----
    def forward_sequence(self, xs, state, keep_history=True, mask=None):
        """Run all steps of ``xs`` (time-major) from ``state``.

        With a mask, where it is False the step's new state is replaced by the old one,
        ``s_t = where(m_t, step(x_t, s_{t-1}), s_{t-1})``, and ``hs[t]`` holds that
        carried state (``RNN`` zeroes the outputs there). ``RNN`` has already replaced
        the padded inputs by zeros.

        Args:
            xs: ``(time, batch, input_size)``.
            state: tuple of ``(batch, n)`` arrays, the state before the first step.
            keep_history: bool; when False nothing is kept for backward (the cache is None).
            mask: ``(time, batch)`` bool, True at real steps, or None (``RNN`` passes
                it only when it has one).

        Returns:
            ``(hs, final_state, cache)``: ``hs: (time, batch, H)`` the outputs, the state
            after the last step, and what ``backward_sequence`` and ``state_at`` need.
            ``hs`` and the final state may share memory with the cache: ``RNN`` copies
            what it hands out.
        """
        states = [state]
        caches = []
        outputs = []
        for t in range(xs.shape[0]):
            new_state, cache = (self.step if t else self._checked_step)(xs[t], state)
            if mask is not None:
                real = mask[t][:, None]
                new_state = tuple(np.where(real, new, old) for new, old in zip(new_state, state))
            state = tuple(new_state)
            outputs.append(state[0])
            if keep_history:
                caches.append(cache)
                states.append(state)
        hs = np.stack(outputs) if outputs else np.zeros((0,) + state[0].shape, state[0].dtype)
        return hs, state, ((caches, states) if keep_history else None)

    def backward_sequence(self, dhs, dstate, cache, mask=None):
        """Backward through a ``forward_sequence``; adds into the grads.

        With a mask: at a masked step of a sample its gradient passes unchanged to the
        previous state, ``step_backward`` gets zeros for it (so the weights get nothing
        from padding) and its ``dx`` is zero.

        Args:
            dhs: ``(time, batch, H)`` gradient of the outputs, or None when only the
                final state receives gradient.
            dstate: tuple, the gradient of the final state.
            cache: what ``forward_sequence`` returned.
            mask: ``(time, batch)`` bool, the mask of the forward, or None.

        Returns:
            ``(dxs, dstate0)``: ``dxs: (time, batch, input_size)`` and the gradient of
            the initial state.
        """
        caches, _ = cache
        dstate = tuple(dstate)
        dxs = [None] * len(caches)
        for t in range(len(caches) - 1, -1, -1):
            step_backward = self.step_backward if t < len(caches) - 1 else self._checked_step_backward
            if dhs is not None:
                dstate = (dstate[0] + dhs[t],) + dstate[1:]
            if mask is None:
                dxs[t], dstate = step_backward(dstate, caches[t])
            else:
                real = mask[t][:, None]
                zero = np.zeros((), dstate[0].dtype)
                dx, dprev = step_backward(tuple(np.where(real, d, zero) for d in dstate), caches[t])
                dxs[t] = np.where(real, dx, zero)
                dstate = tuple(np.where(real, dp, d) for dp, d in zip(dprev, dstate))
            dstate = tuple(dstate)
        return np.stack(dxs), dstate

    def state_at(self, cache, t):
        """The state after ``t`` steps of the forward that made ``cache``.

        Args:
            cache: what ``forward_sequence`` returned (with ``keep_history``).
            t: int, 0 <= t <= time.

        Returns:
            The state tuple after step ``t`` (``t = 0``: the initial state).
        """
        return cache[1][t]

    # ---- the checks of what a user's step methods return (first step of a call only) ----
    def _checked_step(self, x, state):
        """``step(x, state)``, its return checked: ``(new_state, cache)``, ``new_state`` a tuple
        of arrays shaped like ``state``."""
        where = f"{type(self).__name__}.step"
        new_state, cache = returned_tuple(self.step(x, state), where, "new_state", "cache")
        shapes = [(len(x), n) for n in self.state_size]
        hint = " (one per state_size entry: return (h_new,), cache, not h_new, cache)"
        return returned_arrays(new_state, shapes, where, "new_state", hint), cache

    def _checked_step_backward(self, dstate, cache):
        """``step_backward(dstate, cache)``, its return checked: ``(dx, dstate_prev)`` with
        ``dx: (batch, input_size)`` and ``dstate_prev`` shaped like ``dstate``; then each
        parameter's grad must still have its parameter's shape."""
        where = f"{type(self).__name__}.step_backward"
        dx, dprev = returned_tuple(self.step_backward(dstate, cache), where, "dx", "dstate_prev")
        B = dstate[0].shape[0]
        returned_array(dx, (B, self.input_size), where, "dx")
        dprev = returned_arrays(dprev, [d.shape for d in dstate], where, "dstate_prev", " (one per state_size entry)")
        kept_grads(self, where)
        return dx, dprev
