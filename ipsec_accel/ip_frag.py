"""IPv4 fragmentation and reassembly for the model's IP layer:
``sys/netinet/ip_output.c`` ip_fragment and ``sys/netinet/ip_reass.c``.

* :func:`ip_fragment`: a datagram larger than the MTU, DF clear, becomes
  8-byte aligned pieces, each with a copy of the header (options included)
  and of the packet's tags (m_dup_pkthdr); ips_fragmented, ips_ofragments;
  DF set or no room -> ips_cantfrag, EMSGSIZE.  (IPv6 source fragmentation
  is not modelled: ip6_output refuses the packet.)
* :func:`ip_reass`: fragments for this host are collected by (src, dst, id,
  proto) -- at most 1024 datagrams in flight, the oldest dropped
  (ips_fragdropped) -- and the datagram is rebuilt, with the first
  fragment's tags, once every byte is there (ips_reassembled).  Overlaps
  keep the bytes that arrived first; no reassembly timeout is modelled.

``ip`` is the :class:`ipsec_accel.ip.IpLayer` (its ``_lock`` and ``_reass``
queue); ``s`` the caller's per-thread ``struct ipstat`` slot.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Final, Optional

from .mbuf import CSUM_TSO, Mbuf, m_freem, m_tag_copy_chain
from .packet import IP_DF, IP_MF, IP_OFFMASK, ipv4_header_with

if TYPE_CHECKING:  # pragma: no cover  (ip imports this module)
    from .ip import IpLayer

__all__ = ["ip_fragment", "ip_reass", "MAXFRAGPACKETS"]

#: net.inet.ip.maxfragpackets (the model's fixed bound).
MAXFRAGPACKETS: Final = 1024


def ip_fragment(ip: IpLayer, ifp: Any, m: Mbuf, mtu: int, s: Any) -> int:
    """ip_fragment (IPv4, DF clear): 8-byte aligned pieces, the header
    (options included) copied to each, tags copied."""
    data = bytes(m.data)
    if data[0] >> 4 != 4 or int.from_bytes(data[6:8], "big") & IP_DF:
        s.ips_cantfrag += 1
        m_freem(m)
        return _errno.EMSGSIZE
    hl = (data[0] & 0x0F) << 2
    hdr = data[:hl]
    body = data[hl:int.from_bytes(data[2:4], "big")]
    room = (mtu - hl) & ~7
    if room <= 0:
        s.ips_cantfrag += 1
        m_freem(m)
        return _errno.EMSGSIZE
    fo = int.from_bytes(data[6:8], "big")
    base_off = fo & IP_OFFMASK
    more = fo & IP_MF
    s.ips_fragmented += 1
    error = 0
    for off in range(0, len(body), room):
        piece = body[off:off + room]
        last = off + room >= len(body)
        flags_off = (fo & ~(IP_MF | IP_OFFMASK)) | (base_off + off // 8) | \
            (0 if last and not more else IP_MF)
        h = bytearray(hdr)
        h[6:8] = flags_off.to_bytes(2, "big")
        frag = ipv4_header_with(bytes(h), total_len=hl + len(piece)) + piece
        f = Mbuf(frag)
        f.csum_flags = m.csum_flags & ~CSUM_TSO
        if m.tags and not m_tag_copy_chain(f, m):
            s.ips_odropped += 1
            error = _errno.ENOBUFS
            continue
        s.ips_ofragments += 1
        e = ip.if_output(ifp, f)
        error = error or e
    m_freem(m)
    return error


def ip_reass(ip: IpLayer, m: Mbuf, s: Any) -> Optional[Mbuf]:
    """ip_reass: collect fragments by (src, dst, id, proto); the whole
    datagram once every piece is there (tags of the first fragment)."""
    data = bytes(m.data)
    s.ips_fragments += 1
    hl = (data[0] & 0x0F) << 2
    fo = int.from_bytes(data[6:8], "big")
    off = (fo & IP_OFFMASK) * 8
    more = bool(fo & IP_MF)
    key = (data[12:16], data[16:20], data[4:6], data[9])
    with ip._lock:
        q = ip._reass.get(key)
        if q is None:
            if len(ip._reass) >= MAXFRAGPACKETS:
                old = next(iter(ip._reass))
                for _o, _mo, _p, fm in ip._reass.pop(old):
                    s.ips_fragdropped += 1
                    m_freem(fm)
            q = ip._reass[key] = []
        q.append((off, more, data[hl:], m))
        q.sort(key=lambda x: x[0])
        pos = 0
        done = False
        for o, mo, p, _ in q:
            if o > pos:
                break
            pos = max(pos, o + len(p))
            if not mo:
                done = True
                break
        if not done:
            return None
        del ip._reass[key]
    first = q[0][3]
    body = bytearray()
    for o, _mo, p, _ in q:              # sorted, contiguous (checked above)
        if o + len(p) > len(body):
            body += p[len(body) - o:]
    h = bytearray(first.data[:(first.data[0] & 0x0F) << 2])
    h[6:8] = (int.from_bytes(h[6:8], "big") & IP_DF).to_bytes(2, "big")
    whole = ipv4_header_with(bytes(h), total_len=len(h) + len(body)) + bytes(body)
    for _o, _mo, _p, fm in q:
        if fm is not first:
            m_freem(fm)
    first.set_data(whole)
    s.ips_reassembled += 1
    return first
