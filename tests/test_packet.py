"""IP packets: build from fields, parse from bytes, checksums (ipsec_accel.packet).

Built packets are checked byte for byte against scapy's (an independent
implementation of the same RFCs); checksums against RFC 1071 examples and
properties; parsing against what was built.
"""

from __future__ import annotations

import struct
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipsec_accel import packet as P

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
    from scapy.packet import Raw, raw

V4S, V4D = "192.0.2.1", "198.51.100.2"
V6S, V6D = "2001:db8::1", "2001:db8:ffff::2"


# --- checksums ------------------------------------------------------------------------

def test_ones_sum_rfc1071_example() -> None:
    """RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement)."""
    assert P.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert P.in_cksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_ones_sum_negative_zero() -> None:
    """RFC 1071: a non-zero sum that cancels is 0xffff (negative zero), only
    all-zero data sums to 0; odd lengths pad with a zero byte."""
    assert P.ones_sum(b"\xff\xff") == 0xFFFF
    assert P.ones_sum(b"\x12\x34\xed\xcb") == 0xFFFF
    assert P.ones_sum(bytes(10)) == 0
    assert P.ones_sum(b"\x01") == 0x0100


@given(st.binary(max_size=200))
def test_ones_sum_matches_word_loop(data: bytes) -> None:
    """RFC 1071 §4.1: the modular shortcut equals the end-around-carry loop."""
    padded = data + b"\0" * (len(data) & 1)
    s = 0
    for (w,) in struct.iter_unpack("!H", padded):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    assert P.ones_sum(data) == s


@given(st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 2 == 0),
       st.integers(0, 3), st.binary(min_size=2, max_size=2))
def test_cksum_adjust_equals_recompute(data: bytes, word: int, new: bytes) -> None:
    """RFC 1624 §3: the incremental update equals a full recomputation."""
    off = 2 * word
    old_ck = P.in_cksum(data)
    changed = data[:off] + new + data[off + 2:]
    adj = P.cksum_adjust(old_ck, data[off:off + 2], new)
    full = P.in_cksum(changed)
    # 0x0000 and 0xffff are the same one's complement number.
    assert adj == full or {adj, full} == {0, 0xFFFF}


# --- build, against scapy --------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 7, 100, 1371])
def test_udp_ipv4_matches_scapy(size: int) -> None:
    """RFC 768 / RFC 791: IPv4 header checksum, UDP pseudo-header checksum."""
    data = bytes(i & 0xFF for i in range(size))
    ours = P.udp_packet(V4S, V4D, 1234, 53, data, ident=77, ttl=33, tos=0x10)
    ref = raw(IP(src=V4S, dst=V4D, id=77, ttl=33, tos=0x10, flags=0) / UDP(sport=1234, dport=53)
              / Raw(data))
    assert ours == ref


@pytest.mark.parametrize("size", [0, 3, 500])
def test_udp_ipv6_matches_scapy(size: int) -> None:
    """RFC 8200 §8.1: UDP over IPv6 always carries a pseudo-header checksum."""
    data = bytes(range(size % 256)) * (size // 256 + 1)
    data = data[:size]
    ours = P.udp_packet(V6S, V6D, 4500, 4500, data, ttl=9)
    ref = raw(IPv6(src=V6S, dst=V6D, hlim=9) / UDP(sport=4500, dport=4500) / Raw(data))
    assert ours == ref


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_matches_scapy(v6: bool) -> None:
    """RFC 793: TCP header with data offset 5 and the pseudo-header checksum."""
    src, dst = (V6S, V6D) if v6 else (V4S, V4D)
    data = b"GET / HTTP/1.0\r\n\r\n"
    ours = P.tcp_packet(src, dst, 40000, 80, data, seq=1000, ack=2000,
                        flags=P.TH_ACK | P.TH_PUSH, win=512, df=not v6)
    l3 = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst, flags="DF", id=0)
    ref = raw(l3 / TCP(sport=40000, dport=80, seq=1000, ack=2000, flags="PA", window=512)
              / Raw(data))
    assert ours == ref


def test_icmp_echo_matches_scapy() -> None:
    """RFC 792: ICMP echo, checksum over the ICMP message only."""
    ours = P.icmp_echo(V4S, V4D, ident=0x1234, seq=7, data=b"abcdefgh")
    ref = raw(IP(src=V4S, dst=V4D, id=0, flags=0) / ICMP(type=8, id=0x1234, seq=7)
              / Raw(b"abcdefgh"))
    assert ours == ref


def test_icmpv6_echo_matches_scapy() -> None:
    """RFC 4443 §2.3: ICMPv6 checksum includes the IPv6 pseudo-header."""
    ours = P.icmp_echo(V6S, V6D, ident=1, seq=2, data=b"xyz")
    ref = raw(IPv6(src=V6S, dst=V6D) / ICMPv6EchoRequest(id=1, seq=2, data=b"xyz"))
    assert ours == ref


@pytest.mark.parametrize("proto", ["udp", "tcp", "icmp"])
@pytest.mark.parametrize("size", [28, 64, 512, 1400])
@pytest.mark.parametrize("v6", [False, True])
def test_make_packet_exact_size(proto: str, size: int, v6: bool) -> None:
    """make_packet: exactly ``size`` bytes, valid checksums, parseable."""
    if size < (40 if v6 else 20) + (20 if proto == "tcp" else 8):
        pytest.skip("below the IP + upper-layer headers")
    src, dst = (V6S, V6D) if v6 else (V4S, V4D)
    raw_pkt = P.make_packet(src, dst, size, proto)
    assert len(raw_pkt) == size
    p = P.parse(raw_pkt)
    assert p.ip_checksum_ok() and p.l4_checksum_ok()
    assert p.proto == {"udp": 17, "tcp": 6, "icmp": 58 if v6 else 1}[proto]


def test_make_packet_too_small() -> None:
    """A size below the IP + UDP headers (RFC 791 + RFC 768: 28 bytes) is refused."""
    with pytest.raises(P.PacketError):
        P.make_packet(V4S, V4D, 20, "udp")


# --- parse -----------------------------------------------------------------------------------

def test_parse_udp_ipv4_fields() -> None:
    """struct ip / struct udphdr fields as built."""
    raw_pkt = P.udp_packet(V4S, V4D, 5000, 6000, b"hello", ident=9, ttl=5, tos=0xB8, df=True)
    p = P.parse(raw_pkt)
    assert isinstance(p.ip, P.IPv4Header) and isinstance(p.l4, P.UDPHeader)
    assert (p.version, P.addr_text(p.src), P.addr_text(p.dst)) == (4, V4S, V4D)
    assert (p.ip.ident, p.ip.ttl, p.ip.tos, p.ip.flags_off) == (9, 5, 0xB8, P.IP_DF)
    assert (p.l4.sport, p.l4.dport, p.l4.length, p.data) == (5000, 6000, 13, b"hello")
    assert p.ip_checksum_ok() and p.l4_checksum_ok()
    assert bytes(p) == raw_pkt and len(p) == 33


def test_parse_detects_bad_checksums() -> None:
    """A flipped bit fails the IPv4 header or the TCP checksum (parse reports, never raises)."""
    raw_pkt = bytearray(P.tcp_packet(V4S, V4D, 1, 2, b"data"))
    raw_pkt[8] ^= 1                       # TTL
    assert not P.parse(raw_pkt).ip_checksum_ok()
    raw_pkt[8] ^= 1
    raw_pkt[-1] ^= 0x40
    p = P.parse(raw_pkt)
    assert p.ip_checksum_ok() and not p.l4_checksum_ok()


def test_udp_zero_checksum() -> None:
    """RFC 768: a zero UDP checksum over IPv4 means none and verifies; built
    without one it stays zero; over IPv6 zero is invalid (RFC 8200 §8.1)."""
    v4 = P.parse(P.udp_packet(V4S, V4D, 1, 2, b"x", l4_cksum=False))
    assert v4.l4 is not None and v4.l4.checksum == 0 and v4.l4_checksum_ok()
    v6 = bytearray(P.udp_packet(V6S, V6D, 1, 2, b"x"))
    v6[46:48] = b"\0\0"
    assert not P.parse(v6).l4_checksum_ok()


def test_udp_checksum_zero_sent_as_ffff() -> None:
    """RFC 768: a computed checksum of 0 is transmitted as all ones."""
    # Search a payload whose checksum computes to zero.
    for i in range(1 << 16):
        data = i.to_bytes(2, "big")
        seg = P.UDPHeader(1, 2, 10, 0).pack() + data
        if P.l4_checksum(P.addr_bytes(V4S), P.addr_bytes(V4D), 17, seg) == 0:
            break
    p = P.parse(P.udp_packet(V4S, V4D, 1, 2, data))
    assert p.l4 is not None and p.l4.checksum == 0xFFFF and p.l4_checksum_ok()


def test_parse_ipv6_extension_headers() -> None:
    """RFC 8200 §4: destination options and fragment headers are walked to the
    upper layer; ipv6_upper_layer also returns the protoff FreeBSD uses."""
    pkt = raw(IPv6(src=V6S, dst=V6D) / IPv6ExtHdrDestOpt() / UDP(sport=7, dport=8) / Raw(b"q"))
    p = P.parse(pkt)
    assert (p.proto, p.l4_off) == (17, 48)
    assert p.l4 is not None and p.l4.dport == 8 and p.l4_checksum_ok()
    assert P.ipv6_upper_layer(pkt, pkt[6]) == (17, 48, 40)
    frag = raw(IPv6(src=V6S, dst=V6D) / IPv6ExtHdrFragment(id=5) / UDP(sport=7, dport=8))
    assert P.ipv6_upper_layer(frag, frag[6]) == (17, 48, 40)


def test_parse_ipv4_fragment_and_options() -> None:
    """A non-first fragment carries no upper-layer header; options lengthen ip_hl."""
    frag = raw(IP(src=V4S, dst=V4D, proto=17, frag=10, flags=0) / Raw(b"12345678"))
    p = P.parse(frag)
    assert p.l4 is None and p.data == b"12345678"
    opt = P.IPv4Header(P.addr_bytes(V4S), P.addr_bytes(V4D), 17, 32,
                       options=b"\x01\x01\x01\x00")      # NOP NOP NOP EOL
    pkt = opt.pack() + P.UDPHeader(1, 2, 8, 0).pack()
    q = P.parse(pkt)
    assert q.ip.hlen == 24 and q.l4_off == 24 and q.ip_checksum_ok()
    assert raw(IP(pkt)) == pkt


def test_parse_trims_trailing_bytes() -> None:
    """ip_input trims link-layer padding beyond ip_len."""
    pkt = P.udp_packet(V4S, V4D, 1, 2, b"ab")
    assert bytes(P.parse(pkt + b"\0" * 16)) == pkt


@pytest.mark.parametrize("bad", [
    b"", b"\x45\x00", b"\x55" + bytes(19), b"\x46" + bytes(19),
    bytes.fromhex("4500001c000000004011000000000000000000"),
])
def test_parse_malformed(bad: bytes) -> None:
    """Truncated headers, unknown versions, bad ip_hl raise PacketError."""
    with pytest.raises(P.PacketError):
        P.parse(bad)


def test_parse_length_beyond_buffer() -> None:
    """ip_input / ip6_input: a datagram shorter than ip_len (or 40 + ip6_plen) is malformed."""
    pkt = P.udp_packet(V4S, V4D, 1, 2, b"abcd")
    with pytest.raises(P.PacketError):
        P.parse(pkt[:-1])
    v6 = P.udp_packet(V6S, V6D, 1, 2, b"abcd")
    with pytest.raises(P.PacketError):
        P.parse(v6[:-1])


def test_header_rewrites() -> None:
    """ipv4_header_with / ipv6_header_with: what IPsec changes in the header,
    with the IPv4 checksum recomputed."""
    pkt = P.udp_packet(V4S, V4D, 1, 2, b"abcd")
    hdr = P.ipv4_header_with(pkt[:20], proto=50, total_len=100, tos=4)
    h = P.IPv4Header.parse(hdr)
    assert (h.proto, h.total_len, h.tos) == (50, 100, 4)
    assert P.ones_sum(hdr) == 0xFFFF
    v6 = P.udp_packet(V6S, V6D, 1, 2, b"abcd")
    h6 = P.IPv6Header.parse(P.ipv6_header_with(v6[:40], nxt=50, plen=77))
    assert (h6.nxt, h6.plen) == (50, 77)


def test_addresses() -> None:
    """in_addr / in6_addr as 4 or 16 raw bytes from text, ipaddress objects or bytes."""
    import ipaddress
    assert P.addr_bytes(V4S) == bytes([192, 0, 2, 1])
    assert P.addr_bytes(ipaddress.ip_address(V6S)) == ipaddress.ip_address(V6S).packed
    assert P.addr_text(P.addr_bytes(V6D)) == V6D
    with pytest.raises(P.PacketError):
        P.addr_bytes(b"\0\0\0")
    with pytest.raises(P.PacketError):
        P.build(V4S, V6D, 17)


def test_build_rejects_oversize() -> None:
    """IP_MAXPACKET: 65535 bytes is the largest IPv4 packet (and IPv6 payload)."""
    with pytest.raises(P.PacketError):
        P.build(V4S, V4D, 17, None, bytes(65516))
    assert len(P.build(V4S, V4D, 17, None, bytes(65515)).raw) == 65535
