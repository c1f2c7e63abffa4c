"""The SP half of ``sys/netipsec/ipsec_offload.c`` and the interface events:
one-shot spdadd/spddel, ``ipsec_accel_on_ifdown`` with its marker walks, and
the ``ifnet_departure_event`` handler (freebsd_ipsec_offload.md §6.3, §6.4).

* ``ipsec_accel_spdadd(sp, inp)`` -- ignored for no SP, and for a global SP
  without requests (none/discard/bypass; a PCB policy is offered even with
  tcount 0); one-shot through ``accel_add_tq.adddel_scheduled`` (never
  reset); task: walk interfaces with IPSEC enabled, ``if_spdadd`` present,
  the SP's ``accel_ifname`` empty or equal (a mismatch creates *no* handle,
  unlike SAs) and no handle yet; per interface create a HANDLED handle
  first, then call the driver; any error ORs in REJECTED (kept, never
  retried).
* ``ipsec_accel_spddel(sp)`` -- one-shot through ``accel_del_tq``; the task
  removes every handle (epoch wait, ``if_spddel`` if installed -- its error
  is only logged -- if_rele).
* ``ipsec_accel_on_ifdown(ifp)`` -- SP handles, then SA handles, of that
  interface only, by a marker walk over the global list: a zeroed MARKER
  handle is inserted at the head; repeatedly the element after it is taken
  and the marker moved after that element, which is removed if it belongs
  to ``ifp`` -- with the mutex dropped around the driver call, the marker
  keeping the walk's place.  INST / adddel_scheduled are not reset, so
  nothing is ever re-offered (§17.9).  Runs in the caller's thread (a
  driver's ioctl path), concurrently with the taskqueue.
* departure: the same, skipped while IFF_RENAMING is set.

Race reproduced, not fixed (FreeBSD has it): an ifdown whose walk passes
before an install task that is already inside ``if_sa_newkey`` for that
interface records its handle leaves the new handle on the down (or
departed) interface until the SA is forgotten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from .ifnet import IFCAP2_IPSEC_OFFLOAD_MASK, IFF_RENAMING, Ifnet
from .ipsec_offload_defs import (
    CALL_EXC, CALL_TIMEOUT, DRV_EXCEPTION_ERRNO, DRV_TIMEOUT_ERRNO, IFP_HP_HANDLED,
    IFP_HP_MARKER, IFP_HP_REJECTED, IFP_HS_MARKER, ifp_handle_sav, ifp_handle_sp, installed,
)
from .taskqueue import Task

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secpolicy
    from .ipsec_offload import _Vnet
    from .ipsec_offload_iface import OffloadEngine

__all__ = ["OffloadSPMixin"]

#: on_ifdown_sp's ``error`` before its first assignment (quirk
#: "ifdown_sp_uninit_error"): whatever the stack held.
_UNINIT = "<uninitialised>"


class OffloadSPMixin:
    """SP flows and interface events; mixed into ``IpsecOffload``."""

    # -- spdadd --------------------------------------------------------------------

    def _spdadd(self: "OffloadEngine", vnet: "_Vnet", sp: Optional["secpolicy"],
                inp: Any = None) -> None:
        """ipsec_accel_spdadd_impl (called under SPTREE_WLOCK: only enqueues)."""
        if sp is None:
            return
        if sp.tcount == 0 and inp is None:
            return
        if self.fips_mode:
            self._dprintf("spdadd: sp %d not offered (FIPS mode)", sp.id)
            return
        tq = sp.accel_add_tq
        with self.sav_tmp:          # atomic_cmpset_int(&adddel_scheduled, 0, 1)
            if tq.adddel_scheduled:
                return
            tq.adddel_scheduled = 1
        tq.adddel_vnet = vnet
        sp.ipsec_accel_add_sp_inp = inp
        tq.adddel_task = Task(self._spdadd_act, sp, name="ipsec_accel_spdadd_act")
        self.tq.enqueue(tq.adddel_task)

    def _spdadd_act(self: "OffloadEngine", sp: "secpolicy", pending: int) -> None:
        """ipsec_accel_spdadd_act: the add task."""
        vnet = sp.accel_add_tq.adddel_vnet
        if not self.fips_mode:
            self._sp_install_walk(vnet, sp, None)
        sp.ipsec_accel_add_sp_inp = None        # in_pcbrele
        self._ext_sp_added(vnet, sp)

    def _sp_install_walk(self: "OffloadEngine", vnet: "_Vnet", sp: "secpolicy",
                         only: Optional[Ifnet]) -> None:
        def match(ifp: Ifnet) -> bool:
            if only is not None and ifp is not only:
                return False
            return self._spdadd_match(sp, ifp)

        ext = only is not None
        vnet.ifnets.if_foreach_sleep(match, lambda ifp: self._spdadd_cb(sp, ifp, ext))

    def _spdadd_match(self: "OffloadEngine", sp: "secpolicy", ifp: Ifnet) -> bool:
        """ipsec_accel_spdadd_match."""
        if not ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            return False
        m = ifp.if_ipsec_accel_m
        if m is None or m.if_spdadd is None:
            return False
        if sp.accel_ifname is not None and sp.accel_ifname != ifp.if_xname:
            return False
        return not any(i.ifp is ifp for i in sp.accel_ifps)

    def _spdadd_cb(self: "OffloadEngine", sp: "secpolicy", ifp: Ifnet,
                   from_ext: bool = False) -> int:
        """ipsec_accel_spdadd_cb: remember first, then ask the driver."""
        inp = sp.ipsec_accel_add_sp_inp
        i = self._remember_sp(sp, ifp, from_ext)
        if i is None:
            return 0
        try:
            return self._spdadd_call(sp, ifp, inp, i)
        finally:
            self._spdadd_done(i)

    def _spdadd_done(self: "OffloadEngine", i: ifp_handle_sp) -> None:
        """The add callback releases its handle; if an ifdown walk doomed it
        meanwhile, remove it now that ifdata is valid."""
        with self.sav_tmp:
            i.busy = False
            if not i.doomed or i.sp is None or not any(h is i for h in i.sp.accel_ifps):
                return
            self._unlink_sp_handle(i)
        self.net_epoch.wait()
        self._release_sp_handle(i)

    def _spdadd_call(self: "OffloadEngine", sp: "secpolicy", ifp: Ifnet, inp: Any,
                     i: ifp_handle_sp) -> int:
        self._dprintf("spdadd: sp %d on %s inp %r", sp.id, ifp.if_xname, inp)

        def late(res: Any, exc: Optional[BaseException]) -> None:
            # The handle was marked REJECTED at the timeout, so it will never
            # be passed to if_spddel: undo a late success now.
            if exc is None and isinstance(res, tuple) and res and res[0] == 0:
                m = ifp.if_ipsec_accel_m
                if m is not None and m.if_spddel is not None:
                    try:
                        m.if_spddel(ifp, sp, res[1])
                    except Exception as e:
                        self._drv_raised("if_spddel", ifp, e)
            ifp.if_rele()

        # _spdadd_match checked the table and if_spdadd are not None; a driver
        # that clears them since makes the guarded call fail (TypeError: CALL_EXC).
        r = self.drv.call("if_spdadd", ifp.if_ipsec_accel_m.if_spdadd,  # type: ignore[union-attr, arg-type]
                          (ifp, sp, inp), late, ifp.if_ref)
        # ifdata and REJECTED are written while the handle is still busy, so
        # a concurrent walk never uses them half-written.
        if r.status == CALL_TIMEOUT:
            self._drv_timed_out("if_spdadd", ifp, sp.id)
            error, priv = DRV_TIMEOUT_ERRNO, None
        elif r.status == CALL_EXC:
            self._drv_raised("if_spdadd", ifp, r.value)
            error, priv = DRV_EXCEPTION_ERRNO, None
        else:
            try:
                error, priv = r.value
                error = int(error)
            except (TypeError, ValueError):
                self._drv_raised("if_spdadd", ifp,
                                 TypeError(f"if_spdadd returned {r.value!r}, not (error, priv)"))
                error, priv = DRV_EXCEPTION_ERRNO, None
        i.ifdata = priv
        if error:
            i.flags |= IFP_HP_REJECTED
            self._inc("sp_rejects")
            self._dprintf("spdadd: %s refused sp %d: %d", ifp.if_xname, sp.id, error)
            return error if "walk_stops_on_error" in self.quirks else 0
        self._inc("sp_installs")
        return 0

    def _remember_sp(self: "OffloadEngine", sp: "secpolicy", ifp: Ifnet,
                     from_ext: bool = False) -> Optional[ifp_handle_sp]:
        """ipsec_accel_remember_sp: a HANDLED handle on both lists.

        For a re-offer (``from_ext``) no handle is added to an SP whose delete
        is already scheduled: FreeBSD's own add task always runs before the
        SP's delete task (FIFO) so that task removes what it added, but a
        re-offer can run after the delete task."""
        i = ifp_handle_sp(sp=sp, ifp=ifp, flags=IFP_HP_HANDLED,
                          busy="sp_install_ifdown_race" not in self.quirks)
        with self.sav_tmp:
            if from_ext and sp.accel_del_tq.adddel_scheduled:
                return None
            ifp.if_ref()
            sp.accel_ifps = [i] + sp.accel_ifps
            self.all_sp_handles.insert_head(i)
        return i

    # -- spddel --------------------------------------------------------------------

    def _spddel(self: "OffloadEngine", vnet: "_Vnet", sp: Optional["secpolicy"]) -> None:
        """ipsec_accel_spddel_impl (one-shot)."""
        if sp is None:
            return
        tq = sp.accel_del_tq
        with self.sav_tmp:
            if tq.adddel_scheduled:
                return
            tq.adddel_scheduled = 1
        tq.adddel_vnet = vnet
        tq.adddel_task = Task(self._spddel_act, sp, name="ipsec_accel_spddel_act")
        self.tq.enqueue(tq.adddel_task)

    def _spddel_act(self: "OffloadEngine", sp: "secpolicy", pending: int) -> None:
        """ipsec_accel_spddel_act: remove every handle of the SP."""
        i: ifp_handle_sp
        with self.sav_tmp:
            while sp.accel_ifps:
                i = sp.accel_ifps[0]
                self._unlink_sp_handle(i)
                self.sav_tmp.release()
                try:
                    self.net_epoch.wait()
                    error = self._release_sp_handle(i)
                    if error:
                        # ifp is None only in a walk's marker, never on an SP's list
                        self._dprintf("spddel: %s if_spddel sp %d: %d",
                                      i.ifp.if_xname, sp.id, error)  # type: ignore[union-attr]
                finally:
                    self.sav_tmp.acquire()

    def _unlink_sp_handle(self: "OffloadEngine", i: ifp_handle_sp) -> None:
        sp = i.sp
        sp.accel_ifps = [h for h in sp.accel_ifps if h is not i]
        self.all_sp_handles.remove(i)

    def _drv_spddel(self: "OffloadEngine", i: ifp_handle_sp) -> int:
        """if_spddel for an unlinked installed handle, then if_rele (deferred to
        the late completion when the call is abandoned)."""
        ifp = i.ifp
        assert ifp is not None
        self._dprintf("spd deinstall %s sp %d", ifp.if_xname, i.sp.id)
        # Installed through this table's if_spdadd (checked not None then);
        # FreeBSD calls if_spddel unchecked, a None here fails as CALL_EXC.
        r = self.drv.call("if_spddel", ifp.if_ipsec_accel_m.if_spddel,  # type: ignore[union-attr, arg-type]
                          (ifp, i.sp, i.ifdata), lambda res, exc: ifp.if_rele())
        self._inc("sp_deinstalls")
        if r.status == CALL_TIMEOUT:
            self._drv_timed_out("if_spddel", ifp, i.sp.id)
            return DRV_TIMEOUT_ERRNO
        ifp.if_rele()
        if r.status == CALL_EXC:
            self._drv_raised("if_spddel", ifp, r.value)
            return DRV_EXCEPTION_ERRNO
        try:
            return int(r.value or 0)
        except (TypeError, ValueError):
            return DRV_EXCEPTION_ERRNO

    def _release_sp_handle(self: "OffloadEngine", i: ifp_handle_sp) -> int:
        """After unlinking and the epoch wait: driver (if installed) + if_rele."""
        if installed(i.flags):
            return self._drv_spddel(i)
        assert i.ifp is not None
        i.ifp.if_rele()
        return 0

    # -- interface down / departure --------------------------------------------------

    def ipsec_accel_on_ifdown(self: "OffloadEngine", ifp: Ifnet) -> None:
        """ipsec_accel_on_ifdown_impl: SP part, then SA part."""
        self._dprintf("on_ifdown %s", ifp.if_xname)
        self._on_ifdown_sp(lambda i: i.ifp is ifp)
        self._on_ifdown_sav(lambda i: i.ifp is ifp)
        self._ext_ifdown(ifp)

    def _ifdetach_event(self: "OffloadEngine", ifp: Ifnet) -> None:
        """ipsec_accel_ifdetach_event: a rename is not a departure."""
        if ifp.if_flags & IFF_RENAMING:
            return
        self.ipsec_accel_on_ifdown(ifp)

    def _on_ifdown_sp(self: "OffloadEngine", pred: Callable[[ifp_handle_sp], bool]) -> int:
        """ipsec_accel_on_ifdown_sp: the marker walk over the SP handles."""
        quirk_err = "ifdown_sp_uninit_error" in self.quirks
        marker = ifp_handle_sp(flags=IFP_HS_MARKER if "sp_marker_sa_flag" in self.quirks
                               else IFP_HP_MARKER)
        n = 0
        error: Any = _UNINIT
        with self.sav_tmp:
            lst = self.all_sp_handles
            lst.insert_head(marker)
            try:
                while True:
                    i = marker.allh_next
                    if i is None:
                        break
                    lst.remove(marker)
                    lst.insert_after(i, marker)
                    if i.sp is None or not pred(i):        # another walk's marker, or not ours
                        continue
                    if i.busy:
                        # if_spdadd still running for it: its callback removes
                        # it when the driver returns (fix; see ifp_handle_sp).
                        i.doomed = True
                        n += 1
                        continue
                    self._unlink_sp_handle(i)
                    self.sav_tmp.release()
                    try:
                        self.net_epoch.wait()
                        n += 1
                        if installed(i.flags):
                            error = self._drv_spddel(i)
                        else:
                            assert i.ifp is not None
                            i.ifp.if_rele()
                        if quirk_err:
                            # FreeBSD tests `error` outside the installed
                            # branch: a REJECTED handle logs a stale value.
                            if error != 0:
                                self._dprintf("on_ifdown_sp: %s if_spddel sp %d res %s",
                                              i.ifp.if_xname, i.sp.id, error)
                        elif installed(i.flags) and error:
                            self._dprintf("on_ifdown_sp: %s if_spddel sp %d res %s",
                                          i.ifp.if_xname, i.sp.id, error)
                    finally:
                        self.sav_tmp.acquire()
            finally:
                lst.remove(marker)
        return n

    def _on_ifdown_sav(self: "OffloadEngine", pred: Callable[[ifp_handle_sav], bool]) -> int:
        """ipsec_accel_on_ifdown_sav: the marker walk over the SA handles."""
        marker = ifp_handle_sav(flags=IFP_HS_MARKER)
        n = 0
        with self.sav_tmp:
            lst = self.all_sav_handles
            lst.insert_head(marker)
            try:
                while True:
                    i = marker.allh_next
                    if i is None:
                        break
                    lst.remove(marker)
                    lst.insert_after(i, marker)
                    if i.flags & IFP_HS_MARKER or not pred(i):
                        continue
                    n += 1
                    self._forget_handle_sav(i)      # drops and retakes the mutex
            finally:
                lst.remove(marker)
        return n
