"""mbufs and packet tags: ``sys/sys/mbuf.h``, ``sys/kern/uipc_mbuf2.c``
(m_tag_*), ``sys/kern/kern_mbuf.c`` (m_free), with allocation modelled
through UMA-like zones.

Split by concept (each module says what it models):

* :mod:`ipsec_accel.uma` -- the zones (:class:`Zone`, ``uma_zalloc``/
  ``uma_zfree``, ``vmstat -z`` statistics) and the malloc(9) ``M_NOWAIT``/
  ``M_WAITOK``/``M_ZERO`` flags;
* :mod:`ipsec_accel.mbuf_sndtag` -- send tags (:class:`MSndTag`,
  ``m_snd_tag_*``, ``IF_SND_TAG_TYPE_*``);
* this module -- the mbuf, its packet-header fields, the tag chain and the
  mbuf side of send tags (:func:`m_set_snd_tag`, :func:`m_free`).

This module re-exports every name of the other two (its ``__all__`` is what
it always was), so ``from ipsec_accel.mbuf import Zone, MSndTag`` keeps
working.

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
* :func:`m_set_snd_tag` puts a send tag (:mod:`ipsec_accel.mbuf_sndtag`)
  in the ``snd_tag``/``rcvif`` union with a reference; :func:`m_free` drops
  it.  Both inline ``m_snd_tag_ref``/``m_snd_tag_rele`` for the per-packet
  path, which is why they use that module's private reference tokens.

The per-packet path uses plain ``__slots__`` classes and module functions; no
attrs object is created per packet.  Constants carry FreeBSD's values
(PACKET_TAG_* from the 2024 mbuf.h including IPSEC_ACCEL_OUT/IN = 32/33; the
CSUM_* layout of FreeBSD 12+).
"""

from __future__ import annotations

from typing import Any, Iterator

# Zones and send tags live in their own modules and import nothing from this
# one (no cycle).  Names imported here are module globals, so the per-packet
# code below (m_free, m_tag_attach, m_set_snd_tag) looks them up exactly as it
# did when they were defined here: no extra call layer.
from .mbuf_sndtag import (
    IF_SND_TAG_TYPE_IPSEC_ACCEL, IF_SND_TAG_TYPE_RATE_LIMIT, IF_SND_TAG_TYPE_TLS,
    IF_SND_TAG_TYPE_TLS_RATE_LIMIT, IF_SND_TAG_TYPE_TLS_RX, IF_SND_TAG_TYPE_UNLIMITED,
    MSNDTAG_SIZE, _REF, _REF_BASE, IfSndTagSw, MSndTag, _m_snd_tag_destroy, m_snd_tag_alloc,
    m_snd_tag_init, m_snd_tag_ref, m_snd_tag_rele, snd_tag_zone,
)
from .uma import M_NOWAIT, M_WAITOK, M_ZERO, Zone, ZoneExhausted, ZoneStats, all_zones

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
# Constants (sys/sys/mbuf.h; the malloc(9) flags are in uma.py, the send tag
# types in mbuf_sndtag.py)

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

__all__ += [n for n in list(globals()) if n.startswith(("M_", "CSUM_", "PACKET_TAG_"))
            and n not in __all__]
# The send tag constants come from mbuf_sndtag; listed by name (in the order
# they always had here) so that linters see them re-exported.
__all__ += [
    "IF_SND_TAG_TYPE_RATE_LIMIT", "IF_SND_TAG_TYPE_UNLIMITED", "IF_SND_TAG_TYPE_TLS",
    "IF_SND_TAG_TYPE_TLS_RATE_LIMIT", "IF_SND_TAG_TYPE_TLS_RX", "IF_SND_TAG_TYPE_IPSEC_ACCEL",
    "MSNDTAG_SIZE",
]


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
    t: MTag | None = z.alloc(MTAG_HDR_SIZE + length, wait)   # tag zones make MTags
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
# Send tags on packets (the tags themselves: mbuf_sndtag.py)

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
