"""IPsec input: ``sys/netipsec/ipsec_input.c`` (ipsec4_input,
ipsec_common_input, ipsec4_common_input_cb and the IPv6 twins),
``ipsec_accel_input`` of ``ipsec_offload.c``, ``ipsec4_in_reject`` /
``ipsec_in_reject`` / ``ipsec_check_history`` of ``ipsec.c`` and the input
side of ``udpencap.c``, on a :class:`ipsec_accel.ipsec_state.Ipsec`.

ip_input (:mod:`ipsec_accel.ip`) calls :func:`ipsec_input` for every packet
addressed to the host (FreeBSD's ``IPSEC_INPUT``) and
:func:`ipsec4_in_reject` before handing an upper-layer packet to a socket
(udp_input's IPSEC_CHECK_POLICY; rip/ICMP: PR_LASTHDR).  Return values are
FreeBSD's: 0 (go on with the packet), EINPROGRESS (consumed: decrypted and
requeued, or dropped), EACCES (refused by policy).

Rules (freebsd_ipsec_offload.md §9; RFC 4303):

1. ``ipsec_accel_input`` first: no PACKET_TAG_IPSEC_ACCEL_IN tag -> ENXIO,
   the software path decides; a tag with drv_spi < 3 or > 0xffff -> freed,
   EINPROGRESS (2, BYPASS, is invalid here); otherwise the handle owning the
   drv_spi (any interface) gets SW-offl accounting and the packet is
   permitted -- also when no handle owns it (§17.18: accepted without
   accounting).
2. ESP to this host (ipsec_common_input): esps_input; ESP disabled ->
   esps_pdrops; shorter than SPI + sequence -> esps_hdrops; key_allocsa by
   (destination, ESP, SPI) -> esps_notdb; the transform: esp_input (replay
   check before the ICV, window update after, trailer checks; the espstat
   counter of each failure), then ipsec4_common_input_cb: NAT-T transport
   checksum fix (RFC 3948 §3.1.2), tunnel decapsulation (ECN egress),
   M_DECRYPTED, a PACKET_TAG_IPSEC_IN_DONE tag (xform_history: dst, SPI,
   proto, mode), key_sa_recordxfer with the decrypted length, and the packet
   requeued to ip_input (netisr).  Next header 59 is dropped silently.
3. A packet a NIC decrypted in *crypto offload* mode (Linux
   XFRM_DEV_OFFLOAD_CRYPTO) carries PACKET_TAG_IPSEC_IN_CRYPTO_DONE and its
   ESP framing: step 2 without the cipher -- replay check and update, trailer
   checks, decapsulation, accounting are the stack's.
4. ESP in UDP (a UDP packet to one of :attr:`Ipsec.natt_ports` whose first
   word is not the non-ESP marker, RFC 3948 §2.2): udp_ipsec_input strips the
   UDP header and runs step 2; IKE (non-ESP marker) and keepalives are left
   to the socket.
5. ``ipsec4_in_reject``: a packet carrying an ACCEL_IN tag is accepted
   without a policy check (the 2024 snapshot; §9); otherwise the inbound
   policy for the packet's selector (ports when a socket is known), else
   net.inet.ipsec.def_policy: DISCARD rejects, BYPASS/NONE accept, IPSEC
   requires, for every ESP request of level "require", the packet to have
   been decrypted (M_DECRYPTED) -- or, with
   net.inet.ipsec.check_policy_history, an IN_DONE record matching the
   request (ipsec_check_history).  A reject counts ips_in_polvio.
6. The extension "nofallback": an SA marked so is never decrypted in
   software (accel.in_nofallback).

Only ESP is modelled; AH and IPComp packets are dropped (ips_in_inval).
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Final, Optional

from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY
from pfkey.spd import key_bbcmp

from .accel_tag import XFORM_HISTORY_LEN
from .esp_encap import esp_input_packet, natt_classify, natt_fix_l4_checksum, udp_decap
from .ipsec_output import _spidx, ipsec_forward_output, packet_selector
from .ipsec_state import M_DECRYPTED, Inpcb, Ipsec, SaCtx
from .mbuf import (
    PACKET_TAG_IPSEC_ACCEL_IN, PACKET_TAG_IPSEC_IN_CRYPTO_DONE,
    PACKET_TAG_IPSEC_IN_DONE, Mbuf, m_freem, m_tag_attach,
)
from .packet import IPPROTO_TCP, IPPROTO_UDP, PacketError
from .xform_esp import EspBadIlen, EspDummy, EspError, EspHdrops, EspNotDb, EspState

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secpolicy

__all__ = [
    "ipsec_input", "ipsec_accel_input", "ipsec_common_input", "udp_ipsec_input",
    "ipsec4_in_reject", "ipsec_in_reject", "ipsec_check_history", "ipsec_forward",
    "CryptoDoneOpener",
]

_ESP: Final = 50
_AH: Final = 51
_IPCOMP: Final = 108
_IN: Final = int(IPSEC_DIR.INBOUND)
_POL_IPSEC: Final = int(IPSEC_POLICY.IPSEC)
_POL_DISCARD: Final = int(IPSEC_POLICY.DISCARD)
_REQUIRE: Final = int(IPSEC_LEVEL.REQUIRE)
_TRANSPORT: Final = int(IPSEC_MODE.TRANSPORT)
_MODE_ANY: Final = int(IPSEC_MODE.ANY)
_ACCEL_IN: Final = PACKET_TAG_IPSEC_ACCEL_IN
_CRYPTO_DONE: Final = PACKET_TAG_IPSEC_IN_CRYPTO_DONE
_IN_DONE: Final = PACKET_TAG_IPSEC_IN_DONE
_DRV_SPI_MIN: Final = 3
_DRV_SPI_MAX: Final = 0xFFFF
_EINPROGRESS: Final = _errno.EINPROGRESS
_ENXIO: Final = _errno.ENXIO


def _find(m: Mbuf, tid: int) -> Any:
    tags = m.tags
    if tags:
        for t in tags:
            if t.m_tag_id == tid and t.m_tag_cookie == 0:
                return t
    return None


# -- 1. ipsec_accel_input -------------------------------------------------------------

def ipsec_accel_input(ipsec: Ipsec, m: Mbuf, off: int, proto: int) -> int:
    """ipsec_accel_input (rule 1): ENXIO (not offloaded), EINPROGRESS
    (dropped) or 0 (permitted)."""
    layer = ipsec.host.offload
    if layer is None:                    # kernel without options IPSEC_OFFLOAD
        return _ENXIO
    t = _find(m, _ACCEL_IN)
    if t is None:
        return _ENXIO
    drv_spi = t.data
    st = ipsec.stats.pcpu().accel
    if drv_spi.__class__ is not int or drv_spi < _DRV_SPI_MIN or drv_spi > _DRV_SPI_MAX:
        st.in_bad_drv_spi += 1
        m_freem(m)
        return _EINPROGRESS
    sav = layer.ipsec_accel_drvspi_to_sa(drv_spi)
    if sav is not None:
        layer.ipsec_accel_sa_recordxfer(sav, m)
        c = ipsec.sactx_map.get(sav)
        if c is not None:
            c.in_packet += 1
    else:
        st.in_unknown_drv_spi += 1
    st.in_packet += 1
    return 0


# -- IPSEC_INPUT ----------------------------------------------------------------------

def ipsec_input(ipsec: Ipsec, m: Mbuf, off: int, proto: int) -> int:
    """IPSEC_INPUT: ipsec4_input / ipsec6_input for a packet addressed to
    this host, ``off`` the upper-layer offset, ``proto`` its protocol."""
    error = ipsec_accel_input(ipsec, m, off, proto)
    if error != _ENXIO and (error or proto != _ESP):
        return error
    # (A NIC-decrypted packet that is itself ESP -- the inner layer of a
    # bundle -- goes on to the ESP protocol handler: software.)
    if proto == _ESP:
        data = m.data
        ipsec_common_input(ipsec, m, off, 9 if data[0] >> 4 == 4 else 6)
        return _EINPROGRESS
    if proto == _AH or proto == _IPCOMP:
        ipsec.stats.pcpu().ipsec.ips_in_inval += 1
        m_freem(m)
        return _EINPROGRESS
    return 0


# -- 2./3. ipsec_common_input + the transform + ipsec4_common_input_cb --------------------

class CryptoDoneOpener:
    """esp_input for a packet the NIC already decrypted (rule 3): replay
    check and update, trailer checks.  Quacks like an EspState for
    :func:`ipsec_accel.esp_encap.esp_input_packet` (which rebuilds the IP
    packet, transport or tunnel)."""

    __slots__ = ("esp",)

    def __init__(self, esp: EspState) -> None:
        self.esp = esp

    def input(self, b: bytes | bytearray) -> tuple[bytes, int, int]:
        esp = self.esp
        n = len(b)
        if n < 8:
            raise EspHdrops(f"ESP packet of {n} bytes")
        spi = int.from_bytes(b[0:4], "big")
        seq = int.from_bytes(b[4:8], "big")
        if spi != esp.spi:
            raise EspNotDb(f"SPI {spi:#010x} is not SA {esp.spi:#010x}", seq=seq)
        hlen, alen = esp.hlen, esp.icvlen
        if n - hlen - alen <= 0:
            raise EspBadIlen("no payload", seq=seq)
        lock = esp._lock
        seqh = 0
        if esp._chk:
            with lock:
                seqh = esp.ipsec_chkreplay(seq)
            if seqh < 0:
                esp._replay_fail(seqh, seq)
        if esp.replay.wsize:
            with lock:
                bad = esp.ipsec_updatereplay(seq)
            if bad:
                esp._replay_fail(-1, seq)
        payload, nxt = esp._trailer_check(bytes(b[hlen:n - alen]), seq)
        return payload, nxt, (seqh << 32 | seq) if esp.esn else seq


def ipsec_common_input(ipsec: Ipsec, m: Mbuf, skip: int, protoff: int) -> int:
    """ipsec_common_input for ESP at offset ``skip`` (rules 2, 3, 6).
    Consumes ``m``; returns 0 or the errno of the drop."""
    st = ipsec.stats.pcpu()
    e = st.esp
    e.esps_input += 1
    if not ipsec.esp_enable:
        e.esps_pdrops += 1
        m_freem(m)
        return _errno.EOPNOTSUPP
    data = m.data
    if data.__class__ is not bytes:
        data = bytes(data)
    if m.len - skip < 8:
        e.esps_hdrops += 1
        m_freem(m)
        return _errno.EINVAL
    spi = int.from_bytes(data[skip:skip + 4], "big")
    dst = data[16:20] if data[0] >> 4 == 4 else data[24:40]
    sav = ipsec.key.key_allocsa(ipsec.dst_sockaddr(dst), _ESP, spi)
    if sav is None:
        e.esps_notdb += 1
        m_freem(m)
        return _errno.ENOENT
    sctx = ipsec.sactx(sav)
    esp = sctx.esp
    if esp is None:
        e.esps_noxform += 1
        m_freem(m)
        return _errno.ENXIO
    crypto_done = _find(m, _CRYPTO_DONE) is not None
    if not crypto_done:
        layer = ipsec.host.offload
        if layer is not None and layer.ipsec_accel_sa_nofallback(sav):
            st.accel.in_nofallback += 1
            m_freem(m)
            return _errno.EACCES
    opener: Any = esp
    if crypto_done:
        opener = sctx.opener
        if opener is None:
            opener = sctx.opener = CryptoDoneOpener(esp)
    try:
        out, nxt, _seq = esp_input_packet(opener, data, ecn=ipsec.ecn)
    except EspDummy:
        m_freem(m)
        return 0
    except EspError as exc:
        e.count(exc)
        m_freem(m)
        return exc.errno or _errno.EINVAL
    except (PacketError, IndexError, ValueError):
        e.esps_hdrops += 1
        m_freem(m)
        return _errno.EINVAL
    e.esps_ibytes += len(out)
    return _input_cb(ipsec, m, sav, sctx, out, nxt, crypto_done)


def _input_cb(ipsec: Ipsec, m: Mbuf, sav: Any, sctx: SaCtx, out: bytes, nxt: int,
              crypto_done: bool) -> int:
    """ipsec4_common_input_cb / ipsec6_common_input_cb."""
    st = ipsec.stats.pcpu()
    if sctx.natt is not None and nxt in (IPPROTO_TCP, IPPROTO_UDP) and \
            sctx.mode != int(IPSEC_MODE.TUNNEL):
        n = sav.natt
        oai = n.oai.address_bytes if n is not None and n.oai is not None else None
        oar = n.oar.address_bytes if n is not None and n.oar is not None else None
        try:
            out = natt_fix_l4_checksum(out, oai, oar) if oai and oar else \
                natt_fix_l4_checksum(out)
        except (PacketError, IndexError, ValueError):
            pass
    m.set_data(out)
    m.m_flags |= M_DECRYPTED
    if m_tag_attach(m, _IN_DONE, XFORM_HISTORY_LEN, sctx.xh, ipsec.tags.done_zone) is None:
        st.esp.esps_hdrops += 1
        m_freem(m)
        return _errno.ENOMEM
    ipsec.key.key_sa_recordxfer(sav, m.len)
    if crypto_done:
        sctx.in_crypto += 1
        st.accel.in_crypto += 1
    else:
        sctx.in_sw += 1
        st.accel.in_sw += 1
    # netisr_queue_src(NETISR_IP, ...): back into ip_input.
    ipsec.ip.netisr_input(m)
    return 0


def udp_ipsec_input(ipsec: Ipsec, m: Mbuf, off: int) -> bool:
    """udp_ipsec_input (rule 4) for a UDP packet at ``off`` to a NAT-T port:
    True when it was ESP (consumed), False when it is for the socket (IKE,
    keepalive)."""
    data = m.data
    if data.__class__ is not bytes:
        data = bytes(data)
    if natt_classify(data[off + 8:]) != "esp":
        return False
    try:
        plain = udp_decap(data)
    except (PacketError, IndexError, ValueError):
        return False
    if plain is None:
        return False
    ipsec.stats.pcpu().accel.in_natt += 1
    m.set_data(plain)
    ipsec_common_input(ipsec, m, off, 9 if data[0] >> 4 == 4 else 6)
    return True


# -- 5. inbound policy ----------------------------------------------------------------------

def ipsec_check_history(m: Mbuf, sp: "secpolicy", idx: int) -> int:
    """ipsec_check_history: 0 when an IN_DONE record matches request ``idx``
    (proto, mode -- ANY matches --, destination: the policy's prefix for
    transport requests, the request's endpoint for tunnel ones), else 1."""
    isr = sp.req[idx]
    tags = m.tags
    if not tags:
        return 1
    for t in tags:
        if t.m_tag_id != _IN_DONE or t.m_tag_cookie != 0:
            continue
        xh = t.data
        if xh.proto != isr.saidx.proto:
            continue
        if xh.mode != isr.saidx.mode and xh.mode != _MODE_ANY:
            continue
        xd = xh.dst
        if isr.saidx.mode == _TRANSPORT:
            pd = sp.spidx.dst
            if xd.family != pd.family or not key_bbcmp(
                    bytes(xd.address_bytes), bytes(pd.address_bytes), sp.spidx.prefd):
                continue
        else:
            rd = isr.saidx.dst
            if xd.family != rd.family or bytes(xd.address_bytes) != bytes(rd.address_bytes):
                continue
        return 0
    return 1


def ipsec_in_reject(ipsec: Ipsec, policy: int, sp: Optional["secpolicy"], m: Mbuf) -> int:
    """ipsec_in_reject: 1 when ``m`` violates the policy, else 0."""
    if policy == _POL_DISCARD:
        return 1
    if policy != _POL_IPSEC or sp is None:
        return 0
    for i, isr in enumerate(sp.req):
        if isr.saidx.proto == _IPCOMP or ipsec.reqlevel(sp, i) != _REQUIRE:
            continue
        if ipsec.check_policy_history:
            if ipsec_check_history(m, sp, i):
                return 1
        elif isr.saidx.proto == _ESP:
            if not m.m_flags & M_DECRYPTED:
                return 1
        elif isr.saidx.proto == _AH:
            return 1                    # AH is not modelled: never authenticated
    return 0


def ipsec4_in_reject(ipsec: Ipsec, m: Mbuf, inp: Optional[Inpcb] = None) -> int:
    """ipsec4_in_reject / ipsec6_in_reject (rule 5)."""
    if _find(m, _ACCEL_IN) is not None:
        return 0
    key = ipsec.key
    sp = None
    if len(key.sptree[_IN]):
        fkey = packet_selector(m.data, inp is not None, _IN)
        sp = ipsec.lookup_policy(_IN, fkey, lambda: _spidx(fkey))
    policy = sp.policy if sp is not None else ipsec.def_policy
    result = ipsec_in_reject(ipsec, policy, sp, m)
    if result:
        ipsec.stats.pcpu().ipsec.ips_in_polvio += 1
    return result


def ipsec_forward(ipsec: Ipsec, m: Mbuf) -> int:
    """ipsec4_forward / ipsec6_forward: a packet with an active inbound
    policy it violates is dropped (EACCES); then IPsec output without an ifp
    (never offloaded).  Returns like ipsec_output."""
    if ipsec4_in_reject(ipsec, m, None):
        m_freem(m)
        return _errno.EACCES
    return ipsec_forward_output(ipsec, m)
