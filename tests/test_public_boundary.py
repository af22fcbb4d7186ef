"""What holds at the public boundary for every exported class: backward before forward (and
after a forward under ``no_grad``) for every layer type and every loss, raised by minidl itself.

The bad-input tables of each unit (``BAD_INPUTS``: a call, the exception type and a regex
for the message, which must name what is wrong, the owner and argument, expected and
received) live in that unit's test module; ``tests/helpers/bad_inputs.py`` has their
check. The last test here counts them, so that none is lost silently.
"""

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import raised_in_minidl

TESTS = Path(__file__).resolve().parent


# ---- backward before forward, for every layer type and loss -----------------------------------------------------
def _x(shape):
    return lambda: np.zeros(shape)


LAYERS = {  # type name: (build, a valid input)
    "Dense": (lambda: mdl.Dense(3, 2), _x((2, 3))),
    "Tanh": (mdl.Tanh, _x((2, 3))),
    "Sigmoid": (mdl.Sigmoid, _x((2, 3))),
    "ReLU": (mdl.ReLU, _x((2, 3))),
    "RNN": (lambda: mdl.RNN(mdl.LSTMCell(3, 2), return_sequences=True), _x((2, 4, 3))),
    "Sequential": (lambda: mdl.Sequential([mdl.RNN(mdl.RNNCell(3, 2)), mdl.Dense(2, 1)]), _x((2, 4, 3))),
    "Dropout": (lambda: mdl.Dropout(0.5), _x((2, 3))),
    "Embedding": (lambda: mdl.Embedding(5, 3), lambda: np.zeros((2, 4), np.int64)),
    "LayerNorm": (lambda: mdl.LayerNorm(3), _x((2, 3))),
    "Bidirectional": (lambda: mdl.Bidirectional(mdl.RNN(mdl.GRUCell(3, 2))), _x((2, 4, 3))),
    "Flatten": (mdl.Flatten, _x((2, 3, 1))),
    "Reshape": (lambda: mdl.Reshape((3, 1)), _x((2, 3))),
    "RepeatVector": (lambda: mdl.RepeatVector(3), _x((2, 3))),
    "Concatenate": (lambda: mdl.Concatenate(), _x((2, 3))),
    "Masking": (mdl.Masking, _x((2, 4, 3))),
}
CELL_TYPES = ["RNNCell", "LSTMCell", "GRUCell"]  # one step, no history: backward is RNN's job
ABSTRACT = {"Layer", "Cell", "Model"}


def test_every_exported_layer_type_is_in_the_table():
    exported = {n for n in dir(mdl) if inspect.isclass(getattr(mdl, n)) and issubclass(getattr(mdl, n), mdl.Layer)}
    missing = exported - set(LAYERS) - set(CELL_TYPES) - ABSTRACT
    assert not missing, f"add these layer types to LAYERS in {__file__}: {sorted(missing)}"


BACKWARD_CASES = [(n, a) for n in LAYERS if hasattr(mdl, n) for a in ("nothing", "a no_grad forward")]
BACKWARD_CASES.append(("Sequential", "predict"))


@pytest.mark.parametrize("name, after", BACKWARD_CASES)
def test_backward_without_a_recorded_forward(name, after):
    build, make_x = LAYERS[name]
    mdl.set_seed(0)
    layer = build()
    x = make_x()
    if after == "nothing":
        grad = np.zeros_like(np.asarray(layer.forward(x), float))  # the shape only; then a fresh layer
        layer = build()
    elif after == "a no_grad forward":
        with mdl.no_grad():
            grad = np.zeros_like(np.asarray(layer.forward(x), float))
    else:
        grad = np.zeros_like(layer.predict(x))
    with pytest.raises(RuntimeError, match=r"backward called before forward \(or after a forward under no_grad\)") as info:
        layer.backward(grad)
    assert raised_in_minidl(info.value)


@pytest.mark.parametrize("name", CELL_TYPES)
def test_a_cell_has_no_backward_of_its_own(name):
    cell = getattr(mdl, name)(3, 2)
    cell.forward(np.zeros((2, 3)))
    with pytest.raises(NotImplementedError, match=rf"^{name} does not implement backward"):
        cell.backward(np.zeros((2, 2)))


LOSSES = ["MSELoss", "L1Loss", "HuberLoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]


@pytest.mark.parametrize("name", [n for n in LOSSES if hasattr(mdl, n)])
def test_loss_backward_before_forward(name):
    loss = getattr(mdl, name)()
    with pytest.raises(RuntimeError, match=rf"^{name}: backward\(\) called before forward\(\)"):
        loss.backward()
    # a forward that fails validation does not make an older forward's gradient available
    target = np.array([0, 1]) if name == "CrossEntropyLoss" else np.zeros((2, 3))
    loss(np.zeros((2, 3)), target)
    with pytest.raises((ValueError, TypeError)):
        loss(np.zeros((2, 3)), np.array(["a", "b"]))
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()


def test_the_bad_input_tables_are_large_and_their_ids_unique():
    """At least 100 distinct bad inputs in the units' ``BAD_INPUTS`` tables (plus the trainer's
    ``BAD`` / ``BAD_FIT``), and more than 150 with the checks above."""
    tables = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        name = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        module = importlib.import_module(name)
        if hasattr(module, "BAD_INPUTS"):
            tables[name] = [c[0] for c in module.BAD_INPUTS]
    ids = [i for table in tables.values() for i in table]
    assert len(ids) == len(set(ids)), "a bad-input id appears twice"
    trainer = importlib.import_module("tests.training.test_trainer")
    total = len(ids) + len(trainer.BAD) + len(trainer.BAD_FIT)
    layer_cases = len(BACKWARD_CASES) + len(CELL_TYPES) + 2 * len(LOSSES)
    print(f"bad inputs: {len(ids)} in {len(tables)} tables, {total - len(ids)} more in the trainer's, "
          f"{layer_cases} backward-before-forward cases here")
    assert len(tables) >= 20 and len(ids) >= 130 and total + layer_cases >= 150
