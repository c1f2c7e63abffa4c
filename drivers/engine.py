"""The NIC's inline ESP engine: what the card does to each packet.

Models the datapath half of an inline-IPsec NIC (FreeBSD mlx5
``mlx5_ipsec_rxtx.c`` + the steering tables of ``mlx5_ipsec_fs.c``; Linux
``ixgbe_ipsec.c`` ``ixgbe_ipsec_tx``/``ixgbe_ipsec_rx``, netdevsim
``nsim_ipsec_tx``), with real cryptography: every hardware SA holds an
:class:`ipsec_accel.xform_esp.EspState`, so the bytes a NIC puts on the wire
are the bytes software ESP produces for the same SA, IV and sequence number.

TX (``if_transmit``), decided per packet:

* no OUT tag, or drv_spi 2 (IPSEC_ACCEL_DRV_SPI_BYPASS): sent as is (mlx5's
  KSPI table: metadata "bypass" or untagged -> clear);
* an OUT tag whose drv_spi names one of this NIC's outbound hardware SAs:
  **packet offload** -- the stack handed plaintext; the engine applies ESP
  (transport, or tunnel with the SA's endpoints), NAT-T UDP encapsulation when
  the SA has ports, and sends;
* an OUT tag with an unknown drv_spi: dropped, as mlx5's steering miss rule
  drops it (``tx_steering_miss``);
* a ``PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED`` tag (FreeBSD's old "crypto needed"
  tag id, reused here): **crypto offload** -- the stack built IP header, ESP
  header, IV, payload, padding and trailer and left ``icvlen`` bytes for the
  ICV; the engine encrypts in place and writes the ICV (Linux
  ``XFRM_DEV_OFFLOAD_CRYPTO``).  Tag data: the drv_spi, or ``(drv_spi,
  seq_hi)`` for an ESN SA (the stack knows the high half; Linux passes it in
  ``xo->seq.hi``).

The OUT tag is read through ``nic.out_drv_spi(m)`` when set, else the
process-wide accessor (:func:`set_out_drv_spi_accessor`), by default the
datapath's one accessor :func:`ipsec_accel.accel_tag.ipsec_accel_out_drv_spi`
(alias :func:`default_out_drv_spi`), which understands all four tag
strategies (m_tag, send tag, reused OUT_DONE tag, packet-header field) -- a
host switching strategies needs no call into the drivers.

RX (``wire_input``): find the ESP header (plain, or ESP-in-UDP), look the
hardware SA up by (destination address, SPI) among this NIC's *inbound*
entries, then:

* packet-offload SA: decrypt and decapsulate (``esp_input_packet``: replay
  check before the ICV, window update after), deliver the plaintext packet
  with a ``PACKET_TAG_IPSEC_ACCEL_IN`` tag whose data is the drv_spi;
* crypto-offload SA: decrypt in place keeping the ESP framing, deliver with
  ``PACKET_TAG_IPSEC_IN_CRYPTO_DONE`` (data: drv_spi); replay, ESN and the
  trailer stay the stack's (ESN SAs are passed up untouched: the card has no
  window to infer the high half from);
* no matching SA, not ESP, or an ICV failure: passed up untouched -- the
  software path decides (and counts esps_badauth);
* replay / malformed trailer after a good ICV: dropped and counted per SA,
  as mlx5 counts replay drops in hardware.

Counters: packet-offload traffic counts plaintext bytes (the same length the
stack's SW-offl accounting records, so SW and HW views of one flow agree);
crypto-offload traffic is counted apart and never reported to lifetimes.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Callable, Optional

from cryptography.exceptions import InvalidTag

from ipsec_accel.accel_tag import ipsec_accel_out_drv_spi
from ipsec_accel.mbuf import (
    CSUM_L3_CALC, CSUM_L3_VALID, CSUM_L4_CALC, CSUM_L4_VALID, PACKET_TAG_IPSEC_ACCEL_IN,
    PACKET_TAG_IPSEC_IN_CRYPTO_DONE, PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED, Mbuf, m_freem,
    m_tag_find, m_tag_get, m_tag_prepend,
)
from ipsec_accel.packet import PacketError, ipv6_upper_layer
from ipsec_accel.xform_esp import EspBadAuth, EspDummy, EspError
from ipsec_accel.esp_encap import (
    esp_input_packet, esp_transport_output, esp_tunnel_output, natt_classify, udp_decap,
    udp_encap,
)
from pfkey.ipsec import IPSEC_MODE

from .hw import MODE_CRYPTO, MODE_PACKET, HwSa

if TYPE_CHECKING:  # pragma: no cover
    from .nic_iface import NicCore

__all__ = [
    "IPSEC_ACCEL_DRV_SPI_BYPASS", "default_out_drv_spi", "set_out_drv_spi_accessor",
    "crypto_tag_info", "locate_esp", "InlineEngine", "UDP_ENCAP_PORTS",
]

IPSEC_ACCEL_DRV_SPI_BYPASS = 2
_IPPROTO_ESP = 50
_IPPROTO_UDP = 17
_TUNNEL = int(IPSEC_MODE.TUNNEL)
_NATT_CSUM = CSUM_L3_CALC | CSUM_L3_VALID | CSUM_L4_CALC | CSUM_L4_VALID


#: The one accessor drivers read the OUT drv_spi with, whatever the tag
#: strategy (m_tag, send tag, reused OUT_DONE tag, packet-header field): it
#: lives with the strategies in :mod:`ipsec_accel.accel_tag`.
default_out_drv_spi = ipsec_accel_out_drv_spi


_accessor: Callable[[Mbuf], Optional[int]] = default_out_drv_spi


def set_out_drv_spi_accessor(fn: Optional[Callable[[Mbuf], Optional[int]]]) -> None:
    """Install another accessor for every NIC that has not set its own (None
    restores the datapath's one accessor, :func:`default_out_drv_spi`)."""
    global _accessor
    _accessor = fn if fn is not None else default_out_drv_spi


def crypto_tag_info(m: Mbuf) -> Optional[tuple[int, int]]:
    """(drv_spi, seq_hi) of a crypto-offload packet, or None."""
    t = m_tag_find(m, PACKET_TAG_IPSEC_OUT_CRYPTO_NEEDED)
    if t is None:
        return None
    d = t.data
    if isinstance(d, tuple):
        return int(d[0]), int(d[1]) if len(d) > 1 else 0
    if isinstance(d, int):
        return d, 0
    return int(d.drv_spi), int(getattr(d, "seq_hi", 0))


UDP_ENCAP_PORTS = frozenset((4500,))


def locate_esp(pkt: bytes, natt_ports: Any = UDP_ENCAP_PORTS
               ) -> Optional[tuple[bytes, int, int, bool]]:
    """(dst address, SPI, offset of the ESP header, ESP-in-UDP?) of an
    IPv4/IPv6 packet, or None when it carries no ESP.  UDP counts as
    ESP-in-UDP only towards one of ``natt_ports`` and without the non-ESP
    marker (IKE) or the keepalive byte (RFC 3948 §2)."""
    if not pkt:
        return None
    v = pkt[0] >> 4
    try:
        if v == 4:
            if len(pkt) < 20:
                return None
            off = (pkt[0] & 15) << 2
            proto = pkt[9]
            dst = pkt[16:20]
        elif v == 6:
            if len(pkt) < 40:
                return None
            proto, off, _ = ipv6_upper_layer(pkt, pkt[6])
            dst = pkt[24:40]
        else:
            return None
    except PacketError:
        return None
    udp = False
    if proto == _IPPROTO_UDP:
        if len(pkt) < off + 8 or int.from_bytes(pkt[off + 2:off + 4], "big") not in natt_ports \
                or natt_classify(pkt[off + 8:]) != "esp":
            return None
        off += 8
        udp = True
    elif proto != _IPPROTO_ESP:
        return None
    if len(pkt) < off + 8:
        return None
    return dst, int.from_bytes(pkt[off:off + 4], "big"), off, udp


class InlineEngine:
    """TX/RX engine mixed into :class:`drivers.base.MockNic` (the NIC's
    tables, locks and counters live there)."""

    # -- TX -------------------------------------------------------------------------

    def if_transmit(self: "NicCore", ifp: Any, m: Mbuf) -> int:
        """``if_transmit``: the stack hands one packet; the NIC frees it."""
        if not self.running:
            self._count_drop("tx_down")
            m_freem(m)
            return _errno.ENETDOWN
        acc = self.out_drv_spi or _accessor
        drv_spi = acc(m)
        if drv_spi is None or drv_spi == IPSEC_ACCEL_DRV_SPI_BYPASS:
            ct = crypto_tag_info(m) if m.tags else None
            if ct is not None:
                return self._tx_crypto(m, ct[0], ct[1])
            data = bytes(m.data)
            self._count_tx_clear(len(data))
            m_freem(m)
            self._wire_send(data)
            return 0
        e = self._tx.get(drv_spi)
        if e is None or not e.live:
            # mlx5: tagged with a kspi the KSPI table does not hold -> the
            # table's miss rule drops the packet; the stack never knows.
            self._count_drop("tx_steering_miss")
            m_freem(m)
            return 0
        if MODE_PACKET not in self.offload_modes:
            # A crypto-only card cannot add ESP framing: real hardware would
            # send the plaintext; the model drops and counts so the datapath
            # bug is visible.
            self._count_drop("tx_mode_unsupported", e)
            m_freem(m)
            return 0
        data = bytes(m.data)
        p = e.params
        try:
            if p.mode == _TUNNEL:
                out = esp_tunnel_output(e.esp or e.context(), data, p.src, p.dst)
            else:
                out = esp_transport_output(e.esp or e.context(), data)
            if p.natt is not None:
                out = udp_encap(out, p.natt[0], p.natt[1])
        except EspError as exc:
            self._count_drop("tx_" + exc.reason, e)
            m_freem(m)
            return 0
        except (PacketError, IndexError, ValueError):
            self._count_drop("tx_bad_packet", e)
            m_freem(m)
            return 0
        self._count_tx_sa(e, len(data), len(out))
        m_freem(m)
        self._wire_send(out)
        return 0

    def _tx_crypto(self: "NicCore", m: Mbuf, drv_spi: int, seq_hi: int) -> int:
        e = self._tx.get(drv_spi)
        if e is None or not e.live:
            self._count_drop("tx_steering_miss")
            m_freem(m)
            return 0
        esp = e.esp or e.context()
        if MODE_CRYPTO not in self.offload_modes or e.aead is None:
            self._count_drop("tx_mode_unsupported", e)
            m_freem(m)
            return 0
        pkt = bytes(m.data)
        loc = locate_esp(pkt, self._natt_ports)
        icvlen = esp.icvlen
        if loc is None or loc[1] != e.params.spi or len(pkt) < loc[2] + 16 + icvlen:
            self._count_drop("tx_bad_frame", e)
            m_freem(m)
            return 0
        off = loc[2]
        hdr = pkt[off:off + 16]
        pt = pkt[off + 16:len(pkt) - icvlen]
        if esp.esn:
            aad = hdr[:4] + (seq_hi & 0xFFFFFFFF).to_bytes(4, "big") + hdr[4:8]
        else:
            aad = hdr[:8]
        ct = e.aead.encrypt(e.salt + hdr[8:16], pt, aad)
        out = pkt[:off + 16] + ct
        self._count_tx_crypto(e, len(pkt))
        m_freem(m)
        self._wire_send(out)
        return 0

    # -- RX -------------------------------------------------------------------------

    def wire_input(self: "NicCore", data: bytes | bytearray | memoryview) -> None:
        """The receive entry a wire calls with one frame (an IP datagram)."""
        if not self.running:
            self._count_drop("rx_down")
            return
        pkt = bytes(data)
        loc = locate_esp(pkt, self._natt_ports)
        if loc is None:
            self._count_rx_pass("rx_not_esp", len(pkt))
            self._deliver(pkt, None, None)
            return
        dst, spi, off, udp = loc
        e = self._rx_lookup(dst, spi)
        if e is None:
            self._count_rx_pass("rx_no_sa", len(pkt))
            self._deliver(pkt, None, None)
            return
        if e.rx_mode == MODE_CRYPTO:
            self._rx_crypto(e, pkt, off)
            return
        esp_pkt = pkt
        if udp:
            if e.params.natt is None:
                self._count_rx_pass("rx_no_sa", len(pkt))
                self._deliver(pkt, None, None)
                return
            dec = udp_decap(pkt)
            if dec is None:           # cannot happen: locate_esp classified it
                self._deliver(pkt, None, None)
                return
            esp_pkt = dec
        try:
            out, _nxt, _seq = esp_input_packet(e.esp or e.context(), esp_pkt)
        except EspBadAuth:
            # The card could not authenticate it: up it goes, untouched;
            # software decrypts (or counts esps_badauth).
            self._count_rx_pass("rx_auth_passed", len(pkt), e)
            self._deliver(pkt, None, None)
            return
        except EspDummy:
            self._count_drop("rx_dummy", e)
            return
        except EspError as exc:
            self._count_drop("rx_" + exc.reason, e)
            return
        except (PacketError, IndexError, ValueError):
            self._count_rx_pass("rx_bad_packet", len(pkt), e)
            self._deliver(pkt, None, None)
            return
        self._count_rx_sa(e, len(out))
        self._deliver(out, e, PACKET_TAG_IPSEC_ACCEL_IN, csum=_NATT_CSUM if udp else 0)

    def _rx_crypto(self: "NicCore", e: HwSa, pkt: bytes, off: int) -> None:
        esp = e.esp or e.context()
        icvlen = esp.icvlen
        if e.aead is None or esp.esn or len(pkt) < off + 16 + icvlen:
            self._count_rx_pass("rx_crypto_passed", len(pkt), e)
            self._deliver(pkt, None, None)
            return
        hdr = pkt[off:off + 16]
        try:
            pt = e.aead.decrypt(e.salt + hdr[8:16], pkt[off + 16:], hdr[:8])
        except InvalidTag:
            self._count_rx_pass("rx_auth_passed", len(pkt), e)
            self._deliver(pkt, None, None)
            return
        out = pkt[:off + 16] + pt + pkt[len(pkt) - icvlen:]
        self._count_rx_crypto(e, len(pkt))
        self._deliver(out, e, PACKET_TAG_IPSEC_IN_CRYPTO_DONE)

    def _rx_lookup(self: "NicCore", dst: bytes, spi: int) -> Optional[HwSa]:
        lst = self._rx.get((dst, spi))
        if lst:
            for e in lst:
                if e.live:
                    return e
        return None

    def _deliver(self: "NicCore", data: bytes, e: Optional[HwSa], tag_type: Optional[int],
                 csum: int = 0) -> None:
        """Hand a received packet to the stack: ``if_input`` of the ifnet the
        SA was installed through (a vlan's, when it was), else of this NIC,
        else the NIC's ``rx_queue``."""
        rcvif = e.rcvif if e is not None else self.ifp
        m = Mbuf(data, rcvif=rcvif)
        m.csum_flags |= csum
        if e is not None and tag_type is not None:
            t = m_tag_get(tag_type, 2, zone=self.tag_zone)
            if t is None:
                self._count_drop("rx_nomem_tag", e)
                return
            t.data = e.drv_spi
            m_tag_prepend(m, t)
        fn = getattr(rcvif, "if_input", None) or self.ifp.if_input
        if fn is not None:
            fn(rcvif, m)
            return
        q = self.rx_queue
        if q.maxlen is not None and len(q) >= q.maxlen:
            self._count_drop("rx_queue_full")
            m_freem(m)
            return
        q.append(m)

    # -- counters -------------------------------------------------------------------

    def _count_drop(self: "NicCore", reason: str, e: Optional[HwSa] = None) -> None:
        with self._cnt_lock:
            c = self.counters
            c[reason] = c.get(reason, 0) + 1
            c["drops"] += 1
            if e is not None:
                e.drops += 1

    def _count_tx_clear(self: "NicCore", n: int) -> None:
        with self._cnt_lock:
            c = self.counters
            c["tx_packets"] += 1
            c["tx_bytes"] += n
            c["tx_clear"] += 1

    def _count_tx_sa(self: "NicCore", e: HwSa, n: int, wire: int) -> None:
        with self._cnt_lock:
            e.packets += 1
            e.octets += n
            c = self.counters
            c["tx_packets"] += 1
            c["tx_bytes"] += wire
            c["tx_encrypted"] += 1

    def _count_tx_crypto(self: "NicCore", e: HwSa, n: int) -> None:
        with self._cnt_lock:
            e.crypto_packets += 1
            e.crypto_octets += n
            c = self.counters
            c["tx_packets"] += 1
            c["tx_bytes"] += n
            c["tx_crypto"] += 1

    def _count_rx_pass(self: "NicCore", reason: str, n: int, e: Optional[HwSa] = None) -> None:
        with self._cnt_lock:
            c = self.counters
            c["rx_packets"] += 1
            c["rx_bytes"] += n
            c["rx_passed"] += 1
            c[reason] = c.get(reason, 0) + 1

    def _count_rx_sa(self: "NicCore", e: HwSa, n: int) -> None:
        with self._cnt_lock:
            e.packets += 1
            e.octets += n
            c = self.counters
            c["rx_packets"] += 1
            c["rx_bytes"] += n
            c["rx_decrypted"] += 1

    def _count_rx_crypto(self: "NicCore", e: HwSa, n: int) -> None:
        with self._cnt_lock:
            e.crypto_packets += 1
            e.crypto_octets += n
            c = self.counters
            c["rx_packets"] += 1
            c["rx_bytes"] += n
            c["rx_crypto"] += 1
