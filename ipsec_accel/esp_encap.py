"""Whole-packet ESP: transport and tunnel encapsulation, ECN and NAT-T.

Models the packet-level parts of FreeBSD's ``sys/netipsec/ipsec_output.c``
(ipsec4/6 transport and tunnel encapsulation), ``ipsec_input.c``
(decapsulation), ``sys/netinet/ip_ecn.c`` (outer/inner ECN) and
``sys/netipsec/udpencap.c`` (RFC 3948 UDP encapsulation, NAT-T checksum
fix-ups).  The ESP payload itself comes from :class:`xform_esp.EspState`;
these helpers take and return whole IP packets as bytes.
"""

from __future__ import annotations

import struct
from typing import Final

from pfkey.ipsec import IPSEC_MODE

from .packet import (
    IP_DF, IPDEFTTL, IPPROTO_IPV4, IPPROTO_IPV6, IPPROTO_TCP, IPV4_HDRLEN, IPV6_DEFHLIM,
    IPV6_HDRLEN, UDP_HDRLEN, AddressLike, IPv4Header, IPv6Header, PacketError, UDPHeader,
    addr_bytes, cksum_adjust, ipv4_header_with, ipv6_header_with, ipv6_upper_layer,
    l4_checksum,
)
from .xform_esp import EspBadIlen, EspError, EspState

_IP4_WORDS = struct.Struct("!10H")

ECN_FORBIDDEN: Final = 0     # net.inet.ipsec.ecn default: outer ECN bits cleared
ECN_ALLOWED: Final = 1
ECN_NOCARE: Final = -1
IPTOS_ECN_MASK: Final = 0x03
IPTOS_ECN_NOTECT: Final = 0x00
IPTOS_ECN_ECT1: Final = 0x01
IPTOS_ECN_CE: Final = 0x03
UDP_ENCAP_PORT: Final = 4500  # RFC 3948 §2.1
_IPPROTO_ESP: Final = 50
_IPPROTO_UDP: Final = 17


def ip_ecn_ingress(mode: int, inner_tos: int) -> int:
    """ip_ecn.c ip_ecn_ingress: the outer TOS/traffic class for an inner one."""
    outer = inner_tos
    if mode == ECN_ALLOWED:
        if inner_tos & IPTOS_ECN_MASK == IPTOS_ECN_CE:
            outer &= ~IPTOS_ECN_ECT1 & 0xFF
    elif mode == ECN_FORBIDDEN:
        outer &= ~IPTOS_ECN_MASK & 0xFF
    return outer


def ip_ecn_egress(mode: int, outer_tos: int, inner_tos: int) -> int | None:
    """ip_ecn.c ip_ecn_egress: the inner TOS after decapsulation, or None when
    the packet must be dropped (CE outside, not-ECT inside, ECN_ALLOWED)."""
    if mode == ECN_ALLOWED and outer_tos & IPTOS_ECN_MASK == IPTOS_ECN_CE:
        if inner_tos & IPTOS_ECN_MASK == IPTOS_ECN_NOTECT:
            return None
        return inner_tos | IPTOS_ECN_CE
    return inner_tos


def _locate_esp(packet: bytes) -> tuple[int, int]:
    """(skip, protoff) of the ESP header in an IPv4/IPv6 packet."""
    v = packet[0] >> 4
    if v == 4:
        skip = (packet[0] & 15) << 2
        if packet[9] != _IPPROTO_ESP:
            raise PacketError(f"IPv4 protocol {packet[9]} is not ESP")
        return skip, 9
    if v == 6:
        proto, skip, protoff = ipv6_upper_layer(packet, packet[6])
        if proto != _IPPROTO_ESP:
            raise PacketError(f"IPv6 upper-layer protocol {proto} is not ESP")
        return skip, protoff
    raise PacketError(f"IP version {v}")


def _ip_end(packet: bytes) -> int:
    """Where the IP datagram ends (its length field), trailing bytes ignored."""
    if packet[0] >> 4 == 4:
        return int.from_bytes(packet[2:4], "big")
    return IPV6_HDRLEN + int.from_bytes(packet[4:6], "big")


def _ipv4_fix(w: tuple[int, ...], total_len: int, proto: int) -> bytes:
    """A 20-byte IPv4 header from its ten 16-bit words with a new length and
    protocol and a fresh checksum (ip_output's in_cksum, done on the words)."""
    w4 = (w[4] & 0xFF00) | proto
    sm = w[0] + total_len + w[2] + w[3] + w4 + w[6] + w[7] + w[8] + w[9]
    sm = (sm & 0xFFFF) + (sm >> 16)
    sm = (sm & 0xFFFF) + (sm >> 16)
    return _IP4_WORDS.pack(w[0], total_len, w[2], w[3], w4, ~sm & 0xFFFF,
                           w[6], w[7], w[8], w[9])


def esp_transport_output(sa: EspState, packet: bytes, *, seq: int | None = None,
                         iv: bytes | None = None) -> bytes:
    """Transport mode (ipsec4/6_perform_request + esp_output + ipsec_process_done):
    ESP goes right after the IPv4 header (options kept) or the fixed IPv6
    header (extension headers travel encrypted); protocol, length and the IPv4
    checksum are fixed as ip_output would."""
    b0 = packet[0]
    if b0 == 0x45:                                  # IPv4 without options: the usual case
        w0, tlen, w2, w3, w4, _, w6, w7, w8, w9 = _IP4_WORDS.unpack_from(packet)
        if seq is None and iv is None:
            esp = sa.output(packet[20:tlen], w4 & 0xFF)
        else:
            esp = sa.output(packet[20:tlen], w4 & 0xFF, seq=seq, iv=iv, skip=20)
        tlen = 20 + len(esp)
        w4 = (w4 & 0xFF00) | _IPPROTO_ESP
        sm = w0 + tlen + w2 + w3 + w4 + w6 + w7 + w8 + w9   # in_cksum on the words
        sm = (sm & 0xFFFF) + (sm >> 16)
        sm = (sm & 0xFFFF) + (sm >> 16)
        return _IP4_WORDS.pack(w0, tlen, w2, w3, w4, ~sm & 0xFFFF, w6, w7, w8, w9) + esp
    v = b0 >> 4
    if v == 4:
        hl = (b0 & 15) << 2
        esp = sa.output(packet[hl:_ip_end(packet)], packet[9], seq=seq, iv=iv, skip=hl)
        return ipv4_header_with(packet[:hl], proto=_IPPROTO_ESP, total_len=hl + len(esp)) + esp
    if v == 6:
        esp = sa.output(packet[IPV6_HDRLEN:_ip_end(packet)], packet[6], seq=seq, iv=iv,
                        skip=IPV6_HDRLEN)
        return b"".join((packet[:4], len(esp).to_bytes(2, "big"), b"\x32",
                         packet[7:IPV6_HDRLEN], esp))
    raise PacketError(f"IP version {v}")


def esp_tunnel_output(sa: EspState, inner: bytes, src: AddressLike, dst: AddressLike, *,
                      ident: int = 0, dfbit: int = 0, ecn: int = ECN_FORBIDDEN,
                      ttl: int | None = None, seq: int | None = None,
                      iv: bytes | None = None) -> bytes:
    """Tunnel mode (ipsec_encap + esp_output): a new outer header from the SA
    endpoints around ESP(inner).  ``dfbit`` is net.inet.ipsec.dfbit (0 clear,
    1 set, 2 copy from an IPv4 inner header); ``ecn`` net.inet.ipsec.ecn; TTL
    or hop limit default 64; the IPv6 flow label is 0."""
    v = inner[0] >> 4
    if v == 4:
        nxt, itos = IPPROTO_IPV4, inner[1]
        setdf = dfbit if dfbit in (0, 1) else bool(int.from_bytes(inner[6:8], "big") & IP_DF)
    elif v == 6:
        nxt, itos = IPPROTO_IPV6, (int.from_bytes(inner[0:4], "big") >> 20) & 0xFF
        setdf = dfbit == 1
    else:
        raise PacketError(f"inner IP version {v}")
    s = addr_bytes(src)
    d = addr_bytes(dst)
    tos = ip_ecn_ingress(ecn, itos)
    if len(s) == 4:
        esp = sa.output(inner, nxt, seq=seq, iv=iv, skip=IPV4_HDRLEN)
        hdr = IPv4Header(s, d, _IPPROTO_ESP, IPV4_HDRLEN + len(esp), tos=tos, ident=ident,
                         flags_off=IP_DF if setdf else 0,
                         ttl=IPDEFTTL if ttl is None else ttl).pack()
    else:
        esp = sa.output(inner, nxt, seq=seq, iv=iv, skip=IPV6_HDRLEN)
        hdr = IPv6Header(s, d, _IPPROTO_ESP, len(esp), tclass=tos,
                         hlim=IPV6_DEFHLIM if ttl is None else ttl).pack()
    return hdr + esp


def esp_input_packet(sa: EspState, packet: bytes, *,
                     ecn: int = ECN_FORBIDDEN) -> tuple[bytes, int, int]:
    """Open an IPv4/IPv6 packet carrying ESP (ipsec_common_input + esp_input +
    ipsec4/6_common_input_cb).

    Returns ``(packet, next_header, seq)``: for next header 4 or 41 the inner
    packet (tunnel mode, ECN egress applied; dropped as EspError when
    ip_ecn_egress says so), otherwise the original header with the next
    header restored, lengths and checksum fixed, and the payload (transport).
    """
    if packet[0] == 0x45 and packet[9] == _IPPROTO_ESP:
        w = _IP4_WORDS.unpack_from(packet)
        payload, nxt, seq = sa.input(packet[20:w[1]])
        if nxt != IPPROTO_IPV4 and nxt != IPPROTO_IPV6:
            return _ipv4_fix(w, 20 + len(payload), nxt) + payload, nxt, seq
        skip, protoff = 20, 9
    else:
        skip, protoff = _locate_esp(packet)
        payload, nxt, seq = sa.input(packet[skip:_ip_end(packet)])
    outer_v4 = packet[0] >> 4 == 4
    if nxt == IPPROTO_IPV4 or nxt == IPPROTO_IPV6:
        otos = packet[1] if outer_v4 else (int.from_bytes(packet[0:4], "big") >> 20) & 0xFF
        if not payload:
            raise EspBadIlen("empty tunnelled packet")
        if nxt == IPPROTO_IPV4:
            itos = payload[1]
            ntos = ip_ecn_egress(ecn, otos, itos)
            if ntos is None:
                raise EspError("ECN: CE outside, not-ECT inside", seq=seq)
            if ntos != itos:
                hl = (payload[0] & 15) << 2
                payload = ipv4_header_with(payload[:hl], tos=ntos) + payload[hl:]
        else:
            vcf = int.from_bytes(payload[0:4], "big")
            itos = (vcf >> 20) & 0xFF
            ntos = ip_ecn_egress(ecn, otos, itos)
            if ntos is None:
                raise EspError("ECN: CE outside, not-ECT inside", seq=seq)
            if ntos != itos:
                vcf = (vcf & ~(0xFF << 20)) | (ntos << 20)
                payload = vcf.to_bytes(4, "big") + payload[4:]
        return payload, nxt, seq
    if outer_v4:
        hdr = ipv4_header_with(packet[:skip], proto=nxt, total_len=skip + len(payload))
    else:
        hdr = ipv6_header_with(packet[:skip], nxt=nxt, plen=skip - IPV6_HDRLEN + len(payload),
                               protoff=protoff)
    return hdr + payload, nxt, seq


def esp_transport_input(sa: EspState, packet: bytes) -> tuple[bytes, int]:
    """Transport mode input: the decrypted packet and its sequence number."""
    out, nxt, seq = esp_input_packet(sa, packet)
    if nxt in (IPPROTO_IPV4, IPPROTO_IPV6) and sa.mode == IPSEC_MODE.TRANSPORT:
        raise PacketError("tunnelled packet on a transport-mode SA")
    return out, seq


def esp_tunnel_input(sa: EspState, packet: bytes, *,
                     ecn: int = ECN_FORBIDDEN) -> tuple[bytes, int]:
    """Tunnel mode input: the inner packet and the sequence number."""
    out, nxt, seq = esp_input_packet(sa, packet, ecn=ecn)
    if nxt not in (IPPROTO_IPV4, IPPROTO_IPV6):
        raise PacketError(f"next header {nxt} is not an IP packet (not tunnel mode)")
    return out, seq


def udp_encap(packet: bytes, sport: int = UDP_ENCAP_PORT,
              dport: int = UDP_ENCAP_PORT) -> bytes:
    """RFC 3948 §3.1 (udpencap.c udp_ipsec_output): insert a UDP header between
    the IP header and ESP.  The UDP checksum is 0 over IPv4 (§2.1); over IPv6,
    where zero is not allowed, it is computed."""
    skip, protoff = _locate_esp(packet)
    esp = packet[skip:_ip_end(packet)]
    ulen = UDP_HDRLEN + len(esp)
    if packet[0] >> 4 == 4:
        udp = UDPHeader(sport, dport, ulen, 0).pack()
        return ipv4_header_with(packet[:skip], proto=_IPPROTO_UDP,
                                total_len=skip + ulen) + udp + esp
    seg = UDPHeader(sport, dport, ulen, 0).pack() + esp
    cs = l4_checksum(packet[8:24], packet[24:40], _IPPROTO_UDP, seg) or 0xFFFF
    seg = seg[:6] + cs.to_bytes(2, "big") + seg[8:]
    return ipv6_header_with(packet[:skip], nxt=_IPPROTO_UDP, plen=skip - IPV6_HDRLEN + ulen,
                            protoff=protoff) + seg


NATT_ESP: Final = "esp"
NATT_IKE: Final = "ike"
NATT_KEEPALIVE: Final = "keepalive"


def natt_classify(udp_payload: bytes) -> str:
    """RFC 3948 §2.2/§2.3: a 1-byte 0xff is a NAT-keepalive, a zero first
    word is the non-ESP marker (IKE), anything else is ESP."""
    if len(udp_payload) == 1 and udp_payload[0] == 0xFF:
        return NATT_KEEPALIVE
    if len(udp_payload) >= 4 and udp_payload[:4] == b"\0\0\0\0":
        return NATT_IKE
    return NATT_ESP


def udp_decap(packet: bytes) -> bytes | None:
    """udpencap.c udp_ipsec_input: strip the UDP header of an ESP-in-UDP packet
    and make it a plain ESP packet; None for IKE (non-ESP marker) and
    keepalives, which are not ESP."""
    v = packet[0] >> 4
    if v == 4:
        skip, protoff = (packet[0] & 15) << 2, 9
        proto = packet[9]
    elif v == 6:
        proto, skip, protoff = ipv6_upper_layer(packet, packet[6])
    else:
        raise PacketError(f"IP version {v}")
    if proto != _IPPROTO_UDP:
        raise PacketError(f"protocol {proto} is not UDP")
    end = _ip_end(packet)
    data = packet[skip + UDP_HDRLEN:end]
    if natt_classify(data) != NATT_ESP:
        return None
    if v == 4:
        return ipv4_header_with(packet[:skip], proto=_IPPROTO_ESP,
                                total_len=skip + len(data)) + data
    return ipv6_header_with(packet[:skip], nxt=_IPPROTO_ESP, plen=skip - IPV6_HDRLEN + len(data),
                            protoff=protoff) + data


def natt_fix_l4_checksum(packet: bytes, orig_src: AddressLike | None = None,
                         orig_dst: AddressLike | None = None) -> bytes:
    """After transport-mode NAT-T decryption the TCP/UDP checksum still covers
    the addresses the peer used before NAT (RFC 3948 §3.1.2).  With the
    original addresses (NAT-OAi/OAr) the checksum is adjusted incrementally, as
    udpencap.c udp_ipsec_adjust_cksum does; without them it is recomputed
    (FreeBSD instead marks it verified).  A zero UDP checksum stays zero."""
    v4 = packet[0] >> 4 == 4
    if v4:
        off, proto = (packet[0] & 15) << 2, packet[9]
        src, dst = packet[12:16], packet[16:20]
    else:
        proto, off, _ = ipv6_upper_layer(packet, packet[6])
        src, dst = packet[8:24], packet[24:40]
    if proto == _IPPROTO_UDP:
        coff = off + 6
    elif proto == IPPROTO_TCP:
        coff = off + 16
    else:
        return packet
    old = int.from_bytes(packet[coff:coff + 2], "big")
    if proto == _IPPROTO_UDP and old == 0 and v4:
        return packet
    if orig_src is not None and orig_dst is not None:
        new = cksum_adjust(old, addr_bytes(orig_src) + addr_bytes(orig_dst), src + dst)
    else:
        seg = bytearray(packet[off:_ip_end(packet)])
        seg[coff - off:coff - off + 2] = b"\0\0"
        new = l4_checksum(src, dst, proto, seg)
    if proto == _IPPROTO_UDP and new == 0:
        new = 0xFFFF
    return packet[:coff] + new.to_bytes(2, "big") + packet[coff + 2:]


__all__ = [
    "ECN_FORBIDDEN", "ECN_ALLOWED", "ECN_NOCARE", "UDP_ENCAP_PORT", "ip_ecn_ingress",
    "ip_ecn_egress", "esp_transport_output", "esp_tunnel_output", "esp_input_packet",
    "esp_transport_input", "esp_tunnel_input", "udp_encap", "udp_decap", "natt_classify",
    "NATT_ESP", "NATT_IKE", "NATT_KEEPALIVE", "natt_fix_l4_checksum",
]
