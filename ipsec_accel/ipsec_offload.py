"""FreeBSD's inline IPsec offload infrastructure, ``sys/netipsec/ipsec_offload.c``
(internal name "ipsec_accel"), as one object: :class:`IpsecOffload`.

What it is (freebsd_ipsec_offload.md §3-§11): a shadow database of offload
*handles* -- one ``ifp_handle_sav`` per (SA, interface) and one
``ifp_handle_sp`` per (SP, interface) -- rooted in ``secasvar.accel_ifps`` and
``secpolicy.accel_ifps`` and on two global lists, a global drv_spi allocator
(3..0xffff, 2 = BYPASS) with a drv_spi -> handle index, and a single-threaded
taskqueue ("ipsec_offload") through which key.c's hooks reach the drivers.

Attaching (SYSINIT)::

    key = Key(clock)                       # pfkey.key.Key, one vnet
    ifnets = IfnetRegistry()               # that vnet's interfaces
    off = IpsecOffload(key, ifnets)        # hooks installed, departure handler registered
    ...
    off.ipsec_accel_sync()                 # taskqueue_drain_all
    off.detach()                           # SYSUNINIT

More vnets: ``off.attach(key2, ifnets2)``; everything global in FreeBSD (the
handle lists, drv_spi space, taskqueue, mutexes) is shared, as there.

Module layout: :mod:`.ipsec_offload_defs` (constants, handle types, net
epoch, driver-call guard, KPI extension types), :mod:`.ipsec_offload_sa`
(newkey, install walk, handle bookkeeping, forget), :mod:`.ipsec_offload_lft`
(driver counters, lifetimes, dump extensions), :mod:`.ipsec_offload_datapath`
(per-packet helpers), :mod:`.ipsec_offload_sp` (spdadd/spddel/on_ifdown/
departure), :mod:`.ipsec_offload_ext` (opt-in extensions).  This module holds the state, attach/detach, the per-vnet hook
table, the verbose log, statistics and the invariant checker;
:mod:`.ipsec_offload_iface` is the mixins' typing view of IpsecOffload.

Locks (one per FreeBSD lock):

* ``sav_tmp`` -- mtx "ipasat": every handle list, the drv_spi index, the
  SA's ``accel_flags`` / ``accel_forget_tq``, the SP's one-shot flags (the
  model does FreeBSD's cmpsets under it), the drv_spi allocator (as its
  mutex).  Never held across a driver call, a key.c call, a taskqueue wait
  or an epoch wait.  Lock order: key.c's SAHTREE/SPTREE -> ipasat.
* ``cnt_lock`` -- mtx "ipascn": the driver counter helpers.
* ``net_epoch`` -- the net epoch readers enter; removals wait for it.

Datapath entry points (per packet; lock-free reads under ``net_epoch``):
``ipsec_accel_sav_handle(sav, ifp)`` (step 3 of ipsec_accel_output: the
installed handle on exactly ``ifp`` with the capability on, else None),
``ipsec_accel_is_accel_sav_ptr``, ``ipsec_accel_drvspi_lookup`` /
``ipsec_accel_drvspi_to_sa`` (input), ``ipsec_accel_fill_xh``,
``ipsec_accel_sa_recordxfer``, ``ipsec_accel_hwassist``, the handle's
``hdr_ext_size``/``drv_spi``, and ``ipsec_accel_sa_nofallback`` (extension).

Quirks (§18, default fixed; name them in ``quirks=`` to reproduce FreeBSD):
see :data:`QUIRKS`.  Behaviour FreeBSD has and the model keeps by default
(§17; these are not bugs the model fixes silently): REJECTED handles consume
a drv_spi; an "other" driver error leaks its drv_spi (extension
"free_drv_spi_on_error" frees it); an SA is installed at most once; nothing
is re-offered; SA delete and SPDFLUSH are asynchronous.

Departures from FreeBSD (all deliberate, each commented where it happens):
driver calls are guarded (exceptions become EIO, taskqueue-thread hangs are
abandoned after ``drv_timeout``, see ipsec_offload_defs); an SP handle whose
``if_spdadd`` is still running is only marked by a concurrent on_ifdown and
removed when the driver returns (FreeBSD frees it under the callback: quirk
"sp_install_ifdown_race"); an IPSEC-enabled ifnet without a methods table
is skipped instead of dereferenced; a recorded handle of a non-ESP SA gets
``hdr_ext_size`` 0 (FreeBSD's esp_hdrsiz would dereference NULL); reference
counts are not modelled (Python owns object lifetimes), except ifnet
references.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Union, cast

from pfkey.clock import Clock, SystemClock
from pfkey.extensions import SadbXIfHwOffl
from pfkey.hooks import AccelHooks
from pfkey.keydb import DEAD, IPSEC_SPSTATE_DEAD, secasvar, seclifetime, secpolicy

from .ifnet import Ifnet, IfnetRegistry
from .ipsec_offload_defs import (
    CALL_EXC, CALL_OK, CALL_TIMEOUT, DRV_EXCEPTION_ERRNO, DRV_TIMEOUT_ERRNO, EXTENSIONS,
    IFP_HP_HANDLED, IFP_HP_MARKER, IFP_HP_REJECTED, IFP_HS_HANDLED, IFP_HS_MARKER,
    IFP_HS_REJECTED, IPSEC_ACCEL_DRV_SPI_BYPASS, IPSEC_ACCEL_DRV_SPI_MAX,
    IPSEC_ACCEL_DRV_SPI_MIN, QUIRKS, SA_DIR_UNKNOWN, SADB_X_IF_HW_OFFL_F_NOFALLBACK, CkList,
    DrvCall, DrvGuard, IfIpsecAccelMethodsExt, NetEpoch, OffloadStats, SaOffloadInfo,
    ifp_handle_sav, ifp_handle_sp, installed, xform_history,
)
from .ipsec_offload_datapath import OffloadDatapathMixin
from .ipsec_offload_ext import OffloadExtMixin
from .ipsec_offload_lft import OffloadLifetimeMixin
from .ipsec_offload_sa import OffloadSAMixin, esp_hdrsiz_sav
from .ipsec_offload_sp import OffloadSPMixin
from .taskqueue import TaskQueue, TqMode
from .unr import UnrAllocator

if TYPE_CHECKING:  # pragma: no cover
    from .unr import _Mutex

__all__ = [
    "IpsecOffload", "OffloadHooks", "OffloadStats", "OffloadCheckError", "QUIRKS",
    "EXTENSIONS", "SYSCTLS", "IPSEC_ACCEL_DRV_SPI_BYPASS", "IPSEC_ACCEL_DRV_SPI_MIN",
    "IPSEC_ACCEL_DRV_SPI_MAX", "IFP_HS_HANDLED", "IFP_HS_REJECTED", "IFP_HS_MARKER",
    "IFP_HP_HANDLED", "IFP_HP_REJECTED", "IFP_HP_MARKER", "SADB_X_IF_HW_OFFL_F_NOFALLBACK",
    "SA_DIR_UNKNOWN", "DRV_EXCEPTION_ERRNO", "DRV_TIMEOUT_ERRNO", "ifp_handle_sav",
    "ifp_handle_sp", "xform_history", "installed", "NetEpoch", "DrvGuard", "DrvCall",
    "CALL_OK", "CALL_EXC", "CALL_TIMEOUT", "IfIpsecAccelMethodsExt", "SaOffloadInfo",
    "esp_hdrsiz_sav", "ipsec_offload_attach",
]

log = logging.getLogger("ipsec_accel.ipsec_offload")

#: sysctl name -> attribute.  Only ``verbose`` exists in FreeBSD; ``fips``
#: is the model's switch (extension).
SYSCTLS: dict[str, str] = {
    "net.inet.ipsec.offload.verbose": "verbose",
    "net.inet.ipsec.offload.fips": "fips_mode",
}

_STAT_FIELDS = OffloadStats._fields


class OffloadCheckError(AssertionError):
    """An offload invariant does not hold (raised by ``_check``)."""


class _Vnet:
    """One attached vnet: its key engine, its interfaces, its hook table and
    the event-handler tags to deregister on detach."""

    __slots__ = ("key", "ifnets", "hooks", "tags")

    def __init__(self, key: Any, ifnets: IfnetRegistry) -> None:
        self.key = key
        self.ifnets = ifnets
        self.hooks: Optional[OffloadHooks] = None
        self.tags: list[tuple[Any, int]] = []


class OffloadHooks(AccelHooks):
    """The ``ipsec_accel_*_p`` table of one vnet: what key.c calls.  Each hook
    forwards to the shared :class:`IpsecOffload` with the vnet the call came
    from (FreeBSD records ``curvnet`` in every task carrier)."""

    attached = True

    def __init__(self, off: "IpsecOffload", vnet: _Vnet) -> None:
        self.off = off
        self.vnet = vnet

    def ipsec_accel_sa_newkey(self, sav: secasvar) -> None:
        self.off._sa_newkey(self.vnet, sav)

    def ipsec_accel_forget_sav(self, sav: secasvar) -> None:
        self.off._sa_forget(self.vnet, sav)

    def ipsec_accel_is_accel_sav(self, sav: secasvar) -> bool:
        return bool(sav.accel_ifps)

    def ipsec_accel_sa_lifetime_op(self, sav: secasvar, lft_c: seclifetime, ifp: Any, op: int,
                                   sahtree_tracker: Any = None) -> int:
        return self.off.ipsec_accel_sa_lifetime_op(sav, lft_c, ifp, op, sahtree_tracker)

    def ipsec_accel_key_setaccelif(self, sav: secasvar) -> list[SadbXIfHwOffl]:
        return self.off.ipsec_accel_key_setaccelif(sav)

    def ipsec_accel_spdadd(self, sp: secpolicy, inp: Optional[Any] = None) -> None:
        self.off._spdadd(self.vnet, sp, inp)

    def ipsec_accel_spddel(self, sp: secpolicy) -> None:
        self.off._spddel(self.vnet, sp)

    def ipsec_accel_sync(self) -> None:
        self.off.ipsec_accel_sync()

    def ipsec_accel_on_ifdown(self, ifp: Any) -> None:
        self.off.ipsec_accel_on_ifdown(ifp)

    def ipsec_accel_drv_sa_lifetime_update(self, sav: secasvar, ifp: Any, drv_spi: int,
                                           octets: int, allocs: int) -> None:
        self.off.ipsec_accel_drv_sa_lifetime_update(sav, ifp, drv_spi, octets, allocs)

    def ipsec_accel_drv_sa_lifetime_fetch(self, sav: secasvar, ifp: Any,
                                          drv_spi: int) -> tuple[int, int, int]:
        return self.off.ipsec_accel_drv_sa_lifetime_fetch(sav, ifp, drv_spi)


class IpsecOffload(OffloadSAMixin, OffloadLifetimeMixin, OffloadDatapathMixin, OffloadSPMixin,
                   OffloadExtMixin):
    """The offload infrastructure (ipsec_offload.c's globals and functions).

    ``key``/``ifnets``: attach to this vnet right away (see :meth:`attach`).
    ``tq``: the "ipsec_offload" taskqueue, or ``tq_mode`` to create one
    (THREAD by default; INLINE/MANUAL for deterministic tests).
    ``quirks``: names from :data:`QUIRKS`; ``extensions``: names from
    :data:`EXTENSIONS`.  ``drv_timeout``/``drv_guard``: the driver-call
    bound (ipsec_offload_defs, "Driver calls"); ``"auto"`` = 5 s.
    ``clock``: time_second for accel_firstused (default: the first attached
    key's clock).  ``verbose``: net.inet.ipsec.offload.verbose.
    ``nowait_fail``: fault injection for M_NOWAIT allocations --
    ``nowait_fail(what) -> bool`` (what = "newkey_tq").
    """

    def __init__(self, key: Any = None, ifnets: Optional[IfnetRegistry] = None, *,
                 tq: Optional[TaskQueue] = None, tq_mode: TqMode = TqMode.THREAD,
                 quirks: Iterable[str] = (), extensions: Iterable[str] = (),
                 drv_timeout: Union[float, None, str] = "auto", drv_guard: str = "taskqueue",
                 clock: Optional[Clock] = None, verbose: bool = False, log_size: int = 4096,
                 nowait_fail: Optional[Callable[[str], bool]] = None) -> None:
        self.quirks = frozenset(quirks)
        self.extensions = frozenset(extensions)
        bad = (self.quirks - set(QUIRKS)) | (self.extensions - set(EXTENSIONS))
        if bad:
            raise ValueError(f"unknown quirks/extensions: {sorted(bad)}")
        self._ext_install = bool({"sa_direction", "sa_sp_combined"} & self.extensions)
        # mtx "ipasat" and mtx "ipascn" (ipsec_accel_init)
        self.sav_tmp = threading.Lock()
        self.cnt_lock = threading.Lock()
        # cast: a threading.Lock is what unr's _Mutex describes, but _Mutex
        # declares __exit__(*exc), which no lock's three-argument __exit__
        # matches (unr.py should declare it as Lock does).
        self.drv_spi_unr = UnrAllocator(IPSEC_ACCEL_DRV_SPI_MIN, IPSEC_ACCEL_DRV_SPI_MAX,
                                        mutex=cast("_Mutex", self.sav_tmp))
        self.all_sav_handles = CkList()       # ipsec_accel_all_sav_handles
        self.all_sp_handles = CkList()        # ipsec_accel_all_sp_handles
        self.drv_spi_index: dict[int, ifp_handle_sav] = {}   # drv_spi_pctrie
        self.net_epoch = NetEpoch()
        self._own_tq = tq is None
        self.tq = tq if tq is not None else TaskQueue("ipsec_offload", tq_mode)
        if drv_timeout == "auto":
            drv_timeout = 5.0
        assert drv_timeout is None or isinstance(drv_timeout, (int, float))
        self.drv = DrvGuard(drv_timeout, drv_guard, lambda: self.tq.thread, self._late_done)
        self.clock: Optional[Clock] = clock
        self.verbose = bool(verbose)
        self.fips_mode = False
        self._nowait_fail = nowait_fail
        self.log_ring: deque[str] = deque(maxlen=log_size)
        self.drv_errors: deque[tuple[str, str, BaseException]] = deque(maxlen=64)
        self._stat_lock = threading.Lock()
        self._stats = dict.fromkeys(_STAT_FIELDS, 0)
        # drv_spi accounting beyond live handles (for _check and the stats)
        self._drv_spi_leaked: set[int] = set()
        self._drv_spi_held: dict[int, str] = {}
        # extension "sa_sp_combined": SA -> interfaces waiting for a policy
        self._combined_pending: dict[secasvar, set[Ifnet]] = {}
        self._vnets: list[_Vnet] = []
        self._attached = True
        if key is not None or ifnets is not None:
            if key is None or ifnets is None:
                raise ValueError("attach needs both key and ifnets")
            self.attach(key, ifnets)

    # -- SYSINIT / SYSUNINIT -----------------------------------------------------------

    def attach(self, key: Any, ifnets: IfnetRegistry) -> OffloadHooks:
        """Fill ``key``'s hook table and register the departure handler on
        ``ifnets`` (and, with "reoffer", arrival/capability handlers)."""
        vnet = _Vnet(key, ifnets)
        hooks = OffloadHooks(self, vnet)
        vnet.hooks = hooks
        ev = ifnets.ifnet_departure_event
        vnet.tags.append((ev, ev.register(self._ifdetach_event)))
        if "reoffer" in self.extensions:
            ev = ifnets.ifnet_arrival_event
            vnet.tags.append((ev, ev.register(lambda ifp: self._arrival_event(vnet, ifp))))
            ev = ifnets.ifnet_capchange_event
            vnet.tags.append((ev, ev.register(
                lambda ifp, old, old2: self._capchange_event(vnet, ifp, old, old2))))
        if self.clock is None:
            self.clock = getattr(key, "clock", None) or SystemClock()
        self._vnets.append(vnet)
        key.set_accel_hooks(hooks)
        return hooks

    def detach(self, key: Any = None, *, timeout: float = 10.0) -> None:
        """SYSUNINIT (with ``key`` None: every vnet): deregister handlers,
        clear the hooks, drain the taskqueue; when the last vnet goes, free the
        taskqueue (if it created it) and stop the driver-call helpers.  Like
        FreeBSD's fini it does not deinstall live handles."""
        for vnet in [v for v in self._vnets if key is None or v.key is key]:
            for ev, tag in vnet.tags:
                ev.deregister(tag)
            vnet.tags.clear()
            if vnet.key.hooks is vnet.hooks:
                vnet.key.set_accel_hooks(None)
            self._vnets.remove(vnet)
        if not self._vnets and self._attached:
            self._attached = False
            if self.tq.active:
                self.tq.drain_all(timeout)
                if self._own_tq:
                    self.tq.free(timeout)
            self.drv.shutdown()

    def _vnet_of(self, ifp: Ifnet) -> _Vnet:
        for v in self._vnets:
            if ifp.registry is v.ifnets:
                return v
        if len(self._vnets) == 1:
            return self._vnets[0]
        raise LookupError(f"{ifp.if_xname} belongs to no attached vnet")

    @property
    def hooks(self) -> OffloadHooks:
        """The hook table of the first (usually only) vnet."""
        h = self._vnets[0].hooks
        assert h is not None
        return h

    # -- FreeBSD-named entry points not tied to a vnet ---------------------------------

    def ipsec_accel_sync(self) -> None:
        """ipsec_accel_sync_imp: taskqueue_drain_all (tasks queued by the
        tasks it waits for are not waited for, exactly like FreeBSD)."""
        self.tq.drain_all()

    def ipsec_accel_sa_newkey(self, sav: secasvar, vnet: Optional[_Vnet] = None) -> None:
        self._sa_newkey(vnet or self._vnets[0], sav)

    def ipsec_accel_forget_sav(self, sav: secasvar, vnet: Optional[_Vnet] = None) -> None:
        self._sa_forget(vnet or self._vnets[0], sav)

    def ipsec_accel_spdadd(self, sp: secpolicy, inp: Any = None,
                           vnet: Optional[_Vnet] = None) -> None:
        self._spdadd(vnet or self._vnets[0], sp, inp)

    def ipsec_accel_spddel(self, sp: secpolicy, vnet: Optional[_Vnet] = None) -> None:
        self._spddel(vnet or self._vnets[0], sp)

    # -- sysctl, log, statistics ---------------------------------------------------------

    def sysctl(self, name: str, value: Optional[int] = None) -> int:
        """Read (or set) a net.inet.ipsec.offload.* sysctl; returns the old value."""
        attr = SYSCTLS.get(name)
        if attr is None:
            raise KeyError(f"unknown sysctl {name}")
        old = int(getattr(self, attr))
        if value is not None:
            if attr == "fips_mode":
                self.set_fips(bool(value))
            else:
                setattr(self, attr, bool(value))
        return old

    def _dprintf(self, fmt: str, *args: Any) -> None:
        """dprintf: only when net.inet.ipsec.offload.verbose is set; into the
        ring the tests read and to the logger at DEBUG."""
        if not self.verbose:
            return
        msg = fmt % args
        self.log_ring.append(msg)
        log.debug("%s", msg)

    def _warn(self, fmt: str, *args: Any) -> None:
        """Driver exceptions and hangs: always logged (WARNING) and kept in
        the ring, verbose or not -- they are model-only events."""
        msg = fmt % args
        self.log_ring.append(msg)
        log.warning("%s", msg)

    def log_lines(self, contains: str = "") -> list[str]:
        return [m for m in list(self.log_ring) if contains in m]

    def _inc(self, name: str, n: int = 1) -> None:
        with self._stat_lock:
            self._stats[name] += n

    def _nowait_fails(self, what: str) -> bool:
        f = self._nowait_fail
        return bool(f is not None and f(what))

    def _late_done(self, what: str, res: Any, exc: Optional[BaseException]) -> None:
        self._inc("late_completions")
        self._warn("abandoned driver call %s returned late: %r", what,
                   exc if exc is not None else res)

    @property
    def stats(self) -> OffloadStats:
        with self._stat_lock:
            d = dict(self._stats)
        with self.sav_tmp:
            d["drv_spi_in_use"] = self.drv_spi_unr.in_use
            d["sa_handles"] = len(self.drv_spi_index)
            d["sp_handles"] = self._count_sp_handles()
        return OffloadStats(**d)

    def _count_sp_handles(self) -> int:
        return sum(1 for h in self.all_sp_handles if h.sp is not None)

    @property
    def drv_spi_leaked(self) -> frozenset[int]:
        with self.sav_tmp:
            return frozenset(self._drv_spi_leaked)

    def sav_handles(self) -> list[ifp_handle_sav]:
        """Every SA handle, global-list order (newest first), no markers."""
        with self.sav_tmp:
            return [h for h in self.all_sav_handles if not h.flags & IFP_HS_MARKER]

    def sp_handles(self, include_markers: bool = False) -> list[ifp_handle_sp]:
        with self.sav_tmp:
            return [h for h in self.all_sp_handles if include_markers or h.sp is not None]

    def quiesce(self, timeout: Optional[float] = 30.0) -> bool:
        """Wait until the taskqueue is empty and idle (tasks queued by tasks
        included) -- a test helper, not a FreeBSD call."""
        return self.tq.quiesce(timeout)

    # -- invariants ----------------------------------------------------------------------

    def _check(self, quiescent: bool = False) -> None:
        """Assert the offload invariants; raises :class:`OffloadCheckError`.

        Always: list links consistent; every handle exactly HANDLED or
        REJECTED (SP: HANDLED, maybe |REJECTED), on its object's list exactly
        once and on the global list; at most one handle per (object, ifp);
        drv_spi in range, indexed to exactly its handle, allocated, and never
        live in two handles; the index holds only listed handles.

        ``quiescent`` (taskqueue drained, no walk or driver call running):
        no marker left, no handle on a DEAD SA or SP, and the drv_spi
        allocator accounts exactly: in use = handles + leaked + held by
        abandoned driver calls.
        """
        def fail(msg: str) -> None:
            raise OffloadCheckError(msg)

        with self.sav_tmp:
            allocated_free = self.drv_spi_unr._free      # read under its own mutex
            top = self.drv_spi_unr._next
            seen_spi: set[int] = set()
            listed: set[int] = set()
            per_obj: set[tuple[int, int]] = set()
            n = 0
            prev = None
            for h in self.all_sav_handles:
                if h.allh_prev is not prev:
                    fail(f"SA list back link broken at {h!r}")
                prev = h
                if h.flags & IFP_HS_MARKER:
                    if quiescent:
                        fail("SA marker left on the global list")
                    continue
                n += 1
                listed.add(id(h))
                if (h.flags & (IFP_HS_HANDLED | IFP_HS_REJECTED)) not in (
                        IFP_HS_HANDLED, IFP_HS_REJECTED):
                    fail(f"{h!r} has flags {h.flags:#x}")
                if not IPSEC_ACCEL_DRV_SPI_MIN <= h.drv_spi <= IPSEC_ACCEL_DRV_SPI_MAX:
                    fail(f"{h!r} drv_spi out of range")
                if h.drv_spi in seen_spi:
                    fail(f"drv_spi {h.drv_spi} live in two handles")
                seen_spi.add(h.drv_spi)
                if self.drv_spi_index.get(h.drv_spi) is not h:
                    fail(f"{h!r} not indexed under its drv_spi")
                if not (h.drv_spi < top and h.drv_spi not in allocated_free):
                    fail(f"{h!r} drv_spi is not allocated")
                if h.drv_spi in self._drv_spi_leaked:
                    fail(f"{h!r} drv_spi also counted as leaked")
                if sum(1 for x in h.sav.accel_ifps if x is h) != 1:
                    fail(f"{h!r} not exactly once on its SA's list")
                k = (id(h.sav), id(h.ifp))
                if k in per_obj:
                    fail(f"two handles for one (SA, ifp): {h!r}")
                per_obj.add(k)
                if h.ifp is None or h.ifp.if_refcount <= 0:
                    fail(f"{h!r} holds no ifnet reference")
                if quiescent and h.sav.state == DEAD:
                    fail(f"{h!r} left on a DEAD SA")
            if n != len(self.drv_spi_index):
                fail(f"drv_spi index has {len(self.drv_spi_index)} entries, list {n}")
            if prev is not None and prev.allh_next is not None:
                fail("SA list tail link broken")
            for h in list(self.drv_spi_index.values()):
                for x in h.sav.accel_ifps:
                    if id(x) not in listed:
                        fail(f"{x!r} on its SA's list but not on the global list")
            per_sp: set[tuple[int, int]] = set()
            listed_sp: set[int] = set()
            sps: list[Any] = []
            prev = None
            for sh in self.all_sp_handles:
                if sh.allh_prev is not prev:
                    fail("SP list back link broken")
                prev = sh
                if sh.sp is None:
                    if quiescent:
                        fail("SP marker left on the global list")
                    continue
                if not sh.flags & IFP_HP_HANDLED or sh.flags & ~(IFP_HP_HANDLED |
                                                                 IFP_HP_REJECTED):
                    fail(f"{sh!r} has flags {sh.flags:#x}")
                listed_sp.add(id(sh))
                sps.append(sh.sp)
                if sum(1 for x in sh.sp.accel_ifps if x is sh) != 1:
                    fail(f"{sh!r} not exactly once on its SP's list")
                if sh.ifp is None or sh.ifp.if_refcount <= 0:
                    fail(f"{sh!r} holds no ifnet reference")
                k = (id(sh.sp), id(sh.ifp))
                if k in per_sp:
                    fail(f"two handles for one (SP, ifp): {sh!r}")
                per_sp.add(k)
                if quiescent and sh.sp.state == IPSEC_SPSTATE_DEAD:
                    fail(f"{sh!r} left on a DEAD SP")
                if quiescent and (sh.busy or sh.doomed):
                    fail(f"{sh!r} still busy/doomed with no add task running")
            for sp in sps:
                for x in sp.accel_ifps:
                    if id(x) not in listed_sp:
                        fail(f"{x!r} on its SP's list but not on the global list")
            if quiescent:
                in_use = self.drv_spi_unr.in_use
                want = n + len(self._drv_spi_leaked) + len(self._drv_spi_held)
                if in_use != want:
                    fail(f"drv_spi in use {in_use} != handles {n} + leaked "
                         f"{len(self._drv_spi_leaked)} + held {len(self._drv_spi_held)}")
                if self._drv_spi_held and not self.drv.stuck:
                    fail(f"drv_spi held by driver calls that are not stuck: "
                         f"{sorted(self._drv_spi_held)}")

    def __repr__(self) -> str:
        return (f"<IpsecOffload vnets={len(self._vnets)} sa_handles={len(self.drv_spi_index)} "
                f"drv_spi_in_use={self.drv_spi_unr.in_use} tq={self.tq.mode.value}>")


def ipsec_offload_attach(key: Any, ifnets: IfnetRegistry, **kw: Any) -> IpsecOffload:
    """Create the offload layer and attach it to ``key`` and ``ifnets``."""
    return IpsecOffload(key, ifnets, **kw)

