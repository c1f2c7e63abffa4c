"""SPD trees and packet lookup: pfkey/spd.py against key.c's rules.

FreeBSD facts are from sys/netipsec/key.c (key_insertsp, key_getsp,
key_do_allocsp, key_cmpspidx_exactly, key_cmpspidx_withmask,
key_sockaddrcmp, key_bbcmp).  The indexed lookup is checked against
``lookup_linear`` (the list walk) on hypothesis-generated policy sets and on
one deterministic 10,000-policy set.
"""

from __future__ import annotations

import random
from typing import Any, Optional

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfkey.extensions import Sockaddr
from pfkey.pfkeyv2 import AF_INET, AF_INET6
from pfkey.spd import (
    SecPolicyIndex, SPDTree, key_bbcmp, key_cmpspidx_exactly, key_cmpspidx_withmask,
    key_sockaddrcmp, lookup_linear,
)

OUT = 2
ANY = 255


@attrs.define(eq=False)
class SP:
    """Stand-in for the key engine's secpolicy (hashed by identity)."""

    spidx: SecPolicyIndex
    priority: int = 0
    id: int = 0


def v4(a: str, port: int = 0) -> Sockaddr:
    return Sockaddr.inet(a, port)


def v6(a: str, port: int = 0, scope: int = 0, flowinfo: int = 0) -> Sockaddr:
    return Sockaddr.inet6(a, port, scope_id=scope, flowinfo=flowinfo)


def sp(src: Sockaddr, dst: Sockaddr, prefs: Optional[int] = None, prefd: Optional[int] = None,
       proto: int = ANY, priority: int = 0, id: int = 0, dir: int = OUT) -> SP:
    return SP(SecPolicyIndex(dir, src, dst, src.plen if prefs is None else prefs,
                             dst.plen if prefd is None else prefd, proto), priority, id)


def tree_of(*sps: SP) -> SPDTree:
    t = SPDTree(OUT)
    for x in sps:
        t.insert(x)
    t._check()
    return t


def freebsd_insert(lst: list[SP], new: SP) -> None:
    """key_insertsp written as FreeBSD's TAILQ walk, for comparison."""
    for i, cur in enumerate(lst):
        if (new.priority & 0xFFFFFFFF) < (cur.priority & 0xFFFFFFFF):
            lst.insert(i, new)
            return
    lst.append(new)


# ---------------------------------------------------------------------------
# Ordering: key_insertsp
# ---------------------------------------------------------------------------

def test_insert_before_first_strictly_greater_priority_fifo() -> None:
    """key_insertsp: lower priority first; equal priorities keep arrival order."""
    prios = [5, 1, 5, 0, 1, 7, 0, 5]
    sps = [sp(v4(f"10.0.0.{i}"), v4("10.0.1.1"), priority=p, id=i) for i, p in enumerate(prios)]
    t = tree_of(*sps)
    assert [x.id for x in t] == [3, 6, 1, 4, 0, 2, 7, 5]
    assert len(t) == 8


def test_priority_compared_as_uint32() -> None:
    """secpolicy.priority is uint32_t: 0x80000000 sorts after 0x7fffffff."""
    hi = sp(v4("10.0.0.1"), v4("10.0.0.2"), priority=0x80000000, id=1)
    lo = sp(v4("10.0.0.3"), v4("10.0.0.4"), priority=0x7FFFFFFF, id=2)
    top = sp(v4("10.0.0.5"), v4("10.0.0.6"), priority=0xFFFFFFFF, id=3)
    t = tree_of(top, hi, lo)
    assert [x.id for x in t] == [2, 1, 3]


def test_lookup_returns_first_match_in_list_order() -> None:
    """key_do_allocsp: TAILQ_FOREACH stops at the first matching policy."""
    wide = sp(v4("10.0.0.0"), v4("0.0.0.0"), 8, 0, id=1)
    narrow = sp(v4("10.1.2.3"), v4("192.168.0.1"), id=2)
    t = tree_of(wide, narrow)
    assert t.lookup(v4("10.1.2.3"), v4("192.168.0.1"), 6) is wide
    # a lower priority value moves the narrow policy in front
    narrow2 = sp(v4("10.1.2.3"), v4("192.168.0.1"), proto=6, priority=0, id=3)
    wide.priority = 0
    t2 = SPDTree()
    wide_late = sp(v4("10.0.0.0"), v4("0.0.0.0"), 8, 0, priority=10, id=4)
    t2.insert(wide_late)
    t2.insert(narrow2)
    assert [x.id for x in t2] == [3, 4]
    assert t2.lookup(v4("10.1.2.3"), v4("192.168.0.1"), 6) is narrow2
    assert t2.lookup(v4("10.1.2.3"), v4("192.168.0.1"), 17) is wide_late


def test_remove_then_lookup_falls_through() -> None:
    """key_detach unlinks; the next matching policy in order answers."""
    a = sp(v4("10.0.0.1"), v4("10.0.0.2"), id=1)
    b = sp(v4("10.0.0.0"), v4("10.0.0.0"), 24, 24, id=2)
    c = sp(v4("0.0.0.0"), v4("0.0.0.0"), 0, 0, id=3)
    t = tree_of(a, b, c)
    pkt = (v4("10.0.0.1", 1000), v4("10.0.0.2", 22), 6)
    assert t.lookup(*pkt) is a
    t.remove(a)
    t._check()
    assert t.lookup(*pkt) is b
    t.remove(b)
    assert t.lookup(*pkt) is c
    t.remove(c)
    assert t.lookup(*pkt) is None and len(t) == 0 and not t
    t._check()


def test_reinsert_goes_to_the_end_of_its_priority() -> None:
    """SPDUPDATE = key_detach(old) + key_insertsp(new): the new one is last
    among its priority."""
    a = sp(v4("10.0.0.1"), v4("10.0.0.2"), id=1)
    b = sp(v4("10.0.0.3"), v4("10.0.0.4"), id=2)
    t = tree_of(a, b)
    t.remove(a)
    t.insert(a)
    assert [x.id for x in t] == [2, 1]


def test_tree_mutation_errors() -> None:
    """Model-only guards: a policy is in a tree at most once, of its dir."""
    a = sp(v4("10.0.0.1"), v4("10.0.0.2"))
    t = tree_of(a)
    with pytest.raises(ValueError):
        t.insert(a)
    with pytest.raises(ValueError):
        t.insert(sp(v4("10.0.0.1"), v4("10.0.0.2"), dir=1))
    t.remove(a)
    with pytest.raises(KeyError):
        t.remove(a)
    t.discard(a)
    assert a not in t
    t.insert(a)
    t.clear()
    assert len(t) == 0 and list(t) == []


# ---------------------------------------------------------------------------
# key_getsp / key_cmpspidx_exactly
# ---------------------------------------------------------------------------

def test_find_exact_compares_every_selector_field() -> None:
    """key_cmpspidx_exactly: prefs, prefd, ul_proto, dir, and both addresses
    with ports (key_sockaddrcmp(..., 1))."""
    base = sp(v4("10.0.0.1", 21), v4("10.0.0.0", 0), 32, 24, 6)
    t = tree_of(base)
    x = base.spidx
    assert t.find_exact(x) is base
    assert t.find_exact(x._replace()) is base
    for changed in (x._replace(prefs=31), x._replace(prefd=16), x._replace(ul_proto=17),
                    x._replace(dir=1), x._replace(src=v4("10.0.0.1", 22)),
                    x._replace(dst=v4("10.0.0.0", 80)), x._replace(src=v4("10.0.0.2", 21)),
                    x._replace(dst=v6("::"))):
        assert t.find_exact(changed) is None
        assert not key_cmpspidx_exactly(x, changed)
    # host bits beyond the prefix count for the exact comparison
    assert t.find_exact(x._replace(dst=v4("10.0.0.5"))) is None


def test_find_exact_ignores_sin_zero_and_flowinfo_but_not_scope() -> None:
    """key_sockaddrcmp: AF_INET ignores sin_zero; AF_INET6 compares scope id
    but not flowinfo."""
    dirty = Sockaddr(AF_INET, 16, v4("10.0.0.1").data[:6] + b"garbage!")
    a = sp(v4("10.0.0.1"), v4("10.0.0.2"), id=1)
    b = sp(v6("fe80::1", scope=2), v6("fe80::2", scope=2), id=2)
    t = tree_of(a, b)
    assert t.find_exact(a.spidx._replace(src=dirty)) is a
    assert t.find_exact(b.spidx._replace(src=v6("fe80::1", scope=2, flowinfo=7))) is b
    assert t.find_exact(b.spidx._replace(src=v6("fe80::1", scope=0))) is None
    assert t.find_exact(b.spidx._replace(src=v6("fe80::1", scope=3))) is None


def test_key_sockaddrcmp_sa_len_rules() -> None:
    """key_sockaddrcmp: family and sa_len must agree; AF_INET needs sa_len 16
    and AF_INET6 28, otherwise even identical sockaddrs differ."""
    a = v4("10.0.0.1", 5)
    short = Sockaddr(AF_INET, 8, a.data[:6])
    assert key_sockaddrcmp(a, a, True) == 0
    assert key_sockaddrcmp(a, v4("10.0.0.1", 6), False) == 0
    assert key_sockaddrcmp(a, v4("10.0.0.1", 6), True) == 1
    assert key_sockaddrcmp(short, short, True) == 1
    assert key_sockaddrcmp(a, v6("::a00:1"), False) == 1
    link = Sockaddr(18, 8, b"abcdef")
    assert key_sockaddrcmp(link, Sockaddr(18, 8, b"abcdef"), True) == 0
    assert key_sockaddrcmp(link, Sockaddr(18, 8, b"abcdeg"), True) == 1
    t = tree_of(sp(short, short, 32, 32))
    assert t.find_exact(SecPolicyIndex(OUT, short, short, 32, 32, ANY)) is None


def test_find_exact_returns_first_of_duplicates() -> None:
    """key_getsp walks the list: with (model-only) duplicates, the first wins."""
    a = sp(v4("10.0.0.1"), v4("10.0.0.2"), priority=5, id=1)
    b = sp(v4("10.0.0.1"), v4("10.0.0.2"), priority=1, id=2)
    t = tree_of(a, b)
    assert t.find_exact(a.spidx) is b
    t.remove(b)
    assert t.find_exact(a.spidx) is a


# ---------------------------------------------------------------------------
# key_cmpspidx_withmask
# ---------------------------------------------------------------------------

def test_withmask_upper_layer_protocol() -> None:
    """ul_proto IPSEC_ULPROTO_ANY (255) matches any protocol, else equality."""
    anyp = sp(v4("10.0.0.1"), v4("10.0.0.2"), proto=ANY, id=1)
    tcp = sp(v4("10.0.0.3"), v4("10.0.0.4"), proto=6, id=2)
    ip0 = sp(v4("10.0.0.5"), v4("10.0.0.6"), proto=0, id=3)
    t = tree_of(anyp, tcp, ip0)
    for proto in (0, 1, 6, 17, 50, 255):
        assert t.lookup(v4("10.0.0.1"), v4("10.0.0.2"), proto) is anyp
        assert (t.lookup(v4("10.0.0.3"), v4("10.0.0.4"), proto) is tcp) == (proto == 6)
        assert (t.lookup(v4("10.0.0.5"), v4("10.0.0.6"), proto) is ip0) == (proto == 0)


@pytest.mark.parametrize("mk", [v4, v6])
def test_withmask_ports(mk: Any) -> None:
    """A policy port of IPSEC_PORT_ANY (0) matches every port; any other
    policy port must equal the packet's (a packet port 0 does not match it)."""
    a, b = ("10.0.0.1", "10.0.0.2") if mk is v4 else ("2001:db8::1", "2001:db8::2")
    exact = sp(mk(a, 500), mk(b, 4500), id=1)
    t = tree_of(exact)
    assert t.lookup(mk(a, 500), mk(b, 4500), 17) is exact
    assert t.lookup(mk(a, 501), mk(b, 4500), 17) is None
    assert t.lookup(mk(a, 500), mk(b, 0), 17) is None
    assert t.lookup(mk(a, 0), mk(b, 4500), 17) is None
    wild_src = sp(mk(a, 0), mk(b, 4500), id=2)
    t.insert(wild_src)
    assert t.lookup(mk(a, 12345), mk(b, 4500), 17) is wild_src
    assert t.lookup(mk(a, 500), mk(b, 4500), 17) is exact


def _flip_bit(raw: bytes, bit: int) -> bytes:
    v = int.from_bytes(raw, "big") ^ (1 << (len(raw) * 8 - 1 - bit))
    return v.to_bytes(len(raw), "big")


def test_withmask_prefixes_every_length_v4() -> None:
    """key_bbcmp compares the first prefs/prefd bits: an address differing
    first at bit b matches a /p policy exactly when p <= b (p = 0..32)."""
    base = v4("172.16.85.170").address_bytes
    for p in range(33):
        pol = sp(Sockaddr.inet(base), Sockaddr.inet(base), p, p)
        t = tree_of(pol)
        for b in range(32):
            other = Sockaddr.inet(_flip_bit(base, b))
            want = pol if p <= b else None
            assert t.lookup(other, Sockaddr.inet(base), 6) is want, (p, b)
            assert t.lookup(Sockaddr.inet(base), other, 6) is want, (p, b)
            assert (lookup_linear([pol], other, other, 6) is pol) == (p <= b)
        assert t.lookup(Sockaddr.inet(base), Sockaddr.inet(base), 6) is pol


def test_withmask_prefixes_every_length_v6() -> None:
    """As above for IPv6, p = 0..128 (prefs on the source, prefd on the dst)."""
    base = v6("2001:db8:5555:aaaa:1234:5678:9abc:def0").address_bytes
    bits = range(0, 128, 3)
    for p in range(129):
        pol = sp(Sockaddr.inet6(base), Sockaddr.inet6(base), p, 128 - p)
        t = tree_of(pol)
        for b in bits:
            other = Sockaddr.inet6(_flip_bit(base, b))
            assert (t.lookup(other, Sockaddr.inet6(base), 6) is pol) == (p <= b), (p, b)
            assert (t.lookup(Sockaddr.inet6(base), other, 6) is pol) == (128 - p <= b), (p, b)


def test_withmask_ignores_host_bits_of_the_policy() -> None:
    """Bits beyond the prefix are not compared on either side."""
    pol = sp(v4("10.1.2.3"), v4("192.168.7.9"), 8, 16)
    t = tree_of(pol)
    assert t.lookup(v4("10.200.0.1"), v4("192.168.0.0"), 6) is pol
    assert t.lookup(v4("11.1.2.3"), v4("192.168.7.9"), 6) is None


@pytest.mark.parametrize("pol_scope,pkt_scope,match", [
    (0, 0, True), (0, 5, True), (5, 0, True), (5, 5, True), (5, 6, False)])
def test_withmask_ipv6_scope_zero_is_a_wildcard(pol_scope: int, pkt_scope: int,
                                                 match: bool) -> None:
    """key_cmpspidx_withmask: sin6_scope_id 0 on either side matches any
    zone; two nonzero zone ids must be equal (source and destination)."""
    for side in ("src", "dst"):
        ps = pol_scope if side == "src" else 0
        pd = pol_scope if side == "dst" else 0
        pol = sp(v6("fe80::1", scope=ps), v6("fe80::2", scope=pd))
        t = tree_of(pol)
        qs = pkt_scope if side == "src" else 0
        qd = pkt_scope if side == "dst" else 0
        got = t.lookup(v6("fe80::1", scope=qs), v6("fe80::2", scope=qd), 58)
        assert (got is pol) == match
        assert key_cmpspidx_withmask(pol.spidx, SecPolicyIndex(
            0, v6("fe80::1", scope=qs), v6("fe80::2", scope=qd), 128, 128, 58)) == match


def test_withmask_scoped_and_unscoped_policies_keep_list_order() -> None:
    """A scoped policy and a wildcard-scope one on the same addresses: the
    packet gets the earlier of those whose zone is compatible."""
    s1 = sp(v6("fe80::1", scope=1), v6("fe80::2"), id=1)
    s0 = sp(v6("fe80::1"), v6("fe80::2"), id=2)
    s2 = sp(v6("fe80::1", scope=2), v6("fe80::2", scope=7), id=3)
    t = tree_of(s1, s0, s2)
    assert t.lookup(v6("fe80::1", scope=1), v6("fe80::2"), 6) is s1
    assert t.lookup(v6("fe80::1", scope=0), v6("fe80::2"), 6) is s1
    assert t.lookup(v6("fe80::1", scope=2), v6("fe80::2", scope=7), 6) is s0
    t.remove(s1)
    t.remove(s0)
    assert t.lookup(v6("fe80::1"), v6("fe80::2"), 6) is s2
    assert t.lookup(v6("fe80::1", scope=2), v6("fe80::2", scope=8), 6) is None


def test_withmask_ignores_flowinfo() -> None:
    """"XXX Do we check other field ? e.g. flowinfo": no."""
    pol = sp(v6("2001:db8::1", flowinfo=5), v6("2001:db8::2"))
    t = tree_of(pol)
    assert t.lookup(v6("2001:db8::1", flowinfo=9), v6("2001:db8::2", flowinfo=1), 6) is pol


def test_withmask_family_and_length_mismatch() -> None:
    """Families and sa_len of both addresses must be equal before anything
    else is compared, even for a 0/0 policy."""
    allv4 = sp(v4("0.0.0.0"), v4("0.0.0.0"), 0, 0, id=1)
    allv6 = sp(v6("::"), v6("::"), 0, 0, id=2)
    t = tree_of(allv4, allv6)
    assert t.lookup(v4("1.2.3.4"), v4("5.6.7.8"), 6) is allv4
    assert t.lookup(v6("::1"), v6("::2"), 6) is allv6
    assert t.lookup(v4("1.2.3.4"), v6("::2"), 6) is None
    assert t.lookup(v6("::1"), v4("5.6.7.8"), 6) is None
    odd = Sockaddr(AF_INET, 12, v4("1.2.3.4").data[:10])
    assert t.lookup(odd, v4("5.6.7.8"), 6) is None
    assert lookup_linear(list(t), odd, v4("5.6.7.8"), 6) is None


def test_withmask_other_family_is_bcmp() -> None:
    """Families other than inet/inet6 compare sa_len bytes (bcmp)."""
    link = Sockaddr(18, 8, b"abcdef")
    pol = sp(link, link, 0, 0)
    t = tree_of(pol)
    assert t.lookup(Sockaddr(18, 8, b"abcdef"), link, 0) is pol
    assert t.lookup(Sockaddr(18, 8, b"abcdeX"), link, 0) is None
    assert t.lookup(Sockaddr(18, 8, b"abcdef" + b"junk"), link, 0) is pol


def test_key_bbcmp_partial_bytes() -> None:
    """key_bbcmp masks the last partial byte from the high bit down."""
    assert key_bbcmp(b"\xf0", b"\xff", 4)
    assert not key_bbcmp(b"\xf0", b"\xff", 5)
    assert key_bbcmp(b"\x12\x34", b"\x12\x35", 15)
    assert not key_bbcmp(b"\x12\x34", b"\x12\x35", 16)
    assert key_bbcmp(b"\x00", b"\xff", 0)


def test_prefix_beyond_family_width_is_full_length() -> None:
    """key_parse refuses prefixes > 32/128; should one reach the SPD it acts
    as a full-length prefix (what key_bbcmp does over zeroed sin_zero)."""
    pol = sp(v4("10.0.0.1"), v4("10.0.0.2"), 40, 33)
    t = tree_of(pol)
    assert t.lookup(v4("10.0.0.1"), v4("10.0.0.2"), 6) is pol
    assert t.lookup(v4("10.0.0.0"), v4("10.0.0.2"), 6) is None
    assert t.lookup(v4("10.0.0.1"), v4("10.0.0.3"), 6) is None


# ---------------------------------------------------------------------------
# Equivalence with the list walk
# ---------------------------------------------------------------------------

_V4_POOL = [0x0A000000, 0x0A000001, 0x0A000002, 0x0A000100, 0x0A800000, 0x0B000000,
            0x8A000001, 0xFFFFFFFF, 0x00000000, 0xC0A80001]
_V6_POOL = [bytes(16), bytes.fromhex("fe800000000000000000000000000001"),
            bytes.fromhex("fe800000000000000000000000000002"),
            bytes.fromhex("20010db8000000000000000000000001"),
            bytes.fromhex("20010db8800000000000000000000001"),
            bytes.fromhex("ff020000000000000000000000000001")]
_ODD = [Sockaddr(18, 8, b"abcdef"), Sockaddr(18, 8, b"abcdeg"), Sockaddr(AF_INET, 8, b"\0\x01\x0a\0\0\x01")]

ports = st.sampled_from([0, 0, 0, 1, 80, 65535])
scopes = st.sampled_from([0, 0, 1, 2])


@st.composite
def addr_pair(draw: Any) -> tuple[Sockaddr, Sockaddr, int]:
    """(src, dst, width): same family; rarely an odd family or sa_len."""
    kind = draw(st.sampled_from(["v4", "v4", "v4", "v6", "v6", "odd", "mixed"]))
    if kind == "v4":
        a, b = (Sockaddr.inet(draw(st.one_of(st.sampled_from(_V4_POOL),
                                             st.integers(0, 2**32 - 1))).to_bytes(4, "big"),
                              draw(ports)) for _ in range(2))
        return a, b, 32
    if kind == "v6":
        a, b = (Sockaddr.inet6(draw(st.sampled_from(_V6_POOL)), draw(ports),
                               scope_id=draw(scopes)) for _ in range(2))
        return a, b, 128
    if kind == "odd":
        return draw(st.sampled_from(_ODD)), draw(st.sampled_from(_ODD)), 32
    return (Sockaddr.inet(draw(st.sampled_from(_V4_POOL)).to_bytes(4, "big")),
            Sockaddr.inet6(draw(st.sampled_from(_V6_POOL))), 32)


@st.composite
def policy(draw: Any) -> SP:
    src, dst, width = draw(addr_pair())
    prefs = draw(st.one_of(st.integers(0, width), st.sampled_from([0, width, width + 1])))
    prefd = draw(st.one_of(st.integers(0, width), st.sampled_from([0, width])))
    proto = draw(st.sampled_from([ANY, ANY, 6, 17, 0]))
    prio = draw(st.sampled_from([0, 0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]))
    return SP(SecPolicyIndex(OUT, src, dst, prefs, prefd, proto), prio)


packet = st.tuples(addr_pair(), st.sampled_from([0, 1, 6, 17, 255]))
ops = st.lists(st.one_of(
    st.tuples(st.just("ins"), policy()),
    st.tuples(st.just("del"), st.integers(0, 10**6)),
    st.tuples(st.just("look"), packet),
    st.tuples(st.just("exact"), st.integers(0, 10**6)),
    st.tuples(st.just("near"), st.integers(0, 10**6), st.integers(0, 2**128 - 1),
              st.sampled_from([0, 1, 80]), st.sampled_from([6, 17, 255])),
), min_size=10, max_size=80)


def inside(sa: Sockaddr, pref: int, bits: int, port: int) -> Sockaddr:
    """An address of sa/pref: the host part taken from ``bits``; the port
    kept when the policy has one (otherwise ``port``)."""
    if sa.family not in (AF_INET, AF_INET6) or len(sa.data) < sa.plen // 8 + 2:
        return sa
    raw = sa.address_bytes
    width = len(raw) * 8
    pref = min(pref, width)
    keep = ((1 << pref) - 1) << (width - pref)
    val = (int.from_bytes(raw, "big") & keep) | (bits & ~keep & ((1 << width) - 1))
    out = val.to_bytes(len(raw), "big")
    p = sa.port or port
    if sa.family == AF_INET:
        return Sockaddr.inet(out, p)
    return Sockaddr.inet6(out, p, scope_id=sa.scope_id)


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(policy(), max_size=40), ops)
def test_indexed_lookup_equals_list_walk(initial: list[SP],
                                         script: list[tuple[Any, ...]]) -> None:
    """Random policy sets then random interleavings of insert/remove/lookup
    (overlapping prefixes, port and protocol wildcards, IPv6 zones, duplicate
    and unsigned priorities): list order is key_insertsp's, lookup() answers
    what the key_do_allocsp walk answers, find_exact() what the key_getsp
    walk does."""
    t = SPDTree(OUT)
    model: list[SP] = []
    for new in initial:
        t.insert(new)
        freebsd_insert(model, new)
    for op in script:
        if op[0] == "ins":
            new = op[1]
            t.insert(new)
            freebsd_insert(model, new)
        elif op[0] == "del" and model:
            victim = model.pop(op[1] % len(model))
            t.remove(victim)
        elif op[0] == "look":
            (src, dst, _), proto = op[1]
            assert t.lookup(src, dst, proto) is lookup_linear(model, src, dst, proto)
            # a policy's own selector, seen as a packet, too
            if model:
                x = model[len(model) // 2].spidx
                assert (t.lookup(x.src, x.dst, proto)
                        is lookup_linear(model, x.src, x.dst, proto))
        elif op[0] == "near" and model:
            x = model[op[1] % len(model)].spidx
            src = inside(x.src, x.prefs, op[2], op[3])
            dst = inside(x.dst, x.prefd, op[2] >> 7, op[3])
            assert t.lookup(src, dst, op[4]) is lookup_linear(model, src, dst, op[4])
        elif op[0] == "exact" and model:
            x = model[op[1] % len(model)].spidx
            want = next((m for m in model if key_cmpspidx_exactly(x, m.spidx)), None)
            assert t.find_exact(x) is want
        assert list(t) == model
    t._check()


def _random_policy(rng: random.Random, i: int) -> SP:
    fam6 = rng.random() < 0.2
    width = 128 if fam6 else 32
    if fam6:
        mk = lambda: Sockaddr.inet6(rng.choice(_V6_POOL[:4])[:12]  # noqa: E731
                                    + rng.getrandbits(8).to_bytes(4, "big"),
                                    rng.choice([0, 0, 0, 443]),
                                    scope_id=rng.choice([0, 0, 0, 1]))
    else:
        mk = lambda: Sockaddr.inet(  # noqa: E731
            (rng.choice(_V4_POOL) & 0xFFFFF000 | rng.getrandbits(12)).to_bytes(4, "big"),
            rng.choice([0, 0, 0, 22, 500, 4500]))
    prefs = rng.choice([width, width, width, 24 if width == 32 else 64, 16, 8, 0,
                        rng.randrange(width + 1)])
    prefd = rng.choice([width, width, prefs, rng.randrange(width + 1)])
    return SP(SecPolicyIndex(OUT, mk(), mk(), prefs, prefd,
                             rng.choice([ANY, ANY, 6, 17, 1])),
              rng.choice([0, 0, 0, 0, 10, 0x80000000, 0xFFFFFFFF]), i)


def test_ten_thousand_policies_equal_list_walk() -> None:
    """10,000 mixed policies with removals and re-insertions: every probed
    packet gets the list walk's policy (key_do_allocsp)."""
    rng = random.Random(20240601)
    t = SPDTree(OUT)
    model: list[SP] = []
    for i in range(10_000):
        p = _random_policy(rng, i)
        t.insert(p)
        freebsd_insert(model, p)
    for _ in range(1_500):
        victim = model.pop(rng.randrange(len(model)))
        t.remove(victim)
    for i in range(1_500):
        p = _random_policy(rng, 10_000 + i)
        t.insert(p)
        freebsd_insert(model, p)
    t._check()
    assert list(t) == model
    for k in range(250):
        if k % 2:
            x = rng.choice(model).spidx
            src, dst = x.src, x.dst
        else:
            src, dst = _random_policy(rng, -1).spidx[1:3]
        proto = rng.choice([6, 17, 1, 50])
        assert t.lookup(src, dst, proto) is lookup_linear(model, src, dst, proto)
