"""The tree codec (minidl/io/tree.py): nested state as npz members plus JSON, and back."""

import json

import numpy as np
import pytest

from minidl.io import decode_tree, encode_tree


def _through_json(obj, prefix="opt"):
    """Encode ``obj``, pass the tree through JSON text as a file does, decode it again."""
    arrays = {}
    tree = json.loads(json.dumps(encode_tree(obj, prefix, arrays)))
    return decode_tree(tree, arrays, "here"), arrays


def test_an_optimizer_like_state_round_trips():
    exp_avg = np.arange(6.0).reshape(2, 3)
    steps = np.array([1, 2], np.int64)
    state = {
        "config": {"lr": np.float32(0.5), "betas": (0.9, 0.999), "nesterov": False, "name": "Adam", "eps": None},
        "state": [{"step": 3, "exp_avg": exp_avg}, {}, {"steps": steps}],
    }
    back, arrays = _through_json(state)
    assert sorted(arrays) == ["opt/state/0/exp_avg", "opt/state/2/steps"]  # keyed by their path in the tree
    assert arrays["opt/state/0/exp_avg"] is exp_avg
    assert back["config"] == {"lr": 0.5, "betas": (0.9, 0.999), "nesterov": False, "name": "Adam", "eps": None}
    assert type(back["config"]["lr"]) is float and type(back["config"]["betas"]) is tuple
    assert type(back["state"]) is list and back["state"][1] == {} and back["state"][0]["step"] == 3
    assert back["state"][0]["exp_avg"] is exp_avg and back["state"][2]["steps"].dtype == np.int64
    assert list(back) == ["config", "state"] and list(back["config"]) == list(state["config"])  # order kept


def test_a_generator_state_round_trips_and_draws_the_same_numbers():
    rng = np.random.default_rng(5)
    rng.standard_normal(3)
    back, _ = _through_json(rng.bit_generator.state, "rng")
    other = np.random.default_rng(0)
    other.bit_generator.state = back
    np.testing.assert_array_equal(other.permutation(20), rng.permutation(20))


def test_what_cannot_be_stored_is_named():
    with pytest.raises(TypeError, match=r"^checkpoint: cannot store a value of type object at 'opt/state/0'$"):
        encode_tree({"state": [object()]}, "opt", {})
    with pytest.raises(TypeError, match=r"type set at 'opt/s'"):
        encode_tree({"s": {1, 2}}, "opt", {})


@pytest.mark.parametrize(
    "tree, pattern",
    [
        ({"__array__": "opt/x"}, r"^here: the checkpoint refers to a missing array 'opt/x'$"),
        ({"__list__": [{"__array__": "y"}]}, r"missing array 'y'"),
        ({"lr": 0.1}, r"^here: malformed checkpoint entry \['lr'\]$"),
        ({"__dict__": [["a", {"what": 1}]]}, r"malformed checkpoint entry \['what'\]"),
    ],
)
def test_a_damaged_tree_is_a_value_error(tree, pattern):
    with pytest.raises(ValueError, match=pattern):
        decode_tree(tree, {"z": np.zeros(1)}, "here")
