"""RNN: runs a recurrent cell over the time axis."""

import numpy as np

from .._checks import as_float_array, fmt_shape
from .._grad_mode import is_grad_enabled
from .layer import Layer, layer_class
from .cell import Cell


class RNN(Layer):
    """Runs ``cell`` over time: ``x: (batch, time, features) -> (batch, H)`` (last
    output) or ``(batch, time, H)`` with ``return_sequences=True``.

    Args:
        cell: a ``Cell`` (``RNNCell``, ``LSTMCell``, ``GRUCell`` or your own).
        return_sequences: return the output of every step instead of the last one.
        stateful: carry the final state of each forward into the next one (until
            ``reset_states()``), instead of starting every forward from zeros.

    State interface (used by the TBPTT trainer, public for users):
        ``get_state()`` the state the next forward starts from (None: zeros),
        ``set_state(state)`` set it (a tuple of ``(batch, n)`` arrays),
        ``reset_states()`` back to zeros, ``state_at(t)`` the state after ``t``
        steps of the last forward (which must have kept history).

    Backward: the cell's ``backward_sequence`` from the output gradient; the
    gradient with respect to the initial state is left in ``initial_state_grad``.
    The parameters are the cell's, named ``cell.<name>``.
    """

    has_state = True

    def __init__(self, cell, return_sequences=False, stateful=False):
        super().__init__()
        if isinstance(cell, type) and issubclass(cell, Cell):
            raise TypeError(f"RNN: cell must be a Cell instance, got the class {cell.__name__}; "
                            f"build one, e.g. {cell.__name__}(input_size, hidden_size)")
        if not isinstance(cell, Cell):
            raise TypeError(f"RNN: cell must be a Cell (RNNCell, LSTMCell, GRUCell, ...), got {type(cell).__name__}")
        for name, flag in (("return_sequences", return_sequences), ("stateful", stateful)):
            if not isinstance(flag, bool):
                raise TypeError(f"RNN: {name} must be a bool, got {flag!r}")
        self.cell = cell
        self.return_sequences = return_sequences
        self.stateful = stateful
        self._state = None
        self._cache = None
        self._final = None
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

    # ---- state -------------------------------------------------------------------
    def get_state(self):
        return None if self._state is None else tuple(s.copy() for s in self._state)

    def set_state(self, state):
        if state is None:
            self._state = None
            return
        sizes = self.cell.state_size
        if not isinstance(state, (tuple, list)) or len(state) != len(sizes):
            got = f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list)) else type(state).__name__
            raise ValueError(f"{self!r}: set_state expected a tuple of {len(sizes)} arrays, got {got}")
        arrays = []
        for k, (s, n) in enumerate(zip(state, sizes)):
            s = as_float_array(s, f"state[{k}]", self, self.cell.dtype)
            if s.ndim != 2 or s.shape[1] != n or (arrays and s.shape[0] != arrays[0].shape[0]):
                raise ValueError(f"{self!r}: state[{k}] expected shape (batch, {n}), got {fmt_shape(s.shape)}")
            arrays.append(s.copy())
        self._state = tuple(arrays)

    def reset_states(self):
        self._state = None

    def state_at(self, t):
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
    def forward(self, x):
        owner = self
        x = as_float_array(x, "input", owner, self.cell.dtype)
        if x.ndim != 3 or x.shape[2] != self.cell.input_size:
            raise ValueError(
                f"{owner}: expected input (batch, time, {self.cell.input_size}), got shape {fmt_shape(x.shape)}"
            )
        B, T, _ = x.shape
        if B == 0 or T == 0:
            raise ValueError(f"{owner}: input must have at least one sample and one step, got shape {fmt_shape(x.shape)}")
        if self._state is None:
            state = self.cell.initial_state(B)
        else:
            state = self._state
            if state[0].shape[0] != B:
                raise ValueError(
                    f"{owner}: the stored state has batch size {state[0].shape[0]} but the input has {B}; "
                    "call reset_states() before changing the batch size"
                )
        keep = is_grad_enabled()
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))
        hs, final, cache = self.cell.forward_sequence(xs, state, keep)
        final = tuple(np.array(s) for s in final)  # own copies: do not pin the per-step arrays
        self._cache, self._cache_len, self._batch, self._final = cache, T, B, final
        if self.stateful:
            self._state = final
        if self.return_sequences:
            return hs.transpose(1, 0, 2)
        return np.array(hs[-1])

    def backward(self, grad_out):
        if self._cache is None:
            raise self._missing_forward()
        B, T, H = self._batch, self._cache_len, self.cell.hidden_size
        g = as_float_array(grad_out, "grad_out", self, self.cell.dtype)
        expected = (B, T, H) if self.return_sequences else (B, H)
        if g.shape != expected:
            raise ValueError(f"{self!r}: expected grad_out of shape {fmt_shape(expected)}, got {fmt_shape(g.shape)}")
        dstate = [np.zeros((B, n), g.dtype) for n in self.cell.state_size]
        if self.return_sequences:
            dhs = g.transpose(1, 0, 2)
        else:
            dhs = None
            dstate[0] += g
        dxs, dstate0 = self.cell.backward_sequence(dhs, tuple(dstate), self._cache)
        self.initial_state_grad = tuple(dstate0)
        return dxs.transpose(1, 0, 2)
