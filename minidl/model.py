"""Sequential: a stack of layers applied in order."""

from .layers.base import Layer


class Sequential(Layer):
    """Applies ``layers`` in order; ``backward`` runs them in reverse.

    State-dict names are ``"<index>.<param path>"``, e.g. ``"0.cell.kernel"``.
    """

    def __init__(self, layers):
        super().__init__()
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be a Layer, got {type(layer).__name__}")
        self.layers = layers

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def reset_states(self):
        for layer in self.sublayers():
            if layer is not self and callable(getattr(layer, "reset_states", None)):
                layer.reset_states()
