"""Opt-in behaviours beyond FreeBSD's ipsec_offload.c, each answering a
question raised in the FreeBSD review of the infrastructure (D44219, seed
003) or on the Linux/libreswan list (seed 002).  Enable them by name in
``IpsecOffload(extensions=...)``; docs/OFFLOAD_EXTENSIONS.md has the long
form.  With none enabled the model is FreeBSD's.

``reoffer``
    *Review:* "If this cap can be enabled/disabled on the fly ... allow
    existing SA/SP to be claimed by an ipsec_accel capable driver when it
    first starts or when the cap is first enabled."  FreeBSD installs an SA
    at most once and never replays (§17.9).  With ``reoffer`` an
    ``ifnet_arrival_event`` (not a rename) or an IPSEC capability turning on
    queues a task that offers that interface every alive SA without a handle
    there (MATURE or DYING; an SA whose install task never ran through gets
    an ordinary newkey) and every offered SP.  Also callable:
    :meth:`ipsec_accel_reoffer`.
``push_to_sw`` (an explicit call, nothing to enable)
    *Review:* "Allow removal of live SA/SP from the hw to force processing
    back into sw."  :meth:`ipsec_accel_push_to_sw` removes the handles of
    one SA, one SP, one interface or all, with on_ifdown's marker walk;
    the SA stays in the SAD and traffic continues in software.
``sa_direction``
    *Review:* "Any SA will always only be used in one direction ... it is
    incorrect for the infrastructure to explicitly announce that the SA
    will be used in both directions."  A driver providing
    ``if_sa_newkey_dir`` (:class:`IfIpsecAccelMethodsExt`) gets the
    direction the SPD implies (IPSEC_DIR.INBOUND / OUTBOUND) or
    SA_DIR_UNKNOWN -- never an implicit "both".
``sa_sp_combined``
    *Review:* "there are devices that require direction, mode
    (tunnel/transport), and the IP addresses involved ... those drivers will
    have to wait for the SPs to be added"; "some if_ callbacks that provide
    combined SA+SP information".  A driver providing ``if_sa_sp_newkey``
    gets a :class:`SaOffloadInfo` (direction, mode, addresses, the policies
    using the SA).  While no policy implies the SA, the install on that
    interface is deferred; a later SPDADD of such a policy installs it.
``nofallback``
    *Seed 002:* "some users might not want a software fallback if the
    hardware offload fails ... the crypto operation _must_ be processed by a
    special NIC".  Bit 0x1 of ``sadb_x_if_hw_offl.flags``
    (SADB_X_IF_HW_OFFL_F_NOFALLBACK; FreeBSD sends 0 and ignores it) or
    :meth:`ipsec_accel_sa_set_nofallback` marks an SA; an IF_HW_OFFL with an
    empty name and the bit means "any interface".  The datapath asks
    :meth:`ipsec_accel_sa_nofallback` and drops a packet of such an SA that
    it cannot offload instead of processing it in software.
``fips`` (a switch, :meth:`set_fips`)
    *Seed 002:* "If the private IPsec SA key get pushed into the card then we
    also have FIPS issues ... disable offload in FIPS mode."  While on, no SA
    or SP is offered and turning it on pushes everything back to software.
``free_drv_spi_on_error``
    §6.1/§17.2, "XXXKIB": FreeBSD leaks the drv_spi (and, if recording the
    handle fails, the hardware SA) when an install fails with an errno other
    than EOPNOTSUPP.  This frees/undoes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from pfkey.ipsec import IPSEC_MODE, IPSEC_POLICY
from pfkey.keydb import (
    DYING, IPSEC_SPSTATE_DEAD, MATURE, SADB_KEY_ACCEL_DEINST, SADB_KEY_ACCEL_INST, sa_key,
    sa_noport,
)
from pfkey.spd import SecPolicyIndex, key_cmpspidx_withmask

from .ifnet import IFCAP2_IPSEC_OFFLOAD_MASK, IFF_RENAMING, Ifnet

from .if_vlan import vlan_trunkdev
from .ipsec_offload_defs import (
    SA_DIR_UNKNOWN, SADB_X_IF_HW_OFFL_F_NOFALLBACK, IfIpsecAccelMethodsExt, SaOffloadInfo,
)
from .taskqueue import Task

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.keydb import secasvar, secpolicy
    from .ipsec_offload import _Vnet
    from .ipsec_offload_iface import OffloadEngine

__all__ = ["OffloadExtMixin"]

#: What _ext_newkey_call returns: None (FreeBSD's if_sa_newkey), False
#: (deferred), or a builder of (method, args) from the drv_spi.
NewkeyCall = Union[None, bool, Callable[[int], "tuple[Any, tuple[Any, ...]]"]]


class OffloadExtMixin:
    """The extensions; mixed into ``IpsecOffload``."""

    # -- nofallback ----------------------------------------------------------------

    def ipsec_accel_sa_nofallback(self: "OffloadEngine", sav: "secasvar") -> bool:
        """The datapath's predicate (extension "nofallback"): True when a
        packet of ``sav`` that cannot be offloaded must be dropped rather than
        processed in software.  Always False with the extension off."""
        return "nofallback" in self.extensions and \
            bool(getattr(sav, "accel_ifflags", 0) & SADB_X_IF_HW_OFFL_F_NOFALLBACK)

    def ipsec_accel_sa_set_nofallback(self: "OffloadEngine", sav: "secasvar",
                                      on: bool = True) -> None:
        """Set or clear the no-software-fallback flag of one SA."""
        if "nofallback" not in self.extensions:
            raise RuntimeError("extension 'nofallback' is not enabled")
        if on:
            sav.accel_ifflags |= SADB_X_IF_HW_OFFL_F_NOFALLBACK
        else:
            sav.accel_ifflags &= ~SADB_X_IF_HW_OFFL_F_NOFALLBACK

    def _ifname_is_any(self: "OffloadEngine", sav: "secasvar") -> bool:
        """An IF_HW_OFFL carrying only the nofallback bit (empty name) does
        not restrict interfaces.  (FreeBSD stores "" and so matches none.)"""
        return ("nofallback" in self.extensions and sav.accel_ifname == ""
                and bool(getattr(sav, "accel_ifflags", 0) & SADB_X_IF_HW_OFFL_F_NOFALLBACK))

    # -- direction / combined SA+SP -----------------------------------------------

    @staticmethod
    def _ext_methods(ifp: Ifnet) -> Optional[IfIpsecAccelMethodsExt]:
        m = ifp.if_ipsec_accel_m
        if isinstance(m, IfIpsecAccelMethodsExt):
            return m
        p = vlan_trunkdev(ifp)
        if p is not None and isinstance(p.if_ipsec_accel_m, IfIpsecAccelMethodsExt):
            return p.if_ipsec_accel_m
        return None

    def _ext_newkey_call(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar",
                         ifp: Ifnet) -> NewkeyCall:
        if not self._ext_install:
            return None
        m = self._ext_methods(ifp)
        if m is None:
            return None
        if "sa_sp_combined" in self.extensions and m.if_sa_sp_newkey is not None:
            info = self._sa_info(vnet, sav)
            if not info.policies:
                with self.sav_tmp:
                    if sav.accel_flags & SADB_KEY_ACCEL_DEINST:
                        return False
                    self._combined_pending.setdefault(sav, set()).add(ifp)
                self._inc("deferred")
                self._dprintf("combined: spi %#x on %s deferred until a policy uses it",
                              sav.spi, ifp.if_xname)
                return False
            fn = m.if_sa_sp_newkey
            return lambda drv_spi: (fn, (ifp, sav, drv_spi, info))
        if "sa_direction" in self.extensions and m.if_sa_newkey_dir is not None:
            direction = self._sa_info(vnet, sav).direction
            fdir = m.if_sa_newkey_dir
            return lambda drv_spi: (fdir, (ifp, sav, drv_spi, direction))
        return None

    def _sa_info(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar") -> SaOffloadInfo:
        """The SPD's view of an SA: which policies' requests it satisfies.

        A request matches when proto agrees, the mode agrees (an SA of mode
        ANY matches any), non-zero reqids agree, and either the request's
        tunnel endpoints equal the SA's addresses or (transport, no
        endpoints) the SA's addresses fall inside the policy's selector
        (ports and upper protocol ignored).  The direction is that of the
        matching policies when they all agree, else SA_DIR_UNKNOWN.
        """
        # Only SAs being installed get here: linked into the SAD, so sah is set.
        saidx = sav.sah.saidx  # type: ignore[union-attr]
        key = vnet.key
        with key.sptree_lock:
            sps = list(key.iter_sp())
        obj = SecPolicyIndex(0, saidx.src, saidx.dst, 0, 0, 255)
        found: list[Any] = []
        dirs: set[int] = set()
        for sp in sps:
            if sp.state == IPSEC_SPSTATE_DEAD or sp.policy != IPSEC_POLICY.IPSEC:
                continue
            for r in sp.req:
                rs = r.saidx
                if rs.proto != saidx.proto:
                    continue
                if saidx.mode != IPSEC_MODE.ANY and rs.mode != saidx.mode:
                    continue
                if rs.reqid and saidx.reqid and rs.reqid != saidx.reqid:
                    continue
                if rs.src.sa_len and rs.dst.sa_len:
                    ok = sa_key(rs.src) == sa_key(saidx.src) and \
                        sa_key(rs.dst) == sa_key(saidx.dst)
                else:
                    sel = sp.spidx
                    pat = sel._replace(src=sa_noport(sel.src), dst=sa_noport(sel.dst),
                                       ul_proto=255)
                    ok = key_cmpspidx_withmask(pat, obj)
                if ok:
                    found.append(sp)
                    dirs.add(int(sp.spidx.dir))
                    break
        direction = dirs.pop() if len(dirs) == 1 else SA_DIR_UNKNOWN
        return SaOffloadInfo(direction, saidx.mode, saidx.proto, saidx.reqid, saidx.src,
                             saidx.dst, tuple(found))

    def _ext_sp_added(self: "OffloadEngine", vnet: "_Vnet", sp: "secpolicy") -> None:
        """After an SP's add task: install deferred SAs the SP now implies."""
        if "sa_sp_combined" not in self.extensions or self.fips_mode:
            return
        with self.sav_tmp:
            pending = list(self._combined_pending.items())
        for sav, ifps in pending:
            if not any(p is sp for p in self._sa_info(vnet, sav).policies):
                continue
            with self.sav_tmp:
                ifps = self._combined_pending.pop(sav, set())
                dead = bool(sav.accel_flags & SADB_KEY_ACCEL_DEINST)
            if dead or sav.state not in (MATURE, DYING) or not ifps:
                continue
            self._sa_install_walk_some(vnet, sav, ifps)
            self._sa_install_finish(sav)

    def _sa_install_walk_some(self: "OffloadEngine", vnet: "_Vnet", sav: "secasvar",
                              ifps: set[Ifnet]) -> None:
        def match(ifp: Ifnet) -> bool:
            return ifp in ifps and self._sa_install_match(ifp) and \
                not any(i.ifp is ifp for i in sav.accel_ifps)

        vnet.ifnets.if_foreach_sleep(match, lambda ifp: self._sa_newkey_cb(vnet, sav, ifp))

    def _ext_forget(self: "OffloadEngine", sav: "secasvar") -> None:
        """"ipasat" held: a forgotten SA is no longer pending anywhere."""
        if self._combined_pending:
            self._combined_pending.pop(sav, None)

    def _ext_ifdown(self: "OffloadEngine", ifp: Ifnet) -> None:
        if not self._combined_pending:
            return
        with self.sav_tmp:
            for ifps in self._combined_pending.values():
                ifps.discard(ifp)

    # -- reoffer -------------------------------------------------------------------

    def _arrival_event(self: "OffloadEngine", vnet: "_Vnet", ifp: Ifnet) -> None:
        if ifp.if_flags & IFF_RENAMING:
            return
        if ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            self._reoffer_enqueue(vnet, ifp)

    def _capchange_event(self: "OffloadEngine", vnet: "_Vnet", ifp: Ifnet, old: int,
                         old2: int) -> None:
        if ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK and \
                not old2 & IFCAP2_IPSEC_OFFLOAD_MASK:
            self._reoffer_enqueue(vnet, ifp)

    def ipsec_accel_reoffer(self: "OffloadEngine", ifp: Ifnet,
                            vnet: Optional["_Vnet"] = None) -> None:
        """Queue a re-offer of the SAD and SPD to ``ifp`` (extension
        "reoffer"); ``ipsec_accel_sync()`` waits for it."""
        if "reoffer" not in self.extensions:
            raise RuntimeError("extension 'reoffer' is not enabled")
        self._reoffer_enqueue(vnet if vnet is not None else self._vnet_of(ifp), ifp)

    def _reoffer_enqueue(self: "OffloadEngine", vnet: "_Vnet", ifp: Ifnet) -> None:
        if self.fips_mode or not ifp.if_try_ref():
            return
        self.tq.enqueue(Task(self._reoffer_act, (vnet, ifp), name="ipsec_accel_reoffer"))

    def _reoffer_act(self: "OffloadEngine", ctx: tuple["_Vnet", Ifnet], pending: int) -> None:
        vnet, ifp = ctx
        try:
            if not ifp.attached or self.fips_mode:
                return
            self._inc("reoffers")
            self._dprintf("reoffer: SAD and SPD to %s", ifp.if_xname)
            key = vnet.key
            with key.sahtree_lock:
                savs = list(key.iter_sav())
            for sav in savs:
                with self.sav_tmp:
                    flags = sav.accel_flags
                    has = any(i.ifp is ifp for i in sav.accel_ifps)
                if flags & SADB_KEY_ACCEL_DEINST or has:
                    continue
                if not flags & SADB_KEY_ACCEL_INST:
                    # Never installed (its install task skipped, or is still
                    # queued): an ordinary newkey covers every interface.
                    if sav.state == MATURE:
                        self._sa_newkey(vnet, sav)
                    continue
                if sav.state not in (MATURE, DYING):
                    continue
                # INST set means its install task finished (tasks never
                # interleave), so the forget carrier exists: a forget from now
                # on queues its task behind us, and one that already claimed it
                # set DEINST, which _sa_install_finish handles inline.
                self._sa_install_walk(vnet, sav, ifp)
                self._sa_install_finish(sav)
            with key.sptree_lock:
                sps = list(key.iter_sp())
            for sp in sps:
                if sp.state == IPSEC_SPSTATE_DEAD or sp.accel_del_tq.adddel_scheduled:
                    continue
                if not sp.accel_add_tq.adddel_scheduled:
                    self._spdadd(vnet, sp, None)     # never offered (e.g. FIPS at the time)
                elif not any(i.ifp is ifp for i in sp.accel_ifps):
                    self._sp_install_walk(vnet, sp, ifp)
        finally:
            ifp.if_rele()

    # -- push to software / FIPS ----------------------------------------------------

    def ipsec_accel_push_to_sw(self: "OffloadEngine", *, ifp: Optional[Ifnet] = None,
                               sav: Optional["secasvar"] = None,
                               sp: Optional["secpolicy"] = None) -> int:
        """Remove live offload state so processing continues in software:
        the handles of ``sav`` and/or ``sp`` (on ``ifp`` only, if given), or
        every handle of ``ifp``, or -- with no argument -- every handle.
        Synchronous (the caller's thread, like on_ifdown); returns the number
        of handles removed.  Nothing is re-offered later unless "reoffer"."""
        if sav is None and sp is None:
            n = self._on_ifdown_sp(lambda i: ifp is None or i.ifp is ifp)
            n += self._on_ifdown_sav(lambda i: ifp is None or i.ifp is ifp)
        else:
            n = 0
            if sp is not None:
                n += self._on_ifdown_sp(lambda i: i.sp is sp and (ifp is None or i.ifp is ifp))
            if sav is not None:
                n += self._on_ifdown_sav(
                    lambda i: i.sav is sav and (ifp is None or i.ifp is ifp))
        self._inc("pushed_to_sw", n)
        self._dprintf("push_to_sw: %d handles removed", n)
        return n

    def set_fips(self: "OffloadEngine", on: bool) -> None:
        """The FIPS switch: on = nothing is offered and every live handle is
        pushed back to software; off = offers resume for new objects (and,
        with "reoffer", existing ones are offered again)."""
        was = self.fips_mode
        self.fips_mode = bool(on)
        if on and not was:
            self._dprintf("FIPS mode on: offload disabled")
            # Let a task already inside a driver finish (queued ones now skip),
            # then remove everything: no key stays in a NIC.
            self.ipsec_accel_sync()
            self.ipsec_accel_push_to_sw()
        elif was and not on and "reoffer" in self.extensions:
            for vnet in list(self._vnets):
                for ifp in list(vnet.ifnets):
                    if ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK:
                        self._reoffer_enqueue(vnet, ifp)
