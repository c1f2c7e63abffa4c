"""Helpers for tests that drive mock NICs directly (in the spirit of
``trio.testing``; used by the project's own driver tests).

* :func:`make_sav` -- a MATURE ``pfkey.keydb.secasvar`` as key.c leaves it
  after ``key_setsaval`` + ``esp_init`` (for AES-GCM ``alg_auth`` is the
  implied GMAC id), without a key engine;
* :func:`sw_state` -- the software :class:`EspState` for the same SA, i.e.
  what the software datapath would use (to compare bytes with a NIC's);
* :func:`tagged` -- an mbuf carrying a ``PACKET_TAG_IPSEC_ACCEL_OUT`` tag
  (packet offload) or a ``PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED`` tag (crypto
  offload) with the given drv_spi;
* :func:`crypto_offload_frame` -- what a stack doing crypto offload hands
  the NIC: the packet already ESP-framed (header, IV, payload, padding,
  trailer) with ``icvlen`` zero bytes where the ICV goes;
* :class:`Capture` -- collects what a NIC transmits.
"""

from __future__ import annotations

from typing import Optional

from ipsec_accel.mbuf import (
    PACKET_TAG_IPSEC_ACCEL_OUT, PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED, Mbuf, m_tag_get,
    m_tag_prepend,
)
from ipsec_accel.xform_esp import EspState
from pfkey.extensions import Sockaddr
from pfkey.ipsec import IPSEC_MODE
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_POLICY
from pfkey.keydb import (
    IPSEC_SPSTATE_ALIVE, MATURE, ipsecrequest, secasindex, secashead, secasvar, seckey, secnatt,
    secpolicy, secreplay,
)
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG
from pfkey.spd import SecPolicyIndex

__all__ = ["GCM128_KEY", "GCM256_KEY", "make_sav", "make_sp", "gcm_sa", "sw_state", "tagged",
           "crypto_offload_frame", "Capture"]

#: 128-bit AES-GCM key + 4-byte salt (160 bits), and 256 + 32.
GCM128_KEY = bytes(range(0x10, 0x24))
GCM256_KEY = bytes(range(0x30, 0x54))

_GMAC_BY_BITS = {128: SADB_AALG.X_AES128GMAC, 192: SADB_AALG.X_AES192GMAC,
                 256: SADB_AALG.X_AES256GMAC}


def make_sav(spi: int = 0x1000, *, src: str = "10.0.0.1", dst: str = "10.0.0.2",
             enc: int = SADB_EALG.X_AESGCM16, key: bytes = GCM128_KEY,
             auth: Optional[int] = None, auth_key: bytes = b"", replay: int = 0,
             flags: int = 0, mode: int = IPSEC_MODE.TRANSPORT, reqid: int = 0,
             proto: int = 50, state: int = MATURE, natt: Optional[tuple[int, int]] = None,
             alg_comp: int = 0) -> secasvar:
    """A ``secasvar`` shaped as key.c makes it (see the module docstring)."""
    saidx = secasindex.make(proto, int(mode), reqid, Sockaddr.from_ip(src),
                            Sockaddr.from_ip(dst))
    sah = secashead(saidx=saidx, addrkey=saidx.addrkey, state=MATURE)
    if auth is None:
        if enc == SADB_EALG.X_AESGCM16:
            auth = int(_GMAC_BY_BITS.get(8 * (len(key) - 4), 0))
        elif enc == SADB_EALG.X_CHACHA20POLY1305:
            auth = int(SADB_AALG.X_CHACHA20POLY1305)
        else:
            auth = 0
    sav = secasvar(spi=spi, sah=sah, state=state, flags=flags, alg_enc=int(enc),
                   alg_auth=int(auth), alg_comp=alg_comp,
                   key_enc=seckey(8 * len(key), key),
                   key_auth=seckey(8 * len(auth_key), auth_key) if auth_key else None,
                   replay=secreplay(wsize=replay), ivlen=8)
    if natt is not None:
        sav.natt = secnatt(sport=natt[0], dport=natt[1])
    return sav


def make_sp(dir: int = IPSEC_DIR.OUTBOUND, policy: int = IPSEC_POLICY.IPSEC, *,
            mode: int = IPSEC_MODE.TRANSPORT, reqid: int = 0, templates: int = 1,
            src: str = "10.0.0.0", dst: str = "10.0.1.0", prefs: int = 24,
            prefd: int = 24, ul_proto: int = 255) -> secpolicy:
    """A ``secpolicy`` as key_msg2sp builds it (``templates`` ESP requests
    for an IPSEC policy, none otherwise)."""
    spidx = SecPolicyIndex(int(dir), Sockaddr.from_ip(src), Sockaddr.from_ip(dst), prefs,
                           prefd, ul_proto)
    req = []
    if policy == IPSEC_POLICY.IPSEC:
        empty = Sockaddr(0, 0, b"")
        req = [ipsecrequest(secasindex(empty, empty, 50, int(mode), reqid),
                            int(IPSEC_LEVEL.REQUIRE)) for _ in range(templates)]
    return secpolicy(spidx=spidx, policy=int(policy), req=req, state=IPSEC_SPSTATE_ALIVE)


def gcm_sa(key: bytes = GCM128_KEY, **kw: object) -> dict[str, object]:
    """Keyword arguments for ``pfkey.key_testing.add_msg`` (and
    ``OffloadRig.add_sa``) describing an AES-GCM-16 transport SA as
    ``setkey -c`` would send it: ``add ... esp SPI -m transport -E
    aes-gcm-16 KEY``."""
    d: dict[str, object] = dict(enc=SADB_EALG.X_AESGCM16, enc_key=key, auth=SADB_AALG.NONE,
                                auth_key=None, replay=0, mode=IPSEC_MODE.TRANSPORT)
    d.update(kw)
    return d


def sw_state(sav: secasvar) -> EspState:
    """The software transform for ``sav`` (fresh counters: seq 1, IV 0)."""
    # An SA as make_sav (or key_setsaval with a cipher key) leaves it: linked
    # to its SAH, with an encryption key (ESP-null SAs are not supported here).
    sah, key_enc = sav.sah, sav.key_enc
    assert sah is not None and key_enc is not None
    saidx = sah.saidx
    return EspState(sav.spi, sav.alg_enc, key_enc.key, sav.alg_auth,
                    sav.key_auth.key if sav.key_auth is not None else b"", flags=sav.flags,
                    replay=sav.replay.wsize if sav.replay is not None else 0,
                    mode=saidx.mode, af=saidx.dst.family)


def tagged(packet: bytes, drv_spi: Optional[int], *, crypto: bool = False,
           seq_hi: int = 0) -> Mbuf:
    """An mbuf for ``if_transmit`` with an OUT tag (or a crypto-needed tag)."""
    m = Mbuf(packet)
    if drv_spi is not None:
        t = m_tag_get(PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED if crypto
                      else PACKET_TAG_IPSEC_ACCEL_OUT, 2)
        assert t is not None
        t.data = (drv_spi, seq_hi) if crypto and seq_hi else drv_spi
        m_tag_prepend(m, t)
    return m


def crypto_offload_frame(sa: EspState, packet: bytes, *, seq: int, iv: bytes) -> bytes:
    """The crypto-offload frame of an IPv4 (no options) transport packet:
    the bytes ``esp_transport_output(sa, packet, seq=seq, iv=iv)`` would
    produce, with the ciphertext replaced by the plaintext (payload, padding,
    pad length, next header) and the ICV by zeros.  Built from the SA's own
    trailer rules so the NIC's result can be compared byte for byte."""
    assert packet[0] == 0x45, "IPv4 without options only"
    tlen = int.from_bytes(packet[2:4], "big")
    payload = packet[20:tlen]
    nxt = packet[9]
    padlen = -(len(payload) + 2) & sa.blkmask
    trailer = sa._trailer(padlen, nxt)        # the SA's padding rule (PSEQ/PZERO)
    esp = (sa.spi.to_bytes(4, "big") + (seq & 0xFFFFFFFF).to_bytes(4, "big") + iv
           + payload + trailer + bytes(sa.icvlen))
    total = 20 + len(esp)
    hdr = bytearray(packet[:20])
    hdr[2:4] = total.to_bytes(2, "big")
    hdr[9] = 50
    hdr[10:12] = b"\0\0"
    s = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, 20, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(hdr) + esp


class Capture:
    """A transmit sink: ``nic.set_transmit(cap)``; frames in ``cap.frames``."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.frames.append(bytes(data))

    def pop(self) -> bytes:
        return self.frames.pop(0)

    def __len__(self) -> int:
        return len(self.frames)


