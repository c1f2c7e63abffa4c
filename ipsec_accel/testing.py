"""Testing helpers for the offload layer (in the spirit of ``trio.testing``),
shipped with the library and usable as a pytest plugin::

    # conftest.py
    pytest_plugins = ["ipsec_accel.testing"]

    def test_something(offload_rig):
        nic = offload_rig.nic("tnic0")
        sav = offload_rig.add_sa(0x1000)
        assert offload_rig.off.ipsec_accel_sav_handle(sav, nic) is not None
        offload_rig.check()

* :class:`TestDriver` -- a programmable in-memory driver implementing
  ``if_ipsec_accel_methods`` (and the model's extension entries): it records
  every call, returns scripted outcomes (an errno, an exception to raise, a
  :class:`Hang`), can delay calls, has an optional capacity (ENOSPC when
  full), counts traffic per installed SA and reports it through the kernel's
  ``ipsec_accel_drv_sa_lifetime_update`` on :meth:`TestDriver.poll`.
  :meth:`TestDriver.check_balanced` asserts every successful install was
  deinstalled exactly once and nothing else was.
* :class:`OffloadRig` -- a key engine on a FakeClock (pfkey.key_testing's
  KeyHarness), an IfnetRegistry, the offload layer on a taskqueue of the
  chosen mode, a PF_KEY socket and helpers (``nic``, ``add_sa``,
  ``delete_sa``, ``spdadd`` ...); :meth:`OffloadRig.check` runs every
  invariant checker.
* Fixtures: ``offload_rig`` (INLINE queue: tasks run inside the call that
  queued them), ``offload_rig_manual`` (MANUAL: nothing runs until
  ``rig.tq.run()``), ``offload_rig_threaded`` (a real worker thread) and
  ``make_offload_rig`` (a factory taking the same arguments as
  :class:`OffloadRig`); all are torn down after the test.
* :func:`wait_for` and :func:`offload_sync` wait for conditions and for the
  taskqueue.
"""

from __future__ import annotations

import errno as _errno
import threading
import time
from typing import Any, Callable, Iterator, NamedTuple, Optional, TypedDict, Union

# The test extra: a checker run without it sees no pytest (hence unused-ignore).
import pytest  # type: ignore[import-not-found, unused-ignore]

from pfkey.extensions import SadbXIfHwOffl
from pfkey.key_testing import (
    KeyHarness, add_msg, exchange, getspi_msg, policy, sa_req_msg, spd_msg, update_msg,
)
from pfkey.keydb import secasvar, seclifetime, secpolicy
from pfkey.message import Message
from pfkey.pfkeyv2 import SADB

from .ifnet import (
    IFCAP2_IPSEC_OFFLOAD_MASK, IFCAP_NV, HwassistFn, IfIoctl, IfIpsecAccelMethods, Ifnet,
    IfnetRegistry, IfReq, SaCntFn, SaDeinstallFn, SaNewkeyFn, SpdAddFn, SpdDelFn,
    if_ioctl_default,
)
from .ipsec_offload import IpsecOffload
from .ipsec_offload_defs import IfIpsecAccelMethodsExt, SaOffloadInfo
from .taskqueue import TaskQueue, TqMode

__all__ = [
    "TestDriver", "Hang", "Raise", "DrvEvent", "HwSa", "OffloadRig", "wait_for",
    "offload_sync", "offload_rig", "offload_rig_manual", "offload_rig_threaded",
    "make_offload_rig",
]


# ---------------------------------------------------------------------------
# scripted outcomes

class Hang:
    """A scripted outcome: block for ``seconds`` (or until ``event`` is set,
    whichever comes first), then behave as ``then`` (an errno, default 0)."""

    __slots__ = ("seconds", "event", "then")

    def __init__(self, seconds: float = 3600.0, event: Optional[threading.Event] = None,
                 then: int = 0) -> None:
        self.seconds = seconds
        self.event = event
        self.then = then

    def wait(self) -> int:
        if self.event is not None:
            self.event.wait(self.seconds)
        else:
            time.sleep(self.seconds)
        return self.then

    def __repr__(self) -> str:
        return f"Hang({self.seconds}, then={self.then})"


class Raise:
    """A scripted outcome: raise ``exc`` (default RuntimeError)."""

    __slots__ = ("exc",)

    def __init__(self, exc: Optional[BaseException] = None) -> None:
        self.exc = exc if exc is not None else RuntimeError("TestDriver scripted failure")


#: An outcome once a scripted callable has been called.
ResolvedOutcome = Union[int, Hang, Raise, BaseException]
Outcome = Union[ResolvedOutcome, Callable[..., ResolvedOutcome]]


class _BaseMethods(TypedDict):
    """The FreeBSD entries of a TestDriver's method table (keyword arguments
    of IfIpsecAccelMethods)."""

    if_spdadd: SpdAddFn
    if_spddel: SpdDelFn
    if_sa_newkey: SaNewkeyFn
    if_sa_deinstall: SaDeinstallFn
    if_sa_cnt: SaCntFn
    if_hwassist: HwassistFn


class DrvEvent(NamedTuple):
    """One recorded driver call.  ``key`` is the SA's SPI (SA methods) or the
    SP's id (SP methods); ``result`` the errno returned, "raise" or None for
    methods without a result."""

    method: str
    ifname: str
    key: int
    drv_spi: int
    result: Any


class HwSa:
    """One SA installed in the test "hardware": the driver's private data
    (``priv``) handed back to the kernel."""

    __slots__ = ("ifp", "sav", "drv_spi", "octets", "packets", "info", "deinstalls")

    def __init__(self, ifp: Ifnet, sav: Any, drv_spi: int, info: Any = None) -> None:
        self.ifp = ifp
        self.sav = sav
        self.drv_spi = drv_spi
        self.octets = 0
        self.packets = 0
        self.info = info
        self.deinstalls = 0

    def __repr__(self) -> str:
        return f"<HwSa {self.ifp.if_xname} spi={self.sav.spi:#x} drv_spi={self.drv_spi}>"


class _HwSp:
    __slots__ = ("ifp", "sp", "dels")

    def __init__(self, ifp: Ifnet, sp: Any) -> None:
        self.ifp = ifp
        self.sp = sp
        self.dels = 0


# ---------------------------------------------------------------------------
# the driver

class TestDriver:
    """A programmable in-memory driver.

    ``capacity``: hardware SA slots (None = unlimited; full -> ENOSPC).
    ``delay``: seconds every method sleeps (or a dict per method name).
    ``accept``: ``accept(ifp, sav) -> errno`` decides installs that no
    script covers (default: 0).  ``ext``: expose ``if_sa_newkey_dir`` and
    ``if_sa_sp_newkey`` (IfIpsecAccelMethodsExt).  ``hwassist``: the CSUM
    mask ``if_hwassist`` returns.  ``kernel``: the key engine, for
    :meth:`poll` and the mlx5-like capability ioctl.

    Scripts: :meth:`script` queues one-shot outcomes per method (consumed in
    order), :meth:`set_default` sets the outcome used when the queue is
    empty.  An outcome is an errno (0 = success), a :class:`Hang`, a
    :class:`Raise` (or an exception instance) or a callable receiving the
    method's arguments and returning one of those.
    """

    __test__ = False    # not a pytest test class

    METHODS = ("if_spdadd", "if_spddel", "if_sa_newkey", "if_sa_deinstall", "if_sa_cnt",
               "if_hwassist", "if_sa_newkey_dir", "if_sa_sp_newkey")

    def __init__(self, name: str = "testdrv", *, capacity: Optional[int] = None,
                 delay: Union[float, dict[str, float]] = 0.0,
                 accept: Optional[Callable[[Ifnet, Any], int]] = None, ext: bool = False,
                 hwassist: int = 0, kernel: Any = None, record: bool = True) -> None:
        self.name = name
        self.capacity = capacity
        self.delay = delay
        self.accept = accept
        self.ext = ext
        self.hwassist = hwassist
        self.kernel = kernel
        self.record = record
        self.lock = threading.Lock()
        self.calls: list[DrvEvent] = []
        self._script: dict[str, list[Outcome]] = {m: [] for m in self.METHODS}
        self._default: dict[str, Outcome] = {}
        self.sas: dict[int, HwSa] = {}            # id(priv) -> live hardware SA
        self.installed_total: list[HwSa] = []      # every successful install
        self.bad_deinstalls: list[tuple[str, int, Any]] = []
        self.sps: dict[int, _HwSp] = {}
        self.sp_installed_total: list[_HwSp] = []
        self.bad_spdels: list[tuple[str, int, Any]] = []
        self.directions: list[tuple[int, int]] = []   # (spi, direction) seen by _dir
        self.infos: list[tuple[int, SaOffloadInfo]] = []

    # -- scripting -------------------------------------------------------------

    def script(self, method: str, *outcomes: Outcome) -> "TestDriver":
        with self.lock:
            self._script[method].extend(outcomes)
        return self

    def set_default(self, method: str, outcome: Optional[Outcome]) -> "TestDriver":
        with self.lock:
            if outcome is None:
                self._default.pop(method, None)
            else:
                self._default[method] = outcome
        return self

    def _outcome(self, method: str, *args: Any) -> ResolvedOutcome:
        with self.lock:
            q = self._script[method]
            out = q.pop(0) if q else self._default.get(method, 0)
        if callable(out) and not isinstance(out, (Hang, Raise, BaseException)):
            out = out(*args)
        return out

    def _delay(self, method: str) -> None:
        d = self.delay.get(method, 0.0) if isinstance(self.delay, dict) else self.delay
        if d:
            time.sleep(d)

    def _resolve(self, method: str, out: ResolvedOutcome) -> int:
        """Turn an outcome into an errno (raising or blocking as scripted)."""
        if isinstance(out, Hang):
            return out.wait()
        if isinstance(out, Raise):
            raise out.exc
        if isinstance(out, BaseException):
            raise out
        return int(out)

    def _log(self, ev: DrvEvent) -> None:
        if self.record:
            with self.lock:
                self.calls.append(ev)

    # -- the KPI ---------------------------------------------------------------

    def methods(self) -> IfIpsecAccelMethods:
        """The method table to give ``if_setipsec_accel_methods``."""
        base: _BaseMethods = dict(if_spdadd=self.if_spdadd, if_spddel=self.if_spddel,
                    if_sa_newkey=self.if_sa_newkey, if_sa_deinstall=self.if_sa_deinstall,
                    if_sa_cnt=self.if_sa_cnt, if_hwassist=self.if_hwassist)
        if self.ext:
            return IfIpsecAccelMethodsExt(if_sa_newkey_dir=self.if_sa_newkey_dir,
                                          if_sa_sp_newkey=self.if_sa_sp_newkey, **base)
        return IfIpsecAccelMethods(**base)

    def _install(self, method: str, ifp: Ifnet, sav: Any, drv_spi: int,
                 info: Any = None) -> tuple[int, Any]:
        self._delay(method)
        try:
            err = self._resolve(method, self._outcome(method, ifp, sav, drv_spi))
            if err == 0 and self.accept is not None:
                err = int(self.accept(ifp, sav))
            if err == 0 and self.capacity is not None:
                with self.lock:
                    if len(self.sas) >= self.capacity:
                        err = _errno.ENOSPC
        except BaseException:
            self._log(DrvEvent(method, ifp.if_xname, sav.spi, drv_spi, "raise"))
            raise
        priv = None
        if err == 0:
            priv = HwSa(ifp, sav, drv_spi, info)
            with self.lock:
                self.sas[id(priv)] = priv
                self.installed_total.append(priv)
        self._log(DrvEvent(method, ifp.if_xname, sav.spi, drv_spi, err))
        return err, priv

    def if_sa_newkey(self, ifp: Ifnet, sav: Any, drv_spi: int) -> tuple[int, Any]:
        return self._install("if_sa_newkey", ifp, sav, drv_spi)

    def if_sa_newkey_dir(self, ifp: Ifnet, sav: Any, drv_spi: int,
                         direction: int) -> tuple[int, Any]:
        with self.lock:
            self.directions.append((sav.spi, direction))
        return self._install("if_sa_newkey_dir", ifp, sav, drv_spi, direction)

    def if_sa_sp_newkey(self, ifp: Ifnet, sav: Any, drv_spi: int,
                        info: SaOffloadInfo) -> tuple[int, Any]:
        with self.lock:
            self.infos.append((sav.spi, info))
        return self._install("if_sa_sp_newkey", ifp, sav, drv_spi, info)

    def if_sa_deinstall(self, ifp: Ifnet, drv_spi: int, priv: Any) -> int:
        self._delay("if_sa_deinstall")
        out = self._outcome("if_sa_deinstall", ifp, drv_spi, priv)
        with self.lock:
            hw = self.sas.pop(id(priv), None) if priv is not None else None
            if hw is None or hw.drv_spi != drv_spi or hw.ifp is not ifp:
                self.bad_deinstalls.append((ifp.if_xname, drv_spi, priv))
            if isinstance(priv, HwSa):
                priv.deinstalls += 1
        spi = priv.sav.spi if isinstance(priv, HwSa) else 0
        try:
            err = self._resolve("if_sa_deinstall", out)
        finally:
            self._log(DrvEvent("if_sa_deinstall", ifp.if_xname, spi, drv_spi, None))
        return err

    def if_sa_cnt(self, ifp: Ifnet, sav: Any, drv_spi: int, priv: Any,
                  lt: seclifetime) -> int:
        err = self._resolve("if_sa_cnt", self._outcome("if_sa_cnt", ifp, sav, drv_spi))
        if isinstance(priv, HwSa):
            lt.allocations = priv.packets & 0xFFFFFFFF
            lt.bytes = priv.octets
        return err

    def if_hwassist(self, ifp: Ifnet, sav: Any, drv_spi: int, priv: Any) -> int:
        return self.hwassist

    def if_spdadd(self, ifp: Ifnet, sp: Any, inp: Any) -> tuple[int, Any]:
        self._delay("if_spdadd")
        err = self._resolve("if_spdadd", self._outcome("if_spdadd", ifp, sp, inp))
        priv = None
        if err == 0:
            priv = _HwSp(ifp, sp)
            with self.lock:
                self.sps[id(priv)] = priv
                self.sp_installed_total.append(priv)
        self._log(DrvEvent("if_spdadd", ifp.if_xname, sp.id, 0, err))
        return err, priv

    def if_spddel(self, ifp: Ifnet, sp: Any, priv: Any) -> int:
        self._delay("if_spddel")
        out = self._outcome("if_spddel", ifp, sp, priv)
        with self.lock:
            hw = self.sps.pop(id(priv), None) if priv is not None else None
            if hw is None or hw.sp is not sp or hw.ifp is not ifp:
                self.bad_spdels.append((ifp.if_xname, sp.id, priv))
            if isinstance(priv, _HwSp):
                priv.dels += 1
        try:
            return self._resolve("if_spddel", out)
        finally:
            self._log(DrvEvent("if_spddel", ifp.if_xname, sp.id, 0, None))

    # -- an ifnet with this driver -----------------------------------------------

    def make_ifnet(self, registry: IfnetRegistry, name: str, *, enabled: bool = True,
                   up: bool = True, mlx5_ioctl: bool = True, mtu: int = 1500) -> Ifnet:
        """Create, attach (and bring up) an Ethernet ifnet driven by this
        driver, with the IPSEC capability (enabled or not) and IFCAP_NV so
        ``ifconfig X ipsec|-ipsec`` works.  ``mlx5_ioctl``: turning IPSEC off
        calls ``ipsec_accel_on_ifdown`` first, as mlx5 does."""
        ifp = Ifnet(name, mtu=mtu, capabilities=IFCAP_NV,
                    capabilities2=IFCAP2_IPSEC_OFFLOAD_MASK,
                    capenable2=IFCAP2_IPSEC_OFFLOAD_MASK if enabled else 0)
        ifp.if_ipsec_accel_m = self.methods()
        if mlx5_ioctl:
            ifp.if_ioctl = self._ioctl
        registry.ether_ifattach(ifp)
        if up:
            registry.if_setupdown(ifp, True)
        return ifp

    def _ioctl(self, ifp: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
        # mlx5e_ioctl SIOCSIFCAPNV: when IPSEC changes, close the port, call
        # ipsec_accel_on_ifdown if it was enabled, toggle, reopen.
        if cmd in (IfIoctl.SIOCSIFCAP, IfIoctl.SIOCSIFCAPNV):
            was = bool(ifp.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK)
            want = bool(req.reqcap2 & IFCAP2_IPSEC_OFFLOAD_MASK) \
                if cmd is IfIoctl.SIOCSIFCAPNV else was
            if was and not want and self.kernel is not None:
                self.kernel.ipsec_accel_on_ifdown(ifp)
        return if_ioctl_default(ifp, cmd, req)

    # -- traffic and counters -----------------------------------------------------

    def live(self) -> list[HwSa]:
        with self.lock:
            return list(self.sas.values())

    def find(self, spi: int, ifname: Optional[str] = None) -> Optional[HwSa]:
        for hw in self.live():
            if hw.sav.spi == spi and (ifname is None or hw.ifp.if_xname == ifname):
                return hw
        return None

    def traffic(self, hw: HwSa, octets: int, packets: int = 1) -> None:
        """Count traffic the "hardware" processed for one installed SA."""
        hw.octets += octets
        hw.packets += packets

    def poll(self, kernel: Any = None) -> int:
        """The driver's periodic counter poll: report cumulative counters of
        every installed SA to ``ipsec_accel_drv_sa_lifetime_update``."""
        k = kernel if kernel is not None else self.kernel
        n = 0
        for hw in self.live():
            k.ipsec_accel_drv_sa_lifetime_update(hw.sav, hw.ifp, hw.drv_spi, hw.octets,
                                                 hw.packets)
            n += 1
        return n

    # -- invariants ---------------------------------------------------------------

    def check_balanced(self, allow_live: bool = False) -> None:
        """Every successful install deinstalled exactly once (unless
        ``allow_live``: at most once, the rest still live), no deinstall of
        something never installed; the same for policies."""
        with self.lock:
            assert not self.bad_deinstalls, f"unmatched if_sa_deinstall: {self.bad_deinstalls}"
            assert not self.bad_spdels, f"unmatched if_spddel: {self.bad_spdels}"
            for hw in self.installed_total:
                want = (0, 1) if allow_live else (1,)
                assert hw.deinstalls in want, f"{hw!r} deinstalled {hw.deinstalls} times"
                assert (hw.deinstalls == 0) == (id(hw) in self.sas), f"{hw!r} bookkeeping"
            for sp in self.sp_installed_total:
                want = (0, 1) if allow_live else (1,)
                assert sp.dels in want, f"SP {sp.sp.id} deleted {sp.dels} times"

    def count(self, method: str, result: Any = ...) -> int:
        with self.lock:
            return sum(1 for c in self.calls
                       if c.method == method and (result is ... or c.result == result))

    def __repr__(self) -> str:
        return f"<TestDriver {self.name} live={len(self.sas)} calls={len(self.calls)}>"


# ---------------------------------------------------------------------------
# waiting

def wait_for(pred: Callable[[], bool], timeout: float = 10.0, poll: float = 0.001) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return bool(pred())
        time.sleep(poll)


def offload_sync(off: IpsecOffload, timeout: float = 30.0) -> None:
    """Wait until the offload taskqueue is empty and idle, including tasks
    queued by tasks (ipsec_accel_sync alone does not wait for those)."""
    if off.tq.mode is TqMode.MANUAL:
        while off.tq.depth:
            off.tq.run()
        return
    if not off.quiesce(timeout):
        raise TimeoutError("the ipsec_offload taskqueue did not quiesce")


# ---------------------------------------------------------------------------
# the rig

class OffloadRig:
    """A key engine + interfaces + the offload layer, ready for tests.

    ``mode``: the taskqueue mode; other keyword arguments go to
    :class:`IpsecOffload` (quirks, extensions, drv_timeout, drv_guard, ...).
    The PF_KEY helpers send real messages on :attr:`so` and return the
    decoded replies (or the SA object for ``add_sa``).
    """

    __test__ = False

    def __init__(self, mode: TqMode = TqMode.INLINE, *, seed: int = 1, verbose: bool = True,
                 **offload_kw: Any) -> None:
        self.h = KeyHarness(seed)
        self.key = self.h.key
        self.clock = self.h.clock
        self.ifnets = IfnetRegistry()
        self.tq = TaskQueue("ipsec_offload", mode)
        self.off = IpsecOffload(self.key, self.ifnets, tq=self.tq, verbose=verbose,
                                **offload_kw)
        self.so = self.h.socket(recvspace=1 << 30)
        self.drivers: list[TestDriver] = []
        self._closed = False

    # -- interfaces ---------------------------------------------------------------

    def driver(self, **kw: Any) -> TestDriver:
        kw.setdefault("kernel", self.key)
        d = TestDriver(**kw)
        self.drivers.append(d)
        return d

    def nic(self, name: str = "tnic0", driver: Optional[TestDriver] = None, *,
            enabled: bool = True, **kw: Any) -> Ifnet:
        """A new interface driven by ``driver`` (a fresh TestDriver by default)."""
        d = driver if driver is not None else self.driver(name=f"drv-{name}")
        if d not in self.drivers:
            self.drivers.append(d)
        return d.make_ifnet(self.ifnets, name, enabled=enabled, **kw)

    def drv(self, ifp: Ifnet) -> TestDriver:
        """The TestDriver behind ``ifp``."""
        m = ifp.if_ipsec_accel_m
        fn = getattr(m, "if_sa_newkey", None)
        d = getattr(fn, "__self__", None)
        assert isinstance(d, TestDriver), f"{ifp.if_xname} is not driven by a TestDriver"
        return d

    # -- PF_KEY ------------------------------------------------------------------

    def send(self, msg: Message) -> list[Message]:
        return exchange(self.so, msg)

    def add_sa(self, spi: int = 0x1000, *, ifname: Optional[str] = None, ifflags: int = 0,
               **kw: Any) -> secasvar:
        """SADB_ADD (key_testing.add_msg defaults); returns the SA."""
        extra = list(kw.pop("extra", ()))
        if ifname is not None:
            extra.append(SadbXIfHwOffl(ifname, ifflags))
        got = self.send(add_msg(spi, extra=extra, **kw))
        assert got and got[-1].errno == 0, f"SADB_ADD failed: {got}"
        sav = self.key.savhash.get(spi)
        assert sav is not None
        return sav

    def getspi(self, spi: int, **kw: Any) -> secasvar:
        self.send(getspi_msg(spirange=(spi, spi), **kw))
        return self.key.savhash[spi]

    def update_sa(self, spi: int, **kw: Any) -> list[Message]:
        return self.send(update_msg(spi, **kw))

    def delete_sa(self, spi: int = 0x1000, **kw: Any) -> list[Message]:
        return self.send(sa_req_msg(SADB.DELETE, spi, **kw))

    def get_sa(self, spi: int = 0x1000, **kw: Any) -> Message:
        got = self.send(sa_req_msg(SADB.GET, spi, **kw))
        assert got, "no reply to SADB_GET"
        return got[-1]

    def flush(self, satype: int = 0) -> list[Message]:
        return self.send(Message(SADB.FLUSH, satype))

    def spdadd(self, *, dir: int = 2, ifname: Optional[str] = None, pol: Any = None,
               mtype: int = SADB.X_SPDADD, **kw: Any) -> Optional[secpolicy]:
        """SPDADD (key_testing.spd_msg defaults); returns the new SP."""
        extra = list(kw.pop("extra", ()))
        if ifname is not None:
            extra.append(SadbXIfHwOffl(ifname))
        before = set(self.key.sphash)
        got = self.send(spd_msg(mtype, pol=pol if pol is not None else policy(dir),
                                extra=extra, **kw))
        assert got and got[-1].errno == 0, f"SPDADD failed: {got}"
        new = set(self.key.sphash) - before
        return self.key.sphash[max(new)] if new else None

    def spddelete(self, *, dir: int = 2, pol: Any = None, **kw: Any) -> list[Message]:
        return self.send(spd_msg(SADB.X_SPDDELETE, pol=pol if pol is not None else policy(dir),
                                 **kw))

    def spdflush(self) -> list[Message]:
        return self.send(Message(SADB.X_SPDFLUSH, 0))

    # -- waiting and checking -------------------------------------------------------

    def sync(self) -> None:
        offload_sync(self.off)

    def tick(self, seconds: int = 1) -> None:
        self.h.tick(seconds)

    def check(self, *, balanced: bool = False, allow_live: bool = True) -> None:
        """Quiesce, then: the offload invariants, the key engine's, and each
        driver's bookkeeping (``balanced``: everything installed was removed
        exactly once -- after a flush)."""
        self.sync()
        self.off._check(quiescent=True)
        self.key._check()
        for d in self.drivers:
            d.check_balanced(allow_live=allow_live and not balanced)

    def handles(self, sav: secasvar) -> dict[str, str]:
        """{ifname: "HANDLED"|"REJECTED"} of one SA."""
        from .ipsec_offload_defs import installed
        return {h.ifp.if_xname: "HANDLED" if installed(h.flags) else "REJECTED"
                for h in sav.accel_ifps}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.off.detach(timeout=10.0)
        if self.tq.active:
            self.tq.free(timeout=10.0)


# ---------------------------------------------------------------------------
# fixtures

@pytest.fixture  # type: ignore[untyped-decorator, unused-ignore]  # see import pytest
def make_offload_rig() -> Iterator[Callable[..., OffloadRig]]:
    rigs: list[OffloadRig] = []

    def make(mode: TqMode = TqMode.INLINE, **kw: Any) -> OffloadRig:
        r = OffloadRig(mode, **kw)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.close()


@pytest.fixture  # type: ignore[untyped-decorator, unused-ignore]  # see import pytest
def offload_rig(make_offload_rig: Callable[..., OffloadRig]) -> OffloadRig:
    """INLINE taskqueue: tasks run in the call that queued them."""
    return make_offload_rig(TqMode.INLINE)


@pytest.fixture  # type: ignore[untyped-decorator, unused-ignore]  # see import pytest
def offload_rig_manual(make_offload_rig: Callable[..., OffloadRig]) -> OffloadRig:
    """MANUAL taskqueue: nothing runs until ``rig.tq.run()`` (race windows)."""
    return make_offload_rig(TqMode.MANUAL)


@pytest.fixture  # type: ignore[untyped-decorator, unused-ignore]  # see import pytest
def offload_rig_threaded(make_offload_rig: Callable[..., OffloadRig]) -> OffloadRig:
    """A real "ipsec_offload" worker thread (driver calls guarded, 5 s)."""
    return make_offload_rig(TqMode.THREAD)

