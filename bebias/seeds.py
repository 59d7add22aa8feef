"""Every random stream of bebias is derived here, from the run's seed and the keys that name
the stream: ``derive(seed, "item", epoch, index)``.

:func:`derive` is injective: two different ``(seed, *keys)`` never give the same entropy
(so never the same stream, up to a collision of numpy's 128-bit ``SeedSequence`` pool).
Each argument is written as a typed, length-prefixed block of 32-bit words -- an int as
``[INT, n, n words]`` (or ``NEG`` for a negative one), a string as ``[STR, bytes, utf-8
words]`` -- so ``(1, 0)`` and ``(0, 7919)``, ``(s,)`` and ``(s, 0)``, ``(s, 2**32)`` and
``(s, 0, 1)``, ``(s, "a")`` and ``(s, crc32("a"))`` all differ. Arithmetic mixes such as
``seed * 7919 + step`` (seed 1 at step 0 drew what seed 0 drew at step 7919) and
``SeedSequence([seed, *keys])`` (a trailing 0 key, an int above 2**32 or a string's checksum
can give another key's entropy) are what it replaces.

A stream is named by a string first key (``"item"``, ``"order"``, ``"query"``, ...), so two
uses of one seed never share draws.

The one exception is :func:`plain`: the embedded benchmark's renderer (bebias.data.synth)
seeds with plain ``SeedSequence([seed, *words])`` lists of fixed length, each call site
tagged by its own constant. Its pixels are pinned by hashes (tests/test_synth*.py,
docs/benchmark*.md), so its scheme is frozen as it is and kept apart from :func:`derive`;
new code uses :func:`derive`.
"""

from __future__ import annotations

import numpy as np

#: block tags of :func:`derive`'s encoding (any distinct non-zero words would do)
_INT, _NEG, _STR = 0x1D7, 0x2E6, 0x3F5

Key = int | str


def _words(value: Key) -> list[int]:
    """``value`` as a self-delimiting block of 32-bit words."""
    if isinstance(value, bool) or not isinstance(value, (int, str, np.integer)):
        raise TypeError(f"a seed or seed key is an int or a str, got {value!r}")
    if isinstance(value, str):
        raw = value.encode("utf-8")
        padded = raw + b"\0" * (-len(raw) % 4)
        return [_STR, len(raw), *np.frombuffer(padded, dtype="<u4").tolist()]
    v = int(value)
    tag, v = (_INT, v) if v >= 0 else (_NEG, -v)
    body = []
    while True:
        body.append(v & 0xFFFFFFFF)
        v >>= 32
        if not v:
            break
    return [tag, len(body), *body]


def entropy(seed: Key, *keys: Key) -> list[int]:
    """The 32-bit words :func:`derive` seeds with: the blocks of ``seed`` and each key, in order."""
    out = _words(seed)
    for k in keys:
        out += _words(k)
    return out


def derive(seed: Key, *keys: Key) -> np.random.SeedSequence:
    """The seed sequence of the stream named by ``keys`` under ``seed`` (ints of any size
    and sign, or strings); distinct arguments, distinct sequences. Pass it to
    ``numpy.random.default_rng`` or use :func:`rng`, :func:`torch_seed`, :func:`words`."""
    return np.random.SeedSequence(entropy(seed, *keys))


def rng(seed: Key, *keys: Key) -> np.random.Generator:
    """A numpy generator on :func:`derive`'s stream."""
    return np.random.default_rng(derive(seed, *keys))


def torch_seed(seed: Key, *keys: Key) -> int:
    """A 63-bit int from :func:`derive`'s stream, for ``torch.Generator().manual_seed``."""
    return int(derive(seed, *keys).generate_state(1, np.uint64)[0]) >> 1


def words(seed: Key, *keys: Key, n: int = 4) -> list[int]:
    """``n`` 32-bit words of :func:`derive`'s stream as plain ints (a seed a JSON file can
    record, and ``numpy.random.default_rng`` accepts)."""
    return [int(w) for w in derive(seed, *keys).generate_state(n)]


def plain(seed: int, *tags: int) -> np.random.SeedSequence:
    """``SeedSequence([seed, *tags])``: the embedded benchmark's frozen scheme (see the
    module docstring). Every word an int in [0, 2**32), so none is split into two; each call
    site passes a fixed number of words with its own constant tag."""
    out = [seed, *tags]
    for w in out:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 0 <= w < 2**32:
            raise ValueError(f"plain seed words are ints in [0, 2**32), got {w!r}")
    return np.random.SeedSequence([int(w) for w in out])
