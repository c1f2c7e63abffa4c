"""IPv4 and IPv6 packets with TCP, UDP, ICMP and ICMPv6: build from fields,
parse from bytes, checksums.

Models the header layouts of FreeBSD's ``netinet/ip.h`` (``struct ip``),
``netinet/ip6.h`` (``struct ip6_hdr``), ``netinet/udp.h``, ``netinet/tcp.h``,
``netinet/ip_icmp.h`` and ``netinet/icmp6.h``, and the checksums of RFC 791
§3.1 (header), RFC 768 / RFC 793 / RFC 8200 §8.1 (pseudo-header) and RFC 1071
(one's complement sum).  Only the packet half of FreeBSD's mbuf world lives
here: mbufs, tags and packet headers belong to ``ipsec_accel.mbuf``.

Rules:

* Everything on the wire is network byte order.  Addresses are held as raw
  bytes (4 or 16); builders also accept text (``"192.0.2.1"``) and
  ``ipaddress`` objects and convert once.
* Builders compute every length and checksum unless one is given; parsers
  never raise on a bad checksum (they report it: ``ip_checksum_ok`` and
  ``l4_checksum_ok``) but raise :class:`PacketError` for truncated or
  malformed headers.
* A UDP checksum that computes to 0 is sent as 0xffff (RFC 768); over IPv4 a
  received 0 means "no checksum" and verifies; over IPv6 it is an error
  (RFC 8200 §8.1).
* IPv6 extension headers (hop-by-hop 0, routing 43, fragment 44, destination
  options 60) are walked to find the upper-layer header; ESP (50) and AH (51)
  end the walk.

Per-packet objects are plain ``__slots__`` classes (no attrs): building one
costs about what a tuple costs.  The one's complement sum uses the identity
sum16(x) == int(x) mod 0xffff (2**16 = 1 mod 0xffff), a single C-speed
big-integer reduction instead of a Python loop over words.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Final, TypedDict, Union, Unpack

IPPROTO_HOPOPTS: Final = 0
IPPROTO_ICMP: Final = 1
IPPROTO_IPV4: Final = 4
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
IPPROTO_IPV6: Final = 41
IPPROTO_ROUTING: Final = 43
IPPROTO_FRAGMENT: Final = 44
IPPROTO_ESP: Final = 50
IPPROTO_AH: Final = 51
IPPROTO_ICMPV6: Final = 58
IPPROTO_NONE: Final = 59
IPPROTO_DSTOPTS: Final = 60

IPV4_HDRLEN: Final = 20
IPV6_HDRLEN: Final = 40
UDP_HDRLEN: Final = 8
TCP_HDRLEN: Final = 20
ICMP_HDRLEN: Final = 8
IP_MAXPACKET: Final = 65535
IPV6_MAXPACKET: Final = 65535
IP_DF: Final = 0x4000
IP_MF: Final = 0x2000
IP_OFFMASK: Final = 0x1FFF
IPDEFTTL: Final = 64              # net.inet.ip.ttl default
IPV6_DEFHLIM: Final = 64          # net.inet6.ip6.hlim default
IPTOS_ECN_MASK: Final = 0x03

ICMP_ECHOREPLY: Final = 0
ICMP_ECHO: Final = 8
ICMP6_ECHO_REQUEST: Final = 128
ICMP6_ECHO_REPLY: Final = 129

TH_FIN: Final = 0x01
TH_SYN: Final = 0x02
TH_RST: Final = 0x04
TH_PUSH: Final = 0x08
TH_ACK: Final = 0x10
TH_URG: Final = 0x20

AddressLike = Union[bytes, str, ipaddress.IPv4Address, ipaddress.IPv6Address]

_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_ICMP = struct.Struct("!BBHHH")
_H = struct.Struct("!H")
_EXT_HDRS: Final = frozenset((IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS))


class PacketError(ValueError):
    """A packet too short or malformed to parse, or fields that cannot be built."""


# --- addresses ----------------------------------------------------------------

def addr_bytes(addr: AddressLike, af: int | None = None) -> bytes:
    """4 or 16 raw bytes for an address given as bytes, text or ipaddress object."""
    if isinstance(addr, bytes):
        if len(addr) not in (4, 16):
            raise PacketError(f"address of {len(addr)} bytes")
        return addr
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return addr.packed
    if af == socket.AF_INET or (af is None and ":" not in addr):
        return socket.inet_pton(socket.AF_INET, addr)
    return socket.inet_pton(socket.AF_INET6, addr)


def addr_text(addr: bytes) -> str:
    """Presentation form of a 4- or 16-byte address."""
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


# --- checksums (RFC 1071) -------------------------------------------------------

def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """One's complement sum of the 16-bit big-endian words of ``data``.

    Odd lengths are padded with a zero byte.  The result is in 0..0xffff, 0
    only for all-zero data (one's complement "negative zero" is 0xffff).
    """
    v = int.from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    return 0 if v == 0 else (v - 1) % 0xFFFF + 1


def ones_add(a: int, b: int) -> int:
    """Add two one's complement sums (end-around carry)."""
    s = a + b
    return 0 if s == 0 else (s - 1) % 0xFFFF + 1


def in_cksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum: complement of the one's complement sum."""
    return ~ones_add(initial, ones_sum(data)) & 0xFFFF


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """One's complement sum of the IPv4 (RFC 793) or IPv6 (RFC 8200 §8.1)
    pseudo-header; both reduce to src + dst + proto + length."""
    v = int.from_bytes(src, "big") + int.from_bytes(dst, "big") + proto + length
    return 0 if v == 0 else (v - 1) % 0xFFFF + 1


def l4_checksum(src: bytes, dst: bytes, proto: int, segment: bytes | bytearray | memoryview) -> int:
    """Checksum of a TCP/UDP/ICMPv6 segment whose checksum field is zero."""
    return ~ones_add(pseudo_sum(src, dst, proto, len(segment)), ones_sum(segment)) & 0xFFFF


def cksum_adjust(cksum: int, old: bytes, new: bytes) -> int:
    """RFC 1624 incremental update: the checksum after bytes ``old`` (covered by
    it) are replaced by ``new`` (same length, even)."""
    s = ones_add(ones_add(~cksum & 0xFFFF, ~ones_sum(old) & 0xFFFF), ones_sum(new))
    return ~s & 0xFFFF


# --- headers ------------------------------------------------------------------------

class IPv4Header:
    """``struct ip``: the fixed 20 bytes plus options."""

    __slots__ = ("tos", "total_len", "ident", "flags_off", "ttl", "proto", "checksum",
                 "src", "dst", "options")

    def __init__(self, src: bytes, dst: bytes, proto: int, total_len: int = 0, *,
                 tos: int = 0, ident: int = 0, flags_off: int = 0, ttl: int = IPDEFTTL,
                 checksum: int = 0, options: bytes = b"") -> None:
        self.tos = tos
        self.total_len = total_len
        self.ident = ident
        self.flags_off = flags_off
        self.ttl = ttl
        self.proto = proto
        self.checksum = checksum
        self.src = src
        self.dst = dst
        self.options = options

    version = 4

    @property
    def hlen(self) -> int:
        """Header length in bytes (ip_hl * 4)."""
        return IPV4_HDRLEN + len(self.options)

    def pack(self, compute_checksum: bool = True) -> bytes:
        """The header bytes; the checksum is recomputed unless told otherwise."""
        if len(self.options) & 3:
            raise PacketError("IPv4 options must be a multiple of 4 bytes")
        hl = (IPV4_HDRLEN + len(self.options)) >> 2
        cs = 0 if compute_checksum else self.checksum
        raw = _IP4.pack(0x40 | hl, self.tos, self.total_len, self.ident, self.flags_off,
                        self.ttl, self.proto, cs, self.src, self.dst) + self.options
        if compute_checksum:
            self.checksum = in_cksum(raw)
            raw = raw[:10] + _H.pack(self.checksum) + raw[12:]
        return raw

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview) -> IPv4Header:
        if len(buf) < IPV4_HDRLEN:
            raise PacketError("truncated IPv4 header")
        vhl, tos, tlen, ident, off, ttl, proto, cs, src, dst = _IP4.unpack_from(buf)
        if vhl >> 4 != 4:
            raise PacketError(f"IP version {vhl >> 4} is not 4")
        hl = (vhl & 15) << 2
        if hl < IPV4_HDRLEN or len(buf) < hl:
            raise PacketError(f"bad IPv4 header length {hl}")
        return cls(src, dst, proto, tlen, tos=tos, ident=ident, flags_off=off, ttl=ttl,
                   checksum=cs, options=bytes(buf[IPV4_HDRLEN:hl]))

    def __repr__(self) -> str:
        return (f"IPv4Header({addr_text(self.src)} > {addr_text(self.dst)} proto={self.proto} "
                f"len={self.total_len} id={self.ident} ttl={self.ttl} tos={self.tos:#x})")


class IPv6Header:
    """``struct ip6_hdr``: the fixed 40 bytes."""

    __slots__ = ("tclass", "flow", "plen", "nxt", "hlim", "src", "dst")

    def __init__(self, src: bytes, dst: bytes, nxt: int, plen: int = 0, *, tclass: int = 0,
                 flow: int = 0, hlim: int = IPV6_DEFHLIM) -> None:
        self.tclass = tclass
        self.flow = flow
        self.plen = plen
        self.nxt = nxt
        self.hlim = hlim
        self.src = src
        self.dst = dst

    version = 6
    hlen = IPV6_HDRLEN

    def pack(self) -> bytes:
        return _IP6.pack((6 << 28) | (self.tclass << 20) | (self.flow & 0xFFFFF), self.plen,
                         self.nxt, self.hlim, self.src, self.dst)

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview) -> IPv6Header:
        if len(buf) < IPV6_HDRLEN:
            raise PacketError("truncated IPv6 header")
        vcf, plen, nxt, hlim, src, dst = _IP6.unpack_from(buf)
        if vcf >> 28 != 6:
            raise PacketError(f"IP version {vcf >> 28} is not 6")
        return cls(src, dst, nxt, plen, tclass=(vcf >> 20) & 0xFF, flow=vcf & 0xFFFFF,
                   hlim=hlim)

    def __repr__(self) -> str:
        return (f"IPv6Header({addr_text(self.src)} > {addr_text(self.dst)} nxt={self.nxt} "
                f"plen={self.plen} hlim={self.hlim} tclass={self.tclass:#x})")


class UDPHeader:
    __slots__ = ("sport", "dport", "length", "checksum")

    def __init__(self, sport: int, dport: int, length: int = 0, checksum: int = 0) -> None:
        self.sport = sport
        self.dport = dport
        self.length = length
        self.checksum = checksum

    def pack(self) -> bytes:
        return _UDP.pack(self.sport, self.dport, self.length, self.checksum)

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview, off: int = 0) -> UDPHeader:
        if len(buf) - off < UDP_HDRLEN:
            raise PacketError("truncated UDP header")
        return cls(*_UDP.unpack_from(buf, off))

    def __repr__(self) -> str:
        return f"UDPHeader({self.sport} > {self.dport} len={self.length} sum={self.checksum:#06x})"


class TCPHeader:
    __slots__ = ("sport", "dport", "seq", "ack", "flags", "win", "checksum", "urp",
                 "options")

    def __init__(self, sport: int, dport: int, seq: int = 0, ack: int = 0,
                 flags: int = TH_ACK, win: int = 65535, checksum: int = 0, urp: int = 0,
                 options: bytes = b"") -> None:
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.win = win
        self.checksum = checksum
        self.urp = urp
        self.options = options

    @property
    def hlen(self) -> int:
        return TCP_HDRLEN + len(self.options)

    def pack(self) -> bytes:
        if len(self.options) & 3:
            raise PacketError("TCP options must be a multiple of 4 bytes")
        off = ((TCP_HDRLEN + len(self.options)) >> 2) << 4
        return _TCP.pack(self.sport, self.dport, self.seq, self.ack, off, self.flags,
                         self.win, self.checksum, self.urp) + self.options

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview, off: int = 0) -> TCPHeader:
        if len(buf) - off < TCP_HDRLEN:
            raise PacketError("truncated TCP header")
        sport, dport, seq, ack, doff, flags, win, cs, urp = _TCP.unpack_from(buf, off)
        hl = (doff >> 4) << 2
        if hl < TCP_HDRLEN or len(buf) - off < hl:
            raise PacketError(f"bad TCP data offset {hl}")
        return cls(sport, dport, seq, ack, flags, win, cs, urp,
                   bytes(buf[off + TCP_HDRLEN:off + hl]))

    def __repr__(self) -> str:
        return (f"TCPHeader({self.sport} > {self.dport} seq={self.seq} ack={self.ack} "
                f"flags={self.flags:#04x})")


class ICMPHeader:
    """ICMP (RFC 792) and ICMPv6 (RFC 4443): type, code, checksum and the four
    bytes that follow (identifier and sequence for echo)."""

    __slots__ = ("type", "code", "checksum", "ident", "seq")

    def __init__(self, type: int, code: int = 0, checksum: int = 0, ident: int = 0,
                 seq: int = 0) -> None:
        self.type = type
        self.code = code
        self.checksum = checksum
        self.ident = ident
        self.seq = seq

    def pack(self) -> bytes:
        return _ICMP.pack(self.type, self.code, self.checksum, self.ident, self.seq)

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview, off: int = 0) -> ICMPHeader:
        if len(buf) - off < ICMP_HDRLEN:
            raise PacketError("truncated ICMP header")
        return cls(*_ICMP.unpack_from(buf, off))

    def __repr__(self) -> str:
        return (f"ICMPHeader(type={self.type} code={self.code} id={self.ident} "
                f"seq={self.seq})")


L4Header = Union[UDPHeader, TCPHeader, ICMPHeader]
IPHeader = Union[IPv4Header, IPv6Header]


# --- IPv6 extension headers --------------------------------------------------------

def ipv6_upper_layer(buf: bytes | bytearray | memoryview, nxt: int,
                     off: int = IPV6_HDRLEN) -> tuple[int, int, int]:
    """Walk IPv6 extension headers from ``off``.

    Returns ``(proto, offset, protoff)``: the upper-layer protocol, where its
    header starts, and the offset of the next-header byte that names it (6 for
    the fixed header) -- what FreeBSD calls ``protoff``.
    """
    protoff = 6
    while True:
        if nxt in _EXT_HDRS:
            if len(buf) < off + 2:
                raise PacketError("truncated IPv6 extension header")
            protoff = off
            nxt, hlen = buf[off], (buf[off + 1] + 1) << 3
            off += hlen
        elif nxt == IPPROTO_FRAGMENT:
            if len(buf) < off + 8:
                raise PacketError("truncated IPv6 fragment header")
            protoff = off
            nxt = buf[off]
            off += 8
        else:
            return nxt, off, protoff


# --- whole packets -------------------------------------------------------------------

class Packet:
    """A parsed (or built) IP packet: its IP header, the upper-layer header if
    it is TCP, UDP, ICMP or ICMPv6, and the upper-layer data.

    ``proto`` is the upper-layer protocol after IPv6 extension headers, ``l4_off``
    where its header starts, ``raw`` the packet bytes it was parsed from (or
    built into).
    """

    __slots__ = ("ip", "proto", "l4_off", "l4", "data", "raw")

    def __init__(self, ip: IPHeader, proto: int, l4_off: int, l4: L4Header | None,
                 data: bytes, raw: bytes) -> None:
        self.ip = ip
        self.proto = proto
        self.l4_off = l4_off
        self.l4 = l4
        self.data = data
        self.raw = raw

    @property
    def version(self) -> int:
        return self.ip.version

    @property
    def src(self) -> bytes:
        return self.ip.src

    @property
    def dst(self) -> bytes:
        return self.ip.dst

    def __len__(self) -> int:
        return len(self.raw)

    def __bytes__(self) -> bytes:
        return self.raw

    def ip_checksum_ok(self) -> bool:
        """IPv4 header checksum verifies (always True for IPv6)."""
        if self.ip.version == 6:
            return True
        return ones_sum(memoryview(self.raw)[:self.ip.hlen]) == 0xFFFF

    def l4_checksum_ok(self) -> bool:
        """TCP/UDP/ICMP/ICMPv6 checksum verifies (RFC 768 zero UDP sum over IPv4 passes)."""
        proto = self.proto
        seg = memoryview(self.raw)[self.l4_off:]
        if proto == IPPROTO_ICMP:
            return ones_sum(seg) == 0xFFFF
        if proto not in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6):
            return True
        if proto == IPPROTO_UDP and self.ip.version == 4 and self.l4 is not None \
                and self.l4.checksum == 0:
            return True
        s = ones_add(pseudo_sum(self.ip.src, self.ip.dst, proto, len(seg)), ones_sum(seg))
        return s == 0xFFFF

    def __repr__(self) -> str:
        return f"Packet({self.ip!r}, l4={self.l4!r}, data={len(self.data)} bytes)"


def parse(buf: bytes | bytearray | memoryview) -> Packet:
    """Parse an IPv4 or IPv6 packet (version taken from the first nibble).

    Trailing bytes beyond the IP length are ignored (as ip_input trims them);
    a packet shorter than its IP length raises :class:`PacketError`.
    """
    raw = bytes(buf)
    if not raw:
        raise PacketError("empty packet")
    ip: IPHeader
    if raw[0] >> 4 == 4:
        ip = IPv4Header.parse(raw)
        end = ip.total_len
        if end < ip.hlen or end > len(raw):
            raise PacketError(f"IPv4 total length {end} with {len(raw)} bytes present")
        proto, off = ip.proto, ip.hlen
        if ip.flags_off & (IP_MF | IP_OFFMASK):
            # A fragment: only the first one carries the upper-layer header.
            raw = raw[:end]
            return Packet(ip, proto, off, None, raw[off:], raw)
    elif raw[0] >> 4 == 6:
        ip = IPv6Header.parse(raw)
        end = IPV6_HDRLEN + ip.plen
        if end > len(raw):
            raise PacketError(f"IPv6 payload length {ip.plen} with {len(raw)} bytes present")
        proto, off, _ = ipv6_upper_layer(raw, ip.nxt)
        if off > end:
            raise PacketError("IPv6 extension headers run past the payload")
    else:
        raise PacketError(f"IP version {raw[0] >> 4}")
    raw = raw[:end]
    l4: L4Header | None = None
    hl = 0
    if proto == IPPROTO_UDP:
        l4, hl = UDPHeader.parse(raw, off), UDP_HDRLEN
    elif proto == IPPROTO_TCP:
        l4 = TCPHeader.parse(raw, off)
        hl = l4.hlen
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        l4, hl = ICMPHeader.parse(raw, off), ICMP_HDRLEN
    return Packet(ip, proto, off, l4, raw[off + hl:], raw)


def build(src: AddressLike, dst: AddressLike, proto: int, l4: L4Header | None = None,
          data: bytes = b"", *, tos: int = 0, ident: int = 0, df: bool = False,
          ttl: int | None = None, flow: int = 0, l4_cksum: bool = True) -> Packet:
    """Build an IPv4 or IPv6 packet (family from the addresses) around an
    upper-layer header and its data, filling every length and checksum.

    ``tos`` is the IPv4 TOS or the IPv6 traffic class; ``ttl`` the TTL or hop
    limit.  With ``l4`` None the data is the whole upper-layer payload (an
    inner packet for IP-in-IP, an ESP payload ...).  ``l4_cksum=False`` leaves
    the TCP/UDP/ICMP checksum 0 (a UDP checksum over IPv6 is always computed).
    """
    s = addr_bytes(src)
    d = addr_bytes(dst)
    if len(s) != len(d):
        raise PacketError("source and destination families differ")
    v6 = len(s) == 16
    seg: bytes
    if l4 is None:
        seg = bytes(data)
    elif isinstance(l4, UDPHeader):
        l4.length = UDP_HDRLEN + len(data)
        l4.checksum = 0
        seg = l4.pack() + data
        if l4_cksum or v6:
            cs = l4_checksum(s, d, IPPROTO_UDP, seg) or 0xFFFF
            l4.checksum = cs
            seg = seg[:6] + _H.pack(cs) + seg[8:]
    elif isinstance(l4, TCPHeader):
        l4.checksum = 0
        seg = l4.pack() + data
        if l4_cksum:
            l4.checksum = l4_checksum(s, d, IPPROTO_TCP, seg)
            seg = seg[:16] + _H.pack(l4.checksum) + seg[18:]
    else:
        l4.checksum = 0
        seg = l4.pack() + data
        if l4_cksum:
            l4.checksum = (l4_checksum(s, d, IPPROTO_ICMPV6, seg) if v6
                           else in_cksum(seg))
            seg = seg[:2] + _H.pack(l4.checksum) + seg[4:]
    ip: IPHeader
    if v6:
        if len(seg) > 0xFFFF:
            raise PacketError("IPv6 payload over 65535 bytes (jumbograms not modelled)")
        ip = IPv6Header(s, d, proto, len(seg), tclass=tos, flow=flow,
                        hlim=IPV6_DEFHLIM if ttl is None else ttl)
        raw = ip.pack() + seg
    else:
        if IPV4_HDRLEN + len(seg) > IP_MAXPACKET:
            raise PacketError("IPv4 packet over 65535 bytes")
        ip = IPv4Header(s, d, proto, IPV4_HDRLEN + len(seg), tos=tos, ident=ident,
                        flags_off=IP_DF if df else 0, ttl=IPDEFTTL if ttl is None else ttl)
        raw = ip.pack() + seg
    hl = 0 if l4 is None else (l4.hlen if isinstance(l4, TCPHeader) else 8)
    return Packet(ip, proto, ip.hlen, l4, bytes(data) if l4 is not None else seg[hl:], raw)



class _IpOptions(TypedDict, total=False):
    """The keyword options of :func:`build` that the packet helpers pass
    through (``ident`` apart: :func:`icmp_echo` and :func:`make_packet` take
    it as a parameter of their own)."""
    tos: int
    df: bool
    ttl: int | None
    flow: int
    l4_cksum: bool


class _BuildOptions(_IpOptions, total=False):
    """Every keyword option of :func:`build` after ``data``."""
    ident: int


def udp_packet(src: AddressLike, dst: AddressLike, sport: int, dport: int,
               data: bytes = b"", **kw: Unpack[_BuildOptions]) -> bytes:
    """An IPv4/IPv6 UDP datagram as bytes."""
    return build(src, dst, IPPROTO_UDP, UDPHeader(sport, dport), data, **kw).raw


def tcp_packet(src: AddressLike, dst: AddressLike, sport: int, dport: int,
               data: bytes = b"", *, seq: int = 0, ack: int = 0, flags: int = TH_ACK,
               win: int = 65535, **kw: Unpack[_BuildOptions]) -> bytes:
    """An IPv4/IPv6 TCP segment as bytes."""
    return build(src, dst, IPPROTO_TCP, TCPHeader(sport, dport, seq, ack, flags, win),
                 data, **kw).raw


def icmp_echo(src: AddressLike, dst: AddressLike, ident: int = 0, seq: int = 0,
              data: bytes = b"", *, reply: bool = False,
              **kw: Unpack[_IpOptions]) -> bytes:
    """An ICMP echo request/reply (ICMPv6 for IPv6 addresses) as bytes."""
    v6 = len(addr_bytes(src)) == 16
    if v6:
        hdr = ICMPHeader(ICMP6_ECHO_REPLY if reply else ICMP6_ECHO_REQUEST, 0, 0, ident, seq)
        return build(src, dst, IPPROTO_ICMPV6, hdr, data, **kw).raw
    hdr = ICMPHeader(ICMP_ECHOREPLY if reply else ICMP_ECHO, 0, 0, ident, seq)
    return build(src, dst, IPPROTO_ICMP, hdr, data, **kw).raw


_PROTO_NAMES: Final = {"udp": IPPROTO_UDP, "tcp": IPPROTO_TCP, "icmp": IPPROTO_ICMP,
                       "icmp6": IPPROTO_ICMPV6, "icmpv6": IPPROTO_ICMPV6}


def make_packet(src: AddressLike, dst: AddressLike, size: int, proto: int | str = "udp", *,
                sport: int = 4096, dport: int = 9, ident: int = 0, seq: int = 0,
                fill: int | None = None, **kw: Unpack[_IpOptions]) -> bytes:
    """A packet of exactly ``size`` bytes (IP header included) for traffic and
    benchmarks: UDP/TCP ports or ICMP echo id/seq, data bytes 0, 1, 2 ... (or
    ``fill``)."""
    p = _PROTO_NAMES.get(proto, proto) if isinstance(proto, str) else proto
    if isinstance(p, str):
        raise PacketError(f"unknown protocol {proto!r}")
    s = addr_bytes(src)
    iphl = IPV6_HDRLEN if len(s) == 16 else IPV4_HDRLEN
    l4hl = TCP_HDRLEN if p == IPPROTO_TCP else UDP_HDRLEN
    n = size - iphl - l4hl
    if n < 0:
        raise PacketError(f"size {size} below the {iphl + l4hl} bytes of headers")
    data = bytes([fill]) * n if fill is not None else bytes(i & 0xFF for i in range(n))
    if p == IPPROTO_UDP:
        return udp_packet(s, dst, sport, dport, data, ident=ident, **kw)
    if p == IPPROTO_TCP:
        return tcp_packet(s, dst, sport, dport, data, seq=seq, ident=ident, **kw)
    if p in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return icmp_echo(s, dst, ident & 0xFFFF, seq & 0xFFFF, data, **kw)
    raise PacketError(f"make_packet does not build protocol {p}")


# --- in-place header edits used by IPsec (ipsec_output.c / ipsec_input.c) -------------

def ipv4_header_with(hdr: bytes | bytearray | memoryview, *, proto: int | None = None,
                     total_len: int | None = None, tos: int | None = None) -> bytes:
    """A copy of an IPv4 header with protocol / length / TOS replaced and the
    checksum recomputed (what ip_output does before the packet leaves)."""
    b = bytearray(hdr)
    if proto is not None:
        b[9] = proto
    if total_len is not None:
        b[2:4] = _H.pack(total_len)
    if tos is not None:
        b[1] = tos
    b[10:12] = b"\0\0"
    b[10:12] = _H.pack(in_cksum(b))
    return bytes(b)


def ipv6_header_with(hdr: bytes | bytearray | memoryview, *, nxt: int | None = None,
                     plen: int | None = None, protoff: int = 6) -> bytes:
    """A copy of an IPv6 header chain with the next-header byte at ``protoff``
    and/or the payload length replaced."""
    b = bytearray(hdr)
    if nxt is not None:
        b[protoff] = nxt
    if plen is not None:
        b[4:6] = _H.pack(plen)
    return bytes(b)


__all__ = [
    "IPPROTO_HOPOPTS", "IPPROTO_ICMP", "IPPROTO_IPV4", "IPPROTO_TCP", "IPPROTO_UDP",
    "IPPROTO_IPV6", "IPPROTO_ROUTING", "IPPROTO_FRAGMENT", "IPPROTO_ESP", "IPPROTO_AH",
    "IPPROTO_ICMPV6", "IPPROTO_NONE", "IPPROTO_DSTOPTS", "IPV4_HDRLEN", "IPV6_HDRLEN",
    "UDP_HDRLEN", "TCP_HDRLEN", "ICMP_HDRLEN", "IP_MAXPACKET", "IPV6_MAXPACKET", "IP_DF",
    "IP_MF", "IP_OFFMASK", "IPDEFTTL", "IPV6_DEFHLIM", "IPTOS_ECN_MASK", "ICMP_ECHO",
    "ICMP_ECHOREPLY", "ICMP6_ECHO_REQUEST", "ICMP6_ECHO_REPLY", "TH_FIN", "TH_SYN",
    "TH_RST", "TH_PUSH", "TH_ACK", "TH_URG", "AddressLike", "PacketError", "addr_bytes",
    "addr_text", "ones_sum", "ones_add", "in_cksum", "pseudo_sum", "l4_checksum",
    "cksum_adjust", "IPv4Header", "IPv6Header", "UDPHeader", "TCPHeader", "ICMPHeader",
    "L4Header", "IPHeader", "ipv6_upper_layer", "Packet", "parse", "build", "udp_packet",
    "tcp_packet", "icmp_echo", "make_packet", "ipv4_header_with", "ipv6_header_with",
]
