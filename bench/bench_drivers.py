"""Offload installs into the mlx5-like driver through the threaded
"ipsec_offload" taskqueue.

Run: ``.venv/bin/python -m pytest bench/bench_drivers.py --benchmark-enable -q -s``

Every install here is a real one: ``mlx5e_if_sa_newkey``'s validation, two
hardware SAs (inbound + outbound) each with its AES-GCM key context built,
two table slots, the TX/RX lookup entries -- plus the offload layer's task,
interface walk, drv_spi allocation and handle recording.

* ``test_mlx5_install_burst_10k`` -- 10,000 MATURE AES-GCM transport SAs
  (created with the offload detached, so the key engine's cost is not in
  the figure) offered back to back with ``ipsec_accel_sa_newkey``: installs
  per second (first offer -> last install returned; target >= 10,000/s)
  and offer -> installed latency p50/p99 (in a burst mostly queueing), with
  every driver call on a guard helper thread (``drv_guard="always"``, what a
  driver without a non-blocking method table gets; 5 s bound), with the
  default (mlx5 declares its methods non-blocking: called directly) and with
  ``drv_guard="never"`` (FreeBSD's way).
* ``test_mlx5_install_churn_10k`` -- the burst under churn: 10,000 new SAs
  offered while 10,000 installed ones are deleted (SADB_DELETE through
  PF_KEY, one delete after each offer), so install and forget tasks (two
  hardware SAs removed each) interleave on the worker: installs/s and
  offer -> installed latency, for the same three guard modes.
* ``test_mlx5_install_latency`` -- one SA at a time through an idle queue:
  p50/p99 of offer -> installed.
* ``test_mlx5_pfkey_churn_10k`` -- 10,000 PF_KEY operations: SADB_ADDs up to a
  working set of 1,000 SAs, then alternately an SADB_ADD and an SADB_DELETE
  of the oldest SA, while the worker installs and forgets (two hardware SAs
  each way): operations/s sent and settled, installs/s, SADB_ADD ->
  installed latency p50/p99; then flushed and checked (every install
  deinstalled once, drv_spi and the card's tables back to zero).  The key
  engine on the sending thread and the worker share one GIL, so most SAs
  are deleted before their install task runs (FreeBSD skips those too):
  the figure is end-to-end PF_KEY throughput, not install throughput.

Figures are measured in one run on this machine; ``--benchmark-enable`` only
adds pytest-benchmark's bookkeeping (each case runs once: a 10,000-SA run is
its own repetition).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any, Optional

import pytest

from drivers import Mlx5Nic
from drivers.testing import gcm_sa
from ipsec_accel.ifnet import Ifnet, IfnetRegistry
from ipsec_accel.ipsec_offload import IpsecOffload
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import offload_sync
from offload_measure import burst, fill_sad, isolated, pct, run_once, settle_and_flush
from pfkey.clock import FakeClock
from pfkey.key import Key
from pfkey.key_testing import add_msg, sa_req_msg
from pfkey.pfkeyv2 import SADB

N = 10_000
_report: dict[str, Any] = {}


class TimedMlx5(Mlx5Nic):
    """Mlx5Nic stamping the moment each install returns."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.done: dict[int, float] = {}
        self.ok = 0
        self.event: Optional[threading.Event] = None
        self.want = 0

    def _newkey(self, ifpo: Ifnet, sav: Any, drv_spi: int, direction: int,
                op: str) -> tuple[int, Any]:
        r = super()._newkey(ifpo, sav, drv_spi, direction, op)
        self.done[sav.spi] = time.perf_counter()
        if r[0] == 0:
            self.ok += 1
        ev = self.event
        if ev is not None and self.ok >= self.want:
            ev.set()
        return r

    def arm(self, n: int) -> threading.Event:
        self.event, self.want = threading.Event(), n
        return self.event


def _env() -> tuple[Key, IfnetRegistry, TimedMlx5]:
    key = Key(FakeClock(), rng=random.Random(1))
    reg = IfnetRegistry()
    nic = TimedMlx5("mce0")
    nic.attach(registry=reg, key=key)
    return key, reg, nic


#: drv_guard modes: "always" runs every driver call on a guard helper thread
#: (what any driver that does not declare a non-blocking method table gets
#: on the taskqueue); "taskqueue" is the default, which calls mlx5 (it
#: declares its methods non-blocking) directly; "never" is FreeBSD's way.
GUARDS = ["always", "taskqueue", "never"]
_LABEL = {"always": "guarded (helper thread)", "taskqueue": "default (non-blocking: direct)",
          "never": "direct"}


def _mlx5_table_full(off: IpsecOffload, nic: TimedMlx5) -> None:
    assert nic.sa_table.count == 2 * off.stats.installs     # inbound + outbound each


@pytest.mark.parametrize("guard", GUARDS)
def test_mlx5_install_burst_10k(benchmark: Any, guard: str) -> None:
    """10,000 offers back to back into mlx5: installs/s, latency."""
    label = _LABEL[guard]
    res = run_once(benchmark, lambda: burst(_env, guard, N, sa=gcm_sa(), check=_mlx5_table_full),
                   _report, f"burst {label}")
    print(f"\nmlx5 install burst ({label} driver calls), {N} SAs: "
          f"{res['installs_per_s']:,.0f} installs/s (target >= 10,000/s), "
          f"latency p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")


def _burst_churn(guard: str) -> dict[str, float]:
    key, reg, nic = _env()
    so = key.socket(recvspace=1 << 30)
    old = fill_sad(key, N, **gcm_sa())           # installed before the clock starts
    new = fill_sad(key, N, base=0x100000, **gcm_sa())
    dels = [sa_req_msg(SADB.DELETE, sav.spi).encode() for sav in old]
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD, drv_guard=guard)
    try:
        newkey = off.hooks.ipsec_accel_sa_newkey
        ev = nic.arm(N)
        for sav in old:
            newkey(sav)
        assert ev.wait(300)
        offload_sync(off)
        base_ok, base_deinst = nic.ok, off.stats.deinstalls
        ev = nic.arm(base_ok + N)
        t_offer: dict[int, float] = {}
        t0 = time.perf_counter()
        for sav, d in zip(new, dels):
            t_offer[sav.spi] = time.perf_counter()
            newkey(sav)
            so.send(d)                            # SADB_DELETE of an installed SA
            so.recv_nowait()
        assert ev.wait(300)
        offload_sync(off)
        t1 = time.perf_counter()
        lat = [nic.done[s] - t for s, t in t_offer.items()]
        assert off.stats.deinstalls - base_deinst == N and nic.ok - base_ok == N
        assert nic.sa_table.count == 2 * N
        off._check(quiescent=True)
    finally:
        off.detach()
    return {"installs_per_s": N / (t1 - t0), "ops_per_s": 2 * N / (t1 - t0),
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3}


@pytest.mark.parametrize("guard", GUARDS)
def test_mlx5_install_churn_10k(benchmark: Any, guard: str) -> None:
    """10,000 installs offered while 10,000 installed SAs are deleted
    (SADB_DELETE, interleaved 1:1): installs/s and latency under churn."""
    label = _LABEL[guard]
    res = run_once(benchmark, lambda: _burst_churn(guard), _report, f"churn {label}")
    print(f"\nmlx5 install churn ({label}), {N} installs + {N} deletes interleaved: "
          f"{res['installs_per_s']:,.0f} installs/s ({res['ops_per_s']:,.0f} install+forget "
          f"ops/s), latency p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")


@pytest.mark.parametrize("guard", GUARDS)
def test_mlx5_install_latency(benchmark: Any, guard: str) -> None:
    """One SA at a time through an idle queue: offer -> installed in mlx5."""
    label = _LABEL[guard]
    res = run_once(benchmark, lambda: isolated(_env, guard, sa=gcm_sa()), _report,
                   f"latency {label}", digits=1)
    print(f"\nmlx5 install latency ({label}), idle queue: p50 {res['p50_us']:.0f} us "
          f"p99 {res['p99_us']:.0f} us")


def _churn(n: int = N, window: int = 1000) -> dict[str, float]:
    key, reg, nic = _env()
    off = IpsecOffload(key, reg, tq_mode=TqMode.THREAD)
    so = key.socket(recvspace=1 << 30)
    live: collections.deque[int] = collections.deque()
    next_spi = 0x1000
    adds = dels = 0
    t_send: dict[int, float] = {}
    msgs = [add_msg(0x1000 + i, **gcm_sa()).encode() for i in range(n)]
    try:
        t0 = time.perf_counter()
        for i in range(n):
            # Grow to the working set, then alternate: add one, delete the
            # oldest (an SA lives ~2 * window operations).
            if len(live) >= window and i % 2:
                so.send(sa_req_msg(SADB.DELETE, live.popleft()).encode())
                dels += 1
            else:
                spi = next_spi
                next_spi += 1
                t_send[spi] = time.perf_counter()
                so.send(msgs[spi - 0x1000])
                live.append(spi)
                adds += 1
            so.recv_nowait()
        t_sent = time.perf_counter()
        t1, lat = settle_and_flush(off, so, nic, t_send)
        assert nic.outstanding() == {} and not nic.check_invariants()
        assert nic.sa_table.count == 0 and off.stats.drv_spi_in_use == 0
        forgets = off.stats.deinstalls
    finally:
        off.detach()
    return {"ops_per_s": n / (t_sent - t0), "settled_ops_per_s": n / (t1 - t0),
            "adds": adds, "deletes": dels, "installed": nic.ok,
            "installs_per_s": nic.ok / (t1 - t0), "deinstalls": forgets,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3}


def test_mlx5_pfkey_churn_10k(benchmark: Any) -> None:
    """10,000 SADB_ADD/SADB_DELETE operations with mlx5 installing."""
    res = run_once(benchmark, _churn, _report, "churn")
    print(f"\nmlx5 churn {N} PF_KEY ops ({res['adds']:.0f} adds, {res['deletes']:.0f} "
          f"deletes, {res['installed']:.0f} installed): {res['ops_per_s']:,.0f} ops/s sent, "
          f"{res['settled_ops_per_s']:,.0f} ops/s settled, {res['installs_per_s']:,.0f} "
          f"installs/s, install latency p50 {res['p50_ms']:.1f} ms p99 {res['p99_ms']:.1f} ms")
