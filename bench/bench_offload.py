"""Offload install benchmarks: SAs through the threaded "ipsec_offload"
taskqueue into a fast in-memory driver.

Run: ``.venv/bin/python -m pytest bench/bench_offload.py --benchmark-enable -q -s``

* ``test_offload_install_burst_10k`` -- 10,000 MATURE SAs (created with the
  offload detached, so the key engine's cost is not in the figure) are
  offered back to back with ``ipsec_accel_sa_newkey``; the worker runs the
  install tasks (MATURE check, interface walk, drv_spi, driver call, handle
  recording).  Reports installs per second (first offer -> last install;
  target >= 10,000/s) and the offer -> installed latency p50/p99 (in a
  burst this is mostly queueing), for the default guarded driver calls
  (helper thread, 5 s bound) and for direct calls (``drv_guard="never"``,
  FreeBSD's way).
* ``test_offload_install_latency`` -- one SA at a time (offer, wait until
  installed): the latency of an install through an idle queue, p50/p99.
* ``test_offload_sadb_add_10k`` -- the same 10,000 SAs end to end: SADB_ADD
  through a PF_KEY socket on the test thread while the worker installs.
* ``test_offload_churn_10k`` -- 10,000 operations mixing SADB_ADD and
  SADB_DELETE (50/50 over a working set) through PF_KEY while the worker
  installs and forgets; ops/s and install latency, then drained and checked
  (every install deinstalled once, drv_spi back to zero after a flush).

The mlx5-like NIC's figures are in ``bench_drivers.py`` (the burst and
idle-queue runs of both come from ``offload_measure.py``).  Figures are
measured side by side in one run; they depend on the machine.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Optional

import pytest

from ipsec_accel.ifnet import IFCAP2_IPSEC_OFFLOAD_MASK, IfIpsecAccelMethods, Ifnet, \
    IfnetRegistry
from ipsec_accel.ipsec_offload import IpsecOffload
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import offload_sync
from offload_measure import burst, isolated, pct, run_once, settle_and_flush
from pfkey.clock import FakeClock
from pfkey.key import Key
from pfkey.key_testing import add_msg, sa_req_msg
from pfkey.keydb import secasvar
from pfkey.pfkeyv2 import SADB

N = 10_000
_report: dict[str, Any] = {}


class FastDriver:
    """The cheapest driver: accepts everything, timestamps each install."""

    def __init__(self) -> None:
        self.done: dict[int, float] = {}
        self.live = 0
        self.installs = 0
        self.deinstalls = 0
        self.event: Optional[threading.Event] = None
        self.want = 0
        self._lock = threading.Lock()

    def if_sa_newkey(self, ifp: Ifnet, sav: secasvar, drv_spi: int) -> tuple[int, Any]:
        self.done[sav.spi] = time.perf_counter()
        self.installs += 1
        if self.event is not None and self.installs >= self.want:
            self.event.set()
        return 0, drv_spi

    def if_sa_deinstall(self, ifp: Ifnet, drv_spi: int, priv: Any) -> int:
        self.deinstalls += 1
        return 0

    def arm(self, n: int) -> threading.Event:
        self.event, self.want = threading.Event(), n
        return self.event

    def methods(self) -> IfIpsecAccelMethods:
        return IfIpsecAccelMethods(if_sa_newkey=self.if_sa_newkey,
                                   if_sa_deinstall=self.if_sa_deinstall,
                                   if_spdadd=lambda ifp, sp, inp: (0, None),
                                   if_spddel=lambda ifp, sp, priv: 0)


def _env() -> tuple[Key, IfnetRegistry, FastDriver]:
    key = Key(FakeClock(), rng=random.Random(1))
    reg = IfnetRegistry()
    drv = FastDriver()
    ifp = Ifnet("mce0", capabilities2=IFCAP2_IPSEC_OFFLOAD_MASK)
    ifp.if_ipsec_accel_m = drv.methods()
    reg.ether_ifattach(ifp)
    return key, reg, drv


@pytest.mark.parametrize("guard", ["taskqueue", "never"])
def test_offload_install_burst_10k(benchmark: Any, guard: str) -> None:
    """10,000 offers back to back: installs/s and offer->installed latency."""
    label = "guarded" if guard == "taskqueue" else "direct"
    res = run_once(benchmark, lambda: burst(_env, guard, N), _report, f"burst {label}")
    print(f"\noffload install burst ({label} driver calls), {N} SAs: "
          f"{res['installs_per_s']:,.0f} installs/s (target >= 10,000/s), "
          f"latency p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")


@pytest.mark.parametrize("guard", ["taskqueue", "never"])
def test_offload_install_latency(benchmark: Any, guard: str) -> None:
    """One SA at a time through an idle queue: offer -> installed."""
    label = "guarded" if guard == "taskqueue" else "direct"
    res = run_once(benchmark, lambda: isolated(_env, guard), _report, f"latency {label}", digits=1)
    print(f"\noffload install latency ({label}), idle queue: p50 {res['p50_us']:.0f} us "
          f"p99 {res['p99_us']:.0f} us")


def _sadb_add(n: int = N) -> dict[str, float]:
    key, reg, drv = _env()
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD)
    so = key.socket(recvspace=1 << 30)
    try:
        ev = drv.arm(n)
        t_send: dict[int, float] = {}
        msgs = [add_msg(0x1000 + i).encode() for i in range(n)]
        t0 = time.perf_counter()
        for i, m in enumerate(msgs):
            t_send[0x1000 + i] = time.perf_counter()
            so.send(m)
            so.recv_nowait()
        t_sent = time.perf_counter()
        assert ev.wait(120)
        t1 = time.perf_counter()
        offload_sync(off)
        lat = [drv.done[s] - t for s, t in t_send.items()]
        off._check(quiescent=True)
    finally:
        off.detach()
    return {"adds_per_s": n / (t_sent - t0), "installs_per_s": n / (t1 - t0),
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3}


def test_offload_sadb_add_10k(benchmark: Any) -> None:
    """SADB_ADD end to end with the offload attached (guarded calls)."""
    res = run_once(benchmark, _sadb_add, _report, "sadb_add")
    print(f"\nSADB_ADD + offload, {N} SAs: {res['adds_per_s']:,.0f} adds/s sent, "
          f"{res['installs_per_s']:,.0f} installs/s completed, latency p50 "
          f"{res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")


def _churn(n: int = N, seed: int = 1) -> dict[str, float]:
    key, reg, drv = _env()
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD)
    so = key.socket(recvspace=1 << 30)
    rng = random.Random(seed)
    live: list[int] = []
    next_spi = 0x1000
    adds = dels = 0
    t_send: dict[int, float] = {}
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            if live and (rng.random() < 0.5 or len(live) > 2000):
                spi = live.pop(rng.randrange(len(live)))
                so.send(sa_req_msg(SADB.DELETE, spi).encode())
                dels += 1
            else:
                spi = next_spi
                next_spi += 1
                t_send[spi] = time.perf_counter()
                so.send(add_msg(spi).encode())
                live.append(spi)
                adds += 1
            so.recv_nowait()
        t_sent = time.perf_counter()
        t1, lat = settle_and_flush(off, so, drv, t_send)
        assert drv.installs == drv.deinstalls and off.stats.drv_spi_in_use == 0
    finally:
        off.detach()
    return {"ops_per_s": n / (t_sent - t0), "settled_ops_per_s": n / (t1 - t0),
            "adds": adds, "deletes": dels, "installed": drv.installs,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3}


def test_offload_churn_10k(benchmark: Any) -> None:
    """10,000 SADB_ADD/SADB_DELETE operations with the offload attached."""
    res = run_once(benchmark, _churn, _report, "churn")
    print(f"\nchurn {N} ops ({res['adds']:.0f} adds, {res['deletes']:.0f} deletes, "
          f"{res['installed']:.0f} installed before their delete): "
          f"{res['ops_per_s']:,.0f} ops/s sent, {res['settled_ops_per_s']:,.0f} ops/s settled, "
          f"install latency p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")
