"""Learning-rate schedules: hand-computed lr sequences, torch's stepping semantics and
torch.optim.lr_scheduler itself, state dicts, bad arguments, a user's schedule, and use in
a real TBPTTTrainer fit (through the callback adapter). ReduceLROnPlateau, the other half
of lr_scheduler.py, is tested in test_lr_scheduler_plateau.py."""

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, StepLR
from minidl.training.callbacks import Callback


def optimizer(lr=1.0):
    return mdl.SGD([mdl.Parameter(np.zeros(2), "w")], lr=lr)


def trace(scheduler, steps):
    """The lr after construction, then after each of ``steps`` calls of step()."""
    rates = [scheduler.optimizer.lr]
    for _ in range(steps):
        scheduler.step()
        assert scheduler.get_last_lr() == scheduler.optimizer.lr
        rates.append(scheduler.optimizer.lr)
    return rates


# ---- lr sequences by hand ------------------------------------------------------------


def test_step_lr_by_hand():
    sched = StepLR(optimizer(1.0), step_size=3, gamma=0.5)
    assert sched.last_epoch == 0 and sched.base_lr == 1.0 and sched.get_last_lr() == 1.0
    assert trace(sched, 10) == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125]
    assert sched.last_epoch == 10 and sched.base_lr == 1.0


def test_step_lr_default_gamma_and_step_size_one():
    assert trace(StepLR(optimizer(2.0), step_size=1), 3) == pytest.approx([2.0, 0.2, 0.02, 0.002], rel=1e-15)


def test_exponential_lr_by_hand():
    assert trace(ExponentialLR(optimizer(0.8), gamma=0.5), 4) == [0.8, 0.4, 0.2, 0.1, 0.05]
    assert trace(ExponentialLR(optimizer(0.1), gamma=0.9), 3) == pytest.approx([0.1, 0.09, 0.081, 0.0729], rel=1e-15)


def test_cosine_annealing_by_hand_over_three_periods():
    # base 1, T_max 4: (1 + cos(pi e / 4)) / 2; down to 0 at e = 4, back to 1 at e = 8, ...
    c = (1 + math.sqrt(0.5)) / 2
    one_period = [1.0, c, 0.5, 1 - c, 0.0, 1 - c, 0.5, c]
    rates = trace(CosineAnnealingLR(optimizer(1.0), T_max=4), 12)
    np.testing.assert_allclose(rates, one_period + one_period[:5], rtol=0, atol=1e-15)


@pytest.mark.parametrize(("T_max", "eta_min", "base"), [(1, 0.0, 1.0), (3, 0.0, 0.1), (7, 0.01, 0.5), (10, 0.2, 0.1)])
def test_cosine_annealing_matches_the_closed_form(T_max, eta_min, base):
    sched = CosineAnnealingLR(optimizer(base), T_max=T_max, eta_min=eta_min)
    rates = trace(sched, 3 * T_max + 1)
    closed = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T_max)) / 2 for e in range(3 * T_max + 2)]
    np.testing.assert_allclose(rates, closed, rtol=1e-12, atol=1e-15)
    assert min(rates) == pytest.approx(min(eta_min, base), abs=1e-15)


def test_cosine_eta_min_by_hand():
    # base 0.5, eta_min 0.1, T_max 2: 0.5, 0.3, 0.1, 0.3, 0.5
    rates = trace(CosineAnnealingLR(optimizer(0.5), T_max=2, eta_min=0.1), 4)
    np.testing.assert_allclose(rates, [0.5, 0.3, 0.1, 0.3, 0.5], rtol=1e-14)


def test_updates_chain_on_the_current_lr_as_torchs_do():
    opt = optimizer(1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    sched.step()                # epoch 1: unchanged
    opt.lr = 0.3                # someone else (say ReduceLROnPlateau) lowers it
    sched.step()                # epoch 2: 0.3 * 0.5
    assert opt.lr == pytest.approx(0.15, rel=1e-15)
    exp = ExponentialLR(opt, gamma=0.5)
    assert exp.base_lr == pytest.approx(0.15) and exp.last_epoch == 0
    exp.step()
    sched.step()                # two schedules on one optimizer multiply (StepLR: epoch 3 keeps)
    assert opt.lr == pytest.approx(0.075, rel=1e-15)


# ---- state dicts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda o: StepLR(o, step_size=3, gamma=0.5),
        lambda o: ExponentialLR(o, gamma=0.7),
        lambda o: CosineAnnealingLR(o, T_max=3, eta_min=0.05),
    ],
)
def test_state_dict_round_trip_resumes_the_schedule(make):
    opt = optimizer(0.5)
    sched = make(opt)
    trace(sched, 5)  # through a minimum of the cosine
    state = json.loads(json.dumps(sched.state_dict()))
    rest = trace(sched, 7)[1:]

    resumed_opt = optimizer(state["last_lr"])  # as a checkpoint restores the optimizer's lr
    resumed = make(resumed_opt)
    assert resumed.base_lr == state["last_lr"]
    resumed.load_state_dict(state)
    assert resumed.base_lr == 0.5 and resumed.last_epoch == 5
    assert trace(resumed, 7)[1:] == rest


def test_state_dict_contents():
    sched = CosineAnnealingLR(optimizer(0.5), T_max=4, eta_min=0.1)
    sched.step()
    state = sched.state_dict()
    assert state == {
        "type": "CosineAnnealingLR",
        "config": {"T_max": 4, "eta_min": 0.1},
        "last_epoch": 1,
        "base_lr": 0.5,
        "last_lr": sched.get_last_lr(),
    }
    assert repr(sched) == f"CosineAnnealingLR(T_max=4, eta_min=0.1, last_epoch=1, lr={sched.get_last_lr()!r})"


def _state(change):
    state = StepLR(optimizer(), step_size=2).state_dict()
    change(state)
    return state


@pytest.mark.parametrize(
    ("state", "exc", "fragment"),
    [
        ([1], TypeError, "StepLR.load_state_dict: expected a mapping, got list"),
        (_state(lambda s: s.pop("last_lr")), ValueError, "missing keys ['last_lr']"),
        (_state(lambda s: s.update(type="ExponentialLR")), ValueError, "for a 'ExponentialLR' scheduler, not 'StepLR'"),
        (_state(lambda s: s.update(last_epoch=-1)), ValueError, "last_epoch must be >= 0, got -1"),
        (_state(lambda s: s.update(last_epoch=2.0)), TypeError, "last_epoch must be an int, got 2.0"),
        (_state(lambda s: s.update(base_lr=-0.1)), ValueError, "base_lr must be >= 0.0, got -0.1"),
        (_state(lambda s: s["config"].update(step_size=0)), ValueError, "StepLR: step_size must be >= 1, got 0"),
        (_state(lambda s: s["config"].update(gamma="x")), TypeError, "StepLR: gamma must be a real number"),
        (_state(lambda s: s["config"].pop("gamma")), ValueError, "config has missing keys ['gamma']"),
        (_state(lambda s: s.update(config=[])), TypeError, "'config' must be a mapping"),
    ],
)
def test_load_state_dict_rejects_bad_state_and_changes_nothing(state, exc, fragment):
    sched = StepLR(optimizer(0.4), step_size=5, gamma=0.3)
    sched.step()
    before = sched.state_dict()
    with pytest.raises(exc) as info:
        sched.load_state_dict(state)
    assert fragment in str(info.value)
    assert sched.state_dict() == before


# ---- bad arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: StepLR(object(), 3), TypeError, "StepLR: optimizer must be an Optimizer, got object"),
        (lambda: StepLR(optimizer(), 0), ValueError, "StepLR: step_size must be >= 1, got 0"),
        (lambda: StepLR(optimizer(), 2.5), TypeError, "StepLR: step_size must be an int, got 2.5"),
        (lambda: StepLR(optimizer(), 2, gamma=0.0), ValueError, "StepLR: gamma must be > 0.0, got 0.0"),
        (lambda: ExponentialLR(optimizer(), gamma=-0.5), ValueError, "ExponentialLR: gamma must be > 0.0, got -0.5"),
        (lambda: ExponentialLR(optimizer(), gamma=float("inf")), ValueError, "ExponentialLR: gamma must be finite"),
        (lambda: CosineAnnealingLR(optimizer(), T_max=0), ValueError, "CosineAnnealingLR: T_max must be >= 1, got 0"),
        (lambda: CosineAnnealingLR(optimizer(), T_max=5, eta_min=-1e-3), ValueError,
         "CosineAnnealingLR: eta_min must be >= 0.0, got -0.001"),
        (lambda: CosineAnnealingLR(optimizer(), T_max=None), TypeError, "CosineAnnealingLR: T_max must be an int"),
    ],
)
def test_bad_arguments(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_an_lr_that_overflows_is_an_error_naming_lr():
    sched = ExponentialLR(optimizer(1e300), gamma=1e10)
    with pytest.raises(ValueError, match="SGD: lr must be finite"):
        sched.step()


# ---- as a trainer callback -------------------------------------------------------------


def _model():
    mdl.set_seed(3)
    return mdl.Sequential([mdl.RNN(mdl.RNNCell(2, 3)), mdl.Dense(3, 1)])


def test_fit_with_a_schedule_records_lr_and_trains_with_it(float64):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 4, 2)), rng.normal(size=(5, 1))

    model = _model()
    opt = mdl.SGD(model.parameters(), lr=0.1)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    assert isinstance(sched, LRScheduler) and not isinstance(sched, Callback)  # a plain object: fit adapts it
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0)
    history = trainer.fit(x, y, epochs=3, batch_size=5, shuffle=False, verbose=0, callbacks=[sched])
    # logs["lr"] is the lr after the epoch's step: the one the next epoch uses (as ReduceLROnPlateau)
    assert history.history["lr"] == [0.05, 0.025, 0.0125]
    assert sched.last_epoch == 3 and opt.lr == 0.0125

    # One full-batch update per epoch, with lr 0.1, 0.05, 0.025, done by hand.
    manual = _model()
    loss = mdl.MSELoss()
    for lr in (0.1, 0.05, 0.025):
        manual.zero_grad()
        loss(manual(x), y)
        manual.backward(loss.backward())
        mdl.SGD(manual.parameters(), lr=lr).step()
    for name, value in manual.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value, rtol=1e-12, atol=1e-15, err_msg=name)

    # A second fit goes on with the schedule where it was.
    history = trainer.fit(x, y, epochs=2, batch_size=5, shuffle=False, verbose=0, callbacks=[sched])
    assert history.history["lr"] == [0.00625, 0.003125]


def test_fit_with_cosine_schedule_and_validation(float64):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3, 2)), rng.normal(size=(6, 1))
    model = _model()
    opt = mdl.Adam(model.parameters(), lr=0.01)
    sched = CosineAnnealingLR(opt, T_max=2, eta_min=0.001)
    history = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0).fit(
        x, y, epochs=4, batch_size=3, validation_data=(x, y), verbose=0, callbacks=[sched]
    )
    np.testing.assert_allclose(history.history["lr"], [0.0055, 0.001, 0.0055, 0.01], rtol=1e-12)
    assert sorted(history.history) == ["loss", "lr", "val_loss"]


def test_fit_rejects_a_schedule_on_another_optimizer():
    model = _model()
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), seed=0)
    other = StepLR(mdl.SGD(model.parameters(), lr=0.1), step_size=1)
    x, y = np.zeros((2, 3, 2)), np.zeros((2, 1))
    with pytest.raises(ValueError, match="StepLR: the scheduler was built on another optimizer than the trainer's"):
        trainer.fit(x, y, epochs=1, verbose=0, callbacks=[other])
    assert other.last_epoch == 0


def test_optim_never_imports_training():
    """A schedule is a plain object: no module of minidl/optim imports minidl.training (the
    callback adapter lives with the callbacks)."""
    folder = Path(mdl.optim.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert "training" not in name, f"{path.name} imports {name}"
    assert len(list(folder.glob("*.py"))) == 9


def test_top_level_names():
    assert (mdl.LRScheduler, mdl.StepLR, mdl.ExponentialLR, mdl.CosineAnnealingLR) == (
        LRScheduler, StepLR, ExponentialLR, CosineAnnealingLR
    )


# ---- against torch ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "epochs"),
    [
        (lambda o: StepLR(o, 3), lambda lrs, o: lrs.StepLR(o, 3), 12),
        (lambda o: StepLR(o, 2, gamma=0.7), lambda lrs, o: lrs.StepLR(o, 2, gamma=0.7), 12),
        (lambda o: ExponentialLR(o, 0.9), lambda lrs, o: lrs.ExponentialLR(o, 0.9), 15),
        (lambda o: CosineAnnealingLR(o, 1), lambda lrs, o: lrs.CosineAnnealingLR(o, 1), 6),
        (lambda o: CosineAnnealingLR(o, 5), lambda lrs, o: lrs.CosineAnnealingLR(o, 5), 16),
        (lambda o: CosineAnnealingLR(o, 7, eta_min=0.01), lambda lrs, o: lrs.CosineAnnealingLR(o, 7, eta_min=0.01), 22),
    ],
)
def test_schedules_match_torch(ours, theirs, epochs):
    torch = pytest.importorskip("torch")
    opt = mdl.SGD([mdl.Parameter(np.zeros(2), "w")], lr=0.1)
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    sched, t_sched = ours(opt), theirs(torch.optim.lr_scheduler, t_opt)
    rates, t_rates = [sched.get_last_lr()], [t_sched.get_last_lr()[0]]
    for _ in range(epochs):
        t_opt.step()  # torch wants the optimizer step first
        sched.step()
        t_sched.step()
        rates.append(sched.get_last_lr())
        t_rates.append(t_sched.get_last_lr()[0])
    assert sched.last_epoch == t_sched.last_epoch == epochs
    np.testing.assert_allclose(rates, t_rates, rtol=1e-12, atol=1e-15)
    assert len(set(rates)) > 1


# ---- a user's schedule -------------------------------------------------------------------


class Halving(LRScheduler):
    """A user's schedule: halve the lr every ``every`` epochs, never below ``floor``."""

    def __init__(self, optimizer, every=2, floor=0.0):
        super().__init__(optimizer, every=every, floor=floor)

    def next_lr(self, lr):
        return max(lr / 2, self.defaults["floor"]) if self.last_epoch % self.defaults["every"] == 0 else lr


def test_a_user_schedule_steps_saves_and_resumes_generically():
    sched = Halving(optimizer(1.0), every=2, floor=0.2)
    assert sched.defaults == {"every": 2, "floor": 0.2}
    assert trace(sched, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2]
    state = json.loads(json.dumps(sched.state_dict()))
    assert state == {"type": "Halving", "config": {"every": 2, "floor": 0.2}, "last_epoch": 6, "base_lr": 1.0,
                     "last_lr": 0.2}
    resumed = Halving(optimizer(0.2), every=5)
    resumed.load_state_dict(state)
    assert resumed.defaults == sched.defaults and resumed.last_epoch == 6 and resumed.base_lr == 1.0
    assert repr(resumed) == "Halving(every=2, floor=0.2, last_epoch=6, lr=0.2)"


def test_a_user_schedule_in_fit_and_its_contract_errors(float64):
    model = _model()
    opt = mdl.SGD(model.parameters(), lr=0.4)
    x, y = np.zeros((2, 3, 2)), np.zeros((2, 1))
    history = mdl.TBPTTTrainer(model, mdl.MSELoss(), opt, seed=0).fit(
        x, y, epochs=4, verbose=0, callbacks=[Halving(opt, every=1)])
    assert history.history["lr"] == [0.2, 0.1, 0.05, 0.025]

    class Nothing(LRScheduler):
        pass

    with pytest.raises(NotImplementedError, match=r"Nothing must implement next_lr\(lr\)"):
        Nothing(optimizer()).step()
    with pytest.raises(TypeError, match=r"Halving: floor must be a number, bool, str or None \(to be saved\), "
                                        r"got list"):
        Halving(optimizer(), floor=[0.1])
