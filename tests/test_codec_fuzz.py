"""Fuzzing the codec: random and mutated buffers raise only PfkeyError.

FreeBSD's key_parse answers any byte string with an errno; so must we.  A
buffer that *does* decode must re-encode without anything but a PfkeyError and
decode again to the same message (nothing is lost or invented).
"""

from __future__ import annotations

import os
import random

import pytest

from pfkey import PfkeyError, decode
from test_codec_golden import GOLDEN  # the hand-written corpus seeds the mutations

SEEDS = [g[2] for g in GOLDEN]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    if len(b) < 16:
        return bytes(b) + rng.randbytes(rng.randrange(1, 9))
    op = rng.randrange(9)
    if op == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:  # random byte values
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif op == 2:  # truncation, header len left as is
        del b[rng.randrange(len(b) + 1):]
    elif op == 3:  # truncation to a multiple of 8 with the header len fixed up
        n = rng.randint(2, len(b) // 8) * 8
        del b[n:]
        b[4:6] = (n // 8).to_bytes(2, "little")
    elif op == 4:  # header length lie
        b[4:6] = rng.randrange(65536).to_bytes(2, "little")
    elif op == 5:  # extension length lie at a random 8-byte boundary
        if len(b) >= 24:
            off = 16 + 8 * rng.randrange((len(b) - 16) // 8)
            b[off:off + 2] = rng.choice([0, 1, 2, 3, 5, 255, 65535]).to_bytes(2, "little")
    elif op == 6:  # extension type change
        if len(b) >= 24:
            off = 16 + 8 * rng.randrange((len(b) - 16) // 8)
            b[off + 2:off + 4] = rng.randrange(40).to_bytes(2, "little")
    elif op == 7:  # splice two messages, fix the length
        other = rng.choice(SEEDS)
        b = bytearray(bytes(b[: len(b) // 8 * 8]) + other[16:])
        if len(b) >= 16:
            b[4:6] = (len(b) // 8).to_bytes(2, "little")
    else:  # header fields
        b[rng.randrange(min(4, len(b)))] = rng.randrange(256)
    return bytes(b)


def _random_buffer(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 8, 15, 16, 24, 40, rng.randrange(0, 300)])
    b = bytearray(rng.randbytes(n))
    if n >= 16 and rng.random() < 0.7:
        b[0] = 2
        b[1] = rng.randrange(24)
        b[4:6] = (n // 8).to_bytes(2, "little")
    return bytes(b)


def _check(data: bytes) -> None:
    for strict in (True, False):
        try:
            m = decode(data, strict=strict)
        except PfkeyError:
            continue
        try:
            wire = m.encode()
        except PfkeyError:
            continue
        assert decode(wire, strict=strict) == m


def _run(n: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        if i % 4 == 0:
            data = _random_buffer(rng)
        else:
            data = rng.choice(SEEDS)
            for _ in range(rng.randint(1, 3)):
                if not data:
                    break
                data = _mutate(rng, data)
        try:
            _check(data)
        except PfkeyError:
            raise
        except Exception as exc:  # pragma: no cover - a failure is reported with its input
            raise AssertionError(f"iteration {i}: {type(exc).__name__}: {exc} on {data.hex()}")


def test_fuzz_100k() -> None:
    """100,000 random and mutated buffers: only PfkeyError ever escapes decode
    (key_parse always answers with an errno)."""
    _run(100_000, seed=int(os.environ.get("FUZZ_SEED", "20261122")))


@pytest.mark.slow
def test_fuzz_long() -> None:
    """The same, 2,000,000 buffers (make test-slow)."""
    _run(2_000_000, seed=7)
