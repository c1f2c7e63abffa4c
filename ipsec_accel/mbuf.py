"""mbufs, packet tags and send tags: ``sys/sys/mbuf.h``, ``sys/kern/uipc_mbuf2.c``
(m_tag_*), ``sys/kern/kern_mbuf.c`` (m_free, m_snd_tag_*), with allocation
modelled through UMA-like :class:`Zone` objects (``sys/vm/uma.h``, malloc(9)).

What is modelled, and how:

* :class:`Mbuf` is one packet-header mbuf with contiguous data.  The
  ``m_pkthdr`` fields are flattened onto it: ``m.len`` is
  ``m->m_pkthdr.len`` (and equals ``len(m.data)``: keep it so through
  :meth:`Mbuf.set_data`, :func:`m_adj`, :func:`m_prepend`, :func:`m_append`),
  ``rcvif``, ``snd_tag``, ``csum_flags``, ``csum_data``, ``tso_segsz``,
  ``ether_vtag``, ``flowid``, ``fibnum``.  In FreeBSD ``snd_tag`` and ``rcvif``
  share a union, discriminated by ``CSUM_SND_TAG``; the model keeps two
  slots but :func:`m_rcvif` and :func:`m_set_snd_tag` honour the union rules.
  ``ph_spare`` is a free slot for a "packet-header field" tag strategy (the
  per-packet alternative to an m_tag that costs no allocation).
* Packet tags (:class:`MTag`) are a chain on the mbuf, newest first
  (``SLIST_INSERT_HEAD``): :func:`m_tag_get`/:func:`m_tag_alloc` allocate
  ``sizeof(struct m_tag) + len`` bytes from a zone (FreeBSD mallocs them from
  ``M_PACKET_TAGS``, "mbuf_tag"), :func:`m_tag_prepend`, :func:`m_tag_locate`
  (resumes *after* ``start``), :func:`m_tag_find`, :func:`m_tag_delete`,
  :func:`m_tag_delete_chain` (deletes ``start`` and everything after it, or
  the whole chain), :func:`m_tag_copy_chain`.  :func:`m_freem` frees the chain
  and drops the send tag reference, as ``m_free`` does.
* :class:`Zone` counts requests, frees, failures, current and peak items and
  bytes, with an optional free-object cache (UMA buckets: a cached object is
  reused instead of building a new Python object), a limit, and failure
  injection so ``M_NOWAIT`` failure paths can be tested.
* :class:`MSndTag` is ``struct m_snd_tag``: bound to an ifnet (it holds an
  ``if_ref``), refcounted (``m_snd_tag_ref``/``m_snd_tag_rele``), destroyed
  through its switch's ``snd_tag_free`` when the last reference goes; it comes
  from its own zone.

The per-packet path uses plain ``__slots__`` classes and module functions; no
attrs object is created per packet.  Constants carry FreeBSD's values
(PACKET_TAG_* from the 2024 mbuf.h including IPSEC_ACCEL_OUT/IN = 32/33; the
CSUM_* layout of FreeBSD 12+).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Callable, Iterator, NamedTuple, Protocol

__all__ = [
    # allocation
    "Zone", "ZoneStats", "ZoneExhausted", "all_zones", "M_NOWAIT", "M_WAITOK", "M_ZERO",
    # mbuf
    "Mbuf", "m_gethdr", "m_freem", "m_free", "m_rcvif", "m_adj", "m_prepend", "m_append",
    "m_copydata", "m_dup", "mbuf_zone", "MSIZE", "MCLBYTES", "MHLEN",
    # tags
    "MTag", "m_tag_alloc", "m_tag_get", "m_tag_attach", "m_tag_free", "m_tag_prepend", "m_tag_unlink",
    "m_tag_delete", "m_tag_delete_chain", "m_tag_delete_nonpersistent", "m_tag_locate",
    "m_tag_find", "m_tag_first", "m_tag_next", "m_tag_copy", "m_tag_copy_chain",
    "m_tag_count", "iter_tags", "tag_zone", "MTAG_HDR_SIZE", "MTAG_ABI_COMPAT",
    "MTAG_PERSISTENT",
    # send tags
    "MSndTag", "IfSndTagSw", "m_snd_tag_init", "m_snd_tag_alloc", "m_snd_tag_ref",
    "m_snd_tag_rele", "m_set_snd_tag", "snd_tag_zone",
]

# --------------------------------------------------------------------------
# Constants (sys/sys/mbuf.h, sys/sys/malloc.h, sys/net/if_var.h)

M_NOWAIT = 0x0001
M_WAITOK = 0x0002
M_ZERO = 0x0100

MSIZE = 256          # amd64 mbuf size
MCLBYTES = 2048      # standard cluster
MHLEN = 168          # data room in a packet-header mbuf (amd64, FreeBSD 14)

# mbuf flags (lower 24 bits of m_flags)
M_EXT = 0x00000001
M_PKTHDR = 0x00000002
M_EOR = 0x00000004
M_RDONLY = 0x00000008
M_BCAST = 0x00000010
M_MCAST = 0x00000020
M_PROMISC = 0x00000040
M_VLANTAG = 0x00000080
M_EXTPG = 0x00000100
M_NOFREE = 0x00000200
M_TSTMP = 0x00000400
M_TSTMP_HPREC = 0x00000800
M_TSTMP_LRO = 0x00001000
M_PROTO1 = 0x00002000
M_PROTO2 = 0x00004000
M_PROTO3 = 0x00008000
M_PROTO4 = 0x00010000
M_PROTO5 = 0x00020000
M_PROTO6 = 0x00040000
M_PROTO7 = 0x00080000
M_PROTO8 = 0x00100000
M_PROTO9 = 0x00200000
M_PROTO10 = 0x00400000
M_PROTO11 = 0x00800000

# csum_flags: checksum/segmentation offload requests and results
CSUM_IP = 0x00000001
CSUM_IP_UDP = 0x00000002
CSUM_IP_TCP = 0x00000004
CSUM_IP_SCTP = 0x00000008
CSUM_IP_TSO = 0x00000010
CSUM_IP_ISCSI = 0x00000020
CSUM_INNER_IP6_UDP = 0x00000040
CSUM_INNER_IP6_TCP = 0x00000080
CSUM_INNER_IP6_TSO = 0x00000100
CSUM_IP6_UDP = 0x00000200
CSUM_IP6_TCP = 0x00000400
CSUM_IP6_SCTP = 0x00000800
CSUM_IP6_TSO = 0x00001000
CSUM_IP6_ISCSI = 0x00002000
CSUM_INNER_IP = 0x00004000
CSUM_INNER_IP_UDP = 0x00008000
CSUM_INNER_IP_TCP = 0x00010000
CSUM_INNER_IP_TSO = 0x00020000
CSUM_ENCAP_VXLAN = 0x00040000
CSUM_ENCAP_RSVD1 = 0x00080000
CSUM_INNER_L3_CALC = 0x00100000
CSUM_INNER_L3_VALID = 0x00200000
CSUM_INNER_L4_CALC = 0x00400000
CSUM_INNER_L4_VALID = 0x00800000
CSUM_L3_CALC = 0x01000000
CSUM_L3_VALID = 0x02000000
CSUM_L4_CALC = 0x04000000
CSUM_L4_VALID = 0x08000000
CSUM_L5_CALC = 0x10000000
CSUM_L5_VALID = 0x20000000
CSUM_COALESCED = 0x40000000
CSUM_SND_TAG = 0x80000000
# compatibility names
CSUM_IP_CHECKED = CSUM_L3_CALC
CSUM_IP_VALID = CSUM_L3_VALID
CSUM_DATA_VALID = CSUM_L4_VALID
CSUM_PSEUDO_HDR = CSUM_L4_CALC
CSUM_SCTP_VALID = CSUM_L4_VALID
CSUM_TCP = CSUM_IP_TCP
CSUM_UDP = CSUM_IP_UDP
CSUM_SCTP = CSUM_IP_SCTP
CSUM_TSO = CSUM_IP_TSO | CSUM_IP6_TSO
CSUM_INNER_TSO = CSUM_INNER_IP_TSO | CSUM_INNER_IP6_TSO
CSUM_UDP_IPV6 = CSUM_IP6_UDP
CSUM_TCP_IPV6 = CSUM_IP6_TCP
CSUM_SCTP_IPV6 = CSUM_IP6_SCTP
CSUM_DELAY_DATA = CSUM_TCP | CSUM_UDP
CSUM_DELAY_IP = CSUM_IP
CSUM_DELAY_DATA_IPV6 = CSUM_TCP_IPV6 | CSUM_UDP_IPV6
CSUM_DATA_VALID_IPV6 = CSUM_DATA_VALID

# packet tags
MTAG_PERSISTENT = 0x800
MTAG_ABI_COMPAT = 0
PACKET_TAG_NONE = 0
PACKET_TAG_IPSEC_IN_DONE = 1
PACKET_TAG_IPSEC_OUT_DONE = 2
PACKET_TAG_IPSEC_IN_CRYPTO_DONE = 3
PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED = 4
PACKET_TAG_IPSEC_IN_COULD_DO_CRYPTO = 5
PACKET_TAG_IPSEC_PENDING_TDB = 6
PACKET_TAG_BRIDGE = 7
PACKET_TAG_GIF = 8
PACKET_TAG_GRE = 9
PACKET_TAG_IN_PACKET_CHECKSUM = 10
PACKET_TAG_ENCAP = 11
PACKET_TAG_IPSEC_SOCKET = 12
PACKET_TAG_IPSEC_HISTORY = 13
PACKET_TAG_IPV6_INPUT = 14
PACKET_TAG_DUMMYNET = 15
PACKET_TAG_DIVERT = 17
PACKET_TAG_IPFORWARD = 18
PACKET_TAG_MACLABEL = 19 | MTAG_PERSISTENT
PACKET_TAG_PF = 21
PACKET_TAG_IPOPTIONS = 27
PACKET_TAG_CARP = 28
PACKET_TAG_IPSEC_NAT_T_PORTS = 29
PACKET_TAG_ND_OUTGOING = 30
PACKET_TAG_PF_REASSEMBLED = 31
PACKET_TAG_IPSEC_ACCEL_OUT = 32
PACKET_TAG_IPSEC_ACCEL_IN = 33
PACKET_TAG_OVPN = 34

#: sizeof(struct m_tag) on amd64: SLIST link 8, id 2, len 2, cookie 4, free 8.
MTAG_HDR_SIZE = 24

# send tag types (sys/net/if_var.h)
IF_SND_TAG_TYPE_RATE_LIMIT = 0
IF_SND_TAG_TYPE_UNLIMITED = 1
IF_SND_TAG_TYPE_TLS = 2
IF_SND_TAG_TYPE_TLS_RATE_LIMIT = 3
IF_SND_TAG_TYPE_TLS_RX = 4
#: Model-only: FreeBSD has no IPsec send tag.  This is the "send tag created
#: once per (ifnet, SA) handle" alternative the FreeBSD review asked about.
IF_SND_TAG_TYPE_IPSEC_ACCEL = 0x100

#: sizeof(struct m_snd_tag): ifp 8, sw 8, refcount 4 (+pad).
MSNDTAG_SIZE = 24

__all__ += [n for n in list(globals()) if n.startswith(
    ("M_", "CSUM_", "PACKET_TAG_", "IF_SND_TAG_TYPE_", "MSNDTAG"))
    and n not in __all__]


# --------------------------------------------------------------------------
# Zones

class ZoneExhausted(MemoryError):
    """An M_WAITOK allocation hit the zone limit: FreeBSD would sleep until a
    free; a single-threaded model cannot, so it raises."""


class ZoneStats(NamedTuple):
    """One ``vmstat -z`` / ``vmstat -m`` style line."""

    name: str
    size: int            # nominal item size (0: variable, see bytes)
    limit: int | None
    used: int            # items allocated now
    cached: int          # freed items kept for reuse
    requests: int        # successful allocations
    frees: int
    fails: int
    peak: int            # high-water mark of used
    bytes: int           # bytes allocated now
    peak_bytes: int


_ALL_ZONES: weakref.WeakSet[Zone] = weakref.WeakSet()


class Zone:
    """A UMA zone (or malloc(9) type) with honest accounting.

    ``alloc(size)`` returns an object built by ``factory`` -- or a cached one
    when ``cache > 0`` -- or ``None`` when an ``M_NOWAIT`` allocation fails
    (limit reached or :meth:`fail_next` armed).  ``free(obj, size)`` returns
    it.  ``size`` defaults to the zone's item size and feeds the byte
    counters (tags are variable-size: ``MTAG_HDR_SIZE + len``).

    Counting: allocations and frees are two ``itertools.count`` objects
    (one C call each, atomic under the GIL, like UMA's per-CPU counters), so
    an allocation of the zone's own size with nothing armed takes no lock:
    the per-packet path.  ``used`` = allocations - frees and ``bytes`` are
    read from the counters: always exact.  A limit, an armed failure, or an
    item of another size (outstanding) sends every call through the locked
    path.  A limit is enforced exactly (a limited zone never takes the
    lock-free path); ``peak`` and ``peak_bytes`` are exact for one thread and
    may read a little high while several threads allocate and free at once
    (UMA keeps no peak at all).  Freeing more than was allocated raises
    RuntimeError.  ``locked`` is accepted for compatibility: the lock-free
    path needs no lock and the locked path always takes one.
    """

    __slots__ = ("name", "size", "_limit", "cache_max", "_cache", "_factory", "_lock",
                 "_ac", "_fc", "_av", "_fv", "_a0", "_f0", "_fbad", "fails", "peak",
                 "_xbytes", "peak_bytes", "_fail_next", "_armed", "__weakref__")
    _armed: Any      # truthy: limit, armed failure or other-size items outstanding

    def __init__(self, name: str, size: int = 0, *, factory: Callable[[], Any] | None = None,
                 limit: int | None = None, cache: int = 0, locked: bool = True) -> None:
        self.name = name
        self.size = size
        self.cache_max = cache
        self._cache: list[Any] = []
        self._factory = factory
        self._lock = threading.Lock()
        self._ac = itertools.count(1)     # next() = allocations made, this one included
        self._fc = itertools.count(1)
        self._av = 0                      # last allocation count seen (fast-path hint)
        self._fv = 0                      # last free count seen (fast-path hint)
        self._a0 = self._f0 = 0           # reset_stats() bases
        self._fbad = 0                    # refused frees (counted by _fc, not frees)
        self.fails = 0
        self.peak = 0
        self._xbytes = 0                  # bytes outstanding beyond used * size
        self.peak_bytes = 0
        self._fail_next = 0
        self._limit = limit
        self._rearm()
        _ALL_ZONES.add(self)

    # -- counters ---------------------------------------------------------------------

    @staticmethod
    def _count(c: "itertools.count[int]") -> int:
        # How many next() calls a count(1) has served (its repr is the next
        # value): an exact read without consuming a number.
        r = repr(c)
        return int(r[6:-1]) - 1

    @property
    def allocs(self) -> int:
        return self._count(self._ac) - self._a0

    @property
    def frees(self) -> int:
        return self._count(self._fc) - self._fbad - self._f0

    @property
    def cur(self) -> int:
        return self._count(self._ac) - (self._count(self._fc) - self._fbad)

    @property
    def bytes(self) -> int:
        return self.cur * self.size + self._xbytes

    @property
    def limit(self) -> int | None:
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        with self._lock:
            self._limit = value
            self._rearm()

    def _rearm(self) -> None:
        # Lock held (or construction).
        self._armed = self._fail_next or self._limit is not None or self._xbytes

    # -- alloc / free ---------------------------------------------------------------------

    def alloc(self, size: int | None = None, wait: int = M_NOWAIT) -> Any:
        """``uma_zalloc``/``malloc``.  Returns the object, or None on an
        M_NOWAIT failure."""
        if not self._armed and (size is None or size == self.size):
            # Lock-free: one counter step, the peak hint, the cache.
            a = self._av = next(self._ac)
            cur = a - self._fv + self._fbad
            if cur > self.peak:
                self.peak = cur
                b = cur * self.size
                if b > self.peak_bytes:
                    self.peak_bytes = b
            try:
                return self._cache.pop()
            except IndexError:
                factory = self._factory
                return factory() if factory is not None else True
        nbytes = self.size if size is None else size
        lock = self._lock
        lock.acquire()
        if self._fail_next and wait & M_NOWAIT:
            self._fail_next -= 1
            self.fails += 1
            self._rearm()
            lock.release()
            return None
        # The hints are exact here for a zone that is always locked (a
        # limited one); for the others only the peak can read high.
        cur = self._av - self._fv + self._fbad + 1
        limit = self._limit
        if limit is not None and cur > limit:
            self.fails += 1
            lock.release()
            if wait & M_WAITOK:
                raise ZoneExhausted(f"zone {self.name}: limit {limit} reached")
            return None
        self._av = next(self._ac)
        xb = self._xbytes = self._xbytes + nbytes - self.size
        if cur > self.peak:
            self.peak = cur
        b = cur * self.size + xb
        if b > self.peak_bytes:
            self.peak_bytes = b
        self._rearm()
        cache = self._cache
        obj = cache.pop() if cache else None
        lock.release()
        if obj is None:
            factory = self._factory
            obj = factory() if factory is not None else True
        return obj

    def free(self, obj: Any = None, size: int | None = None) -> None:
        """``uma_zfree``/``free``."""
        if not self._armed and (size is None or size == self.size):
            f = self._fv = next(self._fc)
            if f - self._fbad > self._av:
                self._check_free()
            if obj is not None and len(self._cache) < self.cache_max:
                self._cache.append(obj)
            return
        lock = self._lock
        lock.acquire()
        if self._av - self._fv + self._fbad <= 0 and self.cur <= 0:
            lock.release()
            raise RuntimeError(f"zone {self.name}: free without allocation")
        self._fv = next(self._fc)
        self._xbytes += self.size - (self.size if size is None else size)
        self._rearm()
        if obj is not None and len(self._cache) < self.cache_max:
            self._cache.append(obj)
        lock.release()

    def _check_free(self) -> None:
        # The fast path's hint says more frees than allocations: count
        # exactly (another thread may have allocated without publishing its
        # hint yet); refuse a real underflow.
        with self._lock:
            if self._count(self._fc) - self._fbad > self._count(self._ac):
                self._fbad += 1
                raise RuntimeError(f"zone {self.name}: free without allocation")

    def fail_next(self, n: int = 1) -> None:
        """Make the next ``n`` M_NOWAIT allocations fail (fault injection)."""
        with self._lock:
            self._fail_next = n
            self._rearm()

    def drain(self) -> None:
        """``uma_zone_reclaim``: drop cached free objects."""
        self._cache.clear()

    def reset_stats(self) -> None:
        """Zero the request/free/fail/peak counters (not ``used``)."""
        with self._lock:
            self._a0 = self._count(self._ac)
            self._f0 = self._count(self._fc) - self._fbad
            self.fails = 0
            self.peak = self.cur
            self.peak_bytes = self.bytes

    @property
    def stats(self) -> ZoneStats:
        with self._lock:
            return ZoneStats(self.name, self.size, self._limit, self.cur, len(self._cache),
                             self.allocs, self.frees, self.fails, self.peak, self.bytes,
                             self.peak_bytes)

    def __repr__(self) -> str:
        return f"<Zone {self.name} used={self.cur} req={self.allocs} fail={self.fails}>"


def all_zones() -> list[Zone]:
    """Every live zone, by name (``vmstat -z``)."""
    return sorted(_ALL_ZONES, key=lambda z: z.name)


# --------------------------------------------------------------------------
# Packet tags

class MTag:
    """``struct m_tag`` followed by its payload.  ``data`` stands for the
    bytes after the header (e.g. an ``ipsec_accel_out_tag``'s drv_spi); the
    owner decides what object goes there."""

    __slots__ = ("m_tag_id", "m_tag_len", "m_tag_cookie", "data", "zone")

    def __init__(self) -> None:
        self.m_tag_id = 0
        self.m_tag_len = 0
        self.m_tag_cookie = 0
        self.data: Any = None
        self.zone: Zone | None = None

    def __repr__(self) -> str:
        return (f"<MTag cookie={self.m_tag_cookie} id={self.m_tag_id} "
                f"len={self.m_tag_len} data={self.data!r}>")


#: The default tag allocator: FreeBSD's M_PACKET_TAGS malloc type ("mbuf_tag").
tag_zone = Zone("mbuf_tag", 0, factory=MTag, cache=256)


def m_tag_alloc(cookie: int, type: int, length: int, wait: int = M_NOWAIT,
                zone: Zone | None = None) -> MTag | None:
    """``m_tag_alloc``: allocate ``MTAG_HDR_SIZE + length`` bytes; None when
    an M_NOWAIT allocation fails."""
    return m_tag_attach(None, type, length, None, zone, wait, cookie)


def m_tag_get(type: int, length: int, wait: int = M_NOWAIT,
              zone: Zone | None = None) -> MTag | None:
    """``m_tag_get``: :func:`m_tag_alloc` with ``MTAG_ABI_COMPAT``."""
    return m_tag_alloc(MTAG_ABI_COMPAT, type, length, wait, zone)


def m_tag_attach(m: Mbuf | None, type: int, length: int, data: Any, zone: Zone | None = None,
                 wait: int = M_NOWAIT, cookie: int = MTAG_ABI_COMPAT) -> MTag | None:
    """``m_tag_get`` + filling the payload + ``m_tag_prepend``: what every
    per-packet tag of the IPsec paths does (ipsec_accel_output_tag, the
    IN_DONE / OUT_DONE xform_history tags, CRYPTO_NEEDED).  None (nothing
    attached) when the M_NOWAIT allocation fails.  With ``m`` None it is
    :func:`m_tag_alloc` (the one place a tag is taken from its zone)."""
    z = tag_zone if zone is None else zone
    t = z.alloc(MTAG_HDR_SIZE + length, wait)
    if t is None:
        return None
    t.m_tag_cookie = cookie
    t.m_tag_id = type
    t.m_tag_len = length
    t.data = data
    t.zone = z
    if m is not None:
        tags = m.tags
        if tags is None:
            m.tags = [t]
        else:
            tags.insert(0, t)
    return t


def m_tag_free(t: MTag) -> None:
    """``m_tag_free``: return the tag to its zone."""
    z = t.zone
    t.data = None
    t.zone = None
    if z is not None:
        z.free(t, MTAG_HDR_SIZE + t.m_tag_len)


# --------------------------------------------------------------------------
# mbufs

#: Optional accounting for mbufs themselves ("mbuf" zone; MSIZE per mbuf
#: plus a cluster's MCLBYTES when the data does not fit in MHLEN).
mbuf_zone = Zone("mbuf", MSIZE)


class Mbuf:
    """A packet-header mbuf (see the module docstring for the field mapping)."""

    __slots__ = ("data", "m_flags", "len", "rcvif", "snd_tag", "csum_flags", "csum_data",
                 "tso_segsz", "ether_vtag", "flowid", "fibnum", "ph_spare", "tags", "zone",
                 "m_memlen")

    def __init__(self, data: bytes | bytearray | memoryview = b"", *, rcvif: Any = None,
                 csum_flags: int = 0, flags: int = M_PKTHDR) -> None:
        self.data = data
        self.len = len(data)
        self.m_flags = flags
        self.rcvif = rcvif
        self.snd_tag: MSndTag | None = None
        self.csum_flags = csum_flags
        self.csum_data = 0
        self.tso_segsz = 0
        self.ether_vtag = 0
        self.flowid = 0
        self.fibnum = 0
        self.ph_spare: Any = None
        self.tags: list[MTag] | None = None   # None until the first tag: no list per packet
        self.zone: Zone | None = None
        self.m_memlen = 0        # bytes charged to ``zone`` (pkthdr.memlen)

    def set_data(self, data: bytes | bytearray | memoryview) -> None:
        """Replace the packet bytes, keeping ``len`` (m_pkthdr.len) in step."""
        self.data = data
        self.len = len(data)

    def __len__(self) -> int:
        return self.len

    def __bytes__(self) -> bytes:
        return bytes(self.data)

    def __repr__(self) -> str:
        ntags = len(self.tags) if self.tags else 0
        return f"<Mbuf len={self.len} csum={self.csum_flags:#x} tags={ntags}>"


def m_gethdr(data: bytes | bytearray | memoryview = b"", wait: int = M_NOWAIT,
             zone: Zone | None = None) -> Mbuf | None:
    """``m_gethdr`` (+ cluster when needed) with zone accounting when
    ``zone`` is given; None on an M_NOWAIT failure."""
    if zone is not None:
        size = MSIZE + (MCLBYTES if len(data) > MHLEN else 0)
        if zone.alloc(size, wait) is None:
            return None
        m = Mbuf(data)
        m.zone = zone
        m.m_memlen = size
        return m
    return Mbuf(data)


def m_rcvif(m: Mbuf) -> Any:
    """``m_rcvif``: the receive interface, or None when the union holds a
    send tag (CSUM_SND_TAG)."""
    if m.csum_flags & CSUM_SND_TAG:
        return None
    return m.rcvif


def m_free(m: Mbuf) -> None:
    """``m_free`` of a packet-header mbuf: free its tag chain, release the
    send tag reference, return it to its zone."""
    tags = m.tags
    if tags:
        m.tags = None
        for t in tags:
            # m_tag_free, inlined for the per-packet path.
            z = t.zone
            t.data = None
            if z is not None:
                t.zone = None
                z.free(t, MTAG_HDR_SIZE + t.m_tag_len)
    if m.csum_flags & CSUM_SND_TAG:
        mst = m.snd_tag
        m.snd_tag = None
        m.csum_flags &= ~CSUM_SND_TAG
        if mst is not None:
            # m_snd_tag_rele inlined for the per-packet path.
            try:
                tok = mst._refs.pop()
            except IndexError:
                raise RuntimeError(f"m_snd_tag_rele underflow on {mst!r}") from None
            if tok is _REF_BASE:
                _m_snd_tag_destroy(mst)
    z = m.zone
    if z is not None:
        m.zone = None
        z.free(None, m.m_memlen)   # what was charged, even if the data grew


m_freem = m_free   # single-mbuf chains: m_freem == m_free


def m_adj(m: Mbuf, req_len: int) -> None:
    """``m_adj``: trim ``req_len`` bytes from the head (>0) or tail (<0)."""
    if req_len >= 0:
        m.set_data(m.data[req_len:])
    else:
        m.set_data(m.data[:req_len])


def m_prepend(m: Mbuf, hdr: bytes) -> None:
    """``M_PREPEND``: put ``hdr`` in front of the data."""
    m.set_data(bytes(hdr) + bytes(m.data))


def m_append(m: Mbuf, tail: bytes) -> None:
    """``m_append``."""
    m.set_data(bytes(m.data) + bytes(tail))


def m_copydata(m: Mbuf, off: int, length: int) -> bytes:
    """``m_copydata``; raises ValueError past the end (FreeBSD KASSERTs)."""
    if off < 0 or length < 0 or off + length > m.len:
        raise ValueError("m_copydata: bad offset/length")
    return bytes(m.data[off:off + length])


def m_dup(m: Mbuf, wait: int = M_NOWAIT) -> Mbuf | None:
    """``m_dup``: deep copy of data and packet header, tags copied
    (``m_dup_pkthdr`` + ``m_tag_copy_chain``).  The send tag is not copied."""
    n = m_gethdr(bytes(m.data), wait, m.zone)
    if n is None:
        return None
    n.m_flags = m.m_flags
    n.rcvif = m_rcvif(m)
    n.csum_flags = m.csum_flags & ~CSUM_SND_TAG
    n.csum_data = m.csum_data
    n.tso_segsz = m.tso_segsz
    n.ether_vtag = m.ether_vtag
    n.flowid = m.flowid
    n.fibnum = m.fibnum
    n.ph_spare = m.ph_spare
    if not m_tag_copy_chain(n, m, wait):
        m_free(n)
        return None
    return n


# ------------------------------------------------------------ tag chain ops

def m_tag_prepend(m: Mbuf, t: MTag) -> None:
    """``m_tag_prepend``: insert at the head of the chain."""
    tags = m.tags
    if tags is None:
        m.tags = [t]
    else:
        tags.insert(0, t)


def m_tag_unlink(m: Mbuf, t: MTag) -> None:
    """``m_tag_unlink``."""
    tags = m.tags
    if not tags:
        raise ValueError("m_tag_unlink: tag not on mbuf")
    tags.remove(t)
    if not tags:
        m.tags = None


def m_tag_delete(m: Mbuf, t: MTag) -> None:
    """``m_tag_delete``: unlink and free."""
    m_tag_unlink(m, t)
    m_tag_free(t)


def m_tag_delete_chain(m: Mbuf, t: MTag | None = None) -> None:
    """``m_tag_delete_chain``: free ``t`` and every tag after it, or the
    whole chain when ``t`` is None."""
    tags = m.tags
    if not tags:
        return
    start = 0 if t is None else tags.index(t)
    doomed = tags[start:]
    del tags[start:]
    if not tags:
        m.tags = None
    for x in doomed:
        m_tag_free(x)


def m_tag_delete_nonpersistent(m: Mbuf) -> None:
    """``m_tag_delete_nonpersistent``: free tags without MTAG_PERSISTENT."""
    tags = m.tags
    if not tags:
        return
    keep = [t for t in tags if t.m_tag_id & MTAG_PERSISTENT]
    doomed = [t for t in tags if not t.m_tag_id & MTAG_PERSISTENT]
    m.tags = keep or None
    for t in doomed:
        m_tag_free(t)


def m_tag_locate(m: Mbuf, cookie: int, type: int, start: MTag | None = None) -> MTag | None:
    """``m_tag_locate``: first tag with (cookie, type), searching after
    ``start`` when given."""
    tags = m.tags
    if not tags:
        return None
    if start is None:
        for t in tags:
            if t.m_tag_id == type and t.m_tag_cookie == cookie:
                return t
        return None
    i = tags.index(start) + 1
    for t in tags[i:]:
        if t.m_tag_id == type and t.m_tag_cookie == cookie:
            return t
    return None


def m_tag_find(m: Mbuf, type: int, start: MTag | None = None) -> MTag | None:
    """``m_tag_find``: :func:`m_tag_locate` with MTAG_ABI_COMPAT (the hot
    path of ipsec_accel_input and the drivers' TX tag lookup)."""
    tags = m.tags
    if not tags:
        return None
    if start is None:
        for t in tags:
            if t.m_tag_id == type and t.m_tag_cookie == 0:
                return t
        return None
    return m_tag_locate(m, MTAG_ABI_COMPAT, type, start)


def m_tag_first(m: Mbuf) -> MTag | None:
    return m.tags[0] if m.tags else None


def m_tag_next(m: Mbuf, t: MTag) -> MTag | None:
    tags = m.tags
    if not tags:
        return None
    i = tags.index(t) + 1
    return tags[i] if i < len(tags) else None


def iter_tags(m: Mbuf) -> Iterator[MTag]:
    return iter(m.tags or ())


def m_tag_count(m: Mbuf) -> int:
    return len(m.tags) if m.tags else 0


def m_tag_copy(t: MTag, wait: int = M_NOWAIT) -> MTag | None:
    """``m_tag_copy``: a new tag (same zone) with the same header and data."""
    p = m_tag_alloc(t.m_tag_cookie, t.m_tag_id, t.m_tag_len, wait, t.zone)
    if p is None:
        return None
    p.data = t.data
    return p


def m_tag_copy_chain(to: Mbuf, frm: Mbuf, wait: int = M_NOWAIT) -> bool:
    """``m_tag_copy_chain``: copy every tag, preserving order; on failure
    nothing is left on ``to`` and False is returned."""
    if not frm.tags:
        return True
    copies: list[MTag] = []
    for t in frm.tags:
        c = m_tag_copy(t, wait)
        if c is None:
            for x in copies:
                m_tag_free(x)
            return False
        copies.append(c)
    if to.tags:
        # FreeBSD KASSERTs the destination has no tags; be strict too.
        for x in copies:
            m_tag_free(x)
        raise ValueError("m_tag_copy_chain: destination already has tags")
    to.tags = copies
    return True


# --------------------------------------------------------------------------
# Send tags

class _IfRef(Protocol):
    def if_ref(self) -> None: ...
    def if_rele(self) -> None: ...


class IfSndTagSw(NamedTuple):
    """``struct if_snd_tag_sw``: the driver's switch for one tag type."""

    type: int
    snd_tag_free: Callable[["MSndTag"], None] | None = None
    snd_tag_modify: Callable[["MSndTag", Any], int] | None = None
    snd_tag_query: Callable[["MSndTag", Any], int] | None = None


class MSndTag:
    """``struct m_snd_tag`` (+ ``softc`` for the driver's private part,
    which in C is the surrounding structure)."""

    __slots__ = ("ifp", "sw", "_refs", "softc", "zone")

    def __init__(self) -> None:
        self.ifp: Any = None
        self.sw: IfSndTagSw | None = None
        self._refs: list[object] = []     # reference tokens (see _REF_BASE)
        self.softc: Any = None
        self.zone: Zone | None = None

    @property
    def refcount(self) -> int:
        return len(self._refs)

    @property
    def type(self) -> int:
        return self.sw.type if self.sw is not None else -1

    def __repr__(self) -> str:
        name = getattr(self.ifp, "if_xname", self.ifp)
        return f"<MSndTag if={name} type={self.type} refs={self.refcount}>"


#: Zone for send tags (drivers allocate their own in C; one zone here).
snd_tag_zone = Zone("snd_tag", MSNDTAG_SIZE, factory=MSndTag)

# refcount(9) atomics without a lock: a send tag's references are tokens in
# a list (list.append and list.pop are atomic under the GIL).  m_snd_tag_init
# puts the base token at the bottom; every other reference pushes a plain
# token; a release pops one.  The base token can only be popped when it is
# the last one, so exactly one releaser sees it: that is refcount_release
# returning true, and that thread destroys the tag.  A reference pushes first
# and then checks the base token is still at the bottom (it never comes back
# to that list): if not, the tag is dead and the push is undone -- the
# "acquire if not zero" the lock used to give.
_REF_BASE = object()
_REF = object()


def m_snd_tag_init(mst: MSndTag, ifp: _IfRef, sw: IfSndTagSw) -> MSndTag:
    """``m_snd_tag_init``: one reference, an ``if_ref`` on the ifnet."""
    ifp.if_ref()
    mst.ifp = ifp
    mst.sw = sw
    mst._refs = [_REF_BASE]
    return mst


def m_snd_tag_alloc(ifp: _IfRef, sw: IfSndTagSw, softc: Any = None,
                    zone: Zone | None = None, wait: int = M_NOWAIT) -> MSndTag | None:
    """Allocate and initialise a send tag from ``zone`` (default
    :data:`snd_tag_zone`).  In FreeBSD the driver's ``if_snd_tag_alloc``
    does this; model drivers call this helper."""
    z = snd_tag_zone if zone is None else zone
    mst = z.alloc(None, wait)
    if mst is None:
        return None
    mst.zone = z
    mst.softc = softc
    return m_snd_tag_init(mst, ifp, sw)


def m_snd_tag_ref(mst: MSndTag) -> MSndTag:
    """``m_snd_tag_ref`` (the caller holds a reference, as in FreeBSD; a
    destroyed tag is refused)."""
    refs = mst._refs
    refs.append(_REF)
    if refs[0] is not _REF_BASE:        # the base token is gone: destroyed
        refs.pop()
        raise RuntimeError(f"m_snd_tag_ref on a destroyed tag {mst!r}")
    return mst


def m_snd_tag_rele(mst: MSndTag) -> None:
    """``m_snd_tag_rele``: the last release destroys the tag
    (``m_snd_tag_destroy``: driver free, ``if_rele``, zone free)."""
    try:
        tok = mst._refs.pop()
    except IndexError:
        raise RuntimeError(f"m_snd_tag_rele underflow on {mst!r}") from None
    if tok is _REF_BASE:
        _m_snd_tag_destroy(mst)


def _m_snd_tag_destroy(mst: MSndTag) -> None:
    sw = mst.sw
    if sw is not None and sw.snd_tag_free is not None:
        sw.snd_tag_free(mst)
    ifp = mst.ifp
    mst.ifp = None
    mst.softc = None
    z = mst.zone
    mst.zone = None
    if ifp is not None:
        ifp.if_rele()
    if z is not None:
        z.free(mst)


def m_set_snd_tag(m: Mbuf, mst: MSndTag) -> None:
    """Attach a send tag to a packet (takes a reference, sets CSUM_SND_TAG;
    the union means the packet no longer has an rcvif)."""
    old = m.snd_tag if m.csum_flags & CSUM_SND_TAG else None
    refs = mst._refs                        # m_snd_tag_ref, inlined
    refs.append(_REF)
    if refs[0] is not _REF_BASE:
        refs.pop()
        raise RuntimeError(f"m_snd_tag_ref on a destroyed tag {mst!r}")
    m.snd_tag = mst
    m.csum_flags |= CSUM_SND_TAG
    m.rcvif = None
    if old is not None:
        m_snd_tag_rele(old)
