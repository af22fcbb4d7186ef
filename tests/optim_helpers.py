"""Shared helpers of the optimizer tests: parameters, a deterministic gradient, a step loop."""

import numpy as np

import minidl as mdl


def make_params(dtype=np.float64, seed=7):
    rng = np.random.default_rng(seed)
    return [
        mdl.Parameter(rng.normal(size=(3, 4)).astype(dtype), "kernel"),
        mdl.Parameter(rng.normal(size=(4,)).astype(dtype), "bias"),
        mdl.Parameter(rng.normal(size=(2, 1, 3)).astype(dtype), "other"),
    ]


def grad_at(value, t):
    """A gradient that depends on the parameter value and on the step."""
    return np.sin(value * (t + 1)) + 0.1 * (t + 1)


def run(opt, params, steps, start=0):
    """``steps`` optimizer steps, each after setting every gradient to ``grad_at``."""
    for t in range(start, start + steps):
        for p in params:
            p.grad[...] = grad_at(p.data, t)
        opt.step()
