"""The Layer base (minidl/layers/layer.py): the class registry, the recurrent-state protocol,
which constructor arguments a get_config covers, shared parameters."""

import numpy as np
import pytest

import minidl as mdl
from minidl.layers.layer import layer_class, layers_with_state, shares_parameters, unconfigured_arguments


class _RunningSum(mdl.Layer):
    """``y[:, t] = s + x[:, 0] + ... + x[:, t]`` from the state ``s`` (zeros by default).

    A user layer that follows the recurrent-state protocol, and records which of its
    methods are called. ``x: (batch, time, features) -> y`` of the same shape.
    """

    has_state = True

    def __init__(self, stateful=False):
        super().__init__()
        self.stateful = stateful
        self.calls, self.set_to = [], []
        self._state = None

    def get_config(self):
        return {"stateful": self.stateful}

    def get_state(self):
        self.calls.append("get_state")
        return None if self._state is None else (self._state.copy(),)

    def set_state(self, state):
        self.calls.append("set_state")
        self.set_to.append(None if state is None else state[0].copy())
        self._state = None if state is None else np.array(state[0])

    def reset_states(self):
        self.calls.append("reset_states")
        self._state = None

    def state_at(self, t):
        self.calls.append("state_at")
        return (self._start.copy() if t == 0 else self._ys[:, t - 1].copy(),)

    def forward(self, x):
        self._start = np.zeros_like(x[:, 0]) if self._state is None else self._state
        self._ys = self._start[:, None] + np.cumsum(x, axis=1)
        if self.stateful:
            self._state = self._ys[:, -1].copy()
        return self._ys.copy()

    def backward(self, grad_out):
        return np.cumsum(grad_out[:, ::-1], axis=1)[:, ::-1]  # dx_t = sum of the gradients at steps >= t


class _ResetsButHasNoState(mdl.Layer):
    """Has a ``reset_states`` method but does not declare ``has_state``: nobody calls it."""

    def reset_states(self):
        raise AssertionError("reset_states called on a layer without has_state")

    def forward(self, x):
        return x

    def backward(self, grad_out):
        return grad_out


# ---- the recurrent-state protocol ----------------------------------------------------------------
def test_layers_with_state_finds_declared_layers_at_any_depth():
    inner, rnn = _RunningSum(), mdl.RNN(mdl.GRUCell(2, 2))
    bi = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(2, 2)))
    model = mdl.Sequential([mdl.Sequential([inner, _ResetsButHasNoState()]), rnn, bi, mdl.Dense(4, 1)])
    assert layers_with_state(model) == [inner, rnn, bi.forward_layer, bi.backward_layer]
    assert layers_with_state(rnn) == [rnn] and layers_with_state(mdl.Dense(2, 2)) == []
    assert mdl.Layer.has_state is False and mdl.RNN.has_state is True and mdl.Bidirectional.has_state is False


def test_sequential_reset_states_goes_through_the_protocol_only():
    layer = _RunningSum(stateful=True)
    model = mdl.Sequential([layer, _ResetsButHasNoState()])
    x = np.ones((2, 3, 1))
    model.forward(x)
    np.testing.assert_array_equal(model.forward(x)[:, 0, 0], [4.0, 4.0])  # carried: 3 + 1
    model.reset_states()
    assert layer.calls == ["reset_states"]
    np.testing.assert_array_equal(model.forward(x)[:, 0, 0], [1.0, 1.0])


def test_gradcheck_restores_the_state_before_every_forward(float64, rng):
    layer = _RunningSum(stateful=True)
    layer.set_state((rng.standard_normal((2, 3)),))
    model = mdl.Sequential([mdl.Dense(3, 3), layer])
    state = layer.get_state()
    # a carried state that gradcheck did not restore would shift every perturbed output
    assert mdl.gradcheck(model, rng.standard_normal((2, 4, 3)))
    np.testing.assert_array_equal(layer.get_state()[0], state[0])  # it checked a copy


def test_the_trainer_drives_a_user_stateful_layer_through_the_protocol(float64, rng):
    layer = _RunningSum()
    model = mdl.Sequential([layer, mdl.Dense(1, 1)])
    x = rng.standard_normal((2, 6, 1))
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.01), k1=2, k2=3)
    layer.calls.clear()
    trainer.fit(x, x, epochs=1, batch_size=2, shuffle=False, verbose=0)
    # windows (s, p, e): (0, 0, 2), (1, 2, 4), (3, 4, 6); each starts from the state stored at s
    assert layer.calls == ["reset_states", "set_state", "state_at", "set_state", "state_at", "set_state", "reset_states"]
    assert layer.set_to[0] is None
    np.testing.assert_allclose(layer.set_to[1], x[:, 0], rtol=1e-15)         # the state after step 0
    np.testing.assert_allclose(layer.set_to[2], x[:, :3].sum(1), rtol=1e-15)  # after steps 0..2


def test_supports_truncation_is_declared_on_the_class():
    assert mdl.Layer.supports_truncation is True and mdl.Bidirectional.supports_truncation is False
    model = mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 2))), mdl.Dense(4, 1)])
    with pytest.raises(ValueError, match="Bidirectional reads each sequence in both directions and cannot be truncated"):
        mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=2)


# ---- the registry and configs ----------------------------------------------------------------------
def test_every_subclass_is_registered_by_name():
    class _Registered(mdl.Layer):
        pass

    assert layer_class("_Registered") is _Registered and layer_class("Dense") is mdl.Dense
    with pytest.raises(ValueError, match=r"unknown layer type 'NoSuchLayer'; define \(import\) the class"):
        layer_class("NoSuchLayer")


def test_unconfigured_arguments_compares_init_with_the_get_config_owner():
    class _Extra(mdl.Dense):
        def __init__(self, in_features, out_features, gain=1.0, *args, **kwargs):
            super().__init__(in_features, out_features, *args, **kwargs)

    class _Configured(_Extra):
        def get_config(self):
            return {**super().get_config(), "gain": 1.0}

    class _Inherits(_Configured):  # no __init__, no get_config of its own: _Configured's cover it
        pass

    assert unconfigured_arguments(_Extra) == (["gain"], mdl.Dense)  # *args / **kwargs not counted
    assert unconfigured_arguments(_Configured) == ([], _Configured)
    assert unconfigured_arguments(_Inherits) == ([], _Configured)
    assert unconfigured_arguments(mdl.Tanh) == ([], mdl.Layer)
    assert unconfigured_arguments(mdl.RNN) == ([], mdl.RNN)


def test_shares_parameters():
    a, b = mdl.Dense(2, 2), mdl.Dense(2, 2)
    assert not shares_parameters(mdl.Sequential([a, b]))
    b.kernel = a.kernel
    assert shares_parameters(mdl.Sequential([a, b])) and len(mdl.Sequential([a, b]).parameters()) == 3
