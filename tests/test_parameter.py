"""Parameter: its fields, in-place zeroing, and the float-only rule."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params


def test_parameter_fields():
    p = mdl.Parameter(np.array([[1.0, 2.0, 3.0]], np.float32), name="w")
    assert p.name == "w" and p.shape == (1, 3) and p.size == 3 and p.dtype == np.float32
    assert p.grad.shape == p.data.shape and p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, 0.0)
    grad = p.grad
    p.grad += 5.0
    p.zero_grad()
    assert p.grad is grad  # zeroed in place, same memory
    np.testing.assert_array_equal(p.grad, 0.0)
    assert "w" in repr(p) and "(1, 3)" in repr(p)


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match=r"Parameter 'w'.*float array.*int64"):
        mdl.Parameter(np.array([1, 2], np.int64), name="w")


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "parameter_int",
            lambda: mdl.Parameter(np.arange(3), "w"),
            TypeError,
            r"Parameter 'w': expected a float array, got dtype int64",
        ),
    ("parameter_complex", lambda: mdl.Parameter(np.zeros(2, complex), "w"),
         TypeError, r"^Parameter 'w': expected a float array, got dtype complex128"),
    ("parameter_object", lambda: mdl.Parameter(np.array([None]), "w"),
         TypeError, r"^Parameter 'w': expected a float array, got dtype object"),
    ("parameter_string", lambda: mdl.Parameter(np.array(["a"]), "w"),
         TypeError, r"^Parameter 'w': expected a float array, got dtype <U1"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
