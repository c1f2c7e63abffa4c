"""A modelled machine: one vnet's kernel state, as the rest of the model sees it.

FreeBSD has no single file for this; :class:`Host` gathers what one running
kernel owns and the threads FreeBSD runs for it:

* ``key`` -- ``sys/netipsec/key.c`` + ``keysock.c`` (:class:`pfkey.key.Key`);
* ``ifnets`` -- ``V_ifnet`` (:class:`ipsec_accel.ifnet.IfnetRegistry`);
* ``taskqueue`` -- the single-threaded ``"ipsec_offload"`` taskqueue that
  ``ipsec_offload.c`` creates (:class:`ipsec_accel.taskqueue.TaskQueue`);
* ``offload`` -- the ``ipsec_offload.c`` layer, attached to ``key`` as its hook
  table when ``ipsec_accel.ipsec_offload`` is available (None otherwise);
* ``ip`` -- the IP layer and its IPsec datapath (``netinet/ip_*.c``,
  ``netipsec/ipsec_{input,output}.c``; :class:`ipsec_accel.ip.IpLayer`, its
  IPsec state ``host.ip.ipsec``), attached at construction unless
  ``ip=False``: it becomes ``if_input`` of every interface attached later and
  gives their NICs its per-SA ESP state (``esp_state_factory``);
* the **key timer** -- key.c's ``key_timehandler`` callout, once a second.
  With a wall clock (:class:`pfkey.clock.SystemClock`) :meth:`Host.start`
  runs it on a thread named ``key_timer``; with a
  :class:`pfkey.clock.FakeClock` nothing runs by itself and tests call
  :meth:`Host.tick`, which moves the clock and runs the callout once per
  simulated second, as the kernel would have.

NICs: this module never imports ``drivers`` (layering, docs/ARCHITECTURE.md).
Drivers attach their ifnets to ``host.ifnets``; ``drivers.topology.build_host``
creates a Host and does exactly that.  The printer's ``if_indextoname`` and
setkey's ``if_nametoindex`` read the same registry.

Lifecycle: the taskqueue thread exists from construction (``taskqueue_create``
+ ``taskqueue_start_threads``, as at SYSINIT), the key timer from
:meth:`start`; :meth:`stop` runs the stop hooks (:meth:`add_stop_hook`:
drivers stop their poll threads), stops the timer, detaches the offload layer
(its hooks go back to the no-op table) and frees the taskqueue.  Both are
idempotent; ``with Host() as h:`` starts and stops.

:meth:`sync` is ``ipsec_accel_sync()`` (``taskqueue_drain_all``): everything
the offload layer had queued before the call has run when it returns.
setkey's embedded mode calls it before printing a dump so that the
``hw offl`` lines do not depend on thread scheduling (a deliberate, documented
departure: a real FreeBSD dump may race the install task).
"""

from __future__ import annotations

import gc
import importlib
import logging
import random
import threading
from typing import Any, Callable, Iterable, Optional

from pfkey.clock import Clock, FakeClock, SystemClock
from pfkey.key import Key
from pfkey.keysock import KeySocket
from pfkey.pfkeyv2 import SADB

from .ifnet import IfnetRegistry
from .taskqueue import TaskQueue, TqMode

__all__ = ["Host", "OffloadFactory", "TASKQUEUE_NAME", "KEY_TIMER_INTERVAL", "tune_gc",
           "GC_THRESHOLD"]

#: gc.set_threshold for model processes (see :func:`tune_gc`).
GC_THRESHOLD = (20000, 20, 10)


def tune_gc() -> tuple[int, int, int]:
    """Raise the cyclic garbage collector's thresholds for a process that
    runs a model kernel (the daemon, setkey's embedded mode).  A kernel with
    thousands of SAs holds hundreds of thousands of objects, and CPython's
    default (700, 10, 10) runs young-generation passes so often that they
    cost a quarter of an SADB_ADD at 10,000 SAs; the model makes few
    cycles.  Process-wide, so only programs call it.  Returns the old
    thresholds."""
    old = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    return old

log = logging.getLogger("ipsec_accel.host")

#: ipsec_offload.c: taskqueue_create("ipsec_offload", ...).
TASKQUEUE_NAME = "ipsec_offload"
#: key.c: callout_reset(&key_timer, hz, key_timehandler, ...) -- one second.
KEY_TIMER_INTERVAL = 1.0

#: Requests whose replies show offload state (key_setdumpsa / key_setdumpsp).
_SETTLE_TYPES = frozenset({int(SADB.GET), int(SADB.DUMP), int(SADB.X_SPDGET),
                           int(SADB.X_SPDDUMP)})

#: Something that attaches an offload layer to a host and returns it (or None).
OffloadFactory = Callable[["Host"], Any]


def _default_offload(host: "Host") -> Any:
    """Attach ``ipsec_accel.ipsec_offload`` (ipsec_offload.c's SYSINIT) on
    the host's kernel, interfaces and taskqueue, with ``host.offload_options``
    (quirks, extensions, verbose ...).  Without that module the host runs
    without a layer, as a kernel built without ``options IPSEC_OFFLOAD``."""
    try:
        mod = importlib.import_module(f"{__package__}.ipsec_offload")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__package__}.ipsec_offload":
            return None
        raise
    return mod.IpsecOffload(host.key, host.ifnets, tq=host.taskqueue, **host.offload_options)


class Host:
    """One modelled machine (see the module docstring).

    ``clock`` defaults to the wall clock; ``taskqueue_mode`` to a real worker
    thread (``TqMode.INLINE`` / ``MANUAL`` for deterministic tests);
    ``offload``: True attaches ``ipsec_accel.ipsec_offload`` when available,
    False never, or a factory ``f(host) -> layer``; ``timer`` runs the key
    timer thread from :meth:`start` (default: only with a clock that is not a
    :class:`FakeClock`); ``rng`` and ``key_quirks`` go to :class:`Key`;
    ``offload_options`` to :class:`ipsec_accel.ipsec_offload.IpsecOffload`
    (``quirks``, ``extensions``, ``verbose``, ``drv_timeout`` ...); ``ip``
    attaches the IP layer with ``ip_options`` (``tag_strategy``, ``mode``,
    ``share_esp_state``).
    """

    def __init__(self, *, clock: Optional[Clock] = None, name: str = "host",
                 taskqueue_mode: TqMode = TqMode.THREAD,
                 offload: bool | OffloadFactory = True, timer: Optional[bool] = None,
                 timer_interval: float = KEY_TIMER_INTERVAL,
                 rng: Optional[random.Random] = None, key_quirks: Iterable[str] = (),
                 offload_options: Optional[dict[str, Any]] = None, ip: bool = True,
                 ip_options: Optional[dict[str, Any]] = None) -> None:
        self.name = name
        self.offload_options: dict[str, Any] = dict(offload_options or {})
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.key = Key(self.clock, rng=rng, quirks=key_quirks)
        self.ifnets = IfnetRegistry(f"{name}.vnet0")
        self.taskqueue = TaskQueue(TASKQUEUE_NAME, taskqueue_mode)
        self.offload: Any = None
        self.timer_enabled = (not isinstance(self.clock, FakeClock)) if timer is None \
            else bool(timer)
        self.timer_interval = float(timer_interval)
        self.timer_ticks = 0          # key_timehandler runs (thread or tick())
        self.timer_errors = 0         # runs that raised (logged, never fatal)
        self._timer_thread: Optional[threading.Thread] = None
        self._timer_stop = threading.Event()
        self._timer_lock = threading.Lock()   # one key_timehandler at a time
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._stop_hooks: list[Callable[[], None]] = []
        if offload is True:
            self.attach_offload(_default_offload)
        elif callable(offload):
            self.attach_offload(offload)
        self.ip: Any = None
        if ip:
            from .ip import IpLayer
            self.ip = IpLayer(self, **dict(ip_options or {}))

    # -- offload ---------------------------------------------------------------

    def attach_offload(self, factory: OffloadFactory = _default_offload) -> Any:
        """Attach an offload layer (ipsec_offload.c's SYSINIT); returns it."""
        if self.offload is not None:
            return self.offload
        self.offload = factory(self)
        return self.offload

    def detach_offload(self) -> None:
        """ipsec_offload.c's SYSUNINIT: the layer goes, key.c's hooks become no-ops."""
        layer, self.offload = self.offload, None
        if layer is None:
            return
        if self.ip is not None:
            self.ip.ipsec.invalidate_fast()     # memos hold the layer's handles
        for name in ("detach", "stop", "close"):
            fn = getattr(layer, name, None)
            if callable(fn):
                try:
                    fn()
                except Exception:   # noqa: BLE001 -- shutdown must go on
                    log.exception("offload layer %s() failed", name)
                break
        self.key.set_accel_hooks(None)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> "Host":
        """Start the key timer (if enabled).  Idempotent."""
        with self._lock:
            if self._started or self._stopped:
                return self
            self._started = True
            if self.timer_enabled:
                self._timer_thread = threading.Thread(
                    target=self._timer_loop, name=f"{self.name}.key_timer", daemon=True)
                self._timer_thread.start()
        return self

    def add_stop_hook(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` first thing in :meth:`stop` (most recently added first):
        drivers stop their poll threads before the kernel goes away, as
        device detach comes before the IPsec module's unload."""
        self._stop_hooks.append(fn)

    def stop(self, timeout: float = 5.0) -> None:
        """Run the stop hooks, stop the timer, detach offload, free the
        taskqueue.  Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._timer_thread
            hooks, self._stop_hooks = self._stop_hooks[::-1], []
        for fn in hooks:
            try:
                fn()
            except Exception:   # noqa: BLE001 -- shutdown must go on
                log.exception("stop hook %r failed", fn)
        self._timer_stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if self.ip is not None:
            self.ip.detach()
        # Drain what the offload layer queued, then unhook it, then stop the
        # worker: the same order as ipsec_offload.c's module unload.
        try:
            self.taskqueue.drain_all(timeout)
        except RuntimeError:        # called from the taskqueue's own thread
            pass
        self.detach_offload()
        self.taskqueue.free(timeout)

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    def __enter__(self) -> "Host":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the key timer -------------------------------------------------------------

    def _run_timehandler(self, now: int) -> None:
        with self._timer_lock:
            try:
                self.key.key_timehandler(now)
            except Exception:   # noqa: BLE001 -- a callout never kills the kernel
                self.timer_errors += 1
                log.exception("key_timehandler failed")
            self.timer_ticks += 1

    def _timer_loop(self) -> None:
        # callout(9) re-arms itself each second; a slow run delays the next.
        while not self._timer_stop.wait(self.timer_interval):
            self._run_timehandler(self.clock.now())

    def tick(self, seconds: int = 1) -> int:
        """Let ``seconds`` simulated seconds pass: with a FakeClock, advance it
        one second at a time and run key_timehandler after each (what the
        callout does); with another clock, just run the callout ``seconds``
        times at the clock's time.  Returns the clock's time."""
        for _ in range(max(0, int(seconds))):
            if isinstance(self.clock, FakeClock):
                self.clock.advance(1)
            self._run_timehandler(self.clock.now())
        return self.clock.now()

    # -- conveniences ------------------------------------------------------------------

    def socket(self, **kwargs: Any) -> KeySocket:
        """socket(PF_KEY, SOCK_RAW, PF_KEY_V2) on this host's kernel."""
        return self.key.socket(**kwargs)

    def sync(self, timeout: Optional[float] = 5.0) -> bool:
        """ipsec_accel_sync(): wait for the offload taskqueue (False on timeout)."""
        try:
            return bool(self.taskqueue.drain_all(timeout))
        except RuntimeError:
            return False

    def settle_for(self, data: bytes | bytearray | memoryview) -> None:
        """Before a dump-like request (GET, DUMP, SPDGET, SPDDUMP), wait for
        the offload taskqueue so the reply shows what the layer has done with
        everything sent earlier.  Only with an attached layer and a threaded
        queue (INLINE runs tasks at once; MANUAL is the test's business)."""
        if self.offload is None or self.taskqueue.mode is not TqMode.THREAD:
            return
        if len(data) >= 2 and data[1] in _SETTLE_TYPES:
            self.sync()

    def if_indextoname(self, index: int) -> Optional[str]:
        """if_indextoname(3) on this host (None for an unknown index)."""
        ifp = self.ifnets.ifnet_byindex(int(index))
        return None if ifp is None else ifp.if_xname

    def if_nametoindex(self, name: str) -> int:
        """if_nametoindex(3) on this host (0 for an unknown name)."""
        ifp = self.ifnets.ifunit(name)
        return 0 if ifp is None else ifp.if_index

    def interfaces(self) -> dict[str, int]:
        """Interface name -> index, in attach order."""
        return {ifp.if_xname: ifp.if_index for ifp in self.ifnets}

    def describe(self) -> str:
        """One line for logs: interfaces (with ``+ipsec`` when offload is
        enabled on them) and whether an offload layer is attached."""
        names = []
        for ifp in self.ifnets:
            flag = "+ipsec" if getattr(ifp, "ipsec_offload", False) else ""
            names.append(ifp.if_xname + flag)
        return ("interfaces: " + (", ".join(names) if names else "none")
                + "; offload: " + ("attached" if self.offload is not None else "none"))

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "new")
        return f"<Host {self.name} {state} {self.describe()}>"
