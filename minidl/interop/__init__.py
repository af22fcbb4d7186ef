"""Weight conversion between minidl and PyTorch / Keras layers, on plain arrays.

minidl keeps Keras' layout (``x @ kernel``, kernels ``(in, out)``), so Keras
weights load as they are; PyTorch stores ``(out, in)`` matrices, two biases per
recurrent layer and, for the GRU, another gate order. The functions here do the
conversion in both directions; ``torch`` and ``keras`` are never imported (a
tensor is converted with ``.detach().cpu().numpy()``, a module through its
``state_dict()`` / ``get_weights()``).

Kinds (``kind=``): ``"dense"`` (``nn.Linear``, ``keras.layers.Dense``), ``"embedding"``
(``nn.Embedding``, ``keras.layers.Embedding``: the same table, ``(num, dim)``), ``"rnn"``
(``nn.RNN``/``nn.RNNCell``, ``SimpleRNN``), ``"lstm"``, ``"gru"``. Aliases
``"linear"``, ``"simple_rnn"`` and class names are accepted; when ``kind`` is None
it is read from the module's class or from the array shapes.

PyTorch ``<->`` minidl (``H`` hidden size; ``sfx`` is ``_l{layer_index}``, or empty
for ``nn.RNNCell``/``nn.LSTMCell``/``nn.GRUCell``)::

    kernel            = weight_ih{sfx}.T             (GRU: row blocks r, z, n -> z, r, n first)
    recurrent_kernel  = weight_hh{sfx}.T
    bias (RNN, LSTM)  = bias_ih{sfx} + bias_hh{sfx}   (export: bias_ih = bias, bias_hh = 0)
    bias (GRU)        = [bias_ih{sfx}; bias_hh{sfx}]  (each reordered to z, r, n)
    Dense kernel, bias = weight.T, bias

A module built with ``bias=False`` (no bias entries) converts to zero biases. A
bidirectional module (``bidirectional=True``) loads into ``Bidirectional(RNN(...))``: the
``{sfx}`` keys into ``forward_layer``, the ``{sfx}_reverse`` keys into ``backward_layer``;
Keras' ``Bidirectional.get_weights()`` is the forward layer's list, then the backward
layer's. Refused with a ``ValueError``: ``proj_size > 0`` LSTMs, ``nn.Embedding(max_norm=...)``,
``GRU(reset_after=False)``, and recurrent layers whose activation differs from the cell's
(``nn.RNN(nonlinearity=...)``; a Keras layer's ``activation`` / ``recurrent_activation``,
read from the layer or passed to ``load_keras_weights``).
"""

from .keras import from_keras, load_keras_weights, to_keras
from .torch import from_torch, load_torch_weights, to_torch

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras", "load_torch_weights", "load_keras_weights"]

# The public home of these functions is minidl.interop (as numpy's set_module does): their
# reprs, pickled references and the API reference name it, not the file they live in.
for _function in (from_torch, to_torch, load_torch_weights, from_keras, to_keras, load_keras_weights):
    _function.__module__ = __name__
del _function
