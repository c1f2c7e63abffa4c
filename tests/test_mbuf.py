"""Tests for ipsec_accel.mbuf: sys/sys/mbuf.h, sys/kern/uipc_mbuf2.c (m_tag_*),
sys/kern/kern_mbuf.c (m_free, m_snd_tag_*) and UMA-style zone accounting."""

from __future__ import annotations

import threading

import pytest

import ipsec_accel.mbuf as mb
from ipsec_accel.mbuf import (
    CSUM_SND_TAG, M_NOWAIT, M_WAITOK, MTAG_ABI_COMPAT, MTAG_HDR_SIZE, PACKET_TAG_IPSEC_ACCEL_IN,
    PACKET_TAG_IPSEC_ACCEL_OUT, PACKET_TAG_IPSEC_IN_DONE, PACKET_TAG_IPSEC_OUT_DONE, IfSndTagSw,
    Mbuf, MTag, Zone, ZoneExhausted,
)
from thread_helpers import run_threads


@pytest.fixture
def zone() -> Zone:
    return Zone("test_tags", 0, factory=MTag)


def test_constants_have_freebsd_values() -> None:
    """sys/sys/mbuf.h: PACKET_TAG_IPSEC_IN_DONE 1, OUT_DONE 2, IPSEC_ACCEL_OUT
    32, IPSEC_ACCEL_IN 33; CSUM_TSO = CSUM_IP_TSO|CSUM_IP6_TSO; CSUM_SND_TAG is
    bit 31; MTAG_PERSISTENT 0x800."""
    assert (PACKET_TAG_IPSEC_IN_DONE, PACKET_TAG_IPSEC_OUT_DONE) == (1, 2)
    assert (PACKET_TAG_IPSEC_ACCEL_OUT, PACKET_TAG_IPSEC_ACCEL_IN) == (32, 33)
    assert mb.PACKET_TAG_MACLABEL == 19 | 0x800
    assert mb.CSUM_IP_TSO == 0x10 and mb.CSUM_IP6_TSO == 0x1000
    assert mb.CSUM_TSO == 0x1010
    assert CSUM_SND_TAG == 0x80000000
    assert mb.CSUM_TCP == mb.CSUM_IP_TCP == 0x4 and mb.CSUM_UDP == 0x2
    assert MTAG_ABI_COMPAT == 0 and MTAG_HDR_SIZE == 24
    assert (M_NOWAIT, M_WAITOK) == (1, 2)


def test_mbuf_without_tags_allocates_no_list() -> None:
    """The per-packet path stays cheap: a plain slotted object, no tag list
    until the first m_tag_prepend, a spare pkthdr slot for the field strategy."""
    m = Mbuf(b"\x45" + bytes(39))
    assert m.tags is None and m.len == 40 and len(m) == 40
    assert not hasattr(m, "__dict__")
    m.ph_spare = 7
    assert m.ph_spare == 7
    assert mb.m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_OUT) is None


def test_m_tag_prepend_locate_find(zone: Zone) -> None:
    """uipc_mbuf2.c: m_tag_prepend inserts at the head (SLIST_INSERT_HEAD);
    m_tag_locate matches cookie and type and resumes after ``start``;
    m_tag_find is the MTAG_ABI_COMPAT case."""
    m = Mbuf(b"x" * 10)
    t1 = mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, zone=zone)
    t2 = mb.m_tag_get(PACKET_TAG_IPSEC_IN_DONE, 40, zone=zone)
    t3 = mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, zone=zone)
    other = mb.m_tag_alloc(0x5A5A5A5A, PACKET_TAG_IPSEC_ACCEL_OUT, 4, zone=zone)
    assert t1 and t2 and t3 and other
    t1.data, t3.data = 100, 300
    for t in (t1, t2, t3, other):
        mb.m_tag_prepend(m, t)
    assert m.tags == [other, t3, t2, t1]
    assert mb.m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_OUT) is t3      # newest compat one
    assert mb.m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_OUT, t3) is t1
    assert mb.m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_OUT, t1) is None
    assert mb.m_tag_locate(m, 0x5A5A5A5A, PACKET_TAG_IPSEC_ACCEL_OUT) is other
    assert mb.m_tag_first(m) is other and mb.m_tag_next(m, t2) is t1
    assert mb.m_tag_next(m, t1) is None and mb.m_tag_count(m) == 4


def test_m_tag_delete_and_delete_chain(zone: Zone) -> None:
    """m_tag_delete unlinks and frees one tag; m_tag_delete_chain(m, t)
    frees t and every tag after it, (m, NULL) the whole chain."""
    m = Mbuf(b"")
    tags = [mb.m_tag_get(i + 1, 4, zone=zone) for i in range(5)]
    for t in tags:
        assert t is not None
        mb.m_tag_prepend(m, t)
    # chain is now [5, 4, 3, 2, 1]
    mb.m_tag_delete(m, tags[3])                          # id 4
    assert [t.m_tag_id for t in m.tags or ()] == [5, 3, 2, 1]
    mb.m_tag_delete_chain(m, tags[2])                    # id 3 and after
    assert [t.m_tag_id for t in m.tags or ()] == [5]
    mb.m_tag_delete_chain(m)
    assert m.tags is None
    assert zone.stats.used == 0 and zone.stats.frees == 5
    with pytest.raises(ValueError):
        mb.m_tag_unlink(m, tags[0])


def test_zone_accounts_tag_bytes_peak_and_m_freem(zone: Zone) -> None:
    """m_tag_alloc mallocs sizeof(struct m_tag) + len; m_free frees the chain
    (m_tag_delete_chain); the zone keeps request/free/used/peak/bytes."""
    ms = []
    for _ in range(3):
        m = Mbuf(b"p")
        t = mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, zone=zone)
        assert t is not None
        mb.m_tag_prepend(m, t)
        ms.append(m)
    st = zone.stats
    assert (st.used, st.requests, st.peak, st.bytes) == (3, 3, 3, 3 * (MTAG_HDR_SIZE + 2))
    for m in ms:
        mb.m_freem(m)
    st = zone.stats
    assert (st.used, st.frees, st.peak, st.bytes, st.peak_bytes) == (0, 3, 3, 0, 78)
    assert all(m.tags is None for m in ms)


def test_zone_nowait_failures_and_limit() -> None:
    """M_NOWAIT allocations can fail (ipsec_accel_output_tag then returns
    false); an M_WAITOK at the limit would sleep forever: the model raises."""
    z = Zone("limited", 32, factory=MTag, limit=2)
    z.fail_next(1)
    assert mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, M_NOWAIT, zone=z) is None
    assert z.stats.fails == 1
    a = mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, zone=z)
    b = mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, zone=z)
    assert a is not None and b is not None
    assert mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, M_NOWAIT, zone=z) is None
    with pytest.raises(ZoneExhausted):
        mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, M_WAITOK, zone=z)
    assert z.stats.fails == 3
    mb.m_tag_free(a)
    assert mb.m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, 2, M_WAITOK, zone=z) is not None
    # fail_next only affects M_NOWAIT
    z2 = Zone("z2", 8, factory=MTag)
    z2.fail_next(1)
    assert mb.m_tag_get(1, 0, M_WAITOK, zone=z2) is not None
    with pytest.raises(RuntimeError):
        Zone("empty").free()


def test_zone_cache_reuses_objects() -> None:
    """UMA buckets: with a cache, a freed item is handed out again instead
    of building a new object; counting is unaffected."""
    z = Zone("cached", 0, factory=MTag, cache=4)
    t = mb.m_tag_get(5, 2, zone=z)
    assert t is not None
    mb.m_tag_free(t)
    t2 = mb.m_tag_get(6, 2, zone=z)
    assert t2 is t and t2.m_tag_id == 6 and t2.data is None
    assert z.stats.requests == 2 and z.stats.cached == 0
    mb.m_tag_free(t2)
    z.drain()
    assert z.stats.cached == 0
    assert z in mb.all_zones()


def test_zone_counts_are_exact_under_threads() -> None:
    """Counters are updated under the zone lock (UMA's atomics)."""
    z = Zone("mt", 0, factory=MTag, cache=16)

    def worker() -> None:
        for _ in range(3000):
            t = mb.m_tag_get(1, 2, zone=z)
            assert t is not None
            mb.m_tag_free(t)

    run_threads(worker, [()] * 4, 10)
    st = z.stats
    assert (st.requests, st.frees, st.used, st.bytes) == (12000, 12000, 0, 0)


def test_zone_lock_free_path_counts_exactly_under_threads() -> None:
    """A fixed-size zone with nothing armed allocates without the lock
    (counters are itertools.count, atomic under the GIL, as UMA's per-CPU
    counters are without a zone lock): still exact across threads, objects
    cached and reused, nothing lost."""
    z = Zone("fixed", 56, factory=MTag, cache=64)
    seen: list[int] = []

    def worker() -> None:
        held = []
        for i in range(4000):
            held.append(z.alloc(56))
            if len(held) > 3:
                z.free(held.pop(0), 56)
        for t in held:
            z.free(t, 56)
        seen.append(1)

    run_threads(worker, [()] * 4, 20)
    st = z.stats
    assert len(seen) == 4
    assert (st.requests, st.frees, st.used, st.bytes) == (16000, 16000, 0, 0)
    assert 4 <= st.peak <= 16 and st.peak_bytes == st.peak * 56
    assert 0 < st.cached <= 64


def test_zone_peak_exact_and_underflow_refused_on_the_lock_free_path() -> None:
    """One thread: peak and peak bytes are exact on the lock-free path; a
    free without an allocation raises and is not counted; an item of
    another size arms the locked path until it is freed (bytes exact)."""
    z = Zone("p", 10, factory=MTag, cache=8)
    a = [z.alloc() for _ in range(5)]
    for t in a[:3]:
        z.free(t)
    b = [z.alloc() for _ in range(2)]
    st = z.stats
    assert (st.used, st.peak, st.peak_bytes, st.requests, st.frees) == (4, 5, 50, 7, 3)
    for t in a[3:] + b:
        z.free(t)
    with pytest.raises(RuntimeError):
        z.free(MTag())
    st = z.stats
    assert (st.used, st.frees, st.bytes) == (0, 7, 0)
    big = z.alloc(100)
    small = z.alloc()
    assert (z.cur, z.bytes, z.peak_bytes) == (2, 110, 110)
    z.free(big, 100)
    assert (z.cur, z.bytes) == (1, 10)
    z.free(small)
    after = z.alloc()
    assert (z.cur, z.bytes, z.peak) == (1, 10, 5)
    z.free(after)
    z.reset_stats()
    assert (z.allocs, z.frees, z.peak, z.cur) == (0, 0, 0, 0)


def test_m_tag_copy_chain_and_m_dup(zone: Zone) -> None:
    """m_dup copies data and pkthdr and the tag chain (m_tag_copy_chain) in
    order with new allocations; a send tag is not copied."""
    m = Mbuf(b"abcdef", csum_flags=mb.CSUM_IP_TCP)
    for i in (1, 2):
        t = mb.m_tag_get(i, 2, zone=zone)
        assert t is not None
        t.data = i * 10
        mb.m_tag_prepend(m, t)
    n = mb.m_dup(m)
    assert n is not None and n is not m
    assert bytes(n.data) == b"abcdef" and n.len == 6 and n.csum_flags == mb.CSUM_IP_TCP
    assert [(t.m_tag_id, t.data) for t in n.tags or ()] == [(2, 20), (1, 10)]
    assert all(a is not b for a, b in zip(n.tags or (), m.tags or ()))
    assert zone.stats.used == 4
    zone.fail_next(1)
    assert mb.m_dup(m) is None                    # all-or-nothing
    assert zone.stats.used == 4


def test_delete_nonpersistent(zone: Zone) -> None:
    """m_tag_delete_nonpersistent keeps MTAG_PERSISTENT tags only."""
    m = Mbuf(b"")
    for tid in (mb.PACKET_TAG_MACLABEL, PACKET_TAG_IPSEC_ACCEL_OUT):
        t = mb.m_tag_get(tid, 4, zone=zone)
        assert t is not None
        mb.m_tag_prepend(m, t)
    mb.m_tag_delete_nonpersistent(m)
    assert [t.m_tag_id for t in m.tags or ()] == [mb.PACKET_TAG_MACLABEL]


def test_data_helpers_keep_pkthdr_len() -> None:
    """m_pkthdr.len follows the data through M_PREPEND, m_adj, m_append."""
    m = Mbuf(b"payload")
    mb.m_prepend(m, b"HDR")
    assert bytes(m.data) == b"HDRpayload" and m.len == 10
    mb.m_adj(m, 3)
    assert bytes(m.data) == b"payload" and m.len == 7
    mb.m_adj(m, -4)
    mb.m_append(m, b"!")
    assert bytes(m.data) == b"pay!" and m.len == 4
    assert mb.m_copydata(m, 1, 2) == b"ay"
    with pytest.raises(ValueError):
        mb.m_copydata(m, 3, 5)


def test_mbuf_zone_accounting() -> None:
    """m_gethdr with a zone counts MSIZE, plus a cluster past MHLEN; m_free
    returns it."""
    z = Zone("mbuf_test", mb.MSIZE)
    small = mb.m_gethdr(b"x" * 100, zone=z)
    big = mb.m_gethdr(b"x" * 1400, zone=z)
    assert small is not None and big is not None
    assert z.stats.bytes == 2 * mb.MSIZE + mb.MCLBYTES
    mb.m_prepend(small, bytes(200))          # grows past MHLEN after allocation
    mb.m_freem(small)
    mb.m_freem(big)
    assert z.stats.used == 0 and z.stats.bytes == 0
    z.fail_next(1)
    assert mb.m_gethdr(b"x", zone=z) is None


class _FakeIfp:
    if_xname = "mce0"

    def __init__(self) -> None:
        self.refs = 1

    def if_ref(self) -> None:
        self.refs += 1

    def if_rele(self) -> None:
        self.refs -= 1


def test_send_tag_lifecycle() -> None:
    """m_snd_tag_init takes an if_ref; each packet holds a reference
    (m_snd_tag_ref, CSUM_SND_TAG set, rcvif gone: it shares the union);
    m_free releases it; the last m_snd_tag_rele destroys the tag
    (snd_tag_free, if_rele, zone free)."""
    z = Zone("snd_tag_test", mb.MSNDTAG_SIZE, factory=mb.MSndTag)
    freed: list[mb.MSndTag] = []
    sw = IfSndTagSw(mb.IF_SND_TAG_TYPE_IPSEC_ACCEL, snd_tag_free=freed.append)
    ifp = _FakeIfp()
    mst = mb.m_snd_tag_alloc(ifp, sw, softc={"drv_spi": 7}, zone=z)
    assert mst is not None and mst.refcount == 1 and ifp.refs == 2
    assert mst.type == mb.IF_SND_TAG_TYPE_IPSEC_ACCEL and mst.softc == {"drv_spi": 7}
    m = Mbuf(b"pkt", rcvif="ix0")
    assert mb.m_rcvif(m) == "ix0"
    mb.m_set_snd_tag(m, mst)
    assert m.csum_flags & CSUM_SND_TAG and m.snd_tag is mst and mst.refcount == 2
    assert mb.m_rcvif(m) is None
    mb.m_freem(m)
    assert mst.refcount == 1 and not m.csum_flags & CSUM_SND_TAG
    mb.m_snd_tag_rele(mst)                 # the handle's own reference
    assert freed == [mst] and ifp.refs == 1 and z.stats.used == 0
    with pytest.raises(RuntimeError):
        mb.m_snd_tag_rele(mst)
    with pytest.raises(RuntimeError):
        mb.m_snd_tag_ref(mst)


def test_send_tag_replaced_on_packet() -> None:
    """Setting a second send tag on a packet drops the first reference."""
    ifp = _FakeIfp()
    sw = IfSndTagSw(mb.IF_SND_TAG_TYPE_UNLIMITED)
    a = mb.m_snd_tag_alloc(ifp, sw)
    b = mb.m_snd_tag_alloc(ifp, sw)
    assert a is not None and b is not None
    m = Mbuf(b"")
    mb.m_set_snd_tag(m, a)
    mb.m_set_snd_tag(m, b)
    assert (a.refcount, b.refcount) == (1, 2)
    mb.m_freem(m)
    mb.m_snd_tag_rele(a)
    mb.m_snd_tag_rele(b)
    assert ifp.refs == 1


def test_send_tag_references_exact_under_threads_and_one_destroy() -> None:
    """refcount(9) without a lock (reference tokens, list.append/pop are
    atomic under the GIL): packets taking and dropping references from four
    threads leave the count where it was; when the base reference is
    released while other threads keep trying to take one, every attempt
    either gets a reference (and drops it) or is refused, and the tag is
    destroyed exactly once, after the last reference."""
    freed: list[mb.MSndTag] = []
    sw = IfSndTagSw(mb.IF_SND_TAG_TYPE_IPSEC_ACCEL, snd_tag_free=freed.append)
    ifp = _FakeIfp()
    mst = mb.m_snd_tag_alloc(ifp, sw, softc=7)
    assert mst is not None

    def packets() -> None:
        for _ in range(3000):
            m = Mbuf(b"p")
            mb.m_set_snd_tag(m, mst)
            mb.m_freem(m)

    run_threads(packets, [()] * 4, 20)
    assert mst.refcount == 1 and not freed

    got: list[int] = []
    refused: list[int] = []
    alive_when_held: list[bool] = []
    go = threading.Event()

    def racer() -> None:
        go.wait(5)
        for _ in range(2000):
            m = Mbuf(b"p")
            try:
                mb.m_set_snd_tag(m, mst)
            except RuntimeError:
                refused.append(1)
                continue
            alive_when_held.append(not freed)
            got.append(1)
            mb.m_freem(m)

    ts = [threading.Thread(target=racer) for _ in range(3)]
    for t in ts:
        t.start()
    go.set()
    mb.m_snd_tag_rele(mst)                 # the owner's reference, mid-race
    for t in ts:
        t.join(20)
    assert len(got) + len(refused) == 6000
    assert all(alive_when_held), "a reference was taken on a destroyed tag"
    assert freed == [mst] and mst.refcount == 0 and ifp.refs == 1
