"""Fused sequence kernels: an optimisation of the built-in cells' steps, nothing more.

``RNNCell``, ``LSTMCell`` and ``GRUCell`` are defined by their ``step`` and
``step_backward`` (``rnn_cell.py``, ``lstm.py``, ``gru.py``), written as the
formulas in their docstrings. Run one step at a time (the loop in ``Cell``), most of
the time goes into numpy's per-call overhead and small matrix products. The
functions here compute the same numbers for a whole sequence
``xs: (time, batch, features)`` (time-major) at once, with four tricks:

1. **One matmul for the input projections** of all steps before the loop and **one for
   the weight gradients** after it: the loop over time keeps only the recurrent product.
   The GRU projects in chunks of ``time_chunk`` steps (``project``), the chunks ``RNN``
   runs in when it keeps no history, so that both paths give the same numbers, and adds
   each weight gradient in one product (``accumulate_weights``). The LSTM makes one
   product per step for its projection (the same whatever the chunking) with the bias
   joined as a column against a row of ones, and gets all three weight gradients from one
   ``[h; x; 1] dz^T``. ``RNNCell`` with a narrow input joins the input into the recurrent
   product itself, ``[h, x, 1] @ [recurrent_kernel; kernel; bias]`` (``rnn.py`` says when,
   with the figures).
2. **One tanh for all gates.** ``sigmoid(a) = (1 + tanh(a / 2)) / 2``: with the
   columns of the sigmoid gates scaled by 1/2 once (in the weights, before the
   loop), a single ``tanh`` over the whole gate block followed by ``* scale + shift``
   gives the three sigmoids and the tanh of an LSTM step (the two sigmoids of a GRU).
   Halving is exact in binary floating point: the folded weights give exactly the
   halved products.
3. **Preallocated, in-place arithmetic, in the layout that makes it cheap.** Per-step
   values go into time-major arrays written with ``out=``; backward's large temporaries
   are scratch arrays kept on the cell between calls (``Workspace``). The RNN and GRU
   keep batch-major ``(T, B, ...)`` steps; the LSTM, whose step slices four gates out of
   its gate block, keeps them feature-major ``(T, features, B)`` so that each gate is a
   contiguous block of rows (``lstm.py``).
4. **Local derivatives outside the loop.** Everything backward needs that does not
   depend on the incoming gradient (``o * (1 - tanh(c)^2)``, ``g * i * (1 - i)``,
   ...) is computed for many steps in a few large calls (the LSTM: a block of steps at a
   time, while it is in cache), so that the backward loop only multiplies them by ``dh``
   and ``dc`` and does the recurrent matmul.

Every loop runs over time only, with the whole batch in each call. A mask
``(time, batch)`` (``RNN`` passes it only when it has one) enters as one select per step
that has padding: in forward the new state is replaced by the old one at padded samples
(``np.copyto(..., where=pad)`` with ``pad: (batch, 1)``; the LSTM copies its padded columns
by index); in backward the local derivatives of padded samples are zeroed (so their
weight, bias and input gradients are zero) and the state gradient of a padded sample is
selected past the step unchanged. Without a mask not one operation differs.

The built-in cells use these functions as their ``forward_sequence``,
``backward_sequence`` and ``state_at`` (the sequence interface of ``Cell``): each
takes the cell as its first argument. ``tests/layers/test_fused.py`` checks, in
float64, for every cell and activation, that they give the same outputs, final
state, per-step states and gradients (parameters, input, initial state) as the loop
over ``step`` / ``step_backward``, to 1e-12.

A cache is a dict of the per-step arrays; ``"states"`` holds one ``(T + 1, B, H)``
array per state entry (index ``t``: the state after ``t`` steps).

``common.py`` holds what the kernels share; ``rnn.py``, ``lstm.py`` and ``gru.py`` one cell each.
"""

from .common import Workspace, accumulate_weights, project, state_at
from .gru import gru_backward_sequence, gru_forward_sequence
from .lstm import lstm_backward_sequence, lstm_forward_sequence
from .rnn import rnn_backward_sequence, rnn_forward_sequence

__all__ = ["Workspace", "accumulate_weights", "project", "state_at", "rnn_forward_sequence",
           "rnn_backward_sequence", "lstm_forward_sequence", "lstm_backward_sequence",
           "gru_forward_sequence", "gru_backward_sequence"]
