"""One seed derivation (bebias.seeds): distinct (seed, keys) never share a stream (issue 22,
item 2); the benchmark's frozen scheme is the plain SeedSequence it always was."""

import itertools
import zlib

import numpy as np
import pytest
import torch

from bebias import seeds


def _state(seed, *keys) -> tuple[int, ...]:
    return tuple(seeds.derive(seed, *keys).generate_state(4).tolist())


def test_distinct_arguments_never_share_a_stream():
    """Every pair of some 2,000 (seed, keys), chosen where the old schemes collided: the
    arithmetic ``seed * 7919 + step`` (seed 1 step 0 = seed 0 step 7919) and ``seed * 1_000_003 +
    epoch``, SeedSequence's trailing zeros (``[s]`` = ``[s, 0]``) and 32-bit words (``[2**32]`` =
    ``[0, 1]``), a string's crc32 against that int, and keys of different lengths."""
    args = set()
    for seed in (0, 1, 2, 7919, 1_000_003, 2**32 - 1, 2**32, 2**63 - 1, -1):
        args.add((seed,))
        for step in (0, 1, 7919, 7920, 1_000_003, 2**32, 2**32 + 1):
            args |= {(seed, step), (seed, "query", step), (seed, "query", step, 0), (seed, "query", step, 1),
                     (seed, step, 0), (seed, 0, step), (seed, "debias", step)}
        for key in ("", "a", "b", "ab", "a\0", "\0", "donor:shuffle", "swap-background", "é"):
            args |= {(seed, key), (seed, 3, key), (seed, key, 0), (seed, zlib.crc32(key.encode())),
                     (seed, 3, zlib.crc32(key.encode()))}
    for s, e, i in itertools.product(range(4), range(4), range(40)):
        args |= {(s, "item", e, i), (s, "order", e * 40 + i)}
    states = {a: _state(*a) for a in args}
    assert len(args) > 2000
    assert len(set(states.values())) == len(args), "two different (seed, keys) derived the same stream"
    # the historical collisions, by name
    assert _state(1, "query", 0) != _state(0, "query", 7919)
    assert _state(1, 0) != _state(0, 7919) and _state(5) != _state(5, 0) and _state(0, 2**32) != _state(0, 0, 1)
    assert _state(0, 3, "shuffle") != _state(0, 3, zlib.crc32(b"shuffle"))


def test_the_encoding_is_prefix_free():
    """Injective by construction, not by luck: the entropy words of two different argument
    tuples differ, and neither is the other followed by zeros (SeedSequence pads with zeros)."""
    cases = [(0,), (0, 0), (0, 0, 0), (1, 2**32), (1, 0, 1), (1, "ab"), (1, "a", "b"), (1, "ab\0"), (-1,), (1,)]
    ents = [tuple(seeds.entropy(*c)) for c in cases]
    for a, b in itertools.combinations(ents, 2):
        short, long = sorted((a, b), key=len)
        assert long[:len(short)] != short or any(long[len(short):]), (a, b)
    assert len(set(ents)) == len(ents)


def test_same_arguments_same_stream_and_the_helpers_agree():
    assert _state(3, "item", 1, 2) == _state(3, "item", 1, 2)
    assert np.array_equal(seeds.rng(3, "x").integers(1 << 30, size=5),
                          np.random.default_rng(seeds.derive(3, "x")).integers(1 << 30, size=5))
    assert seeds.words(3, "x") == list(_state(3, "x"))
    assert np.array_equal(np.random.default_rng(seeds.words(3, "x")).random(3),
                          np.random.default_rng(seeds.words(3, "x")).random(3))
    t = seeds.torch_seed(3, "x")
    assert 0 <= t < 2**63 and t == seeds.torch_seed(3, "x") != seeds.torch_seed(4, "x")
    torch.Generator().manual_seed(t)  # accepted by torch
    assert seeds.torch_seed(np.int64(3), "x") == t  # numpy ints are ints


@pytest.mark.parametrize("bad", [1.0, None, True, b"x", (1,)])
def test_a_key_that_is_not_an_int_or_a_str_is_refused(bad):
    with pytest.raises(TypeError, match="int or a str"):
        seeds.derive(0, bad)


def test_plain_is_the_benchmarks_frozen_scheme():
    """bebias.data.synth seeds with plain SeedSequence word lists: plain() must give exactly
    those streams (the pinned golden hashes of tests/test_synth*.py check the pixels)."""
    for words in ([0, 2, 0xC0FFEE], [3, 0xB1A7E, 1, 0], [7, 1, 5, 0x0AC1E]):
        assert np.array_equal(np.random.default_rng(seeds.plain(*words)).random(4),
                              np.random.default_rng(words).random(4))
    for bad in ([0, 2**32], [-1], [0, 1.0], [0, True]):
        with pytest.raises(ValueError, match="plain seed words"):
            seeds.plain(*bad)
