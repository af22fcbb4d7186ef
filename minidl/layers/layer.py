"""Layer: the base class of every layer, recurrent wrapper and model; the registry of layer classes."""

import inspect
from collections.abc import Mapping

import numpy as np

from .._checks import fmt_shape
from .._dtype import as_float_dtype, get_default_dtype
from .._random import get_rng
from ..parameter import Parameter

_LAYER_TYPES = {}  # the name a file uses -> the one class it means


def layer_class(name):
    """Return the Layer subclass registered under ``name`` (used by ``load_model``).

    ``ValueError`` for a name no class has, and for a class that is not meant to be
    built from a file (a base to subclass, a private base of minidl: see ``not_buildable``).
    """
    try:
        cls = _LAYER_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown layer type {name!r}; define (import) the class before loading a model that uses it"
        ) from None
    reason = not_buildable(cls)
    if reason:
        raise ValueError(f"layer type {name!r} ({_qualified(cls)}) cannot be built from a file: {reason}")
    return cls


def not_buildable(cls):
    """Why the Layer class ``cls`` cannot be built and run from a saved config, or "".

    Not buildable: minidl's private bases (a minidl class whose name starts with ``_``,
    e.g. ``_Activation``) and minidl's abstract classes, those that leave ``forward`` or another
    method minidl declares with a placeholder (a minidl method that only raises
    ``NotImplementedError``: ``Layer.forward``, ``Cell.step``, ``Cell.step_backward``)
    unimplemented. ``Layer.backward`` does not count: a layer used only for inference
    may load without it.
    """
    if not _is_builtin(cls):
        return ""  # a user's class is the user's to judge
    if cls.__name__.startswith("_"):
        return "it is a private base class of minidl"
    missing = [name for name in dir(cls) if name != "backward" and _is_placeholder(getattr(cls, name, None))]
    if missing:
        return f"it is an abstract base class ({', '.join(missing)} not implemented); save a subclass that implements them"
    return ""


def _is_placeholder(method):
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    module = getattr(method, "__module__", None) or ""
    return code is not None and module.startswith("minidl.") and "NotImplementedError" in code.co_names


def _is_builtin(cls):
    return cls.__module__ == "minidl" or cls.__module__.startswith("minidl.")


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(cls):
    """Register ``cls`` under its class name unless another class holds the name.

    The first class of a name keeps it, except that one of minidl's own classes always
    takes its name (so a user's ``Dense`` never shadows minidl's, even when defined before
    the minidl module is imported); a class defined again with the same module and
    qualified name (a reloaded module, a class defined in a function called twice)
    replaces its earlier self. A class left unregistered is refused when saved
    (``registered_elsewhere``), so a file never names a class that loads as another.
    """
    held = _LAYER_TYPES.get(cls.__name__)
    if held is None or _qualified(held) == _qualified(cls) or (_is_builtin(cls) and not _is_builtin(held)):
        _LAYER_TYPES[cls.__name__] = cls


def registered_elsewhere(cls):
    """The message for saving ``cls`` when its name means another class in files, or ""."""
    held = _LAYER_TYPES.get(cls.__name__)
    if held is cls:
        return ""
    if held is None:
        return f"the layer class {_qualified(cls)} is not registered under its name {cls.__name__!r}"
    return (
        f"another layer class is registered under the name {cls.__name__!r}: {_qualified(held)}, "
        f"so load_model would rebuild that one, not {_qualified(cls)}. Give your class a name no other "
        f"layer class has (e.g. 'My{cls.__name__}')"
    )


def layers_with_state(layer):
    """The layers at or below ``layer`` (itself included) that follow the recurrent-state
    protocol (``has_state``; see ``Layer``), depth first."""
    return [sub for sub in layer.sublayers() if sub.has_state]


def unconfigured_arguments(cls):
    """The ``__init__`` arguments of the Layer class ``cls`` that its ``get_config`` cannot know.

    A ``get_config`` returns the constructor arguments of the class that defines it.
    A subclass that adds ``__init__`` arguments without overriding ``get_config`` would
    be saved without them. Returns ``(names, definer)``: the arguments of
    ``cls.__init__`` that ``definer.__init__`` does not take, where ``definer`` is the
    class whose ``get_config`` ``cls`` uses (``*args`` / ``**kwargs`` are not counted).
    """
    definer = next(c for c in cls.__mro__ if "get_config" in vars(c))
    known = set(_init_arguments(definer))
    return [name for name in _init_arguments(cls) if name not in known], definer


def _init_arguments(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


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
        _register(cls)

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
