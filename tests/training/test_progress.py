"""Progress output of fit: silent, one line per epoch, or a tqdm bar in a terminal."""

import io
import re

import pytest

import minidl as mdl
from minidl.training.progress import Progress
from tests.helpers import adam_trainer, random_sequences, small_rnn_model


def test_progress_lines_when_not_a_terminal():
    stream = io.StringIO()
    p = Progress(1, epochs=2, batches=3, stream=stream)
    p.epoch_begin(0, 1)
    p.batch_end(0.5)
    p.epoch_end(1, {"loss": 0.25, "val_loss": 0.125})
    out = stream.getvalue()
    assert out.count("\n") == 1 and "Epoch 1/2" in out and "loss: 0.25" in out and "val_loss: 0.125" in out
    silent = io.StringIO()
    q = Progress(0, 1, 1, stream=silent)
    q.epoch_begin(0, 1)
    q.epoch_end(1, {"loss": 1.0})
    assert silent.getvalue() == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    mdl.set_seed(0)
    model = small_rnn_model()
    x, y = random_sequences(n=4)
    adam_trainer(model).fit(x, y, epochs=3, batch_size=2, verbose=2)
    err = capsys.readouterr().err
    assert [l.split(" - ")[0] for l in err.strip().splitlines()] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_per_epoch_in_a_terminal():
    stream = _Terminal()
    p = Progress(1, epochs=2, batches=3, stream=stream)
    assert p.use_bar
    for epoch in range(2):
        p.epoch_begin(epoch, epoch + 1)
        for b in range(3):
            p.batch_end(1.0 / (b + 1))
        p.epoch_end(epoch + 1, {"loss": 0.25})
    p.close()
    out = stream.getvalue()
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "3/3" in out and "loss=0.25" in out
    assert not Progress(2, 1, 1, stream=_Terminal()).use_bar  # verbose=2: lines even in a terminal


@pytest.mark.parametrize("bad", [3, -1, "1", None])
def test_verbose_must_be_0_1_or_2(bad):
    with pytest.raises(ValueError, match=rf"^fit: verbose must be 0, 1 or 2, got {re.escape(repr(bad))}$"):
        Progress(bad, 1, 1)
