"""SPD packet lookup (key.c ``key_allocsp``) at 10, 1,000 and 100,000 policies.

Run: ``.venv/bin/python -m pytest bench/bench_spd.py --benchmark-enable -q``

Each benchmark times one batch of ``BATCH`` lookups over a fixed packet mix
(three in four packets belong to some policy's selector, the rest are random
addresses that fall through to the catch-all policies or to nothing), so the
reported ops/s times ``BATCH`` is lookups per second.  ``SPDTree.lookup`` is
measured beside ``lookup_linear`` -- FreeBSD's list walk -- on the same
tree and packets; at 100,000 policies the walk runs on a smaller batch and
fewer rounds.  The last test prints lookups/s per case and the ratios
(target: indexed lookup at 100,000 policies within 3x of 10 policies).

The policy mix is what a gateway's SPD holds: per-host transport policies
with exact ports (IKE daemons install these per connection), host-to-host
any-protocol policies, subnet tunnels (/24, /16, /8), IPv6 /128 and /64,
ICMP and GRE selectors, and two catch-alls at lower precedence (higher
priority value), one per family.  Priorities are mostly 0 (setkey) with a
few IKE-daemon-style values.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import attrs
import pytest

from pfkey.extensions import Sockaddr
from pfkey.spd import SecPolicyIndex, SPDTree, lookup_linear

BATCH = 512
LINEAR_BATCH = {10: BATCH, 1_000: 64, 100_000: 4}
SIZES = (10, 1_000, 100_000)
_results: dict[tuple[str, int], float] = {}


@attrs.define(eq=False)
class _SP:
    spidx: SecPolicyIndex
    priority: int = 0
    id: int = 0


def _v4(n: int, net: int = 10) -> str:
    return f"{net}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _v6(n: int, net: str = "2001:db8") -> str:
    return f"{net}:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::1"


def _templates(i: int) -> tuple[Sockaddr, Sockaddr, int, int, int, int]:
    """(src, dst, prefs, prefd, ul_proto, priority) of the i-th policy."""
    kind = i % 8
    if kind == 0:   # per-host transport, tcp, exact dst port
        return (Sockaddr.inet(_v4(i, 10)), Sockaddr.inet(_v4(i, 172), 1024 + i % 5000),
                32, 32, 6, 0)
    if kind == 1:   # host to host, any protocol
        return Sockaddr.inet(_v4(i, 11)), Sockaddr.inet(_v4(i, 12)), 32, 32, 255, 0
    if kind == 2:   # subnet tunnel /24
        return (Sockaddr.inet(_v4(i << 8, 20)), Sockaddr.inet(_v4(i << 8, 21)),
                24, 24, 255, 0)
    if kind == 3:   # /16 to /16, udp to the IKE ports (IKE daemon priority)
        return (Sockaddr.inet(_v4(i << 16, 30)), Sockaddr.inet(_v4(i << 16, 31),
                                                             500 if i % 2 else 4500),
                16, 16, 17, 0x80000000 - 1000)
    if kind == 4:   # IPv6 host to host
        return Sockaddr.inet6(_v6(i)), Sockaddr.inet6(_v6(i, "2001:db9")), 128, 128, 255, 0
    if kind == 5:   # IPv6 /64 tcp
        return (Sockaddr.inet6(f"2001:dba:{(i >> 16) & 0xFFFF:x}:{i & 0xFFFF:x}::"),
                Sockaddr.inet6(f"2001:dbb:{(i >> 16) & 0xFFFF:x}:{i & 0xFFFF:x}::"),
                64, 64, 6, 0)
    if kind == 6:   # host to /24, icmp
        return Sockaddr.inet(_v4(i, 40)), Sockaddr.inet(_v4(i << 8, 41)), 32, 24, 1, 0
    return (Sockaddr.inet(f"{50 + (i >> 8) % 50}.{i & 255}.0.0"),     # /8-ish gre
            Sockaddr.inet(f"{100 + (i >> 8) % 50}.{i & 255}.0.0"), 8, 16, 47, 0)


def build(n: int) -> SPDTree:
    tree = SPDTree(2)
    for i in range(n - 2):
        s, d, ps, pd, proto, prio = _templates(i)
        tree.insert(_SP(SecPolicyIndex(2, s, d, ps, pd, proto), prio, i + 1))
    # catch-alls last and at lower precedence, as a "discard everything
    # else" rule would be
    tree.insert(_SP(SecPolicyIndex(2, Sockaddr.inet("0.0.0.0"), Sockaddr.inet("0.0.0.0"),
                                   0, 0, 255), 0xFFFFFF00, n - 1))
    tree.insert(_SP(SecPolicyIndex(2, Sockaddr.inet6("::"), Sockaddr.inet6("::"),
                                   0, 0, 255), 0xFFFFFF00, n))
    return tree


def _inside(sa: Sockaddr, pref: int, rng: random.Random, port: int) -> Sockaddr:
    """An address in sa/pref with random host bits, and ``port``."""
    raw = sa.address_bytes
    width = len(raw) * 8
    host = rng.getrandbits(width - pref) if pref < width else 0
    val = (int.from_bytes(raw, "big") >> (width - pref) << (width - pref) if pref else 0) | host
    out = val.to_bytes(len(raw), "big")
    return Sockaddr.inet(out, port) if len(raw) == 4 else Sockaddr.inet6(out, port)


def packets(tree: SPDTree, count: int, seed: int = 7) -> list[tuple[Sockaddr, Sockaddr, int]]:
    rng = random.Random(seed)
    sps = list(tree)
    out = []
    for _ in range(count):
        if rng.random() < 0.75:
            sp = rng.choice(sps)
            x = sp.spidx
            proto = x.ul_proto if x.ul_proto != 255 else rng.choice((6, 17, 1, 50))
            sport = x.src.port or rng.randrange(1024, 65536)
            dport = x.dst.port or rng.randrange(1, 65536)
            out.append((_inside(x.src, x.prefs, rng, sport),
                        _inside(x.dst, x.prefd, rng, dport), proto))
        elif rng.random() < 0.8:
            out.append((Sockaddr.inet(rng.getrandbits(32).to_bytes(4, "big"), 1234),
                        Sockaddr.inet(rng.getrandbits(32).to_bytes(4, "big"), 80), 6))
        else:
            out.append((Sockaddr.inet6(rng.getrandbits(128).to_bytes(16, "big"), 1234),
                        Sockaddr.inet6(rng.getrandbits(128).to_bytes(16, "big"), 443), 17))
    return out


_trees: dict[int, SPDTree] = {}


def _tree(n: int) -> SPDTree:
    if n not in _trees:
        _trees[n] = build(n)
    return _trees[n]


def _record(benchmark: Any, name: str, n: int, batch: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        per_lookup = stats.stats.median / batch
        _results[(name, n)] = 1.0 / per_lookup
        benchmark.extra_info["lookups_per_second"] = round(1.0 / per_lookup)


@pytest.mark.parametrize("n", SIZES)
def test_spd_lookup_indexed(benchmark: Any, n: int) -> None:
    tree = _tree(n)
    pkts = packets(tree, BATCH)
    lookup = tree.lookup

    def run() -> None:
        for s, d, p in pkts:
            lookup(s, d, p)

    benchmark.group = "spd-lookup"
    benchmark.pedantic(run, rounds=30, warmup_rounds=2)
    _record(benchmark, "indexed", n, BATCH)


@pytest.mark.parametrize("n", SIZES)
def test_spd_lookup_linear(benchmark: Any, n: int) -> None:
    tree = _tree(n)
    batch = LINEAR_BATCH[n]
    pkts = packets(tree, batch)
    sps = list(tree)

    def run() -> None:
        for s, d, p in pkts:
            lookup_linear(sps, s, d, p)

    benchmark.group = "spd-lookup"
    benchmark.pedantic(run, rounds=3 if n >= 100_000 else 10, warmup_rounds=0)
    _record(benchmark, "linear", n, batch)


def test_spd_same_answers() -> None:
    """The benchmark trees give the list walk's answers (sanity, not timed)."""
    for n in (10, 1_000):
        tree = _tree(n)
        sps = list(tree)
        for s, d, p in packets(tree, 200, seed=11):
            assert tree.lookup(s, d, p) is lookup_linear(sps, s, d, p)


def test_spd_report(capsys: Any) -> None:
    """Print lookups/s and the ratios measured in this run."""
    if not _results:
        pytest.skip("benchmarks disabled (run with --benchmark-enable)")
    rate: Callable[[str, int], float] = lambda k, n: _results.get((k, n), float("nan"))
    lines = ["", "SPD lookup, lookups per second (median):",
             f"{'policies':>10} {'indexed':>12} {'list walk':>12} {'speed-up':>9}"]
    for n in SIZES:
        lines.append(f"{n:>10,} {rate('indexed', n):>12,.0f} {rate('linear', n):>12,.0f} "
                     f"{rate('indexed', n) / rate('linear', n):>8.1f}x")
    ratio = rate("indexed", 10) / rate("indexed", 100_000)
    lines.append(f"indexed: 100,000-policy lookup is {ratio:.2f}x the cost of the "
                 f"10-policy lookup (target <= 3x)")
    with capsys.disabled():
        print("\n".join(lines))
