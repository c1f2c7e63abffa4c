"""A faulty NIC for opening races: no real driver; a working engine (it
accepts every SA :class:`ipsec_accel.xform_esp.EspState` can run, like the
base NIC, with policy ops) whose KPI callbacks can be made slow, fail, raise,
hang, or run test code *while the kernel is inside them*.

Faults are programmed per callback name (``if_sa_newkey``,
``if_sa_newkey_dir``, ``if_sa_deinstall``, ``if_spdadd``, ``if_spddel``,
``if_sa_cnt``, ``if_hwassist``) on ``nic.faults`` (:class:`FaultPlan`):

* ``script(cb, [Fault...])`` -- one fault per call, in order; then
* ``randomize(cb, p_fail=, errnos=, p_raise=, p_hang=, latency=)`` -- drawn
  from a seeded ``random.Random``; then
* ``set_default(cb, fault)`` -- every other call (default: :meth:`Fault.ok`).

A :class:`Fault` is ``ok`` (proceed), ``fail(errno)`` (return it without
touching the card), ``raise_(exc)``, ``hang(then=...)`` (block until
``faults.release()`` or ``hang_limit`` seconds, then do ``then``: "ok" or an
errno), ``sleep(seconds, then=...)``, or ``call(fn, then=...)`` (run
``fn(nic, cb, args)`` first -- e.g. delete the SA while its install is in
the driver; an int it returns is the errno to answer, an exception it
raises propagates, ``nic.faults.wait_release()`` hangs it).  Every fault can
carry a ``delay`` on top.

The base NIC's call ledger runs *before* any fault: a deinstall call is
accounted even if the fault then makes the driver fail it (the hardware
state then leaks inside this NIC, as it would on a broken card), so the
invariant "every successful if_sa_newkey is matched by exactly one
if_sa_deinstall call" is checked on what the kernel did, not on what the
faulty driver did with it.
"""

from __future__ import annotations

import errno as _errno
import random
import threading
import time
from collections import Counter, deque
from typing import Any, Callable, ClassVar, Iterable, NamedTuple, Optional

from .base import MockNic
from .hw import MODE_CRYPTO, MODE_PACKET, NicSa

__all__ = ["Fault", "FaultPlan", "FaultyNic", "InjectedFault", "CALLBACKS"]

CALLBACKS = ("if_sa_newkey", "if_sa_newkey_dir", "if_sa_deinstall", "if_spdadd",
             "if_spddel", "if_sa_cnt", "if_hwassist")


class InjectedFault(RuntimeError):
    """The default exception a ``raise_`` fault raises."""


class Fault(NamedTuple):
    """One programmed behaviour of one callback invocation."""

    kind: str = "ok"                 # ok | fail | raise | hang | call
    errno: int = 0
    exc: Optional[BaseException] = None
    delay: float = 0.0
    then: Any = "ok"                 # after hang/call/delay: "ok" or an errno
    fn: Optional[Callable[..., Any]] = None

    @classmethod
    def ok(cls, delay: float = 0.0) -> "Fault":
        return cls("ok", delay=delay)

    @classmethod
    def fail(cls, errno: int, delay: float = 0.0) -> "Fault":
        return cls("fail", errno=errno, delay=delay)

    @classmethod
    def raise_(cls, exc: Optional[BaseException] = None, delay: float = 0.0) -> "Fault":
        return cls("raise", exc=exc if exc is not None else InjectedFault("injected"),
                   delay=delay)

    @classmethod
    def hang(cls, then: Any = "ok") -> "Fault":
        return cls("hang", then=then)

    @classmethod
    def sleep(cls, seconds: float, then: Any = "ok") -> "Fault":
        return cls("ok" if then == "ok" else "fail", errno=0 if then == "ok" else int(then),
                   delay=seconds)

    @classmethod
    def call(cls, fn: Callable[..., Any], then: Any = "ok") -> "Fault":
        return cls("call", fn=fn, then=then)


class _Random(NamedTuple):
    p_fail: float
    errnos: tuple[int, ...]
    p_raise: float
    p_hang: float
    latency: tuple[float, float]


class FaultPlan:
    """Per-callback fault programming (module docstring).  Thread-safe."""

    def __init__(self, seed: Optional[int] = None, hang_limit: float = 10.0) -> None:
        self.rng = random.Random(seed)
        self.hang_limit = hang_limit
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Fault]] = {}
        self._random: dict[str, _Random] = {}
        self._defaults: dict[str, Fault] = {}
        self._release = threading.Event()
        self.hanging = 0
        self.hang_timeouts = 0
        self.seen: Counter[str] = Counter()

    def script(self, cb: str, faults: Iterable[Fault]) -> None:
        _check_cb(cb)
        with self._lock:
            self._scripts.setdefault(cb, deque()).extend(faults)

    def set_default(self, cb: str, fault: Fault) -> None:
        _check_cb(cb)
        with self._lock:
            self._defaults[cb] = fault

    def randomize(self, cb: str, *, p_fail: float = 0.0,
                  errnos: Iterable[int] = (_errno.EOPNOTSUPP, _errno.ENOSPC),
                  p_raise: float = 0.0, p_hang: float = 0.0,
                  latency: tuple[float, float] = (0.0, 0.0)) -> None:
        _check_cb(cb)
        with self._lock:
            self._random[cb] = _Random(p_fail, tuple(errnos) or (_errno.EIO,), p_raise,
                                       p_hang, latency)

    def clear(self, cb: Optional[str] = None) -> None:
        with self._lock:
            for d in (self._scripts, self._random, self._defaults):
                if cb is None:
                    d.clear()
                else:
                    d.pop(cb, None)

    def release(self) -> None:
        """Let every hung call (and future hangs) go."""
        self._release.set()

    def rearm(self) -> None:
        """Make future hangs block again."""
        self._release.clear()

    def next(self, cb: str) -> Fault:
        with self._lock:
            q = self._scripts.get(cb)
            if q:
                f = q.popleft()
            elif cb in self._random:
                r = self._random[cb]
                x = self.rng.random()
                lat = self.rng.uniform(*r.latency) if r.latency[1] > 0 else 0.0
                if x < r.p_fail:
                    f = Fault.fail(self.rng.choice(r.errnos), delay=lat)
                elif x < r.p_fail + r.p_raise:
                    f = Fault.raise_(delay=lat)
                elif x < r.p_fail + r.p_raise + r.p_hang:
                    f = Fault.hang()
                else:
                    f = Fault.ok(delay=lat)
            else:
                f = self._defaults.get(cb, Fault())
            self.seen[f"{cb}:{f.kind}"] += 1
        return f

    def apply(self, nic: "FaultyNic", cb: str, args: tuple[Any, ...]) -> Optional[int]:
        """Run the next fault of ``cb``: None means "proceed", an int is the
        errno to return instead; exceptions propagate."""
        f = self.next(cb)
        if f.delay:
            time.sleep(f.delay)
        kind = f.kind
        if kind == "ok":
            return None
        if kind == "fail":
            return f.errno
        if kind == "raise":
            assert f.exc is not None
            raise f.exc
        if kind == "call":
            assert f.fn is not None
            rv = f.fn(nic, cb, args)
            if isinstance(rv, int) and not isinstance(rv, bool):
                return rv
        elif kind == "hang":
            self.wait_release()
        return None if f.then == "ok" else int(f.then)

    def wait_release(self) -> bool:
        """Hang here until :meth:`release` or ``hang_limit`` seconds (then
        False).  Usable from a ``call`` fault's function."""
        with self._lock:
            self.hanging += 1
        try:
            ok = self._release.wait(self.hang_limit)
            if not ok:
                with self._lock:
                    self.hang_timeouts += 1
            return ok
        finally:
            with self._lock:
                self.hanging -= 1


def _check_cb(cb: str) -> None:
    if cb not in CALLBACKS:
        raise ValueError(f"unknown callback {cb!r}; one of {CALLBACKS}")


class FaultyNic(MockNic):
    """The faulty profile (module docstring).  Options: ``seed``,
    ``hang_limit`` (seconds a hang lasts at most), ``capacity``."""

    nonblocking_methods = False     # waits (see MockNic.nonblocking_methods)

    profile: ClassVar[str] = "faulty"
    dname: ClassVar[str] = "flt"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_PACKET, MODE_CRYPTO)
    has_spd_ops: ClassVar[bool] = True

    def __init__(self, name: Optional[str] = None, *, seed: Optional[int] = None,
                 hang_limit: float = 10.0, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.faults = FaultPlan(seed, hang_limit)

    def _newkey(self, ifpo: Any, sav: Any, drv_spi: int, direction: int,
                op: str) -> tuple[int, Any]:
        err = self.faults.apply(self, op, (ifpo, sav, drv_spi, direction))
        if err is not None:
            with self._cnt_lock:
                self.kpi[op] += 1
                self.kpi[f"{op}_error_{err}"] += 1
            return err, None
        return super()._newkey(ifpo, sav, drv_spi, direction, op)

    def sa_remove(self, ifp: Any, drv_spi: int, priv: Any) -> int:
        err = self.faults.apply(self, "if_sa_deinstall", (ifp, drv_spi, priv))
        if err is not None:
            return err          # the card keeps the state: leaked inside the NIC
        return super().sa_remove(ifp, drv_spi, priv)

    def if_spdadd(self, ifp: Any, sp: Any, inp: Any) -> tuple[int, Any]:
        err = self.faults.apply(self, "if_spdadd", (ifp, sp, inp))
        if err is not None:
            return err, None
        return super().if_spdadd(ifp, sp, inp)

    def if_spddel(self, ifp: Any, sp: Any, priv: Any) -> int:
        err = self.faults.apply(self, "if_spddel", (ifp, sp, priv))
        if err is not None:
            return err
        return super().if_spddel(ifp, sp, priv)

    def if_sa_cnt(self, ifp: Any, sav: Any, drv_spi: int, priv: Any, lt: Any) -> int:
        err = self.faults.apply(self, "if_sa_cnt", (ifp, sav, drv_spi, priv))
        if err is not None:
            return err
        return super().if_sa_cnt(ifp, sav, drv_spi, priv, lt)

    def if_hwassist(self, ifp: Any, sav: Any, drv_spi: int, priv: Any) -> int:
        err = self.faults.apply(self, "if_hwassist", (ifp, sav, drv_spi, priv))
        if err is not None:
            return 0
        return super().if_hwassist(ifp, sav, drv_spi, priv)

    def live_handles(self) -> list[NicSa]:
        return self.handles()
