"""The per-packet side of ``sys/netipsec/ipsec_offload.c``: what
``ipsec_accel_output`` / ``ipsec_accel_input`` (the datapath, built on top)
need from the offload layer, under FreeBSD's names.

* handle lookup by (sav, ifp) -- ``ipsec_accel_is_accel_sav_ptr`` (any
  handle, capability bit required) and ``ipsec_accel_sav_handle`` (steps 1
  and 3 of ipsec_accel_output: the INSTALLED handle, else None);
* lookup by drv_spi -- ``ipsec_accel_drvspi_lookup`` / ``_to_sa``,
  ``ipsec_accel_fill_xh``, ``ipsec_accel_drvspi_valid``;
* the tags -- ``ipsec_accel_output_tag`` (BYPASS included),
  ``ipsec_accel_input_tag_lookup``;
* the size checks -- the handle's ``hdr_ext_size``, ``ipsec_accel_output_pad``,
  ``ipsec_accel_output_fits`` (step 4, TSO bypass);
* accounting -- ``ipsec_accel_sa_recordxfer``; ``ipsec_accel_hwassist``.

All are lock-free reads (copy-on-write handle lists, dict index); a caller
that keeps a handle across calls brackets the use with ``net_epoch``, as
FreeBSD's datapath runs under the net epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from pfkey.pfkeyv2 import AF_INET6

from .ifnet import IFCAP2_IPSEC_OFFLOAD_MASK, Ifnet
from .ipsec_offload_defs import (
    IFP_HS_HANDLED, IFP_HS_REJECTED, IPSEC_ACCEL_DRV_SPI_MAX, IPSEC_ACCEL_DRV_SPI_MIN,
    ifp_handle_sav, xform_history,
)
from .mbuf import (
    CSUM_TSO, M_NOWAIT, MTAG_HDR_SIZE, PACKET_TAG_IPSEC_ACCEL_IN, PACKET_TAG_IPSEC_ACCEL_OUT,
    m_tag_find, m_tag_get, m_tag_prepend,
)
from .xform import auth_algorithm_lookup, enc_algorithm_lookup, xform_ah_authsize
from .xform_esp import esp_exact_size

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secasvar
    from .ipsec_offload_iface import OffloadEngine

__all__ = ["OffloadDatapathMixin"]

_HR = IFP_HS_HANDLED | IFP_HS_REJECTED


class OffloadDatapathMixin:
    """Per-packet helpers; mixed into ``IpsecOffload``."""

    # -- queries ---------------------------------------------------------------------

    def ipsec_accel_is_accel_sav(self: "OffloadEngine", sav: "secasvar") -> bool:
        """ipsec_accel_is_accel_sav_impl: at least one handle, HANDLED or
        REJECTED (so a dump of a refused SA still shows the offl lines)."""
        return bool(sav.accel_ifps)

    def ipsec_accel_is_accel_sav_ptr(self: "OffloadEngine", sav: "secasvar",
                                     ifp: Ifnet) -> Optional[ifp_handle_sav]:
        """ipsec_accel_is_accel_sav_ptr: the handle of ``sav`` on exactly
        ``ifp`` (a vlan's handle is not its parent's), any kind, provided the
        interface's IPSEC capability is enabled *now* (§17.11)."""
        if not ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            return None
        i: ifp_handle_sav
        for i in sav.accel_ifps:
            if i.ifp is ifp:
                return i
        return None

    def ipsec_accel_sav_handle(self: "OffloadEngine", sav: "secasvar",
                               ifp: Optional[Ifnet]) -> Optional[ifp_handle_sav]:
        """What ipsec_accel_output's steps 1 and 3 ask: the INSTALLED handle
        of ``sav`` on exactly ``ifp`` with the capability enabled, else None
        (software).  A forwarded packet has no ifp: never offloaded."""
        if ifp is None or not ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            return None
        i: ifp_handle_sav
        for i in sav.accel_ifps:
            if i.ifp is ifp:
                return i if (i.flags & _HR) == IFP_HS_HANDLED else None
        return None

    def ipsec_accel_drvspi_lookup(self: "OffloadEngine", drv_spi: int) -> Optional[ifp_handle_sav]:
        """DRVSPI_SA_PCTRIE_LOOKUP: the handle owning ``drv_spi`` (any ifp)."""
        return self.drv_spi_index.get(drv_spi)

    def ipsec_accel_drvspi_to_sa(self: "OffloadEngine", drv_spi: int) -> Optional["secasvar"]:
        """ipsec_accel_drvspi_to_sa (input path: no ifp check)."""
        i = self.drv_spi_index.get(drv_spi)
        return None if i is None else i.sav

    def ipsec_accel_fill_xh(self: "OffloadEngine", ifp: Optional[Ifnet],
                            drv_spi: int) -> Optional[xform_history]:
        """ipsec_accel_fill_xh_impl (002b12b5): the handle's xform_history,
        None for an out-of-range or unknown drv_spi (``ifp`` is unused, as in
        FreeBSD)."""
        if drv_spi < IPSEC_ACCEL_DRV_SPI_MIN or drv_spi > IPSEC_ACCEL_DRV_SPI_MAX:
            return None
        i = self.drv_spi_index.get(drv_spi)
        return None if i is None else i.xfh

    def ipsec_accel_sa_recordxfer(self: "OffloadEngine", sav: "secasvar", m: Any) -> None:
        """ipsec_accel_sa_recordxfer: software view of an offloaded packet
        (``m`` an mbuf -- its ``len`` is m_pkthdr.len -- or a byte count).
        Does not touch the SA's regular lft_c (the driver's counters do)."""
        n = m if m.__class__ is int else m.len
        sw = sav.accel_lft_sw
        # counter(9) per-CPU adds; two list item updates, cheap and
        # GIL-atomic enough for statistics (a lost update needs two threads
        # in the same bytecode window, as a torn per-CPU read would in C).
        sw[0] += 1
        sw[1] += n
        if sav.accel_firstused == 0:
            # clock: set by attach(); an offloaded packet has an installed handle
            sav.accel_firstused = self.clock.now()  # type: ignore[union-attr]

    def ipsec_accel_hwassist(self: "OffloadEngine", i: ifp_handle_sav, sav: Any) -> int:
        """``if_hwassist(ifp, sav, drv_spi, ifdata)`` for an offloaded packet
        (called after the SA reference was released, §17.12); a raising
        driver counts as "no assist"."""
        ifp = i.ifp
        assert ifp is not None
        meth = ifp.if_ipsec_accel_m
        fn = meth.if_hwassist if meth is not None else None
        if fn is None:
            return 0
        try:
            hw = fn(ifp, sav, i.drv_spi, i.ifdata)
            return hw if hw.__class__ is int else int(hw)
        except Exception as e:
            self._drv_raised("if_hwassist", ifp, e)
            return 0

    # -- datapath primitives of ipsec_offload.c ---------------------------------------

    @staticmethod
    def ipsec_accel_output_tag(m: Any, drv_spi: int) -> bool:
        """ipsec_accel_output_tag: prepend a PACKET_TAG_IPSEC_ACCEL_OUT tag
        carrying ``drv_spi`` (IPSEC_ACCEL_DRV_SPI_BYPASS for "send in the
        clear"); False when the M_NOWAIT allocation fails.  FreeBSD asks
        m_tag_get for sizeof(struct ipsec_accel_out_tag), header included,
        so the payload length is the padded struct size (32), not 2."""
        t = m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT, MTAG_HDR_SIZE + 8, M_NOWAIT)
        if t is None:
            return False
        t.data = drv_spi
        m_tag_prepend(m, t)
        return True

    @staticmethod
    def ipsec_accel_input_tag_lookup(m: Any) -> Any:
        """ipsec_accel_input_tag_lookup: the PACKET_TAG_IPSEC_ACCEL_IN tag
        (``data`` = drv_spi) or None."""
        return m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_IN)

    @staticmethod
    def ipsec_accel_drvspi_valid(drv_spi: int) -> bool:
        """The range test of ipsec_accel_input / fill_xh: 0..2 are invalid
        on input (2, BYPASS, is an output-only marker)."""
        return IPSEC_ACCEL_DRV_SPI_MIN <= drv_spi <= IPSEC_ACCEL_DRV_SPI_MAX

    @staticmethod
    def ipsec_accel_output_pad(m: Any, sav: "secasvar", skip: int, mtu: int,
                               ctr_compatibility: bool = True) -> bool:
        """ipsec_accel_output_pad: does the exact ESP packet (skip + header +
        IV + payload + padding + ICV) fit ``mtu``?  ``ctr_compatibility`` is
        net.inet.esp.ctr_compatibility (default on)."""
        enc = enc_algorithm_lookup(sav.alg_enc)
        if enc is None:
            return False
        auth = auth_algorithm_lookup(sav.alg_auth) if sav.alg_auth else None
        n = m if isinstance(m, int) else m.len
        size = esp_exact_size(enc, auth, n, skip, flags=sav.flags & 0x1,
                              ctr_compatibility=ctr_compatibility,
                              icvlen=xform_ah_authsize(auth))
        return size <= mtu

    def ipsec_accel_output_fits(self: "OffloadEngine", i: ifp_handle_sav, m: Any,
                                sav: "secasvar", af: int, mtu: int) -> bool:
        """Step 4 of ipsec_accel_output: a TSO packet always fits; otherwise
        ``pkthdr.len + hdr_ext_size <= mtu`` and the exact ESP size fits
        (skip = the IPv4 header length, or 40 for IPv6)."""
        if m.csum_flags & CSUM_TSO:
            return True
        if m.len + i.hdr_ext_size > mtu:
            return False
        if af == AF_INET6:
            skip = 40
        else:
            data = m.data
            skip = (data[0] & 0x0F) << 2 if len(data) else 20
        return self.ipsec_accel_output_pad(m, sav, skip, mtu)
