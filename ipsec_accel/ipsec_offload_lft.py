"""Counters, lifetimes and dump extensions of ``sys/netipsec/ipsec_offload.c``
(freebsd_ipsec_offload.md §10, §11).

* ``ipsec_accel_drv_sa_lifetime_update`` -- drivers report CUMULATIVE
  counters per (sav, ifp, drv_spi); the unsigned 64-bit delta since the last
  report goes into the SA's current lifetime (``lft_c``: byte lifetimes then
  expire in key_flush_sad) and into ``accel_hw_*``; firstused is set at the
  first report with allocs != 0, even when no handle matches.
* ``ipsec_accel_drv_sa_lifetime_fetch`` -- the last reported values.
* ``ipsec_accel_sa_lifetime_op`` -- IFP_HW_VAL / TOTAL_SW_VAL /
  TOTAL_HW_VAL, with FreeBSD's merge rules (u32 allocations, u64 bytes,
  ``u_int min`` usetime, so a fresh result's usetime is always 0).
* ``ipsec_accel_key_setaccelif`` -- the SADB_X_EXT_IF_HW_OFFL extensions of
  a dump.

"ipascn" (``cnt_lock``) serialises the counter helpers, as in FreeBSD.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any

from pfkey.extensions import SadbXIfHwOffl
from pfkey.hooks import IF_SA_CNT_UPD, IF_SA_CNT_WHICH
from pfkey.keydb import seclifetime

from .ifnet import Ifnet, SaCntFn
from .ipsec_offload_defs import (
    CALL_EXC, CALL_TIMEOUT, DRV_EXCEPTION_ERRNO, DRV_TIMEOUT_ERRNO,
    SADB_X_IF_HW_OFFL_F_NOFALLBACK, ifp_handle_sav, installed,
)

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secasvar
    from .ipsec_offload_iface import OffloadEngine

__all__ = ["OffloadLifetimeMixin"]

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


class OffloadLifetimeMixin:
    """Counters, lifetimes, dump; mixed into ``IpsecOffload``."""

    # -- counters and lifetimes ------------------------------------------------------

    def ipsec_accel_drv_sa_lifetime_update(self: "OffloadEngine", sav: "secasvar", ifp: Ifnet,
                                           drv_spi: int, octets: int, allocs: int) -> None:
        """ipsec_accel_drv_sa_lifetime_update_impl: the driver reports
        CUMULATIVE counters.  Unsigned 64-bit deltas from the last report go
        into the SA's current lifetime (so byte lifetimes expire) and into
        accel_hw_*; firstused is set when allocs != 0 even without a handle."""
        octets &= M64
        allocs &= M64
        with self.net_epoch, self.cnt_lock:
            if allocs != 0:
                # clock: set by attach(), and drivers report only for SAs
                # installed through an attached vnet
                now = self.clock.now()  # type: ignore[union-attr]
                if sav.firstused == 0:
                    sav.firstused = now
                if sav.accel_firstused == 0:
                    sav.accel_firstused = now
            for i in sav.accel_ifps:
                if i.ifp is ifp and i.drv_spi == drv_spi:
                    break
            else:
                return
            odiff = (octets - i.cnt_octets) & M64
            adiff = (allocs - i.cnt_allocs) & M64
            sav.lft_c_bytes = (sav.lft_c_bytes + odiff) & M64
            sav.lft_c_allocations = (sav.lft_c_allocations + adiff) & M64
            i.cnt_octets = octets
            i.cnt_allocs = allocs
            sav.accel_hw_octets = (sav.accel_hw_octets + odiff) & M64
            sav.accel_hw_allocs = (sav.accel_hw_allocs + adiff) & M64

    def ipsec_accel_drv_sa_lifetime_fetch(self: "OffloadEngine", sav: "secasvar", ifp: Ifnet,
                                          drv_spi: int) -> tuple[int, int, int]:
        """ipsec_accel_drv_sa_lifetime_fetch_impl: (0, octets, allocs) last
        reported for (ifp, drv_spi), or (ENOENT, 0, 0)."""
        with self.cnt_lock:
            for i in sav.accel_ifps:
                if i.ifp is ifp and i.drv_spi == drv_spi:
                    return (0, i.cnt_octets, i.cnt_allocs)
        return (_errno.ENOENT, 0, 0)

    @staticmethod
    def _lifetime_update(lft_c: seclifetime, lft_l: seclifetime) -> None:
        """ipsec_accel_sa_lifetime_update: add allocations (u32) and bytes
        (u64); usetime = min() -- libkern's u_int min, so both are truncated
        to 32 bits.  Merging into a zeroed result always gives usetime 0."""
        lft_c.allocations = (lft_c.allocations + lft_l.allocations) & M32
        lft_c.bytes = (lft_c.bytes + lft_l.bytes) & M64
        lft_c.usetime = min(lft_c.usetime & M32, lft_l.usetime & M32)

    def ipsec_accel_sa_lifetime_op(self: "OffloadEngine", sav: "secasvar", lft_c: seclifetime,
                                   ifp: Any, op: int, sahtree_tracker: Any = None) -> int:
        """ipsec_accel_sa_lifetime_op_impl.

        IFP_HW_VAL: ``if_sa_cnt`` of ``ifp``'s installed handle;
        TOTAL_SW_VAL: accel_lft_sw (allocations truncated to u32,
        usetime = accel_firstused); TOTAL_HW_VAL: the sum of ``if_sa_cnt`` over
        every installed handle, releasing ``sahtree_tracker`` (a held lock,
        e.g. the key's sahtree_lock) around each driver call.  Without
        IF_SA_CNT_UPD ``lft_c`` is zeroed first, then merged.  Returns 0 or
        the last driver error of TOTAL_HW_VAL.
        """
        lft_l = seclifetime()
        lft_s = seclifetime()
        error = 0
        which = op & ~IF_SA_CNT_UPD
        if which == IF_SA_CNT_WHICH.IFP_HW_VAL:
            i = self.ipsec_accel_is_accel_sav_ptr(sav, ifp) if ifp is not None else None
            if i is not None and installed(i.flags):
                fn = ifp.if_ipsec_accel_m.if_sa_cnt
                if fn is not None:
                    self._drv_sa_cnt(ifp, fn, sav, i, lft_l)   # result ignored, as FreeBSD
            self._lifetime_update(lft_l, lft_s)
        elif which == IF_SA_CNT_WHICH.TOTAL_SW_VAL:
            lft_l.allocations = sav.accel_lft_sw[0] & M32
            lft_l.bytes = sav.accel_lft_sw[1] & M64
            lft_l.usetime = sav.accel_firstused
        elif which == IF_SA_CNT_WHICH.TOTAL_HW_VAL:
            for i in sav.accel_ifps:
                if not installed(i.flags):
                    continue
                ifp1 = i.ifp
                fn = ifp1.if_ipsec_accel_m.if_sa_cnt if ifp1.if_ipsec_accel_m else None
                if fn is None:
                    continue
                lft_s = seclifetime()
                if sahtree_tracker is not None:
                    sahtree_tracker.release()
                try:
                    error = self._drv_sa_cnt(ifp1, fn, sav, i, lft_s)
                finally:
                    if sahtree_tracker is not None:
                        sahtree_tracker.acquire()
                if error == 0:
                    self._lifetime_update(lft_l, lft_s)
        if error == 0:
            if not op & IF_SA_CNT_UPD:
                lft_c.allocations = lft_c.bytes = lft_c.addtime = lft_c.usetime = 0
            self._lifetime_update(lft_c, lft_l)
        return error

    def _drv_sa_cnt(self: "OffloadEngine", ifp: Ifnet, fn: SaCntFn, sav: "secasvar",
                    i: ifp_handle_sav, lt: seclifetime) -> int:
        # A private seclifetime: a stuck call writing it later harms nobody.
        tmp = seclifetime()
        r = self.drv.call("if_sa_cnt", fn, (ifp, sav, i.drv_spi, i.ifdata, tmp))
        if r.status == CALL_TIMEOUT:
            self._drv_timed_out("if_sa_cnt", ifp, sav.spi)
            return DRV_TIMEOUT_ERRNO
        if r.status == CALL_EXC:
            self._drv_raised("if_sa_cnt", ifp, r.value)
            return DRV_EXCEPTION_ERRNO
        lt.allocations, lt.bytes, lt.addtime, lt.usetime = (
            tmp.allocations & M32, tmp.bytes & M64, tmp.addtime, tmp.usetime)
        return int(r.value or 0)

    # -- dump (key_setdumpsa) --------------------------------------------------------

    def ipsec_accel_key_setaccelif(self: "OffloadEngine", sav: "secasvar") -> list[SadbXIfHwOffl]:
        """ipsec_accel_key_setaccelif_impl: with accel_ifname, one extension
        with that name (installed there or not); else one per INSTALLED
        handle, newest first (CK_LIST order), named as the interface is named
        *now*.  FreeBSD's flags are always 0; extension "nofallback" reports
        its bit there."""
        flags = SADB_X_IF_HW_OFFL_F_NOFALLBACK if self.ipsec_accel_sa_nofallback(sav) else 0
        if sav.accel_ifname is not None and not self._ifname_is_any(sav):
            return [SadbXIfHwOffl(sav.accel_ifname, flags)]
        with self.net_epoch:
            return [SadbXIfHwOffl(i.ifp.if_xname, flags) for i in sav.accel_ifps
                    if installed(i.flags)]
