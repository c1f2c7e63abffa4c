"""Key engine benchmarks: SADB_ADD through a socket, and a large SAD.

Run: ``.venv/bin/python -m pytest bench/bench_key.py --benchmark-enable -q``

* ``test_sadb_add_end_to_end`` -- one SADB_ADD per round, end to end through
  a ``KeySocket``: build and encode the request, send (keysock checks,
  key_parse's decode and validation), key_add (key_setsaval, esp_init, SAD
  insertion), the ALL reply gathered from the request, and the sender's
  recv.  Target: at least 20,000 per second.
* ``test_sad_inbound_lookup[10k]`` / ``[1M]`` -- a SAD of 10,000 or 1,000,000
  MATURE ESP SAs (four per peer, inserted through key_parse with the request
  bytes patched per SA), then batches of inbound ``key_allocsa(dst, proto,
  spi)``; insertion rate and memory per SA (RSS growth, and tracemalloc for
  the 10k case) are printed and stored in ``extra_info``.  The 1M case runs
  only under ``make bench`` (``--benchmark-only``) or with
  ``PFKEY_BENCH_1M=1``; it takes about a minute and a few GB.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import struct
import time
import tracemalloc
from typing import Any

import pytest

from pfkey import Message, SadbAddress, SadbKey, SadbSa, Sockaddr
from pfkey.clock import FakeClock
from pfkey.key import Key
from pfkey.pfkeyv2 import SADB, SADB_AALG, SADB_EALG, SADB_EXT, SADB_SATYPE

E = SADB_EXT
LOOKUP_BATCH = 1000
_report: dict[str, Any] = {}


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _add(spi: int, src: Sockaddr, dst: Sockaddr) -> Message:
    return Message(SADB.ADD, SADB_SATYPE.ESP, 1, 4242, exts=(
        SadbSa(spi, 4, 1, SADB_AALG.X_SHA2_256, SADB_EALG.X_AESCBC),
        SadbAddress(E.ADDRESS_SRC, src), SadbAddress(E.ADDRESS_DST, dst),
        SadbKey(E.KEY_AUTH, bytes(range(32))), SadbKey(E.KEY_ENCRYPT, bytes(range(16)))))


def test_sadb_add_end_to_end(benchmark: Any) -> None:
    """SADB_ADD through a socket: encode, parse, validate, insert, reply."""
    key = Key(FakeClock(), rng=random.Random(1))
    so = key.socket(recvspace=1 << 30)
    src, dst = Sockaddr.inet("10.0.0.1"), Sockaddr.inet("10.0.0.2")
    spis = itertools.count(0x1000)

    def one() -> None:
        so.send(_add(next(spis), src, dst).encode())
        so.recv_nowait()

    benchmark(one)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median:
        rate = 1.0 / stats.stats.median
        benchmark.extra_info["adds_per_s"] = round(rate)
        _report["SADB_ADD end to end (/s)"] = round(rate)
        print(f"\nSADB_ADD end to end: {rate:,.0f}/s (target >= 20,000/s)")
    key._check()


def _fill(key: Key, n: int) -> float:
    """Insert ``n`` ESP SAs, four per peer, through key_parse; returns SAs/s."""
    template = bytearray(_add(0x1000, Sockaddr.inet("10.0.0.1"),
                              Sockaddr.inet("10.0.0.2")).encode())
    # offsets: SA ext at 16 (spi at +4, network order); DST sockaddr at
    # 16 + 16 + 24 + 8, address at +4
    spi_off = 16 + 4
    dst_addr_off = 16 + 16 + 24 + 8 + 4
    pack_spi = struct.Struct(">I").pack_into
    parse = key.key_parse
    t0 = time.perf_counter()
    for i in range(n):
        pack_spi(template, spi_off, 0x1000 + i)
        peer = i >> 2
        template[dst_addr_off:dst_addr_off + 4] = bytes((10, 1 + (peer >> 16) % 200,
                                                         (peer >> 8) & 255, peer & 255))
        parse(None, bytes(template))
    return n / (time.perf_counter() - t0)


def _peer(i: int) -> Sockaddr:
    peer = i >> 2
    return Sockaddr.inet(bytes((10, 1 + (peer >> 16) % 200, (peer >> 8) & 255, peer & 255)))


def _sad_case(benchmark: Any, n: int, label: str) -> None:
    gc.collect()
    trace = n <= 100_000
    if trace:
        tracemalloc.start()
    rss0 = _rss_bytes()
    key = Key(FakeClock(), rng=random.Random(1))
    rate = _fill(key, n)
    gc.collect()
    rss = (_rss_bytes() - rss0) / n
    traced = None
    if trace:
        traced = tracemalloc.get_traced_memory()[0] / n
        tracemalloc.stop()
    assert len(key.savhash) == n
    rnd = random.Random(2)
    picks = [rnd.randrange(n) for _ in range(LOOKUP_BATCH)]
    queries = [(_peer(i), 0x1000 + i) for i in picks]
    allocsa = key.key_allocsa

    def lookups() -> None:
        for dst, spi in queries:
            allocsa(dst, 50, spi)

    assert all(allocsa(d, 50, s) is not None for d, s in queries)
    benchmark(lookups)
    stats = getattr(benchmark, "stats", None)
    lrate = LOOKUP_BATCH / stats.stats.median if stats is not None and stats.stats.median \
        else float("nan")
    info = {"sas": n, "insert_per_s": round(rate), "lookups_per_s": round(lrate),
            "rss_bytes_per_sa": round(rss)}
    if traced is not None:
        info["traced_bytes_per_sa"] = round(traced)
    benchmark.extra_info.update(info)
    _report[f"SAD {label}"] = info
    print(f"\nSAD {label}: insert {rate:,.0f} SA/s through key_parse, inbound key_allocsa "
          f"{lrate:,.0f}/s, RSS {rss:,.0f} B/SA"
          + (f", traced {traced:,.0f} B/SA" if traced is not None else ""))


def test_sad_inbound_lookup_10k(benchmark: Any) -> None:
    """10,000 SAs: insertion rate, inbound lookups, memory per SA."""
    _sad_case(benchmark, 10_000, "10k")


def test_sad_inbound_lookup_1m(benchmark: Any, request: pytest.FixtureRequest) -> None:
    """1,000,000 SAs (make bench only): the lookup rate must stay that of 10k."""
    if not (request.config.getoption("benchmark_only", False)
            or os.environ.get("PFKEY_BENCH_1M")):
        pytest.skip("1M-SA SAD runs under `make bench` (or PFKEY_BENCH_1M=1)")
    _sad_case(benchmark, 1_000_000, "1M")
