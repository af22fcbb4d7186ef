"""examples/seq2seq.py: quick mode end to end, the data by value, the model's gradients, greedy decoding."""

import re

import numpy as np
import pytest

import minidl as mdl
from tests.test_examples import ROOT, load_example, read_png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seq2seq():
    return load_example("seq2seq")


def test_seq2seq_example_quick(seq2seq, tmp_path, capsys):
    results = seq2seq.main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "2 digits: 540 training and 60 held-out sums, questions reversed" in out
    assert "3 digits: 540 training and 60 held-out sums, questions reversed" in out
    assert out.count("| greedy char acc |") == 2 and "(Keras, one LSTM(128), character accuracy >= 99 %: epoch 55)" in out
    assert [r["digits"] for r in results] == [2, 3]
    for r in results:
        assert r["epochs"] == 2 and len(r["char"]) == len(r["exact"]) == len(r["loss"]) == 2
        assert all(0.0 <= a <= 1.0 for a in r["char"] + r["exact"] + r["teacher_forced"])
        assert r["loss"][1] < r["loss"][0]
        assert len(r["examples"]) == 8
        for question, answer, _ in r["examples"]:
            a, b = map(int, question.split("+"))
            assert int(answer) == a + b
    for name in ("greedy_accuracy.png", "loss.png"):
        read_png(tmp_path / name)


def test_bad_digits_are_refused(seq2seq, capsys):
    with pytest.raises(SystemExit):
        seq2seq.main(["--digits", "4"])
    assert "--digits: choose from 2, 3, got '4'" in capsys.readouterr().err


def test_sums_are_unique_unordered_pairs_drawn_as_keras_draws_them(seq2seq):
    pairs = seq2seq.make_sums(4000, 3, np.random.default_rng(0))
    assert pairs.shape == (4000, 2) and pairs.dtype == np.int64
    assert pairs.min() >= 0 and pairs.max() <= 999
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == 4000          # a+b and b+a count once
    one_digit = (pairs < 10).mean()
    # a third of the draws get one digit, and their many repeats are dropped; uniform pairs would give 1 %
    assert 0.2 < one_digit < 0.3
    assert 0.3 < (pairs[:, 0] > pairs[:, 1]).mean() < 0.7                    # both orders
    np.testing.assert_array_equal(seq2seq.make_sums(4000, 3, np.random.default_rng(0)), pairs)
    every = seq2seq.make_sums(55, 1, np.random.default_rng(1))               # all 55 pairs of digits
    assert {tuple(sorted(p)) for p in every.tolist()} == {(a, b) for a in range(10) for b in range(a, 10)}
    with pytest.raises(ValueError, match="only 55 distinct pairs of 1-digit numbers, asked 56"):
        seq2seq.make_sums(56, 1, np.random.default_rng(0))


def test_questions_are_padded_then_reversed_and_answers_padded(seq2seq):
    questions, answers = seq2seq.questions_and_answers(np.array([[54, 7], [999, 1], [0, 0]]), 3)
    assert questions == ["   7+45", "  1+999", "    0+0"]
    assert answers == ["61  ", "1000", "0   "]
    (q, dec_in), target = seq2seq.encode(np.array([[54, 7]]), 3)
    vocab = seq2seq.VOCAB
    assert q.shape == (1, 7, 13) and dec_in.shape == (1, 4, 13) and target.shape == (1, 4)
    assert q.dtype == dec_in.dtype == np.float32 and target.dtype == np.int64
    assert vocab.decode(q[0].argmax(axis=-1)) == "   7+45" and np.all(q.sum(axis=-1) == 1)
    assert vocab.decode(dec_in[0].argmax(axis=-1)) == "=61 "                 # teacher forcing: shifted right
    assert vocab.decode(target[0]) == "61  "


def test_adder_gradients(seq2seq):
    mdl.set_seed(0)
    (q, dec_in), target = seq2seq.encode(np.array([[12, 34], [5, 67]]), 2)
    model = seq2seq.Adder(13, 5)
    assert mdl.gradcheck(model, (q.astype(np.float64), dec_in.astype(np.float64)))
    d_question, d_answer_in = model.backward(np.ones_like(model.forward(q, dec_in)))
    assert d_question.shape == q.shape and np.abs(d_question).sum() > 0     # reached through the state
    # saving and loading: docs/seq2seq-example.md, on its copy of the class (one class per registered name)


def test_greedy_decoding_equals_teacher_forcing_on_its_own_outputs(seq2seq):
    """Feeding back the greedy characters as decoder input reproduces the greedy choices."""
    mdl.set_seed(3)
    model = seq2seq.Adder(13, 8)
    (q, _), _ = seq2seq.encode(seq2seq.make_sums(20, 2, np.random.default_rng(0)), 2)
    ids = model.greedy(q, 3)
    assert ids.shape == (20, 3)
    fed_back = seq2seq.one_hot([seq2seq.START + seq2seq.VOCAB.decode(row[:-1]) for row in ids])
    np.testing.assert_array_equal(model.predict((q, fed_back)).argmax(axis=-1), ids)


def test_docs_page_shows_the_examples_model():
    """The page's walk-through runs the example's own class, character for character."""
    source = (ROOT / "examples" / "seq2seq.py").read_text()
    adder = re.search(r"^class Adder\(.*?(?=^\S)", source, re.S | re.M).group(0).rstrip() + "\n"
    page = (ROOT / "docs" / "seq2seq-example.md").read_text()
    assert adder in re.findall(r"```python\n(.*?)```", page, re.S)
