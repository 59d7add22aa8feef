import numpy as np
import pytest

from bebias.data import sampling


def test_random_clip_in_range_and_strided():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = sampling.random_clip(40, 8, 2, rng)
        assert idx.shape == (8,) and idx.min() >= 0 and idx.max() < 40
        assert (np.diff(idx) == 2).all()
        starts.add(int(idx[0]))
    assert starts == set(range(0, 40 - 15 + 1))  # every valid start is reachable


def test_exact_fit_has_one_start():
    rng = np.random.default_rng(0)
    assert sampling.random_clip(16, 16, 1, rng).tolist() == list(range(16))
    assert sampling.uniform_clips(16, 16, 1, 3).tolist() == [list(range(16))] * 3


@pytest.mark.parametrize("n", [1, 3, 10])
def test_short_videos_are_looped_not_dropped(n):
    rng = np.random.default_rng(0)
    idx = sampling.random_clip(n, 16, 1, rng)
    assert idx.tolist() == [i % n for i in range(16)]
    assert sampling.center_clip(n, 8, 2).tolist() == [(2 * i) % n for i in range(8)]  # span 15 > n


def test_uniform_clips_cover_the_video():
    c = sampling.uniform_clips(100, 16, 2, 5)
    assert c.shape == (5, 16)
    assert c[0, 0] == 0 and c[-1, -1] == 99  # first starts at 0, last ends at the last frame
    assert (np.diff(c[:, 0]) > 0).all()
    assert sampling.center_clip(100, 16, 2)[0] == (100 - 31) // 2


def test_shifted_clip_differs_by_at_least_two_frames():
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = sampling.random_clip(32, 16, 1, rng)
        b = sampling.shifted_clip(32, 16, 1, int(a[0]), rng)
        assert abs(int(b[0]) - int(a[0])) >= 2
    # too short for another start: shifted by a third of the span, wrapping
    b = sampling.shifted_clip(16, 16, 1, 0, rng)
    assert b[0] == 5 and b.tolist() == [(5 + i) % 16 for i in range(16)]


def test_zero_frames_is_an_error():
    with pytest.raises(ValueError):
        sampling.clip_at(0, 0, 4, 1)
