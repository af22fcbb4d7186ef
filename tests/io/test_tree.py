"""The tree codec (minidl/io/tree.py): nested state as npz members plus JSON, and back; and the
budget of what a checkpoint may hold, from its trees and the model it is loaded into."""

import io
import json
import time
import warnings

import numpy as np
import pytest

import minidl as mdl
from minidl.io import decode_tree, encode_tree
from minidl.io.archive import open_archive
from minidl.io.tree import GENERATOR_BYTES, STATE_SLOTS, array_keys, checkpoint_budget
from tests.io.mutations import bombs, members_of, npy_bytes, zipped


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


# ---- what a checkpoint may hold: checkpoint_budget ----------------------------------------------
def _trained(tmp_path):
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.01), seed=0)
    x = np.random.default_rng(0).standard_normal((4, 5, 2)).astype(np.float32)
    trainer.fit(x, x[:, -1, :1], epochs=1, batch_size=2, verbose=0)
    path = tmp_path / "c.npz"
    trainer.save_checkpoint(path)
    return trainer, path


def test_array_keys_finds_every_reference_without_recursion():
    arrays = {}
    tree = encode_tree({"a": [np.zeros(1), {"b": np.ones(2)}], "c": 3}, "t", arrays)
    assert sorted(array_keys(tree)) == sorted(arrays) == ["t/a/0", "t/a/1/b"]
    deep = {"__array__": "x"}
    for _ in range(5000):  # deeper than the recursion limit
        deep = {"__list__": [deep]}
    assert array_keys(deep) == ["x"]


def test_checkpoint_budget_follows_the_parameters_and_the_trees(tmp_path):
    trainer, path = _trained(tmp_path)
    with open_archive(path, "minidl-checkpoint") as archive:
        budget = checkpoint_budget(trainer.model)(archive.meta)
        held = {name: arr.nbytes for name, arr in archive.arrays(budget).items()}
    sizes = {f"model/{n}": p.data.size for n, p in trainer.model.named_parameters()}
    assert sorted(budget.members) == sorted(held)  # exactly the arrays the trees refer to
    for name, (max_bytes, dtype) in budget.members.items():
        assert dtype is None and held[name] <= max_bytes
        if name in sizes:
            assert max_bytes == 8 * sizes[name]  # a parameter: its elements in float64
        else:  # optimizer moments, the generator: bounded together
            assert max_bytes == STATE_SLOTS * 8 * sum(sizes.values()) + GENERATOR_BYTES
    assert budget.total == 8 * sum(sizes.values()) * (1 + STATE_SLOTS) + GENERATOR_BYTES
    assert {name for name in budget.members if name not in sizes} == {
        f"optimizer/state/{i}/{key}" for i in range(len(sizes)) for key in ("exp_avg", "exp_avg_sq")}


@pytest.mark.parametrize("label, pattern", [
    ("an extra 1 GiB member", r"unexpected members \{'junk\.npy': 1073741952\}"),
    ("an extra 1 GiB parameter-like member", r"unexpected members \{'9\.kernel\.npy': 1073741952\}"),
    ("optimizer/state/1/exp_avg a 1 GiB array",  # the most: 8 slots x 8 bytes x 67 parameter elements + 1 MiB
     r"member 'optimizer/state/1/exp_avg\.npy' declares 1073741952 bytes, more than the 1052864 its array may need"),
    ("a 1 GiB __config__", r"'__config__' declares 1073741824 bytes"),
])
def test_a_checkpoint_bomb_is_refused_before_inflating_and_changes_nothing(tmp_path, label, pattern):
    trainer, path = _trained(tmp_path)
    before = trainer.model.state_dict()
    path.write_bytes(dict(bombs(path.read_bytes(), "optimizer/state/1/exp_avg"))[label])
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^cannot read '.*c\.npz': {pattern}"):
        trainer.load_checkpoint(path)
    assert time.perf_counter() - start < 0.5
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("dtype, value, pattern", [
    (np.float32, np.inf, r"load_state_dict: entry '1\.kernel' has non-finite values "
                         r"\(inf at index \(2, 0\)\)"),
    (np.float64, 1e39, r"entry 'model/1\.kernel': dtype float64 in the checkpoint, float32 in the model$"),
])
def test_a_checkpoint_whose_weights_are_not_finite_float32_is_refused(tmp_path, dtype, value, pattern):
    trainer, path = _trained(tmp_path)
    members = members_of(path.read_bytes())
    kernel = np.load(io.BytesIO(members["model/1.kernel.npy"])).astype(dtype)
    kernel[2, 0] = value
    path.write_bytes(zipped({**members, "model/1.kernel.npy": npy_bytes(kernel)}))
    before = trainer.model.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, never inf with a warning
        with pytest.raises(ValueError, match=r"^load_checkpoint\('.*c\.npz'\): " + pattern):
            trainer.load_checkpoint(path)
    for k, v in trainer.model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
