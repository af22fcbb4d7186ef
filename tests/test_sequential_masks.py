"""Sequential and masks (the mask protocol of Layer): a given mask reaches only the layers that
take one, a layer-made mask goes to the layers after it and is the output mask, predict slices
masks with x, bad masks are refused."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import LastStep, MaskRecorder, ZeroMasker


# ---- masks (the mask protocol of Layer) -------------------------------------------------------
_PADDED = np.array([[[1.0], [2.0], [0.0]], [[3.0], [0.0], [0.0]]])  # (2, 3, 1), zero right-padding
_PADDED_MASK = np.array([[True, True, False], [True, False, False]])


def test_a_given_mask_reaches_only_the_layers_that_take_one():
    first, second = MaskRecorder(), MaskRecorder()
    # Tanh and Dense take no mask: a mask keyword would be a TypeError in their forward
    model = mdl.Sequential([first, mdl.Tanh(), mdl.Dense(1, 1), second])
    mask = np.array([[True, False, True], [False, True, True]])
    model.forward(_PADDED, mask=mask)
    np.testing.assert_array_equal(first.masks[0], mask)
    np.testing.assert_array_equal(second.masks[0], mask)  # passed on unchanged by the layers between
    np.testing.assert_array_equal(model.output_mask, mask)


def test_a_layer_made_mask_goes_to_the_layers_after_it_and_is_the_output_mask():
    before, after = MaskRecorder(), MaskRecorder()
    model = mdl.Sequential([before, ZeroMasker(), mdl.Dense(1, 2), after])
    model.forward(_PADDED)
    assert before.masks == [None]
    np.testing.assert_array_equal(after.masks[0], _PADDED_MASK)
    np.testing.assert_array_equal(model.output_mask, _PADDED_MASK)


def test_dropping_the_time_axis_drops_the_mask_and_no_mask_is_none():
    model = mdl.Sequential([ZeroMasker(), LastStep(), mdl.Dense(1, 1)])
    model.forward(_PADDED)
    assert model.output_mask is None
    plain = mdl.Sequential([mdl.Dense(1, 1)])
    plain.forward(_PADDED)
    assert plain.output_mask is None


def test_a_nested_sequential_hands_the_mask_through():
    inner_recorder, outer_recorder = MaskRecorder(), MaskRecorder()
    inner = mdl.Sequential([ZeroMasker(), inner_recorder])
    model = mdl.Sequential([inner, outer_recorder])
    model.forward(_PADDED)
    np.testing.assert_array_equal(inner_recorder.masks[0], _PADDED_MASK)
    np.testing.assert_array_equal(inner.output_mask, _PADDED_MASK)
    np.testing.assert_array_equal(outer_recorder.masks[0], _PADDED_MASK)
    given = np.ones((2, 3), bool)
    recorder = MaskRecorder()
    mdl.Sequential([mdl.Sequential([recorder])]).forward(_PADDED, mask=given)
    np.testing.assert_array_equal(recorder.masks[0], given)


@pytest.mark.parametrize("batch_size", [None, 1, 2, 5])
def test_predict_slices_the_mask_with_x(rng, batch_size):
    recorder = MaskRecorder()
    model = mdl.Sequential([recorder, mdl.Dense(2, 1)])
    x = rng.standard_normal((5, 4, 2))
    mask = rng.random((5, 4)) < 0.6
    y = model.predict(x, batch_size=batch_size, mask=mask)
    np.testing.assert_allclose(y, model.predict(x), rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate(recorder.masks[:-1], axis=0), mask)  # the slices, in order
    step = 5 if batch_size is None else batch_size
    assert [m.shape[0] for m in recorder.masks[:-1]] == [min(step, 5 - i) for i in range(0, 5, step)]
    # the output mask of the last predict (without a mask) is None; with one, the whole batch's
    model.predict(x, batch_size=batch_size, mask=mask)
    np.testing.assert_array_equal(model.output_mask, mask)


def test_predict_slices_a_layer_made_mask_and_concatenates_it():
    model = mdl.Sequential([ZeroMasker(), mdl.Dense(1, 1)])
    model.predict(_PADDED, batch_size=1)
    np.testing.assert_array_equal(model.output_mask, _PADDED_MASK)


@pytest.mark.parametrize(
    "call, err, pattern",
    [
        (lambda m: m.forward(_PADDED, mask=np.ones((2, 3))), TypeError, r"Sequential: mask must be a bool array \(batch, time\), got dtype float64"),
        (lambda m: m.forward(_PADDED, mask=np.ones((3, 3), bool)), ValueError, r"expected mask of shape \(2, time\) \(the batch of x\), got \(3, 3\)"),
        (lambda m: m.forward(_PADDED, mask=np.ones(2, bool)), ValueError, r"expected mask of shape \(2, time\).*got \(2,\)"),
        (lambda m: m.predict(_PADDED, mask=np.ones((3, 3), bool)), ValueError, r"Sequential\.predict: mask must have the batch size of x \(2\), got shape \(3, 3\)"),
    ],
)
def test_bad_masks_are_refused(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call(mdl.Sequential([MaskRecorder(), mdl.Dense(1, 1)]))
