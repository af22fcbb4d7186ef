"""The Optimizer base and its contract: a user's optimizer (only ``__init__`` and ``update``)
trains, saves and resumes bit-exactly like the built-ins; the generic state dict and what it
refuses for a user's optimizer, hyperparameter validation, dtypes. The built-ins' refusals
(a bad state dict, bad parameter lists) are in ``test_optimizer_inputs.py``."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_load_rejected, edited_state, make_params, run, save_and_load


class HeavyBall(mdl.Optimizer):
    """A user's optimizer: nothing but ``__init__`` and ``update`` (momentum on the raw gradient)."""

    def __init__(self, params, lr=0.05, beta=0.9):
        super().__init__(params, lr=lr, beta=beta)

    def update(self, param, grad, state):
        if not state:
            state["velocity"] = np.zeros_like(param)
            state["steps"] = 0
        state["steps"] += 1
        state["grad_norm"] = float(np.sqrt(np.sum(grad * grad)))
        state["velocity"] *= self.defaults["beta"]
        state["velocity"] += grad
        param -= self.defaults["lr"] * state["velocity"]


class Checked(HeavyBall):
    """A user's optimizer that validates its own hyperparameter too."""

    def check_defaults(self, defaults):
        d = super().check_defaults(defaults)
        if not 0.0 <= d["beta"] < 1.0:
            raise ValueError(f"Checked: beta must be in [0, 1), got {d['beta']}")
        return d


# ---- a user's optimizer ------------------------------------------------------------------


def test_a_user_optimizer_steps_as_its_update_says():
    p = mdl.Parameter(np.array([1.0, -2.0]), "w")
    opt = HeavyBall([p], lr=0.1, beta=0.5)
    assert opt.defaults == {"lr": 0.1, "beta": 0.5} and opt.lr == 0.1
    for _ in range(2):
        p.grad[...] = [1.0, 2.0]
        opt.step()
    # velocity 1 then 1.5 (times the gradient): p = p0 - 0.1 * (1 + 1.5) * g
    np.testing.assert_allclose(p.data, [1.0 - 0.25, -2.0 - 0.5], rtol=1e-15)
    assert opt.state[p]["steps"] == 2 and opt.state[p]["grad_norm"] == pytest.approx(5**0.5, rel=1e-15)
    assert repr(opt) == "HeavyBall(1 parameters, lr=0.1, beta=0.5)"


def test_a_user_optimizer_state_dict_round_trip_continues_identically():
    params = make_params()
    opt = HeavyBall(params, lr=0.02, beta=0.8)
    run(opt, params, 2)
    state = opt.state_dict()
    assert state["config"] == {"lr": 0.02, "beta": 0.8}
    assert [sorted(e) for e in state["state"]] == [["grad_norm", "steps", "velocity"]] * 3
    assert type(state["state"][0]["steps"]) is int and type(state["state"][0]["grad_norm"]) is float
    saved = save_and_load(state)
    weights = [p.data.copy() for p in params]
    run(opt, params, 3, start=2)

    fresh = make_params()
    for p, w in zip(fresh, weights):
        p.data[...] = w
    other = HeavyBall(fresh)  # default hyperparameters: the state dict brings the saved ones
    other.load_state_dict(saved)
    assert other.defaults == opt.defaults
    run(other, fresh, 3, start=2)
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)


def _user_edit(change):
    return edited_state(HeavyBall, change)


@pytest.mark.parametrize(
    ("state", "exc", "fragment"),
    [
        (_user_edit(lambda s: s["state"][0].pop("velocity")), ValueError, "state[0] has missing keys ['velocity']"),
        (_user_edit(lambda s: s["state"][1].update(exp_avg=np.zeros(4))), ValueError, "unexpected keys ['exp_avg']"),
        (_user_edit(lambda s: s["state"][1].update(velocity=np.zeros(3))), ValueError,
         "state[1]['velocity'] has shape (3,), but params[1] ('bias') has shape (4,)"),
        (_user_edit(lambda s: s["state"][2].update(velocity=2.0)), ValueError, "state[2]['velocity'] has shape ()"),
        (_user_edit(lambda s: s["state"][2].update(velocity="fast")), TypeError,
         "state[2]['velocity'] must be a real array, got dtype <U4"),
        (_user_edit(lambda s: s["state"][0].update(steps=2.5)), TypeError, "state[0]['steps'] must be an int"),
        (_user_edit(lambda s: s["state"][0].update(steps=-2)), ValueError, "state[0]['steps'] must be >= 0, got -2"),
        (_user_edit(lambda s: s["state"][0].update(steps=10**400)), ValueError,
         "HeavyBall.load_state_dict: state[0]['steps'] must be a count below 2**63, got a 401-digit number"),
        (_user_edit(lambda s: s["state"][0].update(steps=2**63)), ValueError,
         "state[0]['steps'] must be a count below 2**63, got 9223372036854775808"),
        (_user_edit(lambda s: s["state"][1]["velocity"].__setitem__(2, np.nan)), ValueError,
         "state[1]['velocity'] holds non-finite (at index (2,))"),
        (_user_edit(lambda s: s["state"][2]["velocity"].__setitem__((1, 0, 2), -np.inf)), ValueError,
         "state[2]['velocity'] holds non-finite (at index (1, 0, 2))"),
        (_user_edit(lambda s: s["state"][0].update(grad_norm=float("inf"))), ValueError,
         "state[0]['grad_norm'] must be finite, got inf"),
        (_user_edit(lambda s: s["state"][0].update(grad_norm="1")), TypeError,
         "state[0]['grad_norm'] must be a real number, got '1'"),
        (_user_edit(lambda s: s["state"][0].update(grad_norm=None)), TypeError, "state[0]['grad_norm'] must be a real"),
        (_user_edit(lambda s: s["config"].pop("beta")), ValueError, "config has missing keys ['beta']"),
        (_user_edit(lambda s: s["config"].update(lr=-0.1)), ValueError, "HeavyBall: lr must be >= 0.0, got -0.1"),
        (_user_edit(lambda s: s["config"].update(beta=object())), TypeError, "HeavyBall: beta must be a number"),
        (_user_edit(lambda s: s.update(type="Adam")), ValueError, "for a 'Adam' optimizer, not 'HeavyBall'"),
    ],
)
def test_a_user_optimizer_load_state_dict_checks_against_a_first_step(state, exc, fragment):
    params = make_params()
    opt = HeavyBall(params, lr=0.5)
    before = opt.state_dict()
    with pytest.raises(exc) as info:
        opt.load_state_dict(state)  # nothing to compare yet: the first step's state is the reference
    assert fragment in str(info.value)
    assert opt.state_dict() == before
    assert_load_rejected(opt, params, state, exc, fragment)  # and after some steps of its own


class Squares(HeavyBall):
    """A user's optimizer that keeps a running square, declared never negative."""

    non_negative_state = ("square",)

    def update(self, param, grad, state):
        square = state.pop("square", np.zeros_like(param))
        super().update(param, grad, state)
        state["square"] = square + grad * grad


@pytest.mark.parametrize("warnings_are_errors", [False, True])
def test_values_a_step_never_makes_are_refused_and_change_nothing(warnings_are_errors):
    """A negative running square, or a float64 value beyond float32 for a float32 parameter,
    is a ValueError naming the entry, also when warnings are errors (no overflow warning)."""
    import warnings

    params = make_params(np.float32)
    opt = Squares(params)
    run(opt, params, 2)
    negative = opt.state_dict()
    negative["state"][1]["square"][3] = -1e-3
    huge = opt.state_dict()
    huge["state"][0]["velocity"] = huge["state"][0]["velocity"].astype(np.float64)
    huge["state"][0]["velocity"][2, 1] = 1e300
    with warnings.catch_warnings():
        if warnings_are_errors:
            warnings.simplefilter("error")
        for state, fragment in ((negative, "state[1]['square'] holds negative values, which Squares never makes"),
                                (huge, "state[0]['velocity'] holds values too large for float32 (at index (2, 1))")):
            assert_load_rejected(opt, params, state, ValueError, fragment)
    assert Squares.non_negative_state == ("square",) and mdl.Optimizer.non_negative_state == ()


def test_check_defaults_runs_at_construction_and_at_load():
    params = make_params()
    with pytest.raises(ValueError, match=r"Checked: beta must be in \[0, 1\), got 1.5"):
        Checked(params, beta=1.5)
    opt = Checked(params, beta=0.5)
    run(opt, params, 1)
    state = opt.state_dict()
    state["config"]["beta"] = 1.0
    with pytest.raises(ValueError, match=r"Checked: beta must be in \[0, 1\), got 1.0"):
        Checked(make_params()).load_state_dict(state)
    with pytest.raises(ValueError, match=r"Checked: lr must be >= 0.0, got -1.0"):
        Checked(params, lr=-1.0)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (lambda: 0, "HeavyBall: beta must be a number, bool, str, None, array or a tuple of these (to be saved), "
                    "got function"),
        ({"a": 1}, "got dict"),
        ((0.9, object()), "HeavyBall: beta[1] must be a number"),
        (np.array(["a"]), "HeavyBall: beta must be a real array, got dtype <U1"),
        (1j, "got complex"),
    ],
)
def test_a_hyperparameter_that_cannot_be_saved_is_refused(value, fragment):
    with pytest.raises(TypeError) as info:
        HeavyBall(make_params(), beta=value)
    assert fragment in str(info.value)


def test_hyperparameters_of_every_saveable_kind_round_trip():
    class Kinds(HeavyBall):
        def __init__(self, params, **kw):
            mdl.Optimizer.__init__(self, params, lr=0.1, beta=0.5, **kw)

    opt = Kinds(make_params(), name="x", flag=True, nothing=None, pair=(1, 2.5), table=np.arange(3.0))
    config = save_and_load(opt.state_dict())["config"]
    assert config["pair"] == [1, 2.5] and config["name"] == "x" and config["flag"] is True and config["nothing"] is None
    other = Kinds(make_params(), name="y", flag=False, nothing=None, pair=(0, 0), table=np.zeros(3))
    other.load_state_dict(save_and_load(opt.state_dict()))
    np.testing.assert_array_equal(other.defaults["table"], [0.0, 1.0, 2.0])
    assert other.defaults["name"] == "x" and other.defaults["pair"] == [1, 2.5]


def test_a_state_that_cannot_be_saved_is_refused_by_state_dict():
    class Listy(mdl.Optimizer):
        def __init__(self, params):
            super().__init__(params, lr=0.1)

        def update(self, param, grad, state):
            state["history"] = [1, 2]

    params = make_params()
    opt = Listy(params)
    run(opt, params, 1)
    with pytest.raises(TypeError, match=r"Listy.state_dict: state\[0\]\['history'\] is a list; "
                                        r".* only arrays and numbers"):
        opt.state_dict()


def test_an_optimizer_without_update_says_what_to_implement():
    class Nothing(mdl.Optimizer):
        pass

    opt = Nothing(make_params(), lr=0.1)
    with pytest.raises(NotImplementedError, match=r"Nothing must implement update\(param, grad, state\)"):
        opt.step()


def test_a_state_shaped_unlike_its_parameter_is_checked_against_the_first_step():
    class RowSums(mdl.Optimizer):
        """Divides each row's step by the sum of its past absolute gradients: a state shaped (rows,)."""

        def __init__(self, params, lr=0.1):
            super().__init__(params, lr=lr)

        def update(self, param, grad, state):
            if not state:
                state["rows"] = np.zeros(param.shape[:1])
            state["rows"] += np.abs(grad).reshape(len(param), -1).sum(axis=1)
            param -= self.defaults["lr"] * grad / (1.0 + state["rows"].reshape((-1,) + (1,) * (param.ndim - 1)))

    params = make_params()
    opt = RowSums(params)
    run(opt, params, 2)
    saved = save_and_load(opt.state_dict())
    weights = [p.data.copy() for p in params]
    run(opt, params, 2, start=2)
    fresh = make_params()
    for p, w in zip(fresh, weights):
        p.data[...] = w
    other = RowSums(fresh)
    other.load_state_dict(saved)
    run(other, fresh, 2, start=2)
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)

    saved["state"][0]["rows"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"state\[0\]\['rows'\] has shape \(4,\), but for params\[0\] "
                                         r"\('kernel'\) it has shape \(3,\)"):
        other.load_state_dict(saved)


# ---- through a trainer checkpoint ------------------------------------------------------------


OPTIMIZERS = {
    "user": lambda ps: HeavyBall(ps, lr=0.02, beta=0.7),
    "sgd": lambda ps: mdl.SGD(ps, lr=0.05),
    "sgd-nesterov": lambda ps: mdl.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda ps: mdl.Adam(ps, lr=0.02, weight_decay=0.01),
    "adamw": lambda ps: mdl.AdamW(ps, lr=0.02, betas=(0.8, 0.95)),
    "rmsprop": lambda ps: mdl.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: mdl.Adagrad(ps, lr=0.05, lr_decay=0.1, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_training_resumes_bit_exactly_from_a_trainer_checkpoint(tmp_path, name):
    """N epochs, save, load into a fresh trainer, M epochs == N + M epochs in one go."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 6, 2)).astype(np.float32)
    y = rng.standard_normal((9, 6, 1)).astype(np.float32)

    def fresh(seed):
        mdl.set_seed(seed)
        model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True), mdl.Dense(3, 1)])
        opt = OPTIMIZERS[name](model.parameters())
        return mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, clipper=mdl.ClipByGlobalNorm(1.0), k1=2, k2=3, seed=seed)

    straight = fresh(4)
    straight.fit(x, y, epochs=4, batch_size=4, verbose=0)

    first = fresh(4)
    first.fit(x, y, epochs=2, batch_size=4, verbose=0)
    first.save_checkpoint(tmp_path / "ckpt.npz")
    resumed = fresh(99)  # other initial weights and generator: the checkpoint replaces them
    resumed.load_checkpoint(tmp_path / "ckpt.npz")
    resumed.fit(x, y, epochs=2, batch_size=4, verbose=0)

    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    a, b = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert a["config"] == b["config"] and a["state"][0].keys() == b["state"][0].keys()
    for ea, eb in zip(a["state"], b["state"]):
        for key in ea:
            np.testing.assert_array_equal(ea[key], eb[key], err_msg=key)


# ---- common behaviour ------------------------------------------------------------------------


def test_zero_grad_zeroes_in_place():
    params = make_params()
    grads = [p.grad for p in params]
    for p in params:
        p.grad[...] = 3.0
    mdl.SGD(params, lr=0.1).zero_grad()
    for p, g in zip(params, grads):
        assert p.grad is g
        np.testing.assert_array_equal(p.grad, 0.0)


def test_lr_can_be_changed_between_steps():
    p = mdl.Parameter(np.array([1.0]), "w")
    opt = mdl.SGD([p], lr=0.1)
    p.grad[...] = 1.0
    opt.step()
    opt.lr = 0.01
    assert opt.defaults["lr"] == 0.01
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.1 - 0.01, rel=1e-15)
    with pytest.raises(ValueError, match="SGD: lr must be >= 0.0, got -0.5"):
        opt.lr = -0.5
    assert opt.lr == 0.01


# ---- state dicts -----------------------------------------------------------------------------

ROUND_TRIPS = [
    (mdl.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, 7),
    (mdl.SGD, {"lr": 0.05}, 7),
    (mdl.Adam, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.01}, 7),
    (mdl.RMSprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "centered": True, "weight_decay": 0.01}, 3),
    (mdl.RMSprop, {"lr": 0.01}, 3),
    (mdl.Adagrad, {"lr": 0.05, "lr_decay": 0.1, "initial_accumulator_value": 0.2}, 3),
    (mdl.AdamW, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.05}, 3),
]


@pytest.mark.parametrize(("cls", "config", "seed"), ROUND_TRIPS)
def test_state_dict_round_trip_continues_identically(cls, config, seed):
    params = make_params(seed=seed)
    opt = cls(params, **config)
    run(opt, params, 2)
    saved = save_and_load(opt.state_dict())
    weights = [p.data.copy() for p in params]
    run(opt, params, 3, start=2)  # the original goes on

    fresh = make_params(seed=seed)
    for p, w in zip(fresh, weights):
        p.data[...] = w
    other = cls(fresh, lr=1.0) if cls is mdl.SGD else cls(fresh)  # the state dict brings the hyperparameters
    other.load_state_dict(saved)
    assert other.get_config() == opt.get_config()
    run(other, fresh, 3, start=2)
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)
