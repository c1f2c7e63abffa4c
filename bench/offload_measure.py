"""Install measurements shared by ``bench_offload.py`` (a bare in-memory
driver) and ``bench_drivers.py`` (the mlx5-like NIC): the same burst and
idle-queue runs, each with its own driver.

A driver here is anything with ``done`` (spi -> perf_counter stamp of the
install's return) and ``arm(n) -> Event`` (set once ``n`` installs have
succeeded); ``env()`` returns (key, ifnet registry, driver) with the driver
attached and the offload layer *not* yet created, so SAs can be put in the
SAD first and the key engine's cost stays out of the figures.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Protocol

from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.ipsec_offload import IpsecOffload
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import offload_sync
from pfkey.key import Key
from pfkey.key_testing import add_msg
from pfkey.keydb import secasvar
from pfkey.keysock import KeySocket
from pfkey.message import Message
from pfkey.pfkeyv2 import SADB

__all__ = ["TimedDriver", "Env", "pct", "run_once", "fill_sad", "burst", "isolated",
           "settle_and_flush"]


class TimedDriver(Protocol):
    done: dict[int, float]

    def arm(self, n: int) -> threading.Event: ...


Env = Callable[[], tuple[Key, IfnetRegistry, Any]]


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``xs``."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


def run_once(benchmark: Any, fn: Callable[[], dict[str, float]], report: dict[str, Any],
             name: str, digits: int = 3) -> dict[str, float]:
    """Run ``fn`` once under pytest-benchmark (a 10,000-SA run is its own
    repetition); its figures go, rounded to ``digits``, into the benchmark's
    extra_info and, as measured, into ``report[name]``."""
    res: dict[str, float] = benchmark.pedantic(fn, rounds=1, iterations=1)
    benchmark.extra_info.update({k: round(v, digits) for k, v in res.items()})
    report[name] = res
    return res


def fill_sad(key: Key, n: int, base: int = 0x1000, **sa: Any) -> list[secasvar]:
    """``n`` MATURE SAs (SPIs ``base``...) added through PF_KEY."""
    so = key.socket(recvspace=1 << 30)
    for i in range(n):
        so.send(add_msg(base + i, **sa).encode())
    so.recv_all()
    return [key.savhash[base + i] for i in range(n)]


def burst(env: Env, guard: str, n: int, sa: Optional[dict[str, Any]] = None,
          check: Optional[Callable[[IpsecOffload, Any], None]] = None) -> dict[str, float]:
    """``n`` SAs offered back to back with ipsec_accel_sa_newkey: installs/s
    (first offer -> last install) and offer -> installed latency p50/p99
    (mostly queueing in a burst).  ``check(off, drv)`` runs once all are in."""
    key, reg, drv = env()
    savs = fill_sad(key, n, **(sa or {}))
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD, drv_guard=guard)
    try:
        t_offer: dict[int, float] = {}
        ev = drv.arm(n)
        newkey = off.hooks.ipsec_accel_sa_newkey
        t0 = time.perf_counter()
        for sav in savs:
            t_offer[sav.spi] = time.perf_counter()
            newkey(sav)
        assert ev.wait(300)
        t1 = time.perf_counter()
        offload_sync(off)
        lat = [drv.done[s] - t for s, t in t_offer.items()]
        assert off.stats.installs == n
        if check is not None:
            check(off, drv)
        off._check(quiescent=True)
    finally:
        off.detach()
    return {"installs_per_s": n / (t1 - t0), "p50_ms": pct(lat, 50) * 1e3,
            "p99_ms": pct(lat, 99) * 1e3}


def isolated(env: Env, guard: str, n: int = 2000,
             sa: Optional[dict[str, Any]] = None) -> dict[str, float]:
    """One SA at a time through an idle queue (offer, wait until installed):
    offer -> installed latency p50/p99."""
    key, reg, drv = env()
    savs = fill_sad(key, n, **(sa or {}))
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD, drv_guard=guard)
    lat: list[float] = []
    try:
        newkey = off.hooks.ipsec_accel_sa_newkey
        for k, sav in enumerate(savs):
            ev = drv.arm(k + 1)
            t = time.perf_counter()
            newkey(sav)
            assert ev.wait(10)
            lat.append(drv.done[sav.spi] - t)
        offload_sync(off)
    finally:
        off.detach()
    return {"p50_us": pct(lat, 50) * 1e6, "p99_us": pct(lat, 99) * 1e6}


def settle_and_flush(off: IpsecOffload, so: KeySocket, drv: TimedDriver,
                     t_send: dict[int, float]) -> tuple[float, list[float]]:
    """The end of a PF_KEY churn run: wait for the worker to settle (returns
    that moment), take the SADB_ADD -> installed latency of each SA the
    worker installed, then SADB_FLUSH, drain again and check the offload
    layer quiescent.  Returns (settled time, latencies)."""
    offload_sync(off)
    t1 = time.perf_counter()
    lat = [drv.done[s] - t for s, t in t_send.items() if s in drv.done]
    so.send(Message(SADB.FLUSH, 0).encode())
    offload_sync(off)
    off._check(quiescent=True)
    return t1, lat
