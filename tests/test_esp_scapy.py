"""Interop with scapy's ESP (scapy.layers.ipsec, an independent RFC 4303
implementation): what our esp_output puts on the wire scapy decrypts, and what
scapy's SecurityAssociation.encrypt produces our esp_input opens, for every
algorithm both support, in transport and tunnel mode, IPv4 and IPv6, with and
without ESN (RFC 4304), and over NAT-T UDP encapsulation (RFC 3948).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from ipsec_accel import packet as P
from ipsec_accel.xform_esp import EspState
from ipsec_accel.esp_encap import (
    esp_input_packet, esp_transport_output, esp_tunnel_output, udp_decap, udp_encap,
)
from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG, SADB_SAFLAGS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.ipsec import ESP, SecurityAssociation
    from scapy.packet import raw

SPI = 0x0BADCAFE
ESN = int(SADB_SAFLAGS.X_SAFLAGS_ESN)

# name: (our enc, enc key, our auth, auth key, scapy crypt, scapy auth)
SUITES: dict[str, tuple[int, bytes, int, bytes, str, str | None]] = {
    "null-sha1": (SADB_EALG.NULL, b"", SADB_AALG.SHA1HMAC, bytes(range(20)), "NULL",
                  "HMAC-SHA1-96"),
    "cbc128": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.NONE, b"", "AES-CBC", None),
    "cbc128-sha1": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.SHA1HMAC,
                    bytes(range(20)), "AES-CBC", "HMAC-SHA1-96"),
    "cbc256-sha256": (SADB_EALG.X_AESCBC, bytes(range(32)), SADB_AALG.X_SHA2_256,
                      bytes(range(32)), "AES-CBC", "SHA2-256-128"),
    "cbc192-sha384": (SADB_EALG.X_AESCBC, bytes(range(24)), SADB_AALG.X_SHA2_384,
                      bytes(range(48)), "AES-CBC", "SHA2-384-192"),
    "cbc128-sha512": (SADB_EALG.X_AESCBC, bytes(range(16)), SADB_AALG.X_SHA2_512,
                      bytes(range(64)), "AES-CBC", "SHA2-512-256"),
    "ctr128-sha256": (SADB_EALG.X_AESCTR, bytes(range(20)), SADB_AALG.X_SHA2_256,
                      bytes(range(32)), "AES-CTR", "SHA2-256-128"),
    "ctr256": (SADB_EALG.X_AESCTR, bytes(range(36)), SADB_AALG.NONE, b"", "AES-CTR", None),
    "gcm128": (SADB_EALG.X_AESGCM16, bytes(range(20)), SADB_AALG.NONE, b"", "AES-GCM", None),
    "gcm192": (SADB_EALG.X_AESGCM16, bytes(range(28)), SADB_AALG.NONE, b"", "AES-GCM", None),
    "gcm256": (SADB_EALG.X_AESGCM16, bytes(range(36)), SADB_AALG.NONE, b"", "AES-GCM", None),
    "gmac128": (SADB_EALG.X_AESGMAC, bytes(range(20)), SADB_AALG.NONE, b"", "AES-NULL-GMAC",
                None),
    "gmac256": (SADB_EALG.X_AESGMAC, bytes(range(36)), SADB_AALG.NONE, b"", "AES-NULL-GMAC",
                None),
    "chacha": (SADB_EALG.X_CHACHA20POLY1305, bytes(range(36)), SADB_AALG.NONE, b"",
               "CHACHA20-POLY1305", None),
}
# scapy 2.8 appends seq_hi to the HMAC input and puts it in the AEAD AAD, but
# leaves it out of its AES-NULL-GMAC AAD only when ESN is off: every suite works.
ESN_SUITES = sorted(SUITES)

V4 = ("192.0.2.10", "198.51.100.20")
V6 = ("2001:db8:10::1", "2001:db8:20::2")


def _ours(name: str, flags: int = 0, replay: int = 4, mode: int = IPSEC_MODE.ANY) -> EspState:
    enc, ek, auth, ak, _, _ = SUITES[name]
    return EspState(SPI, enc, ek, auth, ak, flags=flags, replay=replay, mode=mode)


def _scapy(name: str, *, esn: int | None = None, tunnel: Any = None,
           nat_t: Any = None) -> SecurityAssociation:
    _, ek, _, ak, crypt, auth = SUITES[name]
    kw: dict[str, Any] = {}
    if auth:
        kw.update(auth_algo=auth, auth_key=ak)
    if esn is not None:
        kw.update(esn_en=True, esn=esn)
    return SecurityAssociation(ESP, spi=SPI, crypt_algo=crypt, crypt_key=ek or None,
                               tunnel_header=tunnel, nat_t_header=nat_t, **kw)


def _inner(v6: bool, size: int = 180) -> bytes:
    return P.make_packet(*(V6 if v6 else V4), size, "udp", sport=1111, dport=2222)


@pytest.mark.parametrize("name", sorted(SUITES))
@pytest.mark.parametrize("v6", [False, True])
def test_ours_to_scapy_transport(name: str, v6: bool) -> None:
    """RFC 4303 transport mode: scapy verifies the ICV and recovers our packet."""
    sa = _ours(name)
    ref = _scapy(name)
    for size in (61, 180, 1400):
        pkt = _inner(v6, size)
        wire = esp_transport_output(sa, pkt)
        l3 = IPv6(wire) if v6 else IP(wire)
        assert raw(ref.decrypt(l3)) == pkt


@pytest.mark.parametrize("name", sorted(SUITES))
@pytest.mark.parametrize("v6", [False, True])
def test_scapy_to_ours_transport(name: str, v6: bool) -> None:
    """RFC 4303 transport mode: scapy's output opens in our esp_input, with the
    sequence numbers scapy chose (replay window on)."""
    sa = _ours(name)
    ref = _scapy(name)
    for seq, size in ((1, 61), (2, 180), (7, 1400)):
        pkt = _inner(v6, size)
        l3 = IPv6(pkt) if v6 else IP(pkt)
        wire = raw(ref.encrypt(l3, seq_num=seq))
        back, nxt, got = esp_input_packet(sa, wire)
        assert (back, nxt, got) == (pkt, 17, seq)


@pytest.mark.parametrize("name", sorted(SUITES))
def test_tunnel_both_ways(name: str) -> None:
    """Tunnel mode (RFC 4303 §3.1.2): IPv4 in IPv6 from us to scapy, IPv6 in IPv4
    from scapy to us."""
    inner4, inner6 = _inner(False), _inner(True)
    ours = _ours(name, mode=IPSEC_MODE.TUNNEL)
    ref6 = _scapy(name, tunnel=IPv6(src="2001:db8::1", dst="2001:db8::2"))
    wire = esp_tunnel_output(ours, inner4, "2001:db8::1", "2001:db8::2")
    assert raw(ref6.decrypt(IPv6(wire))) == inner4
    ref4 = _scapy(name, tunnel=IP(src="203.0.113.1", dst="203.0.113.2"))
    wire4 = raw(ref4.encrypt(IPv6(inner6), seq_num=3))
    assert esp_input_packet(_ours(name), wire4) == (inner6, 41, 3)


@pytest.mark.parametrize("name", ESN_SUITES)
def test_esn_both_ways(name: str) -> None:
    """RFC 4304 / RFC 4303 §2.2.1: the high 32 bits enter the ICV (HMAC input
    after the packet, AEAD and GMAC AAD) but not the wire, both ways."""
    hi = 3
    ours_tx = _ours(name, flags=ESN)
    ours_tx.count = (hi << 32) | 41
    ref = _scapy(name, esn=hi)
    pkt = _inner(False)
    wire = esp_transport_output(ours_tx, pkt)
    assert wire[20 + 4:20 + 8] == (42).to_bytes(4, "big")
    assert raw(ref.decrypt(IP(wire))) == pkt
    rx = _ours(name, flags=ESN)
    rx.replay.last = (hi << 32) | 40
    back, _, seq = esp_input_packet(rx, raw(ref.encrypt(IP(pkt), seq_num=50)))
    assert back == pkt and seq == (hi << 32) | 50


@pytest.mark.parametrize("name", ["gcm128", "cbc128-sha1", "chacha"])
def test_natt_both_ways(name: str) -> None:
    """RFC 3948 §2.1: ESP in UDP 4500 with a zero checksum; scapy's nat_t_header
    output decapsulates and opens here, ours opens in scapy."""
    pkt = _inner(False)
    ref = _scapy(name, nat_t=UDP(sport=4500, dport=4500))
    wire = raw(ref.encrypt(IP(pkt), seq_num=1))
    assert wire[9] == 17 and wire[26:28] == b"\0\0"
    plain_esp = udp_decap(wire)
    assert plain_esp is not None
    assert esp_input_packet(_ours(name), plain_esp)[0] == pkt
    ours = udp_encap(esp_transport_output(_ours(name), pkt))
    assert raw(_scapy(name, nat_t=UDP(sport=4500, dport=4500)).decrypt(IP(ours))) == pkt


def test_scapy_tamper_detected() -> None:
    """A bit flipped in scapy's packet fails our ICV check (esps_badauth)."""
    from ipsec_accel.xform_esp import EspBadAuth
    wire = bytearray(raw(_scapy("gcm128").encrypt(IP(_inner(False)), seq_num=1)))
    wire[40] ^= 0x80
    with pytest.raises(EspBadAuth):
        esp_input_packet(_ours("gcm128"), bytes(wire))
