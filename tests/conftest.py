"""Shared fixtures: float64 default dtype for gradient checks, and seeding."""

import numpy as np
import pytest

import minidl as mdl


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    """Every test starts and ends with minidl's default dtype, whatever it does."""
    mdl.set_default_dtype(np.float32)
    yield
    mdl.set_default_dtype(np.float32)


@pytest.fixture
def float64():
    """Layers built in the test are float64 (restored to float32 afterwards)."""
    mdl.set_default_dtype(np.float64)
    yield np.float64


@pytest.fixture
def rng():
    """Seed minidl's weight init and return a seeded numpy Generator for test data."""
    mdl.set_seed(1234)
    return np.random.default_rng(1234)
