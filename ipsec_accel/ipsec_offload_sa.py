"""The SA half of ``sys/netipsec/ipsec_offload.c``: install (newkey), forget
and the handle bookkeeping (counters, lifetimes and dumps are in
``ipsec_offload_lft``, the per-packet helpers in ``ipsec_offload_datapath``).

Flows (freebsd_ipsec_offload.md §6.1, §6.2), as a mixin of
:class:`ipsec_accel.ipsec_offload.IpsecOffload`:

* ``ipsec_accel_sa_newkey`` -- no-op when INST or DEINST is set; otherwise a
  carrier (M_NOWAIT: it may fail, and the SA is then silently never
  offloaded) and an install task.
* install task (``_sa_newkey_act``) -- under "ipasat": proceed only if
  neither INST nor DEINST is set *and* the SA is MATURE right now; set INST;
  walk the interfaces (``if_foreach_sleep``: IPSEC enabled and
  ``if_sa_newkey`` present); allocate the forget carrier; if DEINST was set
  meanwhile, do the forget inline.
* per interface (``_sa_newkey_cb``, 002b12b5 order) -- drv_spi (exhausted:
  skip the interface); ``accel_ifname`` mismatch: REJECTED handle without
  calling the driver; driver 0: HANDLED, EOPNOTSUPP: REJECTED, other: log,
  nothing recorded, drv_spi leaked (FreeBSD; extension
  "free_drv_spi_on_error" frees it).  Returns 0 (quirk
  "walk_stops_on_error": the error, which stops the walk, as 6ba593bb).
* ``ipsec_accel_forget_sav`` -- set DEINST; if the forget carrier is absent
  (the install task has not finished) or already claimed, return; else claim
  it and enqueue the forget task, which deinstalls every handle.
* ``_forget_handle_sav`` -- unlink from the SA list, the global list and the
  drv_spi index; drop "ipasat"; NET_EPOCH_WAIT; ``if_sa_deinstall`` only for
  HANDLED; if_rele; free the drv_spi; re-lock.

Locks: "ipasat" (``sav_tmp``) protects every handle list, the drv_spi index,
``accel_flags`` and ``accel_forget_tq``; it is never held across a driver
call, a key.c call or a taskqueue wait.  The drv_spi allocator uses it as
its own mutex, so alloc/free are called with it dropped (unr(9)'s rule).
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Callable, Optional

from pfkey.keydb import MATURE, SADB_KEY_ACCEL_DEINST, SADB_KEY_ACCEL_INST

from .ifnet import IFCAP2_IPSEC_OFFLOAD_MASK, Ifnet
from .ipsec_offload_defs import (
    CALL_EXC, CALL_TIMEOUT, DRV_EXCEPTION_ERRNO, DRV_TIMEOUT_ERRNO, IFP_HS_HANDLED,
    IFP_HS_REJECTED, ifp_handle_sav, installed, xform_history,
)
from .taskqueue import Task
from .xform import auth_algorithm_lookup, enc_algorithm_lookup
from .xform_esp import ah_hdrsiz

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secasvar
    from .ipsec_offload import _Vnet
    from .ipsec_offload_iface import OffloadEngine

__all__ = ["OffloadSAMixin", "esp_hdrsiz_sav"]

_INSTDEINST = SADB_KEY_ACCEL_INST | SADB_KEY_ACCEL_DEINST
_HR = IFP_HS_HANDLED | IFP_HS_REJECTED
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_IPPROTO_ESP = 50

#: ``priv`` of an abandoned install call: the stuck call owns the drv_spi.
_ABANDONED = object()


def esp_hdrsiz_sav(sav: "secasvar") -> int:
    """xform_esp.c ``esp_hdrsiz(sav)`` from the SA's algorithms, as recorded in
    ``hdr_ext_size`` at install: ESP header + the cipher's block size + 9,
    plus ``ah_hdrsiz`` when an auth transform is set (GCM/ChaCha included:
    esp_init sets their GMAC/Poly1305 auth) and the SA has replay state.

    An SA without an encryption transform (AH, IPComp, TCP-MD5) gets 0.
    Departure: FreeBSD computes esp_hdrsiz for every recorded handle, and
    for such an SA it dereferences a NULL ``tdb_encalgxform`` (IPSEC_ASSERT
    only in INVARIANTS kernels) -- reachable when a driver refuses an AH SA
    with EOPNOTSUPP or ``accel_ifname`` rejects it.
    """
    sah = sav.sah
    enc = enc_algorithm_lookup(sav.alg_enc)
    if sah is None or enc is None or sah.saidx.proto != _IPPROTO_ESP:
        return 0
    old = sav.flags & 0x1           # SADB_X_EXT_OLD
    size = (4 if old else 8) + enc.blocksize + 9
    auth = auth_algorithm_lookup(sav.alg_auth) if sav.alg_auth else None
    if auth is not None and sav.replay is not None:
        size += ah_hdrsiz(auth, sav.flags, sah.saidx.dst.family)
    return size


class _NewkeyTq:
    """``struct ipsec_accel_install_newkey_tq``."""

    __slots__ = ("sav", "install_vnet", "install_task")

    def __init__(self, sav: Any, vnet: Any) -> None:
        self.sav = sav
        self.install_vnet = vnet
        self.install_task: Optional[Task] = None


class _ForgetTq:
    """``struct ipsec_accel_forget_tq`` (preallocated, claimed by cmpset)."""

    __slots__ = ("forget_vnet", "forget_task", "sav")

    def __init__(self) -> None:
        self.forget_vnet: Any = None
        self.forget_task: Optional[Task] = None
        self.sav: Any = None


class OffloadSAMixin:
    """SA flows; mixed into ``IpsecOffload``."""

    # -- newkey ----------------------------------------------------------------------

    def _sa_newkey(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar") -> None:
        """ipsec_accel_sa_newkey_impl (called under SAHTREE_WLOCK: only enqueues)."""
        if sav.accel_flags & _INSTDEINST:
            return
        if self.fips_mode:
            self._dprintf("newkey: spi %#x not offered (FIPS mode)", sav.spi)
            return
        self._dprintf("newkey: spi %#x flags %#x seq %d", sav.spi, sav.flags, sav.seq)
        if self._nowait_fails("newkey_tq"):
            # M_NOWAIT malloc failure: the SA is silently never offloaded.
            self._inc("newkey_nomem")
            self._dprintf("newkey: no memory for the install carrier, spi %#x", sav.spi)
            return
        tq = _NewkeyTq(sav, vnet)
        tq.install_task = Task(self._sa_newkey_act, tq, name="ipsec_accel_sa_newkey_act")
        self.tq.enqueue(tq.install_task)

    def _sa_newkey_act(self: "OffloadEngine", tq: _NewkeyTq, pending: int) -> None:
        """ipsec_accel_sa_newkey_act: the install task."""
        sav = tq.sav
        vnet = tq.install_vnet
        self._inc("newkey_tasks")
        with self.sav_tmp:
            # (fips_mode: a task queued before the switch was turned on; INST
            # stays clear so a re-offer can install it later.)
            go = not (sav.accel_flags & _INSTDEINST) and sav.state == MATURE \
                and not self.fips_mode
            if go:
                sav.accel_flags |= SADB_KEY_ACCEL_INST
        if not go:
            # LARVAL/DYING/DEAD now, or already installed/forgotten: nothing;
            # INST stays clear so a later UPDATE can offer it again (§17.5).
            self._inc("newkey_skipped")
            self._dprintf("newkey task: spi %#x skipped (state %d, accel_flags %#x)",
                          sav.spi, sav.state, sav.accel_flags)
            return
        self._sa_install_walk(vnet, sav, None)
        self._sa_install_finish(sav)

    def _sa_install_walk(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar",
                         only: Optional[Ifnet]) -> None:
        """if_foreach_sleep(ipsec_accel_sa_install_match, newkey_cb); ``only``
        restricts the walk to one interface (extension "reoffer")."""

        def match(ifp: Ifnet) -> bool:
            if only is not None and ifp is not only:
                return False
            return self._sa_install_match(ifp)

        def cb(ifp: Ifnet) -> int:
            return self._sa_newkey_cb(vnet, sav, ifp)

        vnet.ifnets.if_foreach_sleep(match, cb)

    def _sa_install_match(self: "OffloadEngine", ifp: Ifnet) -> bool:
        """ipsec_accel_sa_install_match."""
        if not ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            return False
        m = ifp.if_ipsec_accel_m
        if m is None:
            # FreeBSD dereferences the table unchecked (a panic); the model
            # treats it as the driver bug it is and skips the interface.
            self._dprintf("driver bug: %s has IPSEC enabled but no accel methods", ifp.if_xname)
            return False
        if m.if_sa_newkey is None:
            self._dprintf("driver bug: %s if_sa_newkey NULL", ifp.if_xname)
            return False
        return True

    def _sa_install_finish(self: "OffloadEngine", sav: "secasvar") -> None:
        """The end of the install task: allocate the forget carrier, then do
        a forget that raced with the walk inline.  Its task cannot run
        concurrently: the queue has one thread and we are on it."""
        self._alloc_forget_tq(sav)
        with self.sav_tmp:
            if sav.accel_flags & SADB_KEY_ACCEL_DEINST:
                sav.accel_forget_tq = None
                self._inc("inline_forgets")
                self._dprintf("newkey task: spi %#x deleted during install, forgetting inline",
                              sav.spi)
                self._forget_sav_clear(sav)

    def _alloc_forget_tq(self: "OffloadEngine", sav: "secasvar") -> None:
        """ipsec_accel_alloc_forget_tq (M_WAITOK, installed by cmpset)."""
        if sav.accel_forget_tq is not None:
            return
        ftq = _ForgetTq()
        with self.sav_tmp:     # the atomic_cmpset_ptr(0 -> ftq)
            if sav.accel_forget_tq is None:
                sav.accel_forget_tq = ftq

    def _sa_newkey_cb(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar",
                      ifp: Ifnet) -> int:
        """ipsec_accel_sa_newkey_cb for one interface."""
        old = "walk_stops_on_error" in self.quirks
        name_rejects = sav.accel_ifname is not None and \
            sav.accel_ifname != ifp.if_xname and not self._ifname_is_any(sav)
        ext_call = None
        if not name_rejects and self._ext_install:
            ext_call = self._ext_newkey_call(vnet, sav, ifp)
            if ext_call is False:
                return 0                # "sa_sp_combined": deferred until a policy implies it
        if old and name_rejects:
            # 6ba593bb checked the name before the drv_spi failure.  With no
            # drv_spi left it would record a handle keyed by (u_int)-1 and
            # later KASSERT in free_unr; the model skips the interface.
            drv_spi = self.drv_spi_unr.alloc_unr()
            if drv_spi == -1:
                self._inc("drv_spi_exhausted")
                return 0
            return self._handle_sav(sav, ifp, drv_spi, None, IFP_HS_REJECTED)
        drv_spi = self.drv_spi_unr.alloc_unr()
        if drv_spi == -1:
            self._inc("drv_spi_exhausted")
            self._dprintf("newkey: cannot allocate a drv_spi for spi %#x on %s",
                          sav.spi, ifp.if_xname)
            return _errno.ENOMEM if old else 0
        if name_rejects:
            # Recorded REJECTED without asking the driver: it consumes a
            # drv_spi and makes the SA "accelerated" for dumps (§17.1).
            self._handle_sav(sav, ifp, drv_spi, None, IFP_HS_REJECTED)
            return 0
        if callable(ext_call):
            fn, args = ext_call(drv_spi)
        else:
            fn, args = ifp.if_ipsec_accel_m.if_sa_newkey, (ifp, sav, drv_spi)  # type: ignore[union-attr]
        error, priv = self._drv_newkey(ifp, sav, drv_spi, fn, args)
        return self._sa_newkey_result(sav, ifp, drv_spi, error, priv, old)

    def _sa_newkey_result(self: "OffloadEngine", sav: "secasvar", ifp: Ifnet, drv_spi: int,
                          error: int, priv: Any, old: bool) -> int:
        if error == 0:
            err = self._handle_sav(sav, ifp, drv_spi, priv, IFP_HS_HANDLED)
            if err:
                self._dprintf("newkey: recording the handle failed (%d) for spi %#x on %s",
                              err, sav.spi, ifp.if_xname)
                if "free_drv_spi_on_error" in self.extensions:
                    self._drv_deinstall_direct(ifp, drv_spi, priv)
                    self.drv_spi_unr.free_unr(drv_spi)
                else:
                    # FreeBSD (XXXKIB): the drv_spi and the hardware SA leak.
                    self._leak_drv_spi(drv_spi)
            return err if old else 0
        if error == _errno.EOPNOTSUPP:
            self._dprintf("newkey: driver refused spi %#x on %s", sav.spi, ifp.if_xname)
            err = self._handle_sav(sav, ifp, drv_spi, priv, IFP_HS_REJECTED)
            if err and "free_drv_spi_on_error" in self.extensions:
                self.drv_spi_unr.free_unr(drv_spi)
            elif err:
                self._leak_drv_spi(drv_spi)
            return err if old else 0
        self._inc("errors")
        self._dprintf("newkey: driver error %d for spi %#x on %s", error, sav.spi, ifp.if_xname)
        if priv is _ABANDONED:
            pass        # the stuck call owns the drv_spi; its late completion decides
        elif "free_drv_spi_on_error" in self.extensions:
            self.drv_spi_unr.free_unr(drv_spi)
        else:
            self._leak_drv_spi(drv_spi)         # FreeBSD: XXXKIB, never freed
        return error if old else 0

    def _leak_drv_spi(self: "OffloadEngine", drv_spi: int) -> None:
        with self.sav_tmp:
            self._drv_spi_leaked.add(drv_spi)
        self._inc("drv_spi_leaked")

    def _drv_newkey(self: "OffloadEngine", ifp: Ifnet, sav: "secasvar", drv_spi: int,
                    fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[int, Any]:
        """Call an install method through the guard; map exceptions and
        timeouts to errnos; arrange reconciliation of a late completion."""

        def late(res: Any, exc: Optional[BaseException]) -> None:
            ok = exc is None and isinstance(res, tuple) and res and res[0] == 0
            if ok:
                # The kernel recorded nothing: undo the hardware state now.
                self._drv_deinstall_direct(ifp, drv_spi, res[1])
            with self.sav_tmp:
                self._drv_spi_held.pop(drv_spi, None)
            if "free_drv_spi_on_error" in self.extensions:
                self.drv_spi_unr.free_unr(drv_spi)
            else:
                self._leak_drv_spi(drv_spi)
            ifp.if_rele()

        with self.sav_tmp:
            # Held until the call returns: a stuck driver may still use it.
            self._drv_spi_held[drv_spi] = "if_sa_newkey"
        # on abandonment the stuck call gets its own ifnet reference (dropped
        # by ``late``), taken before the helper can run ``late``.
        r = self.drv.call("if_sa_newkey", fn, args, late, ifp.if_ref)
        if r.status == CALL_TIMEOUT:
            self._drv_timed_out("if_sa_newkey", ifp, sav.spi)
            return DRV_TIMEOUT_ERRNO, _ABANDONED
        with self.sav_tmp:
            self._drv_spi_held.pop(drv_spi, None)
        if r.status == CALL_EXC:
            self._drv_raised("if_sa_newkey", ifp, r.value)
            return DRV_EXCEPTION_ERRNO, None
        res = r.value
        try:
            error, priv = res
            return int(error), priv
        except (TypeError, ValueError):
            self._drv_raised("if_sa_newkey", ifp,
                             TypeError(f"if_sa_newkey returned {res!r}, not (error, priv)"))
            return DRV_EXCEPTION_ERRNO, None

    def _drv_deinstall_direct(self: "OffloadEngine", ifp: Ifnet, drv_spi: int,
                              priv: Any) -> None:
        """if_sa_deinstall outside the handle protocol (undoing an install
        the kernel did not record), exceptions caught."""
        m = ifp.if_ipsec_accel_m
        if m is None or m.if_sa_deinstall is None:
            return
        try:
            m.if_sa_deinstall(ifp, drv_spi, priv)
            self._inc("deinstalls")
        except Exception as e:
            self._drv_raised("if_sa_deinstall", ifp, e)

    # -- handles ------------------------------------------------------------------

    def _handle_sav(self: "OffloadEngine", sav: "secasvar", ifp: Ifnet, drv_spi: int,
                    priv: Any, flags: int) -> int:
        """ipsec_accel_handle_sav: record a HANDLED or REJECTED handle.
        EALREADY if the SA already has one for ``ifp``; EEXIST if the drv_spi
        is indexed already (FreeBSD's pctrie insert cannot fail that way; it
        can only fail with ENOMEM, which the model does not inject)."""
        assert (flags & _HR) in (IFP_HS_HANDLED, IFP_HS_REJECTED)
        sah = sav.sah
        ihs = ifp_handle_sav(sav=sav, ifp=ifp, ifdata=priv, drv_spi=drv_spi, flags=flags,
                             hdr_ext_size=esp_hdrsiz_sav(sav),
                             xfh=xform_history(sah.saidx.dst, sav.spi, sah.saidx.proto,
                                               sah.saidx.mode) if sah is not None else None)
        with self.sav_tmp:
            for i in sav.accel_ifps:
                if i.ifp is ifp:
                    error = _errno.EALREADY
                    break
            else:
                error = _errno.EEXIST if drv_spi in self.drv_spi_index else 0
            if not error:
                ifp.if_ref()
                self.drv_spi_index[drv_spi] = ihs
                sav.accel_ifps = [ihs] + sav.accel_ifps      # CK_LIST_INSERT_HEAD
                self.all_sav_handles.insert_head(ihs)
        if error:
            self._inc("handle_errors")
            return error
        self._inc("installs" if flags & IFP_HS_HANDLED else "rejects")
        self._dprintf("sa %s: spi %#x on %s drv_spi %d",
                      "installed" if flags & IFP_HS_HANDLED else "rejected",
                      sav.spi, ifp.if_xname, drv_spi)
        return 0

    def _forget_handle_sav(self: "OffloadEngine", i: ifp_handle_sav) -> None:
        """ipsec_accel_forget_handle_sav.  Called and returns with "ipasat"
        held; drops it around the epoch wait and the driver call."""
        sav = i.sav
        sav.accel_ifps = [h for h in sav.accel_ifps if h is not i]
        self.all_sav_handles.remove(i)
        if self.drv_spi_index.get(i.drv_spi) is i:
            del self.drv_spi_index[i.drv_spi]
        self.sav_tmp.release()
        try:
            self.net_epoch.wait()
            ifp = i.ifp
            assert ifp is not None
            free_now = True
            if installed(i.flags):
                self._dprintf("sa deinstall %s spi %#x drv_spi %d flags %#x",
                              ifp.if_xname, sav.spi, i.drv_spi, i.flags)
                free_now = self._drv_deinstall(i)
            if free_now:
                ifp.if_rele()
                self.drv_spi_unr.free_unr(i.drv_spi)
        finally:
            self.sav_tmp.acquire()

    def _drv_deinstall(self: "OffloadEngine", i: ifp_handle_sav) -> bool:
        """if_sa_deinstall for an unlinked handle.  Returns False when the call
        was abandoned: the drv_spi and the ifnet reference then stay with the
        stuck call and are released when it returns."""
        ifp = i.ifp
        assert ifp is not None
        drv_spi = i.drv_spi

        def late(res: Any, exc: Optional[BaseException]) -> None:
            with self.sav_tmp:
                self._drv_spi_held.pop(drv_spi, None)
            ifp.if_rele()
            self.drv_spi_unr.free_unr(drv_spi)

        with self.sav_tmp:
            self._drv_spi_held[drv_spi] = "if_sa_deinstall"
        # An installed handle's ifp passed _sa_install_match (table not None);
        # FreeBSD calls if_sa_deinstall unchecked, a None here fails as CALL_EXC.
        r = self.drv.call("if_sa_deinstall", ifp.if_ipsec_accel_m.if_sa_deinstall,  # type: ignore[union-attr, arg-type]
                          (ifp, drv_spi, i.ifdata), late)
        self._inc("deinstalls")
        if r.status == CALL_TIMEOUT:
            self._drv_timed_out("if_sa_deinstall", ifp, i.sav.spi)
            return False
        with self.sav_tmp:
            self._drv_spi_held.pop(drv_spi, None)
        if r.status == CALL_EXC:
            self._drv_raised("if_sa_deinstall", ifp, r.value)
        return True

    def _forget_sav_clear(self: "OffloadEngine", sav: "secasvar") -> None:
        """ipsec_accel_forget_sav_clear ("ipasat" held)."""
        self._ext_forget(sav)
        while sav.accel_ifps:
            self._forget_handle_sav(sav.accel_ifps[0])

    # -- forget --------------------------------------------------------------------

    def _sa_forget(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar") -> None:
        """ipsec_accel_forget_sav_impl: the SA was just set DEAD."""
        with self.sav_tmp:
            sav.accel_flags |= SADB_KEY_ACCEL_DEINST
            self._ext_forget(sav)
            ftq = sav.accel_forget_tq
            if ftq is None:
                # No carrier: the install task has not finished (it will see
                # DEINST and forget inline), or never ran, or another forget
                # already claimed it.
                return
            sav.accel_forget_tq = None
        ftq.forget_vnet = vnet
        ftq.sav = sav
        ftq.forget_task = Task(self._sa_forget_act, ftq, name="ipsec_accel_forget_sav_act")
        self.tq.enqueue(ftq.forget_task)

    def _sa_forget_act(self: "OffloadEngine", ftq: _ForgetTq, pending: int) -> None:
        """ipsec_accel_forget_sav_act: the forget task."""
        self._inc("forget_tasks")
        with self.sav_tmp:
            self._forget_sav_clear(ftq.sav)

    # -- helpers used by the flows -------------------------------------------------

    def _drv_timed_out(self: "OffloadEngine", what: str, ifp: Ifnet, spi: int) -> None:
        self._inc("drv_timeouts")
        self._warn("driver %s on %s (spi/id %#x) did not return within %.3gs; abandoned",
                   what, ifp.if_xname, spi, self.drv.timeout or 0.0)

    def _drv_raised(self: "OffloadEngine", what: str, ifp: Optional[Ifnet],
                    exc: BaseException) -> None:
        self._inc("drv_exceptions")
        self.drv_errors.append((what, ifp.if_xname if ifp is not None else "?", exc))
        self._warn("driver %s on %s raised %r", what,
                   ifp.if_xname if ifp is not None else "?", exc)

