"""benchmarks/article.py: the seed article's training loop, kept for its speed only, does the
article's work: its shapes, its per-record SGD updates, its clipping, one epoch timed."""

import numpy as np
import pytest

from benchmarks import article

pytestmark = pytest.mark.slow


def windows(n, T=50):
    s = np.sin(np.arange(n + T))
    return np.stack([s[i:i + T] for i in range(n)])[:, :, None], s[T:T + n, None]


def test_the_article_network_has_its_shapes_and_positive_weights():
    net = article.ArticleRNN(T=50, hidden=100, seed=0)
    assert net.U.shape == (100, 50) and net.W.shape == (100, 100) and net.V.shape == (1, 100)
    assert min(net.U.min(), net.W.min(), net.V.min()) >= 0.0          # U(0, 1), as the article draws them
    x, y = windows(3)
    assert net.loss(x, y) > 0.0


def test_a_record_updates_every_weight_within_the_clip():
    net = article.ArticleRNN(T=10, hidden=6, seed=1)
    before = [w.copy() for w in (net.U, net.W, net.V)]
    x, y = windows(1, T=10)
    net.train_record(x[0], y[0], lr=0.5)
    for old, new in zip(before, (net.U, net.W, net.V)):
        step = np.abs(new - old)
        assert step.max() > 0.0 and step.max() <= 0.5 * article.CLIP + 1e-12


def test_windows_per_second_times_an_epoch():
    x, y = windows(6, T=10)
    rate = article.windows_per_second(x[:4], y[:4], x[4:], y[4:], epochs=1)
    assert np.isfinite(rate) and rate > 0.0
