"""Codec throughput (issue: each at least 100,000 per second on one core).

A typical SADB_ADD as setkey sends it (SA, hard and soft lifetimes, IPv4 src and
dst, auth and encrypt keys, SA2, IF_HW_OFFL) and an IPv6 SADB_X_SPDADD with a
two-request bundle: decode (with every key_parse check) and encode.
Run: make bench  (or .venv/bin/python -m pytest bench/bench_codec.py --benchmark-enable)
"""

from __future__ import annotations

import pytest

from pfkey import (
    IpsecRequest, Message, SadbAddress, SadbKey, SadbLifetime, SadbSa, SadbXIfHwOffl,
    SadbXPolicy, SadbXSa2, Sockaddr, decode,
)
from pfkey.pfkeyv2 import SADB, SADB_EXT

E = SADB_EXT

ADD = Message(SADB.ADD, 3, seq=0, pid=4242, exts=(
    SadbKey(E.KEY_ENCRYPT, bytes(range(20))),
    SadbKey(E.KEY_AUTH, bytes(range(32))),
    SadbLifetime(E.LIFETIME_HARD, addtime=3600),
    SadbLifetime(E.LIFETIME_SOFT, addtime=2880),
    SadbSa(0x10001, replay=4, encrypt=20, flags=0x40),
    SadbXSa2(mode=1, reqid=100),
    SadbAddress(E.ADDRESS_SRC, Sockaddr.inet("192.168.1.1")),
    SadbAddress(E.ADDRESS_DST, Sockaddr.inet("192.168.1.2")),
    SadbXIfHwOffl("mce0"),
))
SPDADD6 = Message(SADB.X_SPDADD, 0, pid=4242, exts=(
    SadbXPolicy(2, 2, requests=(
        IpsecRequest(50, 2, 2, 0, Sockaddr.inet6("2001:db8::a"), Sockaddr.inet6("2001:db8::b")),
        IpsecRequest(51, 1, 2, 0))),
    SadbAddress(E.ADDRESS_SRC, Sockaddr.inet6("2001:db8:1::"), 48, 6),
    SadbAddress(E.ADDRESS_DST, Sockaddr.inet6("2001:db8:2::"), 48, 6),
))
ADD_WIRE = ADD.encode()
SPD_WIRE = SPDADD6.encode()


@pytest.mark.benchmark(group="codec")
def bench_decode_add(benchmark):  # type: ignore[no-untyped-def]
    assert benchmark(decode, ADD_WIRE) == ADD


@pytest.mark.benchmark(group="codec")
def bench_encode_add(benchmark):  # type: ignore[no-untyped-def]
    assert benchmark(ADD.encode) == ADD_WIRE


@pytest.mark.benchmark(group="codec")
def bench_decode_spdadd6_bundle(benchmark):  # type: ignore[no-untyped-def]
    assert benchmark(decode, SPD_WIRE) == SPDADD6


@pytest.mark.benchmark(group="codec")
def bench_encode_spdadd6_bundle(benchmark):  # type: ignore[no-untyped-def]
    assert benchmark(SPDADD6.encode) == SPD_WIRE
