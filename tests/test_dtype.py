"""minidl._dtype: the default dtype of new layers (set_default_dtype / get_default_dtype)."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "default_dtype_int",
            lambda: mdl.set_default_dtype(np.int32),
            TypeError,
            r"dtype: expected float32 or float64, got int32",
        ),
    (
            "default_dtype_float16",
            lambda: mdl.set_default_dtype("float16"),
            TypeError,
            r"dtype: expected float32 or float64, got float16",
        ),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
