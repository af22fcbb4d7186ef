"""Layer: the base class of every layer, recurrent wrapper and model (its registry: ``registry.py``)."""

from collections.abc import Mapping

import numpy as np

from .._checks import fmt_shape
from .._dtype import as_float_dtype, get_default_dtype
from .._random import get_rng
from ..parameter import Parameter
from .registry import register

def layers_with_state(layer):
    """The layers at or below ``layer`` (itself included) that follow the recurrent-state
    protocol (``has_state``; see ``Layer``), depth first."""
    return [sub for sub in layer.sublayers() if sub.has_state]


def shares_parameters(layer):
    """True when one ``Parameter`` is held under two names below ``layer`` (``named_parameters``
    lists it once; a saved config cannot express the sharing)."""
    return sum(1 for _ in layer._walk_parameters("")) != len(layer.named_parameters())


class Layer:
    """Base class of layers.

    Subclasses implement ``forward(x)``, which keeps what ``backward`` needs, and
    ``backward(grad_out)``, which returns the gradient with respect to the last
    forward's input and *adds* into each ``Parameter.grad``. Parameters and
    sub-layers assigned as attributes are found automatically, in assignment order,
    so ``named_parameters`` gives names like ``"cell.kernel"``.

    To be saved by ``Sequential.save`` a layer returns its constructor arguments
    from ``get_config()``: a subclass that adds ``__init__`` arguments must override
    it (``save`` refuses one that does not, see ``unconfigured_arguments``). Every
    subclass is registered by class name when defined (``layer_class``); a name
    already taken, minidl's own names first, stays with its class (``_register``).

    The recurrent-state protocol: a layer that carries a state from one time step
    to the next (``RNN``) sets ``has_state = True`` and implements

    - ``get_state()``: the state the next forward starts from, a tuple of
      ``(batch, n)`` arrays (copies), or None for zeros;
    - ``set_state(state)``: start the next forward from ``state`` (None: zeros);
    - ``reset_states()``: back to zeros;
    - ``state_at(t)``: the state after the first ``t`` steps of the last forward.

    The TBPTT trainer (the state at chunk edges, the reset before each batch),
    ``gradcheck`` (the state restored before every perturbed forward) and
    ``Sequential.reset_states`` find such layers with ``layers_with_state(model)``
    and call nothing else on them. A wrapper holding stateful layers (``Bidirectional``)
    leaves ``has_state`` False: its sub-layers are found by themselves.

    ``supports_truncation = False`` marks a layer that needs each whole sequence in
    one forward (``Bidirectional``); the trainer then refuses ``k1`` / ``k2``.

    **The mask protocol** (variable-length sequences; a mask is a bool array
    ``(batch, time)``, True at real steps). A layer whose ``forward`` takes a
    ``mask=`` keyword sets ``takes_mask = True`` (``RNN``, ``Bidirectional``); a model
    hands such a layer the mask of its input and every other layer none.
    ``compute_mask(x, mask)`` gives the mask of the layer's output from its input and
    the input's mask: by default the mask passes on unchanged (a layer that keeps the
    time axis); a layer that makes a mask (``Masking``, ``Embedding(mask_zero=True)``)
    or drops the time axis (``RNN(return_sequences=False)``, ``Flatten``) overrides it.
    """

    has_state = False
    supports_truncation = True
    takes_mask = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register(cls)

    def __init__(self):
        self.training = True

    # ---- computation -------------------------------------------------------------
    def forward(self, x):
        """Compute the output for the input ``x``; a subclass implements it.

        A layer that ``backward`` needs things from keeps them here (never aliasing the
        returned array). ``Layer`` itself raises ``NotImplementedError``.

        Args:
            x: the input array, e.g. ``(batch, features)`` or ``(batch, time, features)``.

        Returns:
            The output array, of ``compute_output_shape(x.shape)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        """Gradient with respect to the input of the last ``forward``; a subclass implements it.

        Adds into each ``Parameter.grad`` (never overwrites it). ``Layer`` itself raises
        ``NotImplementedError``.

        Args:
            grad_out: gradient of the loss with respect to the output, shaped like it.

        Returns:
            The gradient with respect to the input ``x``, shaped like ``x``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def compute_output_shape(self, input_shape):
        """Shape of the output for an input of ``input_shape`` (None for unknown sizes).

        Args:
            input_shape: tuple of ints or None, e.g. ``(None, None, 3)``.

        Returns:
            The output's shape as a tuple; the default returns ``input_shape`` unchanged.
        """
        return tuple(input_shape)

    def compute_mask(self, x, mask):
        """The mask of this layer's output (``(batch, time)`` bool, or None).

        Args:
            x: the input of this layer.
            mask: ``(batch, time)`` bool, True at real steps, or None.

        Returns:
            The output's mask, ``(batch, time)`` bool or None; the default returns
            ``mask`` unchanged.
        """
        return mask

    def expected_input_shape(self):
        """The input shape this layer needs, None for unknown sizes (``(None, None, 3)``),
        or None when any shape works; ``Sequential.summary`` starts from it."""
        return None

    def add_weight(self, name, shape, bound):
        """Create a ``Parameter`` named ``name`` drawn from ``U(-bound, bound)``.

        The draw uses the generator seeded by ``minidl.set_seed`` and the default
        dtype, so a model built twice after the same seed is identical. Assign the
        result to an attribute of the same name (``self.kernel = self.add_weight("kernel", ...)``).

        Args:
            name: str, the parameter's name (its attribute name in the layer).
            shape: tuple of ints, the array's shape.
            bound: float > 0, half the width of the uniform distribution.

        Returns:
            The new ``Parameter``.
        """
        data = get_rng().uniform(-bound, bound, shape).astype(get_default_dtype())
        return Parameter(data, name)

    # ---- structure ---------------------------------------------------------------
    def children(self):
        """List of ``(name, layer)`` of the direct sub-layers."""
        out = []
        for name, value in vars(self).items():
            if isinstance(value, Layer):
                out.append((name, value))
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
                out.extend((f"{name}.{i}", v) for i, v in enumerate(value))
        return out

    def sublayers(self):
        """This layer and every layer below it, depth first."""
        result = [self]
        for _, child in self.children():
            result.extend(child.sublayers())
        return result

    def named_parameters(self):
        """List of ``(dotted_name, Parameter)``; a parameter shared twice appears once."""
        seen = set()
        out = []
        for name, p in self._walk_parameters(""):
            if id(p) not in seen:
                seen.add(id(p))
                out.append((name, p))
        return out

    def _walk_parameters(self, prefix):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child._walk_parameters(f"{prefix}{name}.")

    def parameters(self):
        """List of the ``Parameter`` objects, in the order of ``named_parameters``."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set the gradient of every parameter of this layer and all below to zero."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Set training mode (dropout active) on this layer and all below.

        Args:
            mode: True for training (the default), False for evaluation; read as a bool.

        Returns:
            ``self``, so that ``model.train().forward(x)`` chains.
        """
        for layer in self.sublayers():
            layer.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode (dropout off) on this layer and all below; returns self."""
        return self.train(False)

    @property
    def dtype(self):
        """The dtype computation runs in: that of the parameters, else the default."""
        for _, p in self._walk_parameters(""):
            return p.data.dtype
        return get_default_dtype()

    def astype(self, dtype):
        """Convert every parameter to ``dtype`` in place.

        Args:
            dtype: ``np.float32`` or ``np.float64`` (or a name numpy reads as one); None
                means the default dtype.

        Returns:
            ``self``.

        Raises:
            TypeError: ``dtype`` is neither float32 nor float64.
        """
        dt = as_float_dtype(dtype)
        for p in self.parameters():
            p.astype(dt)
        return self

    # ---- state dict --------------------------------------------------------------
    def state_dict(self):
        """``{dotted_name: ndarray}`` with a copy of every parameter."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict):
        """Copy arrays from ``state_dict`` into the parameters, in place.

        A missing, extra or misshapen entry raises ``ValueError`` naming it, and so do
        non-finite values and float64 values beyond a float32 parameter's range; an
        array that is not float32 or float64 is a ``TypeError`` (see ``weight_values``).
        Nothing is changed unless every entry fits.

        Args:
            state_dict: mapping ``{dotted_name: array}``, as ``state_dict()`` returns.

        Raises:
            TypeError: ``state_dict`` is not a mapping, or an array is not float32/float64.
            ValueError: a missing, extra or misshapen entry, a non-finite value, or a
                float64 value beyond a float32 parameter's range.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{self!r}: load_state_dict expected a mapping, got {type(state_dict).__name__}")
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state_dict]
        extra = [k for k in state_dict if k not in params]
        if missing or extra:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: missing entries {missing}, unexpected entries {extra}"
            )
        arrays = {name: weight_values(state_dict[name], name, p.data) for name, p in params.items()}
        for name, p in params.items():
            p.data[...] = arrays[name]

    # ---- configuration -----------------------------------------------------------
    def get_config(self):
        """Constructor arguments as JSON-friendly values (used by save and repr)."""
        return {}

    @classmethod
    def from_config(cls, config):
        """Build a layer from the dict ``get_config()`` returned.

        Args:
            config: dict of constructor arguments; the default calls ``cls(**config)``.

        Returns:
            The new layer.
        """
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _missing_forward(self):
        return RuntimeError(f"{self!r}: backward called before forward (or after a forward under no_grad)")


def weight_values(value, name, param):
    """``value`` converted to the dtype of the parameter array ``param``, or the error naming ``name``.

    The one check every way weights come in passes (model files, checkpoints and the
    ``interop`` imports all call ``load_state_dict``): ``TypeError`` unless ``value`` is a
    float32 or float64 array; ``ValueError`` for another shape, for NaN or inf, and for a
    float64 value that float32 cannot hold (it would become inf). Warning-free, so the same
    under ``warnings.simplefilter("error")``.
    """
    value = np.asarray(value)
    if value.dtype not in (np.float32, np.float64):
        raise TypeError(f"load_state_dict: entry {name!r} must be a float32 or float64 array, got dtype {value.dtype}")
    if value.shape != param.shape:
        raise ValueError(
            f"load_state_dict: entry {name!r} expected shape {fmt_shape(param.shape)}, got {fmt_shape(value.shape)}"
        )
    if not np.isfinite(value).all():
        bad = np.argwhere(~np.isfinite(value))[0]
        raise ValueError(f"load_state_dict: entry {name!r} has non-finite values ({value[tuple(bad)]} at index "
                         f"{tuple(int(i) for i in bad)}); refused")
    with np.errstate(over="ignore"):
        converted = value.astype(param.dtype)
    if not np.isfinite(converted).all():
        raise ValueError(f"load_state_dict: entry {name!r} has values beyond {param.dtype}'s range (largest "
                         f"magnitude {np.abs(value).max():.6g}); they would become inf")
    return converted
