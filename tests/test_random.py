"""minidl._random: set_seed, the generator behind every random choice minidl makes."""

import pytest

import minidl as mdl
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    ("seed_negative", lambda: mdl.set_seed(-1), ValueError, r"set_seed: seed must be a non-negative int, got -1"),
    ("seed_float", lambda: mdl.set_seed(1.5), TypeError, r"set_seed: seed must be a non-negative int, got 1\.5"),
]


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
