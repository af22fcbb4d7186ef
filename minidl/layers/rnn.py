"""RNN: runs a recurrent cell over the time axis."""

import numpy as np

from .._checks import batch_input, flag, grad_shape, state_tuple
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
    The parameters are the cell's, named ``cell.<name>``. Every array it hands out
    (outputs, ``get_state``, ``state_at``) is its own copy: editing one in place
    changes nothing that ``backward`` reads.
    """

    has_state = True

    def __init__(self, cell, return_sequences=False, stateful=False):
        super().__init__()
        self.cell = _a_cell(cell)
        self.return_sequences = flag(return_sequences, "return_sequences", "RNN")
        self.stateful = flag(stateful, "stateful", "RNN")
        self._state = None  # the state the next forward starts from (None: zeros)
        self._cache = None  # the cell's per-step values of the last forward (None under no_grad)
        self._final = None  # the state after the last forward
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
        state = state_tuple(state, self.cell.state_size, f"{self!r}.set_state", self.cell.dtype)
        self._state = tuple(s.copy() for s in state)

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
        """``x: (batch, time, features)`` -> the last output ``(batch, H)``, or every step's
        ``(batch, time, H)`` with ``return_sequences``; a copy, never the cell's cache."""
        x = batch_input(x, self.cell.input_size, self, self.cell.dtype, time=True)
        B, T, _ = x.shape
        state = self.cell.initial_state(B) if self._state is None else self._carried_state(B)
        xs = np.ascontiguousarray(x.transpose(1, 0, 2))
        hs, final, cache = self.cell.forward_sequence(xs, state, is_grad_enabled())
        final = tuple(np.array(s) for s in final)  # own copies: do not pin the per-step arrays
        self._cache, self._cache_len, self._batch, self._final = cache, T, B, final
        if self.stateful:
            self._state = final
        # The outputs are copies: hs may be the very array backward reads (built-in cells).
        if self.return_sequences:
            return hs.copy().transpose(1, 0, 2)
        return np.array(hs[-1])

    def _carried_state(self, batch):
        if self._state[0].shape[0] != batch:
            raise ValueError(
                f"{self}: the stored state has batch size {self._state[0].shape[0]} but the input has {batch}; "
                "call reset_states() before changing the batch size"
            )
        return self._state

    def backward(self, grad_out):
        """``grad_out`` shaped like the last output -> ``dL/dx: (batch, time, features)``;
        adds into the cell's grads and leaves ``dL/d(initial state)`` in ``initial_state_grad``."""
        if self._cache is None:
            raise self._missing_forward()
        B, T, H = self._batch, self._cache_len, self.cell.hidden_size
        g = grad_shape(grad_out, (B, T, H) if self.return_sequences else (B, H), self, self.cell.dtype)
        dstate = [np.zeros((B, n), g.dtype) for n in self.cell.state_size]
        if self.return_sequences:
            dhs = g.transpose(1, 0, 2)
        else:
            dhs = None
            dstate[0] += g
        dxs, dstate0 = self.cell.backward_sequence(dhs, tuple(dstate), self._cache)
        self.initial_state_grad = tuple(dstate0)
        return dxs.transpose(1, 0, 2)


def _a_cell(cell):
    """``cell`` if it is a ``Cell`` instance, else a ``TypeError`` saying what to pass."""
    if isinstance(cell, type) and issubclass(cell, Cell):
        raise TypeError(f"RNN: cell must be a Cell instance, got the class {cell.__name__}; "
                        f"build one, e.g. {cell.__name__}(input_size, hidden_size)")
    if not isinstance(cell, Cell):
        raise TypeError(f"RNN: cell must be a Cell (RNNCell, LSTMCell, GRUCell, ...), got {type(cell).__name__}")
    return cell
