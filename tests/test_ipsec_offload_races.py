"""Race tests on the threaded "ipsec_offload" taskqueue with the programmable
TestDriver (random small latencies and outcomes): delete during install,
ifdown during install, capability toggle, driver hang.  Each runs 1,000+
randomized iterations (``@pytest.mark.slow`` variants run 20,000), then
drains and checks the invariants:

* no handle left on a DEAD SA (``_check(quiescent=True)``), and the
  structural invariants also *while* the worker runs (``_check()``);
* every successful if_sa_newkey matched by exactly one if_sa_deinstall
  (``TestDriver.check_balanced``);
* no drv_spi live in two handles;
* drv_spi count back to zero after a flush (the drivers here only fail with
  EOPNOTSUPP, or the run uses "free_drv_spi_on_error", so nothing leaks).

Interleavings are whatever the scheduler produces; nothing asserts timing.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import random
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    Hang, OffloadRig, Raise, TestDriver, wait_for)
from pfkey.keydb import DEAD

N = 1000
N_SLOW = 20000


def _net(k: int) -> str:
    """A distinct /24 selector source per k."""
    return f"{10 + k // 250}.{k % 250}.0.0"


def _jitter(rng: random.Random, p: float = 0.3) -> None:
    if rng.random() < p:
        time.sleep(rng.random() * 0.0002)
    else:
        time.sleep(0)


def _flaky(rng: random.Random, lock: threading.Lock, reject: float = 0.1,
           jitter: float = 0.3) -> Callable[..., Any]:
    """A scripted outcome: random tiny latency, EOPNOTSUPP with ``reject``."""

    def outcome(*args: Any) -> int:
        with lock:
            r = rng.random()
            j = rng.random() < jitter
            d = rng.random() * 0.0002
        if j:
            time.sleep(d)
        return errno.EOPNOTSUPP if r < reject else 0
    return outcome


@contextlib.contextmanager
def _meanwhile(action: Callable[[random.Random], None], seed: int) -> Iterator[None]:
    """Run ``action(rng)`` over and over on another thread (a short random
    pause between calls) for as long as the ``with`` body runs; an exception
    there fails the test once the thread is joined."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        lrng = random.Random(seed)
        try:
            while not stop.is_set():
                action(lrng)
                time.sleep(lrng.random() * 0.0005)
        except BaseException as e:          # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=loop)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
    assert not errors, errors


def _runs(seed: int, slow_n: int = N_SLOW) -> list[Any]:
    """(n, seed) of a race test's default run and of its ``@slow`` soak
    (``make test-slow``), which has a seed of its own."""
    return [pytest.param(N, seed, id="default"),
            pytest.param(slow_n, seed + 1, marks=pytest.mark.slow, id="slow")]


def _finish(r: OffloadRig) -> None:
    """Flush everything, drain, and check every invariant."""
    r.flush()
    r.spdflush()
    r.sync()
    # abandoned driver calls (hang test) settle when they return
    assert wait_for(lambda: not r.off.drv.stuck, 30)
    for sav in list(r.key.savhash.values()):
        assert sav.state != DEAD
    r.check(balanced=True)
    assert r.off.stats.drv_spi_in_use == 0 and r.off.stats.sa_handles == 0
    assert not r.off.drv_spi_leaked


# -- delete during install -------------------------------------------------------------

def _delete_during_install(r: OffloadRig, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    for name in ("tnic0", "tnic1"):
        d = r.driver(name=name)
        d.set_default("if_sa_newkey", _flaky(rng, lock))
        d.set_default("if_sa_deinstall", _flaky(rng, lock, reject=0))
        r.nic(name, driver=d)
    for i in range(n):
        spi = 0x1000 + i
        r.add_sa(spi)
        roll = rng.random()
        if roll < 0.8:
            _jitter(rng)
            r.delete_sa(spi)            # before, during or after the install task
        if i % 250 == 249:
            r.off._check()              # structural invariants, worker running
            r.sync()
            r.off._check(quiescent=True)
    _finish(r)


@pytest.mark.parametrize("n, seed", _runs(1))
def test_race_delete_during_install(make_offload_rig, n: int, seed: int) -> None:
    """ipsec_accel_forget_sav_impl vs ipsec_accel_sa_newkey_act: SADB_DELETE
    from the PF_KEY thread at random points of the install (before the task,
    inside the driver call, after it)."""
    _delete_during_install(make_offload_rig(TqMode.THREAD, verbose=False), n, seed)


# -- ifdown during install -------------------------------------------------------------

def _ifdown_during_install(r: OffloadRig, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    nics = []
    for name in ("tnic0", "tnic1"):
        d = r.driver(name=name)
        d.set_default("if_sa_newkey", _flaky(rng, lock))
        d.set_default("if_spdadd", _flaky(rng, lock))
        nics.append(r.nic(name, driver=d))

    def down(lrng: random.Random) -> None:
        r.key.ipsec_accel_on_ifdown(lrng.choice(nics))   # the driver's stop path

    with _meanwhile(down, seed + 1):
        for i in range(n):
            spi = 0x1000 + i
            r.add_sa(spi)
            if i % 50 == 0:
                r.spdadd(src=_net(i // 50))
            if rng.random() < 0.5:
                _jitter(rng)
                r.delete_sa(spi)
            if i % 250 == 249:
                r.off._check()
    r.sync()
    r.off._check(quiescent=True)
    _finish(r)


@pytest.mark.parametrize("n, seed", _runs(3))
def test_race_ifdown_during_install(make_offload_rig, n: int, seed: int) -> None:
    """ipsec_accel_on_ifdown_impl (a driver thread) vs the install and add
    tasks: the marker walks run concurrently with handle creation; handles an
    install records after the walk passed stay on the down interface until
    the SA goes (FreeBSD's race, reproduced) -- and are then deinstalled."""
    _ifdown_during_install(make_offload_rig(TqMode.THREAD, verbose=False), n, seed)


# -- capability toggle -----------------------------------------------------------------

def _capability_toggle(r: OffloadRig, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    d = r.driver(name="tnic0")
    d.set_default("if_sa_newkey", _flaky(rng, lock))
    nic = r.nic("tnic0", driver=d)
    r.nic("tnic1")
    flips = itertools.cycle((False, True))

    def toggle(lrng: random.Random) -> None:
        assert r.ifnets.if_setipsec(nic, next(flips)) == 0    # mlx5-like: on_ifdown when off

    with _meanwhile(toggle, seed + 1):
        for i in range(n):
            spi = 0x1000 + i
            r.add_sa(spi)
            if rng.random() < 0.6:
                _jitter(rng)
                r.delete_sa(spi)
            if i % 100 == 0:
                r.spdadd(src=_net(i // 100))
            if i % 250 == 249:
                r.off._check()
    r.ifnets.if_setipsec(nic, True)
    _finish(r)


@pytest.mark.parametrize("ext, n, seed", [
    pytest.param((), N, 5, id="freebsd"), pytest.param(("reoffer",), N, 5, id="reoffer"),
    pytest.param(("reoffer",), N_SLOW, 6, marks=pytest.mark.slow, id="reoffer-slow")])
def test_race_capability_toggle(make_offload_rig, ext, n: int, seed: int) -> None:
    """mlx5-like SIOCSIFCAPNV (on_ifdown, toggle) from another thread while
    SAs and SPs come and go -- FreeBSD's behaviour and with re-offers."""
    _capability_toggle(make_offload_rig(TqMode.THREAD, verbose=False, extensions=list(ext)),
                       n, seed)


# -- driver hang -----------------------------------------------------------------------

def _driver_hang(r: OffloadRig, n: int, seed: int) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()

    def newkey(*args: Any) -> Any:
        with lock:
            x = rng.random()
        if x < 0.01:
            return Hang(0.02)            # longer than drv_timeout: abandoned
        if x < 0.02:
            return Raise()
        if x < 0.05:
            return errno.ENOSPC
        if x < 0.15:
            return errno.EOPNOTSUPP
        return 0

    def deinstall(*args: Any) -> Any:
        with lock:
            x = rng.random()
        return Hang(0.02) if x < 0.01 else Raise() if x < 0.02 else 0

    for name in ("tnic0", "tnic1"):
        d = r.driver(name=name)
        d.set_default("if_sa_newkey", newkey)
        d.set_default("if_sa_deinstall", deinstall)
        r.nic(name, driver=d)
    for i in range(n):
        spi = 0x1000 + i
        r.add_sa(spi)
        if rng.random() < 0.7:
            _jitter(rng)
            r.delete_sa(spi)
        if i % 250 == 249:
            r.off._check()
    r.sync()
    assert wait_for(lambda: not r.off.drv.stuck, 30)
    assert r.tq.thread.is_alive() and r.tq.stats.failed == 0
    _finish(r)


@pytest.mark.parametrize("n, seed", _runs(7, slow_n=N_SLOW // 4))
def test_race_driver_hang(make_offload_rig, n: int, seed: int) -> None:
    """Driver calls that hang (past drv_timeout), raise or fail, at random:
    the worker thread survives, stuck calls are abandoned and reconciled
    when they return, and nothing is left behind."""
    _driver_hang(make_offload_rig(TqMode.THREAD, verbose=False, drv_timeout=0.005,
                                  extensions=["free_drv_spi_on_error"]), n, seed)


_ = TestDriver
