"""IPsec output: ``sys/netipsec/ipsec_output.c`` (2024, with IPSEC_OFFLOAD)
and ``ipsec_accel_output`` of ``ipsec_offload.c``, on a
:class:`ipsec_accel.ipsec_state.Ipsec`.

ip_output (:mod:`ipsec_accel.ip`) calls :func:`ipsec_output` once the route
(``ifp``, ``mtu``) is known -- FreeBSD's ``IPSEC_OUTPUT(ipv4, ifp, m, inp,
mtu)``; forwarding calls :func:`ipsec_forward_output` with no ifp.  Return
values are FreeBSD's: 0 (no IPsec, or offloaded / BYPASS-tagged: ip_output
transmits ``m`` itself), EINPROGRESS (consumed: software ESP sent it through
ip_output again, or it was dropped silently), another errno (dropped).

The rules, in FreeBSD's order:

1. A packet carrying a PACKET_TAG_IPSEC_OUT_DONE tag was processed already
   (resubmitted by ipsec_process_done): no IPsec (ipsec4_output).
2. ipsec4_checkpolicy: no global policy for the direction -> the default
   policy (net.inet.ipsec.def_policy, NONE); else key_allocsp on the packet's
   selector (addresses /32 or /128, upper protocol; ports only when the
   packet comes from a socket, ipsec4_get_ulp's ``needport``).  DISCARD ->
   EACCES (ips_out_polvio); BYPASS / NONE -> no IPsec; IPSEC -> requests.
3. ipsec4_allocsa per request: ESP disabled (net.inet.esp.esp_enable=0) ->
   EHOSTUNREACH (esps_pdrops); transport requests take missing endpoints from
   the packet; key_allocsa_policy (ACQUIRE when there is none:
   ips_out_nosa).  No SA and level "use": the next bundled request, or
   EJUSTRETURN -- then ``ipsec_accel_output(.., sav=NULL)`` tags BYPASS on
   any interface and the packet goes out in clear.  No SA and level
   "require": dropped (ips_out_inval), EINPROGRESS with ACQUIRE sent.
4. ``ipsec_accel_output`` (packet offload, the ifnet's mode ``packet``):
   no ifp (forwarded) -> no; a HANDLED handle of this SA on exactly this
   ifnet with IFCAP2_IPSEC_OFFLOAD on; unless TSO (CSUM_TSO): ``len +
   hdr_ext_size <= mtu`` and the exact ESP size ``skip + hlen + rlen +
   padding + alen <= mtu`` (§8.4); the OUT tag by the host's tag strategy
   (allocation failure: software); SW-offl accounting
   (``ipsec_accel_sa_recordxfer``: accel_lft_sw, not lft_c); ``if_hwassist``
   (after the references are dropped); TF2_IPSEC_TSO on a TCP inpcb set iff
   offloaded and hwassist has TSO bits, cleared otherwise.  Offloaded ->
   EJUSTRETURN: the remaining bundled requests are skipped (§17.17); the
   caller computes delayed checksums the NIC will not (``CSUM_DELAY_DATA &
   ~hwassist``).
5. Crypto offload (the ifnet's mode ``crypto``; model, Linux
   XFRM_DEV_OFFLOAD_CRYPTO): the same handle and size rules, an AEAD SA and a
   one-request policy (XFRM_MAX_OFFLOAD_DEPTH 1); the stack runs esp_output's
   framing with the SA's own counters (sequence, IV, padding) but leaves the
   payload clear and the ICV zero, tags PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED
   (drv_spi, or (drv_spi, seq_hi) with ESN) and transmits on that ifnet; the
   NIC encrypts.  Accounting is the software path's (key_sa_recordxfer).
6. Otherwise software: the extension "nofallback" drops instead
   (:data:`accel.out_nofallback`); delayed checksums; tunnel encapsulation
   when the request is tunnel mode or the SA's destination differs from the
   packet's (ipsec4_perform_request); esp_output (esps_output, esps_obytes,
   the algorithm histogram; esps_toobig / esps_wrap drops);
   ipsec_process_done: an SA that became DEAD meanwhile -> ESRCH (§17.12),
   the OUT_DONE tag (xform_history), key_sa_recordxfer with the ESP packet's
   length, the next bundled request (ips_out_bundlesa; never offloaded:
   FreeBSD passes no ifp), NAT-T UDP encapsulation, ip_output again.

Only ESP transforms are modelled: an AH or IPComp request drops the packet
(ips_out_inval, accel.out_noxform).

Fast path (model; ``net.inet.ipsec.offload.fastpath``, see
:mod:`ipsec_accel.ipsec_state`): for a packet from a socket whose header is
plain (IPv4 without options, not a fragment; or IPv6 with TCP/UDP right
after the fixed header) and TCP or UDP, the addresses and ports look up the
flow's :class:`ipsec_accel.ipsec_state.FastOut`.  When the SPD and SAD
generations, the interface and MTU are the memo's, the SA's handle list is
the same object, the handle is HANDLED, IFCAP2_IPSEC_OFFLOAD is on and the
packet is within the memo's size limit (or TSO), the packet gets exactly
what rules 2-4 would give it -- the policy's lastused, the OUT tag, SW-offl
accounting, if_hwassist, TF2_IPSEC_TSO, the counters, the delayed
checksums -- without running them; a failed tag allocation falls back to
software as rule 4 does.  Anything else takes the full path, which
memoises the decision when it offloads the flow's first request.
"""

from __future__ import annotations

import errno as _errno
import struct
from typing import TYPE_CHECKING, Any, Final, Optional

from pfkey.extensions import Sockaddr
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY
from pfkey.keydb import DEAD
from pfkey.spd import SecPolicyIndex

from .accel_tag import CRYPTO_NEEDED_TAG_LEN, IPSEC_ACCEL_DRV_SPI_BYPASS, OUT_DONE_TAG_LEN
from .esp_encap import esp_transport_output, esp_tunnel_output, udp_encap
from .ifnet import IFCAP2_IPSEC_OFFLOAD_MASK
from .ipsec_offload_defs import IFP_HS_HANDLED, IFP_HS_REJECTED
from .ipsec_state import MODE_CRYPTO, MODE_PACKET, TF2_IPSEC_TSO, FastOut, Inpcb, Ipsec, SaCtx
from .mbuf import (
    CSUM_DELAY_DATA, CSUM_DELAY_DATA_IPV6, CSUM_IP6_TCP, CSUM_IP6_TSO, CSUM_IP6_UDP, CSUM_TCP,
    CSUM_TSO, CSUM_UDP, PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED,
    PACKET_TAG_IPSEC_OUT_DONE, Mbuf, m_freem, m_tag_attach,
)
from .packet import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketError, ipv6_upper_layer, \
    l4_checksum
from .xform_esp import IP_MAXPACKET, M32, EspError, EspState, EspTooBig
from .xform import auth_algorithm_lookup, enc_algorithm_lookup, xform_ah_authsize
from .xform_esp import esp_pad_block

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secasvar, secpolicy

__all__ = [
    "ipsec_output", "ipsec_forward_output", "ipsec_checkpolicy", "ipsec_allocsa",
    "ipsec_perform_request", "ipsec_accel_output", "ipsec_accel_fits", "esp_output",
    "ipsec_process_done", "in_delayed_cksum", "CryptoFramer", "packet_selector",
    "EJUSTRETURN", "IP_RAWOUTPUT",
]

#: sys/errno.h: "don't modify regs, just return" -- IPsec's "send it yourself".
EJUSTRETURN: Final = -2
#: ip_output flag: the header is complete (ipsec_process_done's resubmission).
IP_RAWOUTPUT: Final = 0x2

_OUT: Final = int(IPSEC_DIR.OUTBOUND)
_POL_IPSEC: Final = int(IPSEC_POLICY.IPSEC)
_POL_DISCARD: Final = int(IPSEC_POLICY.DISCARD)
_REQUIRE: Final = int(IPSEC_LEVEL.REQUIRE)
_TRANSPORT: Final = int(IPSEC_MODE.TRANSPORT)
_TUNNEL: Final = int(IPSEC_MODE.TUNNEL)
_ESP: Final = 50
_OUT_DONE: Final = PACKET_TAG_IPSEC_OUT_DONE
_CRYPTO_NEEDED: Final = PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED
_BYPASS: Final = IPSEC_ACCEL_DRV_SPI_BYPASS
_TSO_BITS: Final = CSUM_TSO | CSUM_IP6_TSO
_HDR: Final = struct.Struct("!II")
_Q: Final = struct.Struct("!Q")
_ULPROTO_ANY: Final = 255
_EINPROGRESS: Final = _errno.EINPROGRESS
_EXT_OLD: Final = 0x0001
_HR: Final = IFP_HS_HANDLED | IFP_HS_REJECTED
_HANDLED: Final = IFP_HS_HANDLED
_CAP_MASK: Final = IFCAP2_IPSEC_OFFLOAD_MASK


# -- per-SA constants of ipsec_accel_output_pad -----------------------------------------

def _pad_consts(sav: "secasvar") -> Optional[tuple[int, int, int]]:
    """(hlen, blks, alen) of ipsec_accel_output_pad for ``sav``: the header
    and IV, the padding block (net.inet.esp.ctr_compatibility on) and
    xform_ah_authsize of the SA's auth transform -- FreeBSD's formula."""
    enc = enc_algorithm_lookup(int(sav.alg_enc))
    if enc is None:
        return None
    auth = auth_algorithm_lookup(int(sav.alg_auth)) if sav.alg_auth else None
    hlen = (4 if sav.flags & _EXT_OLD else 8) + enc.esp_ivlen
    return hlen, esp_pad_block(enc, True), xform_ah_authsize(auth)


_PAD: dict[Any, Optional[tuple[int, int, int]]] = {}


def _pad_of(sav: "secasvar") -> Optional[tuple[int, int, int]]:
    k = (sav.alg_enc, sav.alg_auth, sav.flags & _EXT_OLD)
    pc = _PAD.get(k, 0)
    if pc == 0:
        pc = _PAD[k] = _pad_consts(sav)
    return pc  # type: ignore[return-value]  # never the 0 default: filled above


def _fits_len(n: int, skip: int, pad: tuple[int, int, int], hdr_ext_size: int,
              mtu: int) -> bool:
    """ipsec_accel_output's two size checks for a non-TSO packet of ``n``
    bytes with a ``skip``-byte IP header (see :func:`ipsec_accel_fits`)."""
    if n + hdr_ext_size > mtu:
        return False
    hlen, blks, alen = pad
    rlen = n - skip
    padding = ((blks - ((rlen + 2) % blks)) % blks) + 2
    return skip + hlen + rlen + padding + alen <= mtu


def ipsec_accel_fits(h: Any, m: Mbuf, sav: "secasvar", v6: bool, mtu: int,
                     pad: Optional[tuple[int, int, int]] = None) -> bool:
    """Step 4 of ipsec_accel_output: a TSO packet always fits; otherwise
    ``pkthdr.len + hdr_ext_size <= mtu`` and ipsec_accel_output_pad (skip =
    the IPv4 header length, 40 for IPv6).  ``pad``: the SA's constants
    (:func:`_pad_consts`), looked up when not given."""
    if m.csum_flags & CSUM_TSO:
        return True
    if pad is None:
        pad = _pad_of(sav)
        if pad is None:
            return False
    return _fits_len(m.len, 40 if v6 else (m.data[0] & 0x0F) << 2, pad, h.hdr_ext_size, mtu)


# -- the SPD selector (ipsec4_setspidx_ipaddr + ipsec4_get_ulp, IPv6 alike) ---------------

def packet_selector(data: bytes | bytearray | memoryview, needport: bool,
                    dir: int) -> tuple[Any, ...]:
    """The fields key_allocsp compares, as a hashable key:
    (dir, src, dst, ul_proto, sport, dport).  (Hashable when ``data`` is:
    bytes, or a read-only memoryview, as an mbuf's data is on these paths.)"""
    if data[0] >> 4 == 4:
        src = data[12:16]
        dst = data[16:20]
        if (data[6] & 0x3F) or data[7]:          # MF or an offset: a fragment
            return (dir, src, dst, _ULPROTO_ANY, 0, 0)
        proto = data[9]
        off = (data[0] & 0x0F) << 2
        if proto == IPPROTO_TCP or proto == IPPROTO_UDP:
            if not needport:
                return (dir, src, dst, proto, 0, 0)
            if off + (20 if proto == IPPROTO_TCP else 8) > len(data):
                return (dir, src, dst, _ULPROTO_ANY, 0, 0)
            return (dir, src, dst, proto, (data[off] << 8) | data[off + 1],
                    (data[off + 2] << 8) | data[off + 3])
        return (dir, src, dst, proto, 0, 0)
    src = data[8:24]
    dst = data[24:40]
    try:
        nxt, off, _ = ipv6_upper_layer(data, data[6])
    except (PacketError, IndexError):
        return (dir, src, dst, _ULPROTO_ANY, 0, 0)
    if nxt == IPPROTO_TCP or nxt == IPPROTO_UDP:
        if not needport or off + (20 if nxt == IPPROTO_TCP else 8) > len(data):
            return (dir, src, dst, nxt, 0, 0)
        return (dir, src, dst, nxt, (data[off] << 8) | data[off + 1],
                (data[off + 2] << 8) | data[off + 3])
    if nxt == IPPROTO_ICMPV6:
        # ipsec6_get_ulp: ICMPv6 type and code go in the port fields, always.
        if off + 4 > len(data):
            return (dir, src, dst, nxt, 0, 0)
        return (dir, src, dst, nxt, data[off], data[off + 1])
    return (dir, src, dst, nxt, 0, 0)


def _spidx(fkey: tuple[Any, ...]) -> SecPolicyIndex:
    dir, src, dst, ul, sport, dport = fkey
    if len(src) == 4:
        return SecPolicyIndex(dir, Sockaddr.inet(src, sport), Sockaddr.inet(dst, dport), 32,
                              32, ul)
    return SecPolicyIndex(dir, Sockaddr.inet6(src, sport), Sockaddr.inet6(dst, dport), 128,
                          128, ul)


def ipsec_checkpolicy(ipsec: Ipsec, data: bytes | bytearray | memoryview, inp: Optional[Inpcb],
                      dir: int = _OUT) -> tuple[Optional["secpolicy"], int, int]:
    """ipsec4_checkpolicy / ipsec4_getpolicy (+ ipsec_checkpolicy):
    (sp, policy, error).  ``sp`` None with error 0 = no IPsec, error
    -EINVAL = discarded by policy.  ``policy`` is the policy's action."""
    key = ipsec.key
    sp = None
    if len(key.sptree[dir]):                                  # key_havesp
        fkey = packet_selector(data, inp is not None, dir)
        sp = ipsec.lookup_policy(dir, fkey, lambda: _spidx(fkey))
    if sp is None:
        pol = ipsec.def_policy                                # key_allocsp_default
        if pol == _POL_DISCARD:
            return None, pol, -_errno.EINVAL
        return None, pol, 0
    pol = sp.policy
    if pol == _POL_IPSEC:
        if not sp.req:
            return None, pol, -_errno.EINVAL
        return sp, pol, 0
    if pol == _POL_DISCARD:
        return None, pol, -_errno.EINVAL
    return None, pol, 0                                       # BYPASS, NONE (ENTRUST)


# -- output ------------------------------------------------------------------------

def ipsec_output(ipsec: Ipsec, ifp: Any, m: Mbuf, inp: Optional[Inpcb], mtu: int) -> int:
    """IPSEC_OUTPUT: ipsec4_output / ipsec6_output (module docstring)."""
    tags = m.tags
    if tags:
        for t in tags:
            if t.m_tag_id == _OUT_DONE and t.m_tag_cookie == 0:
                return 0
    fast = ipsec.fast
    if fast is None or inp is None or ifp is None:
        return _common_output(ipsec, ifp, m, inp, mtu)
    key = ipsec.key
    if not fast and not len(key.sptree[_OUT]):
        return _common_output(ipsec, ifp, m, inp, mtu)
    # The fast path (module docstring, "Fast path"): the selector's bytes
    # (addresses and ports of an unfragmented IPv4 packet without options,
    # or of an IPv6 packet whose next header is TCP or UDP) find the flow's
    # memoised packet-offload decision.
    data = m.data
    n = m.len
    if data.__class__ is not bytes or n < 28:
        return _common_output(ipsec, ifp, m, inp, mtu)
    b0 = data[0]
    if b0 == 0x45:
        if (data[6] & 0x3F) or data[7]:
            return _common_output(ipsec, ifp, m, inp, mtu)
        k = data[12:24]
        p = data[9]
    elif b0 >> 4 == 6:
        k = data[8:44]
        p = data[6]
    else:
        return _common_output(ipsec, ifp, m, inp, mtu)
    if p != IPPROTO_UDP and p != IPPROTO_TCP:
        return _common_output(ipsec, ifp, m, inp, mtu)
    e = fast.get(k)
    if e is None or e.ifp is not ifp or e.proto != p or e.spgen != key.sp_genid \
            or e.sadgen != key.sad_genid or e.mtu != mtu or n < e.minlen:
        return _common_output(ipsec, ifp, m, inp, mtu,
                              (fast, k, p, key.sp_genid, key.sad_genid))
    h = e.h
    sav = e.sav
    if sav.accel_ifps is not e.ifps or (h.flags & _HR) != _HANDLED \
            or not ifp.if_capenable2 & _CAP_MASK \
            or (n > e.maxlen and not m.csum_flags & CSUM_TSO):
        return _common_output(ipsec, ifp, m, inp, mtu,
                              (fast, k, p, key.sp_genid, key.sad_genid))
    # What the full path does for this packet, in its order: key_allocsp's
    # lastused, the tag, SW-offl accounting, if_hwassist, the counters.
    sp = e.sp
    now = key.clock.now()
    if sp.lastused != now:
        sp.lastused = now
    try:
        st = ipsec.stats.tls.s
    except AttributeError:
        st = ipsec.stats.pcpu()
    if not ipsec.tags.attach(m, ifp, e.drv_spi, h):
        st.accel.out_tag_nomem += 1
        _tcp_flag(inp, False, 0)
        error = _software_output(ipsec, m, sp, sav, e.sctx, 0)
        return 0 if error == EJUSTRETURN else (_EINPROGRESS if error == 0 else error)
    a = st.accel
    if m.csum_flags & CSUM_TSO:
        a.out_tso += 1
    off = e.off
    off.ipsec_accel_sa_recordxfer(sav, m)
    hw = off.ipsec_accel_hwassist(h, sav)
    if inp.inp_ip_p == IPPROTO_TCP:
        _tcp_flag(inp, True, hw)
    e.sctx.out_packet += 1
    a.out_packet += 1
    if m.csum_flags & (CSUM_DELAY_DATA | CSUM_DELAY_DATA_IPV6) & ~hw:
        in_delayed_cksum(m, ~hw)
    return 0


def _fast_fill(ipsec: Ipsec, fill: tuple[Any, ...], ifp: Any, m: Mbuf, sp: "secpolicy",
               sav: "secasvar", sctx: SaCtx, mtu: int) -> None:
    """Memoise the full path's packet-offload decision for this flow (only
    when it offloaded the flow's first request)."""
    fast, k, p, spgen, sadgen = fill
    off = ipsec.host.offload
    pad = sctx.pad
    if off is None or pad is None:
        return
    h = off.ipsec_accel_sav_handle(sav, ifp)
    if h is None:
        return
    v6 = len(k) == 36
    skip = 40 if v6 else 20
    minlen = skip + (20 if p == IPPROTO_TCP else 8)
    maxlen = mtu - h.hdr_ext_size
    while maxlen >= minlen and not _fits_len(maxlen, skip, pad, h.hdr_ext_size, mtu):
        maxlen -= 1
    if maxlen < minlen:
        return
    if len(fast) >= ipsec.flow_cache_max:
        fast.clear()
    fast[k] = FastOut(ifp, p, minlen, mtu, maxlen, spgen, sadgen, sp, sav, sctx, h, off)


def ipsec_forward_output(ipsec: Ipsec, m: Mbuf) -> int:
    """The output half of ipsec4_forward (the inbound check is
    :func:`ipsec_accel.ipsec_input.ipsec4_in_reject`): no ifp, no inpcb --
    a forwarded packet is never offloaded (§8.1, XXXKIB)."""
    return _common_output(ipsec, None, m, None, 0)


def _common_output(ipsec: Ipsec, ifp: Any, m: Mbuf, inp: Optional[Inpcb], mtu: int,
                   fill: Optional[tuple[Any, ...]] = None) -> int:
    """ipsec4_common_output (the delayed checksums are done where the
    packet's fate is known: before software ESP, or for the bits the NIC
    will not do)."""
    sp, _pol, error = ipsec_checkpolicy(ipsec, m.data, inp, _OUT)
    if sp is None:
        if error == -_errno.EINVAL:
            ipsec.stats.pcpu().ipsec.ips_out_polvio += 1
            m_freem(m)
            return _errno.EACCES
        return 0
    error = ipsec_perform_request(ipsec, ifp, m, sp, inp, 0, mtu, fill)
    if error == EJUSTRETURN:
        return 0
    if error == 0:
        return _EINPROGRESS
    return error


def ipsec_allocsa(ipsec: Ipsec, m: Mbuf, sp: "secpolicy",
                  idx: int) -> tuple[Optional["secasvar"], int, int]:
    """ipsec4_allocsa / ipsec6_allocsa: (sav, idx, error) for request
    ``idx`` (moving on to the next bundled request when a "use" request has
    no SA).  error EJUSTRETURN: nothing required, send in clear."""
    tcount = len(sp.req)
    while True:
        isr = sp.req[idx]
        proto = isr.saidx.proto
        if proto == _ESP and not ipsec.esp_enable:
            ipsec.stats.pcpu().esp.esps_pdrops += 1
            return None, idx, _errno.EHOSTUNREACH
        if isr.saidx.mode == _TRANSPORT:
            # allocsa_policy keys its memo on src/dst, so they must hash: the
            # packet is bytes (or a read-only memoryview, which hashes and
            # compares as bytes) -- a narrowing mypy cannot see on Mbuf.data.
            data: bytes = m.data  # type: ignore[assignment]
            if data[0] >> 4 == 4:
                src, dst = data[12:16], data[16:20]
            else:
                src, dst = data[8:24], data[24:40]
            sav, error = ipsec.allocsa_policy(sp, idx, isr, src, dst)
        else:
            sav, error = ipsec.allocsa_policy(sp, idx, isr, None, None)
        if sav is not None:
            return sav, idx, 0
        ipsec.stats.pcpu().ipsec.ips_out_nosa += 1
        if error:
            return None, idx, error
        if ipsec.reqlevel(sp, idx) != _REQUIRE:
            idx += 1
            if idx < tcount:
                continue
            return None, idx, EJUSTRETURN
        return None, idx, 0


def _tcp_flag(inp: Optional[Inpcb], res: bool, hwassist: int) -> None:
    # ipsec_accel_output's "out:" label.
    if inp is not None and inp.inp_ip_p == IPPROTO_TCP:
        if res and hwassist & _TSO_BITS:
            inp.t_flags2 |= TF2_IPSEC_TSO
        else:
            inp.t_flags2 &= ~TF2_IPSEC_TSO


def ipsec_accel_output(ipsec: Ipsec, ifp: Any, m: Mbuf, inp: Optional[Inpcb],
                       sp: Optional["secpolicy"], sav: Optional["secasvar"],
                       mtu: int, sctx: Optional[SaCtx] = None) -> int:
    """ipsec_accel_output: the packet offload decision (module docstring,
    rule 4; freebsd_ipsec_offload.md §8).  Returns the hwassist bits
    (>= 0) when the packet was tagged for the NIC, -1 when not.  ``sctx``
    (the SA's datapath state) only saves a lookup."""
    if ifp is None:
        return -1
    off = ipsec.host.offload
    if off is None:                     # kernel without options IPSEC_OFFLOAD
        return -1
    res = False
    hwassist = 0
    if sav is None:
        # Level "use" without an SA: BYPASS on any interface, result ignored.
        ipsec.tags.attach(m, ifp, _BYPASS, None)
        ipsec.stats.pcpu().accel.out_bypass += 1
        _tcp_flag(inp, False, 0)
        return -1
    h = off.ipsec_accel_sav_handle(sav, ifp)
    if h is not None:
        if not ipsec_accel_fits(h, m, sav, m.data[0] >> 4 == 6, mtu,
                                sctx.pad if sctx is not None else None):
            ipsec.stats.pcpu().accel.out_too_big += 1
        elif not ipsec.tags.attach(m, ifp, h.drv_spi, h):
            ipsec.stats.pcpu().accel.out_tag_nomem += 1
        else:
            if m.csum_flags & CSUM_TSO:
                ipsec.stats.pcpu().accel.out_tso += 1
            off.ipsec_accel_sa_recordxfer(sav, m)
            # key_freesav / key_freesp here in FreeBSD; hwassist asked after.
            hwassist = off.ipsec_accel_hwassist(h, sav)
            res = True
    if inp is not None and inp.inp_ip_p == IPPROTO_TCP:
        _tcp_flag(inp, res, hwassist)
    return hwassist if res else -1


def ipsec_perform_request(ipsec: Ipsec, ifp: Any, m: Mbuf, sp: "secpolicy",
                          inp: Optional[Inpcb], idx: int, mtu: int,
                          fill: Optional[tuple[Any, ...]] = None) -> int:
    """ipsec4_perform_request / ipsec6_perform_request: 0 (consumed),
    EJUSTRETURN (send ``m`` yourself) or an errno (``m`` freed).  ``fill``:
    the fast path's key for this flow (memoise an offload decision)."""
    sav, idx, error = ipsec_allocsa(ipsec, m, sp, idx)
    if sav is None:
        if error == EJUSTRETURN:
            ipsec_accel_output(ipsec, ifp, m, inp, sp, None, mtu)
            return EJUSTRETURN
        ipsec.stats.pcpu().ipsec.ips_out_inval += 1
        m_freem(m)
        return error
    if sp.req[idx].saidx.proto != _ESP:
        s = ipsec.stats.pcpu()
        s.ipsec.ips_out_inval += 1
        s.accel.out_noxform += 1
        m_freem(m)
        return _errno.EOPNOTSUPP
    sctx = ipsec.sactx(sav)
    if sctx.esp is None:
        s = ipsec.stats.pcpu()
        s.esp.esps_noxform += 1
        s.ipsec.ips_out_inval += 1
        m_freem(m)
        return _errno.ENXIO
    crypto = None
    if ifp is not None:
        mode = ipsec._ifmode.get(ifp, 0)
        if mode == 0:
            mode = ipsec.ifp_mode(ifp)
        if mode == MODE_PACKET:
            hw = ipsec_accel_output(ipsec, ifp, m, inp, sp, sav, mtu, sctx)
            if hw >= 0:
                sctx.out_packet += 1
                ipsec.stats.pcpu().accel.out_packet += 1
                if m.csum_flags & (CSUM_DELAY_DATA | CSUM_DELAY_DATA_IPV6) & ~hw:
                    in_delayed_cksum(m, ~hw)
                if fill is not None and idx == 0:
                    _fast_fill(ipsec, fill, ifp, m, sp, sav, sctx, mtu)
                return EJUSTRETURN
        elif mode == MODE_CRYPTO:
            crypto = _crypto_choice(ipsec, ifp, m, sp, sav, sctx, mtu)
            _tcp_flag(inp, False, 0)
        else:
            _tcp_flag(inp, False, 0)
    if crypto is not None:
        return esp_output(ipsec, m, sp, sav, sctx, idx, crypto)
    return _software_output(ipsec, m, sp, sav, sctx, idx)


def _software_output(ipsec: Ipsec, m: Mbuf, sp: "secpolicy", sav: "secasvar", sctx: SaCtx,
                     idx: int) -> int:
    """Not offloaded: the "nofallback" extension's drop, else software ESP."""
    off = ipsec.host.offload
    if off is not None and off.ipsec_accel_sa_nofallback(sav):
        ipsec.stats.pcpu().accel.out_nofallback += 1
        m_freem(m)
        return _errno.EHOSTUNREACH
    return esp_output(ipsec, m, sp, sav, sctx, idx)


def _crypto_choice(ipsec: Ipsec, ifp: Any, m: Mbuf, sp: "secpolicy", sav: "secasvar",
                   sctx: SaCtx, mtu: int) -> Optional[tuple[Any, int]]:
    """Crypto offload (rule 5): (ifp, drv_spi) or None."""
    off = ipsec.host.offload
    if off is None or not sctx.crypto_ok or len(sp.req) != 1:
        return None
    h = off.ipsec_accel_sav_handle(sav, ifp)
    if h is None:
        return None
    if not ipsec_accel_fits(h, m, sav, m.data[0] >> 4 == 6, mtu, sctx.pad):
        ipsec.stats.pcpu().accel.out_too_big += 1
        return None
    return ifp, h.drv_spi


# -- esp_output + ipsec_process_done ------------------------------------------------

class CryptoFramer:
    """What esp_output does before the crypto layer runs, for crypto offload:
    SPI, sequence, IV, payload, padding, pad length and next header, the ICV
    left as zeros -- the SA's own rules (its trailer table, its counters).
    Quacks like an EspState for the whole-packet helpers of
    :mod:`ipsec_accel.esp_encap`, which always pass ``seq`` and ``iv``."""

    __slots__ = ("esp", "spi", "hlen", "icv", "blkmask")

    def __init__(self, esp: EspState) -> None:
        self.esp = esp
        self.spi = esp.spi
        self.hlen = esp.hlen
        self.icv = bytes(esp.icvlen)
        self.blkmask = esp.blkmask

    def output(self, payload: bytes | bytearray, nxt: int, *, seq: Optional[int] = None,
               iv: Optional[bytes] = None, skip: int = 20) -> bytes:
        assert seq is not None and iv is not None
        rlen = len(payload)
        padlen = -(rlen + 2) & self.blkmask
        if skip + self.hlen + rlen + padlen + 2 + len(self.icv) > IP_MAXPACKET:
            raise EspTooBig(f"packet in SA {self.spi:#010x} got too big")
        return b"".join((_HDR.pack(self.spi, seq & M32), iv, payload,
                         self.esp._trailer(padlen, nxt), self.icv))


def esp_output(ipsec: Ipsec, m: Mbuf, sp: "secpolicy", sav: "secasvar", sctx: SaCtx, idx: int,
               crypto: Optional[tuple[Any, int]] = None) -> int:
    """Encapsulation (tunnel) + esp_output for request ``idx``; then
    :func:`ipsec_process_done`.  With ``crypto`` = (ifp, drv_spi) the
    payload stays clear for the NIC (rule 5)."""
    if m.csum_flags & (CSUM_DELAY_DATA | CSUM_DELAY_DATA_IPV6):
        in_delayed_cksum(m, -1)
    data = m.data
    if data.__class__ is not bytes:
        data = bytes(data)
    v6 = data[0] >> 4 == 6
    pdst = data[24:40] if v6 else data[16:20]
    esp = sctx.esp
    assert esp is not None
    st = ipsec.stats.pcpu()
    sdst = sctx.dst
    tunnel = sp.req[idx].saidx.mode == _TUNNEL or (
        sdst and (len(sdst) != len(pdst) or (sdst != pdst and any(sdst))))
    seq_hi = 0
    try:
        if crypto is None:
            if tunnel:
                out = esp_tunnel_output(esp, data, sctx.src, sdst, ident=ipsec.ip.next_ident(),
                                        dfbit=ipsec.dfbit, ecn=ipsec.ecn)
            else:
                out = esp_transport_output(esp, data)
        else:
            seq = esp._next_seq()
            seq_hi = seq >> 32
            iv = _Q.pack(next(esp._cntrgen))
            fr = sctx.framer
            if fr is None:
                fr = sctx.framer = CryptoFramer(esp)
            if tunnel:
                out = esp_tunnel_output(fr, data, sctx.src, sdst, ident=ipsec.ip.next_ident(),
                                        dfbit=ipsec.dfbit, ecn=ipsec.ecn, seq=seq,
                                        iv=iv)
            else:
                out = esp_transport_output(fr, data, seq=seq, iv=iv)
    except EspError as exc:
        st.esp.count(exc)
        st.esp.esps_output += 1
        m_freem(m)
        return exc.errno or _errno.EINVAL
    except (PacketError, IndexError, ValueError):
        st.ipsec.ips_out_inval += 1
        m_freem(m)
        return _errno.EINVAL
    e = st.esp
    e.esps_output += 1
    e.esps_obytes += len(data) - (0 if tunnel else (40 if v6 else (data[0] & 0x0F) << 2))
    e.esps_hist[esp.alg_enc] += 1
    m.set_data(out)
    return ipsec_process_done(ipsec, m, sp, sav, sctx, idx, crypto, seq_hi)


def ipsec_process_done(ipsec: Ipsec, m: Mbuf, sp: "secpolicy", sav: "secasvar",
                       sctx: Optional[SaCtx] = None, idx: int = 0,
                       crypto: Optional[tuple[Any, int]] = None, seq_hi: int = 0) -> int:
    """ipsec_process_done (module docstring, rule 6)."""
    st = ipsec.stats.pcpu()
    if sav.state >= DEAD:
        # The SA died while its packet was being processed (async crypto in
        # FreeBSD): drop with ESRCH rather than send under a dead SA.
        st.accel.out_dead_sa += 1
        m_freem(m)
        return _errno.ESRCH
    if sctx is None:
        sctx = ipsec.sactx(sav)
    tags = ipsec.tags
    if m_tag_attach(m, _OUT_DONE, OUT_DONE_TAG_LEN, sctx.outdone, tags.done_zone) is None:
        st.ipsec.ips_out_nomem += 1
        m_freem(m)
        return _errno.ENOMEM
    ipsec.key.key_sa_recordxfer(sav, m.len)
    idx += 1
    if idx < len(sp.req):
        st.ipsec.ips_out_bundlesa += 1
        return ipsec_perform_request(ipsec, None, m, sp, None, idx, 0)
    if sctx.natt is not None:
        try:
            m.set_data(udp_encap(bytes(m.data), sctx.natt[0], sctx.natt[1]))
        except (PacketError, ValueError):
            st.ipsec.ips_out_inval += 1
            m_freem(m)
            return _errno.EINVAL
    if crypto is not None:
        ifp, drv_spi = crypto
        if m_tag_attach(m, _CRYPTO_NEEDED, CRYPTO_NEEDED_TAG_LEN,
                        (drv_spi, seq_hi) if sctx.esn else drv_spi, tags.crypto_zone) is None:
            st.ipsec.ips_out_nomem += 1
            m_freem(m)
            return _errno.ENOMEM
        sctx.out_crypto += 1
        st.accel.out_crypto += 1
        # The NIC that holds the key sends it (as a packet-offload NIC sends
        # what it encapsulated): no second route lookup.
        return ipsec.ip.if_output(ifp, m)
    sctx.out_sw += 1
    st.accel.out_sw += 1
    return ipsec.ip.ip_output(m, None, IP_RAWOUTPUT)


# -- delayed checksums (in_delayed_cksum / in6_delayed_cksum) ----------------------------

def in_delayed_cksum(m: Mbuf, mask: int = -1) -> None:
    """Compute the TCP/UDP checksum the stack deferred to the NIC
    (CSUM_DELAY_DATA bits of ``csum_flags & mask``) and clear those bits."""
    flags = m.csum_flags & mask & (CSUM_TCP | CSUM_UDP | CSUM_IP6_TCP | CSUM_IP6_UDP)
    if not flags:
        return
    data = bytearray(m.data)
    if data[0] >> 4 == 4:
        off = (data[0] & 0x0F) << 2
        end = int.from_bytes(data[2:4], "big")
        src, dst, proto = bytes(data[12:16]), bytes(data[16:20]), data[9]
    else:
        proto, off, _ = ipv6_upper_layer(data, data[6])
        end = 40 + int.from_bytes(data[4:6], "big")
        src, dst = bytes(data[8:24]), bytes(data[24:40])
    coff = off + (16 if proto == IPPROTO_TCP else 6)
    if proto in (IPPROTO_TCP, IPPROTO_UDP) and coff + 2 <= end:
        data[coff:coff + 2] = b"\0\0"
        cs = l4_checksum(src, dst, proto, bytes(data[off:end]))
        if proto == IPPROTO_UDP and cs == 0:
            cs = 0xFFFF
        data[coff:coff + 2] = cs.to_bytes(2, "big")
        m.set_data(bytes(data))
    m.csum_flags &= ~flags
