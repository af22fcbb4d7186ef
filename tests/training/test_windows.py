"""The TBPTT(k1, k2) windows (minidl/training/windows.py): which steps each update covers."""

import pytest

from minidl.training.windows import tbptt_windows


def test_the_documented_schedules():
    assert tbptt_windows(7, k1=3, k2=5) == [(0, 0, 3), (1, 3, 6), (2, 6, 7)]
    assert tbptt_windows(10, k1=3, k2=5) == [(0, 0, 3), (1, 3, 6), (4, 6, 9), (5, 9, 10)]


def test_defaults_k1_the_whole_sequence_and_k2_equal_to_k1():
    assert tbptt_windows(5) == [(0, 0, 5)]
    assert tbptt_windows(5, k1=None, k2=9) == [(0, 0, 5)]
    # k2 = k1 = 3: the windows do not overlap, but the short last chunk still goes back 3 steps
    assert tbptt_windows(7, k1=3) == [(0, 0, 3), (3, 3, 6), (4, 6, 7)]
    assert tbptt_windows(4, k1=9) == [(0, 0, 4)]


@pytest.mark.parametrize("T", [1, 2, 5, 7, 12])
def test_chunks_tile_the_sequence_and_windows_end_with_their_chunk(T):
    for k1 in range(1, T + 2):
        for k2 in range(k1, T + 3):
            windows = tbptt_windows(T, k1, k2)
            chunks = [(p, e) for _, p, e in windows]
            assert [p for p, _ in chunks] == list(range(0, T, k1))  # one update per chunk of k1 steps
            assert [e for _, e in chunks] == [min(p + k1, T) for p, _ in chunks]
            for s, p, e in windows:
                assert s == max(0, e - k2) and s <= p < e  # the window covers its chunk and reaches k2 back


@pytest.mark.parametrize(
    "args, err, pattern",
    [
        ((5, 3, 2), ValueError, r"^tbptt_windows: k2 must be >= k1, got k1=3, k2=2$"),
        ((0,), ValueError, r"^tbptt_windows: T must be >= 1, got 0$"),
        ((5, 0), ValueError, r"^tbptt_windows: k1 must be >= 1, got 0$"),
        ((5, 2.5), TypeError, r"^tbptt_windows: k1 must be an int, got 2\.5"),
        ((5, 2, True), TypeError, r"^tbptt_windows: k2 must be an int, got True"),
    ],
)
def test_bad_arguments(args, err, pattern):
    with pytest.raises(err, match=pattern):
        tbptt_windows(*args)
