"""Types and constants of ``sys/netipsec/ipsec_offload.{c,h}`` (and the parts of
``if_var.h`` the offload layer reads), shared by the ``ipsec_offload*``
modules.

* The constants of freebsd_ipsec_offload.md §2: drv_spi range and BYPASS,
  the handle flags ``IFP_HS_*`` (SA) and ``IFP_HP_*`` (SP).
* :class:`ifp_handle_sav` / :class:`ifp_handle_sp`: one per (SA, ifnet) and
  (SP, ifnet) pair, FreeBSD's field order.  The ``sav_allh_link`` /
  ``sp_allh_link`` entries of the global lists are modelled intrusively
  (:class:`CkList`): a doubly linked list with a head sentinel, so the marker
  walk of ``ipsec_accel_on_ifdown_*`` is FreeBSD's algorithm, not a snapshot.
  The per-object lists (``sav->accel_ifps``, ``sp->accel_ifps``) are Python
  lists replaced copy-on-write under the "ipasat" mutex: a lock-free reader
  (the datapath, a dump) holds a stable list, which is what CK_LIST traversal
  under the net epoch gives FreeBSD's readers.
* :class:`xform_history` -- the newer version's per-handle copy of the SA
  index (dst, spi, proto, mode) for ``ipsec_accel_fill_xh``.
* :class:`NetEpoch` -- epoch(9)'s net epoch, reduced to what the offload layer
  needs: readers enter/exit a section, ``NET_EPOCH_WAIT`` waits until every
  section open at the call has closed.
* :class:`DrvGuard` -- how driver methods are called (see "Driver calls").
* :class:`IfIpsecAccelMethodsExt` -- the opt-in extension of the driver KPI
  (direction-aware and combined SA+SP install callbacks).

Driver calls
------------
FreeBSD calls the driver directly from the single taskqueue thread; a driver
that hangs there stalls every later install and delete forever.  The model
keeps FreeBSD's semantics for what a call *means* but bounds the damage:

* Every driver call is wrapped: an exception is caught, logged, counted and
  turned into an errno (:data:`DRV_EXCEPTION_ERRNO`, EIO), which each flow
  treats as FreeBSD treats "any other error" for that method.
* Calls made **on the taskqueue's worker thread** (THREAD mode) are run on a
  helper thread from a small pool and waited for with ``drv_timeout``
  seconds.  If the helper has not returned by then the call is *abandoned*:
  the flow continues as if the driver had failed with ETIMEDOUT, the helper
  thread is written off (a fresh one serves the next call) and, if the stuck
  call ever returns, its result is reconciled (a late successful
  ``if_sa_newkey`` is undone with ``if_sa_deinstall``, a late ``if_spdadd``
  with ``if_spddel``; a drv_spi the call holds is freed only then, so a
  drv_spi is never reused while a driver may still use it).  Python cannot
  interrupt a thread, so abandoning is the only way to bound a hang.
* Calls made on any other thread (``ipsec_accel_on_ifdown`` from a driver's
  ioctl path, the departure handler, dumps, INLINE/MANUAL task runners) run
  directly in the caller, as in FreeBSD: those callers may hold locks (key.c
  runs INLINE tasks under SAHTREE_WLOCK, a driver its softc lock) that a
  helper thread could not take, and a hang there blocks only that caller.
  ``drv_guard="always"`` guards those too; ``"never"`` calls everything
  directly (what FreeBSD does).
"""

from __future__ import annotations

import errno as _errno
import logging
import threading
import time
from typing import Any, Callable, NamedTuple, Optional

import attrs

from pfkey.extensions import Sockaddr

from .ifnet import IfIpsecAccelMethods, Ifnet

__all__ = [
    "IPSEC_ACCEL_DRV_SPI_BYPASS", "IPSEC_ACCEL_DRV_SPI_MIN", "IPSEC_ACCEL_DRV_SPI_MAX",
    "IFP_HS_HANDLED", "IFP_HS_REJECTED", "IFP_HS_MARKER", "IFP_HP_HANDLED",
    "IFP_HP_REJECTED", "IFP_HP_MARKER", "SADB_X_IF_HW_OFFL_F_NOFALLBACK",
    "DRV_EXCEPTION_ERRNO", "DRV_TIMEOUT_ERRNO", "SA_DIR_UNKNOWN",
    "xform_history", "ifp_handle_sav", "ifp_handle_sp", "CkList", "NetEpoch",
    "DrvGuard", "DrvCall", "CALL_OK", "CALL_EXC", "CALL_TIMEOUT",
    "IfIpsecAccelMethodsExt", "SaOffloadInfo", "OffloadStats", "QUIRKS", "EXTENSIONS",
    "installed",
]

log = logging.getLogger("ipsec_accel.ipsec_offload")

# -- constants (freebsd_ipsec_offload.md §2) ---------------------------------------------

IPSEC_ACCEL_DRV_SPI_BYPASS = 2
IPSEC_ACCEL_DRV_SPI_MIN = 3
IPSEC_ACCEL_DRV_SPI_MAX = 0xFFFF

IFP_HS_HANDLED = 0x1
IFP_HS_REJECTED = 0x2
IFP_HS_MARKER = 0x10

IFP_HP_HANDLED = 0x1
IFP_HP_REJECTED = 0x2
IFP_HP_MARKER = 0x4

_HR = IFP_HS_HANDLED | IFP_HS_REJECTED

#: Model extension (opt-in "nofallback"): bit of ``sadb_x_if_hw_offl.flags``
#: (FreeBSD always sends 0 and ignores it) asking that the SA never be
#: processed in software.
SADB_X_IF_HW_OFFL_F_NOFALLBACK = 0x1

#: What a driver exception counts as (an "other error").
DRV_EXCEPTION_ERRNO = _errno.EIO
#: What an abandoned (hung) driver call counts as.
DRV_TIMEOUT_ERRNO = _errno.ETIMEDOUT

#: Extension "sa_direction": the direction a driver is told when the SPD does
#: not say (instead of FreeBSD's implicit "both").
SA_DIR_UNKNOWN = 0

#: FreeBSD bugs touching this layer, reproducible on demand (default: fixed).
QUIRKS: dict[str, str] = {
    "walk_stops_on_error":
        "6ba593bb: the newkey/spdadd callbacks return their error to if_foreach_sleep, so a "
        "hard driver error (or drv_spi exhaustion) stops the walk over the remaining "
        "interfaces; 002b12b5 always returns 0",
    "ifdown_sp_uninit_error":
        "ipsec_accel_on_ifdown_sp tests (and logs) `error` also for REJECTED handles, "
        "where it was never assigned (stale or uninitialised value)",
    "sp_marker_sa_flag":
        "ipsec_accel_on_ifdown_sp marks its marker with IFP_HS_MARKER (0x10) instead of "
        "IFP_HP_MARKER (0x4)",
    "sp_install_ifdown_race":
        "ipsec_accel_remember_sp links the SP handle before if_spdadd runs, so a concurrent "
        "ipsec_accel_on_ifdown_sp can remove it, call if_spddel with the ifdata not yet "
        "written (NULL) and free it under the running callback (use after free in C; "
        "here: the driver's rule leaks)",
}

#: Opt-in behaviours beyond FreeBSD (docs/OFFLOAD_EXTENSIONS.md).
EXTENSIONS: dict[str, str] = {
    "reoffer": "offer existing SAs/SPs to an interface when IPSEC is enabled on it or it "
               "attaches",
    "sa_direction": "tell drivers with if_sa_newkey_dir the SA's direction implied by the "
                    "SPD (or SA_DIR_UNKNOWN), never an implicit 'both'",
    "sa_sp_combined": "install SAs through if_sa_sp_newkey with mode, addresses, direction "
                      "and the policies using them; deferred until a policy implies the SA",
    "nofallback": "per-SA 'never in software' flag (IF_HW_OFFL flags bit 0x1 or "
                  "ipsec_accel_sa_set_nofallback); ipsec_accel_sa_nofallback() tells the "
                  "datapath to drop instead of falling back",
    "free_drv_spi_on_error": "free the drv_spi (and undo driver state) when an install "
                             "fails with an error other than EOPNOTSUPP; FreeBSD leaks it",
}


def installed(flags: int) -> bool:
    """``(flags & (HANDLED | REJECTED)) == HANDLED`` for both handle kinds."""
    return (flags & _HR) == IFP_HS_HANDLED


# -- handles -----------------------------------------------------------------------------

class xform_history(NamedTuple):
    """``struct xform_history`` as copied into a handle at install (002b12b5):
    destination, SPI (network-order integer, as ``secasvar.spi``), proto, mode."""

    dst: Sockaddr
    spi: int
    proto: int
    mode: int


@attrs.define(slots=True, eq=False, repr=False)
class ifp_handle_sav:
    """``struct ifp_handle_sav``.  ``flags`` is HANDLED xor REJECTED (or MARKER
    for a walk's marker, whose ``sav`` and ``ifp`` are None).  ``cnt_octets`` /
    ``cnt_allocs`` are the last cumulative values the driver reported."""

    sav: Any = None
    ifp: Optional[Ifnet] = None
    ifdata: Any = None
    drv_spi: int = 0
    flags: int = 0
    hdr_ext_size: int = 0
    cnt_octets: int = 0
    cnt_allocs: int = 0
    xfh: Optional[xform_history] = None
    # sav_allh_link (CK_LIST entry on the global list)
    allh_prev: Any = None
    allh_next: Any = None

    def __repr__(self) -> str:
        if self.flags & IFP_HS_MARKER:
            return "<ifp_handle_sav MARKER>"
        name = self.ifp.if_xname if self.ifp is not None else "?"
        spi = self.sav.spi if self.sav is not None else 0
        kind = "HANDLED" if installed(self.flags) else "REJECTED"
        return f"<ifp_handle_sav spi={spi:#x} if={name} drv_spi={self.drv_spi} {kind}>"


@attrs.define(slots=True, eq=False, repr=False)
class ifp_handle_sp:
    """``struct ifp_handle_sp``: created HANDLED before the driver is called;
    REJECTED is OR-ed in when ``if_spdadd`` fails.

    ``busy``/``doomed`` are the model's fix of a FreeBSD race (quirk
    "sp_install_ifdown_race"): the handle is on the lists while ``if_spdadd``
    runs, so a concurrent on_ifdown could remove it, call ``if_spddel`` with
    an ifdata the driver has not written yet and free it under the running
    callback.  A busy handle is only marked doomed by a walk; the add
    callback removes it when the driver returns."""

    sp: Any = None
    ifp: Optional[Ifnet] = None
    ifdata: Any = None
    flags: int = 0
    allh_prev: Any = None
    allh_next: Any = None
    busy: bool = False
    doomed: bool = False

    def __repr__(self) -> str:
        if self.sp is None:
            return f"<ifp_handle_sp MARKER flags={self.flags:#x}>"
        name = self.ifp.if_xname if self.ifp is not None else "?"
        kind = "HANDLED" if installed(self.flags) else "HANDLED|REJECTED"
        return f"<ifp_handle_sp sp={self.sp.id} if={name} {kind}>"


class CkList:
    """A CK_LIST of handles linked through ``allh_prev`` / ``allh_next``.

    Mutations need the "ipasat" mutex (the caller holds it).  INSERT_HEAD,
    INSERT_AFTER and REMOVE are O(1), so the marker walk of on_ifdown is
    FreeBSD's: O(n) over all handles, safe against removals while the mutex
    is dropped, because the walker's position is a node in the list.
    """

    __slots__ = ("head", "count")

    def __init__(self) -> None:
        self.head: Any = None
        self.count = 0          # elements, markers included

    def insert_head(self, h: Any) -> None:
        h.allh_prev = None
        h.allh_next = self.head
        if self.head is not None:
            self.head.allh_prev = h
        self.head = h
        self.count += 1

    def insert_after(self, after: Any, h: Any) -> None:
        h.allh_prev = after
        h.allh_next = after.allh_next
        if after.allh_next is not None:
            after.allh_next.allh_prev = h
        after.allh_next = h
        self.count += 1

    def remove(self, h: Any) -> None:
        if h.allh_prev is None:
            assert self.head is h, "CkList.remove of an unlinked element"
            self.head = h.allh_next
        else:
            h.allh_prev.allh_next = h.allh_next
        if h.allh_next is not None:
            h.allh_next.allh_prev = h.allh_prev
        h.allh_prev = h.allh_next = None
        self.count -= 1

    def __iter__(self) -> Any:
        h = self.head
        while h is not None:
            nxt = h.allh_next
            yield h
            h = nxt


# -- epoch(9) ----------------------------------------------------------------------------

class NetEpoch:
    """The net epoch as the offload layer uses it.

    Readers (``ipsec_accel_output``/``_input``, dumps) bracket their lock-free
    use of handles with :meth:`enter`/:meth:`exit` (or ``with epoch:``);
    sections nest per thread.  :meth:`wait` (``NET_EPOCH_WAIT``) returns once
    every section that was open when it was called has closed -- removals
    call it between unlinking a handle and calling the driver / freeing the
    drv_spi, so a packet tagged with a drv_spi never meets its reuse.

    Entering costs two dict operations (atomic under the GIL); waiting with
    no reader open returns at once.  ``wait`` from inside a section raises
    (FreeBSD asserts the same: it would wait for itself).
    """

    __slots__ = ("_readers", "_gen", "_lock", "waits")

    def __init__(self) -> None:
        self._readers: dict[int, list[int]] = {}   # thread ident -> [depth, generation]
        self._gen = 0
        self._lock = threading.Lock()
        self.waits = 0

    def enter(self) -> None:
        ident = threading.get_ident()
        r = self._readers.get(ident)
        if r is None:
            self._readers[ident] = [1, self._gen]
        else:
            r[0] += 1

    def exit(self) -> None:
        ident = threading.get_ident()
        r = self._readers[ident]
        r[0] -= 1
        if r[0] == 0:
            del self._readers[ident]

    def __enter__(self) -> "NetEpoch":
        self.enter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.exit()

    def in_epoch(self) -> bool:
        return threading.get_ident() in self._readers

    def wait(self, poll: float = 0.0002) -> None:
        if not self._readers:
            return
        if threading.get_ident() in self._readers:
            raise RuntimeError("NET_EPOCH_WAIT inside a net epoch section")
        with self._lock:
            gen = self._gen
            self._gen += 1
            self.waits += 1
        # A reader that loaded the old generation just before the bump is
        # waited for too: conservative, never unsafe.
        while any(r[1] <= gen for r in list(self._readers.values())):
            time.sleep(poll)


# -- driver calls ------------------------------------------------------------------------

CALL_OK = 0
CALL_EXC = 1
CALL_TIMEOUT = 2


class DrvCall(NamedTuple):
    """The outcome of one driver call: ``status`` CALL_OK (``value`` is what
    the method returned), CALL_EXC (``value`` is the exception) or
    CALL_TIMEOUT (abandoned; ``value`` None)."""

    status: int
    value: Any


LateFn = Callable[[Any, Optional[BaseException]], None]


class _Helper:
    """One helper thread running driver calls handed over by DrvGuard.

    Hand-over uses two raw locks (``go``: a job is ready; ``done``: the result
    is ready) -- the cheapest cross-thread wake-up CPython offers.  ``state``
    resolves the race between the caller giving up and the call finishing.
    """

    __slots__ = ("go", "done", "state", "job", "result", "exc", "finished", "abandoned",
                 "on_late", "thread", "guard")

    def __init__(self, guard: "DrvGuard", name: str) -> None:
        self.guard = guard
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.state = threading.Lock()
        self.job: Optional[tuple[Callable[..., Any], tuple[Any, ...]]] = None
        self.result: Any = None
        self.exc: Optional[BaseException] = None
        self.finished = False
        self.abandoned = False
        self.on_late: Optional[LateFn] = None
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            job = self.job
            if job is None:
                return                      # shut down
            self.job = None
            fn, args = job
            res: Any = None
            exc: Optional[BaseException] = None
            try:
                res = fn(*args)
            except BaseException as e:      # a driver bug must not kill the helper silently
                exc = e
            with self.state:
                self.finished = True
                abandoned = self.abandoned
                if not abandoned:
                    self.result, self.exc = res, exc
            if abandoned:
                # The caller gave up on us: reconcile, then retire this thread
                # (it is no longer in the pool).
                self.guard._late(self, res, exc)
                return
            self.done.release()


class DrvGuard:
    """Runs driver methods (module docstring, "Driver calls").

    ``timeout`` None disables helper threads altogether.  ``mode`` is
    "taskqueue" (guard calls made on ``worker()``'s thread), "always" or
    "never".
    """

    def __init__(self, timeout: Optional[float], mode: str,
                 worker: Callable[[], Optional[threading.Thread]],
                 on_late: Callable[[str, Any, Optional[BaseException]], None]) -> None:
        if mode not in ("taskqueue", "always", "never"):
            raise ValueError(f"drv_guard must be taskqueue, always or never, not {mode!r}")
        self.timeout = timeout
        self.mode = mode
        self._worker = worker
        self._report_late = on_late
        self._pool: list[_Helper] = []
        self._lock = threading.Lock()
        self._seq = 0
        #: helpers whose call was abandoned and has not returned yet
        self.stuck: dict[_Helper, str] = {}

    def guarded(self) -> bool:
        if self.timeout is None or self.mode == "never":
            return False
        if self.mode == "always":
            return True
        return threading.current_thread() is self._worker()

    def call(self, what: str, fn: Callable[..., Any], args: tuple[Any, ...],
             on_late: Optional[LateFn] = None,
             on_abandon: Optional[Callable[[], None]] = None) -> DrvCall:
        """Call ``fn(*args)``.  If the call is abandoned, ``on_abandon()``
        runs first (in the caller, before the helper can see the abandonment:
        e.g. to take a reference ``on_late`` will drop), and ``on_late(result,
        exc)`` runs on the helper thread if the call ever returns.

        In mode "taskqueue", a driver whose method table says ``nonblocking``
        (``args[0]`` is the ifnet of every driver call) is called directly:
        it cannot hang, and the two thread hand-offs a helper costs per call
        would double the cost of an install."""
        if self.mode == "taskqueue":
            m = getattr(args[0], "if_ipsec_accel_m", None) if args else None
            if m is not None and m.nonblocking:
                try:
                    return DrvCall(CALL_OK, fn(*args))
                except Exception as e:
                    return DrvCall(CALL_EXC, e)
        if not self.guarded():
            try:
                return DrvCall(CALL_OK, fn(*args))
            except Exception as e:
                return DrvCall(CALL_EXC, e)
        try:
            h = self._pool.pop()            # list.pop is atomic under the GIL
        except IndexError:
            with self._lock:
                self._seq += 1
                h = _Helper(self, f"ipsec_offload drv{self._seq}")
        h.finished = h.abandoned = False
        h.on_late = on_late
        h.job = (fn, args)
        h.go.release()
        assert self.timeout is not None
        if not h.done.acquire(timeout=self.timeout):
            with h.state:
                if not h.finished:
                    if on_abandon is not None:
                        on_abandon()
                    h.abandoned = True
                    with self._lock:
                        self.stuck[h] = what
                    return DrvCall(CALL_TIMEOUT, None)
            h.done.acquire()            # it finished right at the deadline
        res, exc = h.result, h.exc
        h.result = h.exc = None
        h.on_late = None
        self._pool.append(h)
        if exc is not None:
            # Even SystemExit from a driver is only a failed call: it was
            # raised on a helper thread, not by the caller.
            return DrvCall(CALL_EXC, exc)
        return DrvCall(CALL_OK, res)

    def _late(self, h: _Helper, res: Any, exc: Optional[BaseException]) -> None:
        # The helper stays in ``stuck`` until reconciliation is over (it may
        # call the driver again), so "nothing stuck" means "all settled".
        with self._lock:
            what = self.stuck.get(h, "?")
        try:
            if h.on_late is not None:
                h.on_late(res, exc)
        except Exception as e:
            log.error("ipsec_offload: reconciling late %s failed: %r", what, e)
        finally:
            self._report_late(what, res, exc)
            with self._lock:
                self.stuck.pop(h, None)

    def shutdown(self) -> None:
        """Stop the idle helpers (stuck ones retire when their call returns)."""
        while True:
            try:
                h = self._pool.pop()
            except IndexError:
                return
            h.job = None
            h.go.release()


# -- the KPI extension -------------------------------------------------------------------

class SaOffloadInfo(NamedTuple):
    """What extensions "sa_direction" / "sa_sp_combined" tell a driver.

    ``direction``: IPSEC_DIR.INBOUND, IPSEC_DIR.OUTBOUND or SA_DIR_UNKNOWN;
    ``mode``/``proto``/``reqid``/``src``/``dst``: the SA index (tunnel
    endpoints in tunnel mode, the hosts in transport mode); ``policies``: the
    SPs whose requests the SA satisfies (empty when none does yet).
    """

    direction: int
    mode: int
    proto: int
    reqid: int
    src: Sockaddr
    dst: Sockaddr
    policies: tuple[Any, ...]


SaNewkeyDirFn = Callable[[Ifnet, Any, int, int], "tuple[int, Any]"]
SaSpNewkeyFn = Callable[[Ifnet, Any, int, SaOffloadInfo], "tuple[int, Any]"]


class IfIpsecAccelMethodsExt(IfIpsecAccelMethods):
    """``if_ipsec_accel_methods`` plus the model's opt-in callbacks.

    * ``if_sa_newkey_dir(ifp, sav, drv_spi, direction) -> (error, priv)``
      (extension "sa_direction") replaces ``if_sa_newkey``;
    * ``if_sa_sp_newkey(ifp, sav, drv_spi, info) -> (error, priv)``
      (extension "sa_sp_combined") replaces both, with a
      :class:`SaOffloadInfo`; the infrastructure calls it only once a policy
      implies the SA.

    Return codes, deinstall and counters are as for ``if_sa_newkey``.  With
    the extension disabled, or for an ifnet whose table is a plain
    ``IfIpsecAccelMethods``, FreeBSD's ``if_sa_newkey`` is used.  For a vlan,
    the extension entries are looked up on the trunk's table and called with
    the vlan ifp (vlan(4) proxies only the base table).
    """

    __slots__ = ("if_sa_newkey_dir", "if_sa_sp_newkey")
    # IfIpsecAccelMethods.FIELDS is unannotated, so mypy fixes it as a 6-tuple;
    # the table's field names are a tuple[str, ...] (ifnet.py should say so).
    FIELDS = IfIpsecAccelMethods.FIELDS + ("if_sa_newkey_dir",  # type: ignore[assignment]
                                           "if_sa_sp_newkey")

    def __init__(self, *args: Any, if_sa_newkey_dir: Optional[SaNewkeyDirFn] = None,
                 if_sa_sp_newkey: Optional[SaSpNewkeyFn] = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.if_sa_newkey_dir = if_sa_newkey_dir
        self.if_sa_sp_newkey = if_sa_sp_newkey


# -- statistics --------------------------------------------------------------------------

class OffloadStats(NamedTuple):
    """Counters of one offload instance (a snapshot; FreeBSD has none).

    ``installs``/``rejects``: SA handles recorded HANDLED / REJECTED (driver
    EOPNOTSUPP or an accel_ifname mismatch); ``errors``: if_sa_newkey failures
    with another errno (exceptions and timeouts included); ``deinstalls``:
    if_sa_deinstall calls; ``drv_spi_in_use``: allocated drv_spi (handles +
    leaked + held by stuck driver calls).
    """

    installs: int
    rejects: int
    errors: int
    deinstalls: int
    drv_spi_in_use: int
    sa_handles: int
    sp_handles: int
    sp_installs: int
    sp_rejects: int
    sp_deinstalls: int
    newkey_tasks: int
    newkey_skipped: int
    newkey_nomem: int
    forget_tasks: int
    inline_forgets: int
    drv_spi_exhausted: int
    drv_spi_leaked: int
    handle_errors: int
    drv_exceptions: int
    drv_timeouts: int
    late_completions: int
    reoffers: int
    pushed_to_sw: int
    deferred: int
