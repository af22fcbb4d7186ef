"""RNN: runs a recurrent cell over the time axis, with masks and states in and out."""

import inspect

import numpy as np

from .._checks import (batch_input, flag, grad_shape, kept_grads, returned_array, returned_arrays, returned_tuple,
                       state_tuple, time_mask)
from .._grad_mode import is_grad_enabled
from .layer import Layer
from .registry import layer_class
from .cell import Cell, time_chunk


class RNN(Layer):
    """Runs ``cell`` over time: ``x: (batch, time, features) -> (batch, H)`` (last
    output) or ``(batch, time, H)`` with ``return_sequences=True``.

    Args:
        cell: a ``Cell`` (``RNNCell``, ``LSTMCell``, ``GRUCell`` or your own).
        return_sequences: bool, return the output of every step instead of the last
            one; default False.
        stateful: bool, carry the final state of each forward into the next one (until
            ``reset_states()``), instead of starting every forward from zeros; default False.

    Raises:
        TypeError: ``cell`` is not a ``Cell`` instance (a class is named as such), or
            ``return_sequences`` / ``stateful`` not a bool.

    ``forward(x, mask=None, initial_state=None)``. A ``mask: (batch, time)`` bool
    is True at real steps; at a masked step the state is carried unchanged and the
    output there (``return_sequences=True``) is zeros; the last output is the output of
    each sequence's last real step: the state carried from it, which for a sequence
    without a real step is the state this call started from (zeros from a zero start;
    the carried state when a TBPTT window or a stateful call holds only padding). With ``s_t``
    the state after step ``t`` and ``m_t`` the mask column::

        s_t = where(m_t, step(x_t, s_{t-1}), s_{t-1})        y_t = where(m_t, s_t[0], 0)

    Padded inputs are replaced by zeros before the cell sees them, so their values
    (even NaN) never matter. ``initial_state`` (a tuple of ``(batch, n)`` arrays, one
    per ``cell.state_size`` entry) starts this call instead of zeros or the carried
    state. After a forward, ``final_state`` is the state after each sequence's last
    real step (copies).

    State interface (used by the TBPTT trainer, public for users):
        ``get_state()`` the state the next forward starts from (None: zeros),
        ``set_state(state)`` set it (a tuple of ``(batch, n)`` arrays; on a
        non-stateful RNN it starts the next forward only),
        ``reset_states()`` back to zeros, ``state_at(t)`` the state after ``t``
        steps of the last forward (which must have kept history).

    Backward, ``backward(grad_out, grad_final_state=None)``: the cell's
    ``backward_sequence`` from the output gradient plus ``grad_final_state`` (a tuple
    like ``final_state``, entries may be None) on the state after the last step. At a
    masked step the gradient passes unchanged to the previous state and the step's
    local gradients are zero: padding gives the weights nothing. The gradient with
    respect to the initial state is left in ``initial_state_grad``. The parameters
    are the cell's, named ``cell.<name>``. Every array it hands out (outputs,
    ``final_state``, ``get_state``, ``state_at``) is its own copy: editing one in
    place changes nothing that ``backward`` reads.
    """

    has_state = True
    takes_mask = True

    def __init__(self, cell, return_sequences=False, stateful=False):
        super().__init__()
        self.cell = _a_cell(cell)
        self.return_sequences = flag(return_sequences, "return_sequences", "RNN")
        self.stateful = flag(stateful, "stateful", "RNN")
        self._state = None  # the state the next forward starts from (None: zeros)
        self._cache = None  # the cell's per-step values of the last forward (None under no_grad)
        self._final = None  # the state after the last forward
        self._mask = None  # the last forward's mask, time-major (time, batch), or None
        self._cache_len = 0
        self._batch = None
        self.initial_state_grad = None

    def get_config(self):
        return {
            "cell": {"class_name": type(self.cell).__name__, "config": self.cell.get_config()},
            "return_sequences": self.return_sequences,
            "stateful": self.stateful,
        }

    def __repr__(self):
        return f"RNN({self.cell!r}, return_sequences={self.return_sequences}, stateful={self.stateful})"

    @classmethod
    def from_config(cls, config):
        """Build an RNN from ``get_config()``: its cell from the cell's class name and config.

        Args:
            config: dict with ``"cell"`` (``{"class_name", "config"}``) and the RNN's flags.

        Returns:
            The new ``RNN``, with a new cell.
        """
        config = dict(config)
        cell_spec = config.pop("cell")
        cell = layer_class(cell_spec["class_name"])(**cell_spec["config"])
        return cls(cell, **config)

    def expected_input_shape(self):
        return (None, None, self.cell.input_size)

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1] if len(input_shape) > 1 else None
        if self.return_sequences:
            return (batch, time, self.cell.hidden_size)
        return (batch, self.cell.hidden_size)

    def compute_mask(self, x, mask):
        """The mask with ``return_sequences=True`` (the time axis stays); None otherwise.

        Args:
            x: the input ``(batch, time, features)``.
            mask: ``(batch, time)`` bool, or None.

        Returns:
            ``mask`` with ``return_sequences``, else None.
        """
        return mask if self.return_sequences else None

    # ---- state -------------------------------------------------------------------
    @property
    def final_state(self):
        """The state after each sequence's last real step of the last forward (a tuple of
        copies), or None before the first forward."""
        return None if self._final is None else tuple(s.copy() for s in self._final)

    def get_state(self):
        """The state the next forward starts from: a tuple of ``(batch, n)`` copies, or None (zeros)."""
        return None if self._state is None else tuple(s.copy() for s in self._state)

    def set_state(self, state):
        """Set the state the next forward starts from (on a non-stateful RNN, that forward only).

        Args:
            state: a tuple of ``(batch, n)`` arrays, one per ``cell.state_size`` entry
                (copied), or None for zeros.

        Raises:
            ValueError: ``state`` is not such a tuple, or an array has the wrong shape.
        """
        if state is None:
            self._state = None
            return
        state = state_tuple(state, self.cell.state_size, f"{self!r}.set_state", self.cell.dtype)
        self._state = tuple(s.copy() for s in state)

    def reset_states(self):
        """Forget the carried state: the next forward starts from zeros."""
        self._state = None

    def state_at(self, t):
        """The state after ``t`` steps of the last forward (which must have kept history).

        Args:
            t: int, ``0 <= t <= time`` of the last forward.

        Returns:
            A tuple of ``(batch, n)`` copies.

        Raises:
            RuntimeError: no forward yet.
            ValueError: ``t`` is not an int in that range.
        """
        if self._final is None:
            raise RuntimeError(f"{self!r}: state_at called before forward")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= self._cache_len:
            raise ValueError(f"{self!r}: state_at(t) expected an int 0 <= t <= {self._cache_len}, got {t!r}")
        if t == self._cache_len:
            return tuple(s.copy() for s in self._final)
        if self._cache is None:
            raise RuntimeError(f"{self!r}: state_at({t}) needs a forward that kept history (not under no_grad)")
        return tuple(np.array(s) for s in self.cell.state_at(self._cache, t))

    # ---- computation -------------------------------------------------------------
    def forward(self, x, mask=None, initial_state=None):
        """Run the cell over every step of ``x`` (see the class docstring for the math).

        Without history (``no_grad``) the cell runs ``time_chunk(cell, batch)`` steps at a
        time, the state carried from chunk to chunk: the same numbers, in working memory
        that does not grow with ``time``.

        Args:
            x: ``(batch, time, features)``.
            mask: ``(batch, time)`` bool, True at real steps, or None.
            initial_state: a tuple of ``(batch, n)`` arrays starting this call, or None
                (the carried state when stateful or set, else zeros).

        Returns:
            The last output ``(batch, H)``, or every step's ``(batch, time, H)`` with
            ``return_sequences``; a copy, never the cell's cache.

        Raises:
            TypeError: ``x`` is not numeric, or ``mask`` is not bool.
            ValueError: ``x`` is not ``(batch, time, features)`` with the cell's features,
                ``mask`` or ``initial_state`` of the wrong shape, or a stored state of
                another batch size (call ``reset_states()`` first).
        """
        x = batch_input(x, self.cell.input_size, self, self.cell.dtype, time=True)
        B, T, _ = x.shape
        mask = time_mask(mask, (B, T), self)
        state = self._start_state(B, initial_state)
        if not self.stateful:
            self._state = None  # a state set on a non-stateful RNN starts one forward only
        if mask is not None:
            _takes_masks(self.cell)
        if is_grad_enabled():
            xs, tmask = _time_major(x, mask)
            hs, final, cache = self._run(xs, state, tmask, keep=True)
            # The outputs are copies: hs may be the very array backward reads (built-in cells).
            ys = self._sequence_output(hs, tmask) if self.return_sequences else None
            last = hs[-1]
        else:
            ys, last, final = self._forward_in_chunks(x, mask, state)
            cache = tmask = None
        final = tuple(np.array(s) for s in final)  # own copies: do not pin the per-step arrays
        self._cache, self._cache_len, self._batch, self._final, self._mask = cache, T, B, final, tmask
        if self.stateful:
            self._state = final
        if self.return_sequences:
            return ys
        # Masked: the state after the last real step; the start state for a row without one.
        return np.array(last) if mask is None else final[0].copy()

    def _forward_in_chunks(self, x, mask, state):
        """The forward without history, ``time_chunk(cell, batch)`` steps at a time.

        Returns ``(outputs (batch, time, H) or None, the last step's output, final state)``."""
        B, T, _ = x.shape
        steps = time_chunk(self.cell, B)
        ys = None
        for t0 in range(0, T, steps):
            part = slice(t0, t0 + steps)
            hs, state = self._chunk(x[:, part], None if mask is None else mask[:, part], state)
            if self.return_sequences:
                if ys is None:
                    ys = np.empty((B, T, hs.shape[2]), hs.dtype)
                ys[:, part] = hs
            last = hs[:, -1]
        return ys, last, state

    def _chunk(self, x, mask, state):
        """One chunk ``x: (batch, steps, F)`` from ``state``, without history -> its outputs
        ``(batch, steps, H)`` (zeros at masked steps) and its final state, both copies: nothing
        of the chunk's working arrays outlives it."""
        xs, tmask = _time_major(x, mask)
        hs, final, _ = self._run(xs, state, tmask, keep=False)
        out = self._sequence_output(hs, tmask) if self.return_sequences else np.array(hs[-1:].transpose(1, 0, 2))
        return out, tuple(np.array(s) for s in final)

    def _run(self, xs, state, mask, keep):
        """``cell.forward_sequence`` on ``xs: (time, batch, F)`` (``mask``: ``(time, batch)`` or
        None), its return checked against the contract: ``(hs, final_state, cache)``."""
        cell = self.cell
        out = cell.forward_sequence(xs, state, keep) if mask is None else cell.forward_sequence(xs, state, keep, mask=mask)
        where = f"{type(cell).__name__}.forward_sequence"
        hs, final, cache = returned_tuple(out, where, "hs", "final_state", "cache")
        T, B, _ = xs.shape
        returned_array(hs, (T, B, cell.hidden_size), where, "hs")
        final = returned_arrays(final, [(B, n) for n in cell.state_size], where, "final_state")
        return hs, final, cache

    @staticmethod
    def _sequence_output(hs, mask):
        """Every step's output ``(batch, time, H)`` from ``hs: (time, batch, H)`` (a new array),
        zeros where ``mask: (time, batch)`` is False."""
        if mask is None:
            return hs.copy().transpose(1, 0, 2)
        return np.where(mask[..., None], hs, hs.dtype.type(0)).transpose(1, 0, 2)

    def _start_state(self, batch, initial_state):
        """The state this forward starts from: ``initial_state``, the stored one, or zeros."""
        if initial_state is not None:
            return state_tuple(initial_state, self.cell.state_size, self, self.cell.dtype, batch=batch,
                               name="initial_state")
        if self._state is None:
            return self.cell.initial_state(batch)
        if self._state[0].shape[0] != batch:
            raise ValueError(
                f"{self}: the stored state has batch size {self._state[0].shape[0]} but the input has {batch}; "
                "call reset_states() before changing the batch size"
            )
        return self._state

    def backward(self, grad_out, grad_final_state=None):
        """Backpropagate through the last forward; adds into the cell's grads.

        Leaves ``dL/d(initial state)`` in ``initial_state_grad``.

        Args:
            grad_out: ``dL/dy``, shaped like the last output.
            grad_final_state: a tuple like ``final_state`` (entries may be None), added
                to the gradient of the state after the last step; or None.

        Returns:
            ``dL/dx: (batch, time, features)``, zeros at masked steps.

        Raises:
            RuntimeError: no forward with history before it.
            ValueError: ``grad_out`` or ``grad_final_state`` of the wrong shape, or what
                the cell's ``backward_sequence`` returns does not fit.
        """
        if self._cache is None:
            raise self._missing_forward()
        B, T, H = self._batch, self._cache_len, self.cell.hidden_size
        g = grad_shape(grad_out, (B, T, H) if self.return_sequences else (B, H), self, self.cell.dtype)
        mask = self._mask
        dstate = [np.zeros((B, n), g.dtype) for n in self.cell.state_size]
        if grad_final_state is not None:
            for d, extra in zip(dstate, self._final_state_grad(grad_final_state, g.dtype)):
                if extra is not None:
                    d += extra
        if self.return_sequences:
            dhs = g.transpose(1, 0, 2)
            if mask is not None:  # the output at a masked step is a constant zero
                dhs = np.where(mask[..., None], dhs, g.dtype.type(0))
        else:
            dhs = None
            dstate[0] += g
        cell = self.cell
        if mask is None:
            out = cell.backward_sequence(dhs, tuple(dstate), self._cache)
        else:
            out = cell.backward_sequence(dhs, tuple(dstate), self._cache, mask=mask)
        where = f"{type(cell).__name__}.backward_sequence"
        dxs, dstate0 = returned_tuple(out, where, "dxs", "dstate0")
        returned_array(dxs, (T, B, cell.input_size), where, "dxs")
        self.initial_state_grad = returned_arrays(dstate0, [d.shape for d in dstate], where, "dstate0")
        kept_grads(cell, where)
        return dxs.transpose(1, 0, 2)

    def _final_state_grad(self, grad_final_state, dtype):
        """``grad_final_state`` checked against the cell's state: a tuple of ``(batch, n)`` or None."""
        sizes = self.cell.state_size
        if not isinstance(grad_final_state, (tuple, list)) or len(grad_final_state) != len(sizes):
            raise ValueError(f"{self}: expected grad_final_state as a tuple of {len(sizes)} arrays (or None "
                             f"entries), like final_state, got {_describe(grad_final_state)}")
        return tuple(None if d is None else grad_shape(d, (self._batch, n), f"{self} grad_final_state[{k}]", dtype)
                     for k, (d, n) in enumerate(zip(grad_final_state, sizes)))


def _time_major(x, mask):
    """``x: (batch, time, F)`` as ``(time, batch, F)``, contiguous, zeros at the padded steps
    (padding never reaches the cell), and ``mask`` as ``(time, batch)``, as the cell gets them."""
    if mask is None:
        return np.ascontiguousarray(x.transpose(1, 0, 2)), None
    mask = np.ascontiguousarray(mask.T)
    return np.where(mask[..., None], x.transpose(1, 0, 2), x.dtype.type(0)), mask


def _takes_masks(cell):
    """Raise unless ``cell``'s sequence methods take ``mask=`` (Cell's do; a user's fast path may not)."""
    for name in ("forward_sequence", "backward_sequence"):
        params = inspect.signature(getattr(cell, name)).parameters
        if "mask" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"RNN: a mask was given but {type(cell).__name__}.{name} takes no mask= argument "
                            "(it overrides Cell's); add mask=None to forward_sequence and backward_sequence "
                            "and carry the state where the mask is False (docs/custom-cell.md)")


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def _a_cell(cell):
    """``cell`` if it is a ``Cell`` instance, else a ``TypeError`` saying what to pass."""
    if isinstance(cell, type) and issubclass(cell, Cell):
        raise TypeError(f"RNN: cell must be a Cell instance, got the class {cell.__name__}; "
                        f"build one, e.g. {cell.__name__}(input_size, hidden_size)")
    if not isinstance(cell, Cell):
        raise TypeError(f"RNN: cell must be a Cell (RNNCell, LSTMCell, GRUCell, ...), got {type(cell).__name__}")
    return cell
