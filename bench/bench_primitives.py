"""Kernel primitive costs: per-packet tag strategies, taskqueue latency, unr.

Run: ``.venv/bin/python -m pytest bench/bench_primitives.py --benchmark-enable -q -s``

* Tag strategies, per packet, over batches of ``BATCH`` mbufs (each case
  allocates the mbuf, attaches the per-packet marker, looks it up as a driver
  would, and frees the mbuf with ``m_freem``):
  ``bare`` (no marker: the baseline), ``mtag`` (FreeBSD today: an
  ``m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT)`` per packet from the locked
  "mbuf_tag" zone), ``mtag_nolock`` (the same zone without its lock: the cost
  of the counters' atomics), ``sndtag`` (a send tag made once per handle,
  referenced per packet: ``m_set_snd_tag`` + release in ``m_free``),
  ``phfield`` (a packet-header field: no allocation at all).  The report
  prints host time per packet above ``bare`` and zone allocations per packet.
* taskqueue: round-trip latency enqueue -> worker runs -> caller wakes (THREAD
  mode), and the INLINE-mode cost of an enqueue that runs its task.
* unr: one ``alloc_unr`` + ``free_unr`` at half occupancy of 3..0xffff.

Numbers are ratios measured side by side in one run (DESIGN.md §6).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

import ipsec_accel.mbuf as mb
from ipsec_accel.taskqueue import Task, TaskQueue, TqMode
from ipsec_accel.unr import UnrAllocator

BATCH = 1000
PKT = bytes(64)
_results: dict[str, float] = {}
_allocs: dict[str, float] = {}


class _Ifp:
    if_xname = "mce0"

    def if_ref(self) -> None:
        pass

    def if_rele(self) -> None:
        pass


def _record(benchmark: Any, name: str, per_call: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        per = stats.stats.min / per_call
        _results[name] = per
        benchmark.extra_info["us_per_op"] = round(per * 1e6, 3)


def _tag_case(kind: str) -> tuple[Callable[[], None], mb.Zone | None]:
    out_tag = mb.PACKET_TAG_IPSEC_ACCEL_OUT
    Mbuf, m_freem, m_tag_find, m_tag_prepend = mb.Mbuf, mb.m_freem, mb.m_tag_find, mb.m_tag_prepend
    if kind in ("mtag", "mtag_nolock"):
        zone = mb.Zone(f"bench_{kind}", 0, factory=mb.MTag, cache=256,
                       locked=kind == "mtag")
        m_tag_get = mb.m_tag_get

        def run() -> None:
            for _ in range(BATCH):
                m = Mbuf(PKT)
                t = m_tag_get(out_tag, 2, 1, zone)
                t.data = 7
                m_tag_prepend(m, t)
                m_tag_find(m, out_tag).data   # the driver's TX lookup
                m_freem(m)
        return run, zone
    if kind == "sndtag":
        zone = mb.Zone("bench_sndtag", mb.MSNDTAG_SIZE, factory=mb.MSndTag)
        mst = mb.m_snd_tag_alloc(_Ifp(), mb.IfSndTagSw(mb.IF_SND_TAG_TYPE_IPSEC_ACCEL),
                                 softc=7, zone=zone)
        assert mst is not None
        set_tag = mb.m_set_snd_tag

        def run() -> None:
            for _ in range(BATCH):
                m = Mbuf(PKT)
                set_tag(m, mst)
                m.snd_tag.softc   # type: ignore[union-attr]
                m_freem(m)
        return run, zone
    if kind == "phfield":
        def run() -> None:
            for _ in range(BATCH):
                m = Mbuf(PKT)
                m.ph_spare = 7
                m.ph_spare
                m_freem(m)
        return run, None

    def run() -> None:
        for _ in range(BATCH):
            m = Mbuf(PKT)
            m_freem(m)
    return run, None


@pytest.mark.parametrize("kind", ["bare", "mtag", "mtag_nolock", "sndtag", "phfield"])
def test_tag_strategy(benchmark: Any, kind: str) -> None:
    run, zone = _tag_case(kind)
    before = zone.stats.requests if zone is not None else 0
    benchmark.group = "tag-strategy"
    benchmark.pedantic(run, rounds=30, warmup_rounds=2)
    if zone is not None:
        rounds = max(1, getattr(getattr(benchmark, "stats", None), "stats", None).rounds
                     if getattr(benchmark, "stats", None) is not None else 1)
        warm = 2 if getattr(benchmark, "stats", None) is not None else 0
        _allocs[kind] = (zone.stats.requests - before) / ((rounds + warm) * BATCH)
        assert zone.stats.used == (1 if kind == "sndtag" else 0)
    else:
        _allocs[kind] = 0.0
    _record(benchmark, kind, BATCH)


def test_taskqueue_round_trip_latency(benchmark: Any) -> None:
    """enqueue from the caller, the worker runs it, the caller is woken."""
    tq = TaskQueue("bench_tq")
    done = threading.Event()
    task = Task(lambda c, p: done.set())
    n = 200

    def run() -> None:
        for _ in range(n):
            done.clear()
            tq.enqueue(task)
            done.wait(5)

    benchmark.group = "taskqueue"
    try:
        benchmark.pedantic(run, rounds=10, warmup_rounds=1)
    finally:
        tq.free()
    _record(benchmark, "tq_thread_rtt", n)


def test_taskqueue_throughput_drain_all(benchmark: Any) -> None:
    """enqueue ``n`` distinct tasks then ipsec_accel_sync (drain_all)."""
    tq = TaskQueue("bench_tq2")
    tasks = [Task(lambda c, p: None) for _ in range(1000)]

    def run() -> None:
        for t in tasks:
            tq.enqueue(t)
        tq.drain_all(10)

    benchmark.group = "taskqueue"
    try:
        benchmark.pedantic(run, rounds=10, warmup_rounds=1)
    finally:
        tq.free()
    _record(benchmark, "tq_thread_batch", len(tasks))


def test_taskqueue_inline_enqueue(benchmark: Any) -> None:
    tq = TaskQueue("bench_inline", TqMode.INLINE)
    task = Task(lambda c, p: None)

    def run() -> None:
        for _ in range(BATCH):
            tq.enqueue(task)

    benchmark.group = "taskqueue"
    benchmark.pedantic(run, rounds=20, warmup_rounds=1)
    _record(benchmark, "tq_inline", BATCH)


def test_unr_alloc_free(benchmark: Any) -> None:
    u = UnrAllocator(3, 0xFFFF)
    for _ in range(32768):
        u.alloc_unr()
    for x in range(3, 32768, 2):
        u.free_unr(x)

    def run() -> None:
        for _ in range(BATCH):
            x = u.alloc_unr()
            u.free_unr(x)

    benchmark.group = "unr"
    benchmark.pedantic(run, rounds=20, warmup_rounds=1)
    _record(benchmark, "unr", BATCH)


def test_primitives_report() -> None:
    """Print the comparison (only when benchmarks ran)."""
    if not _results:
        pytest.skip("benchmarks disabled (run with --benchmark-enable)")
    bare = _results.get("bare", 0.0)
    lines = ["", "per-packet tag strategy   host us/pkt   over bare   zone allocs/pkt"]
    for k in ("bare", "mtag", "mtag_nolock", "sndtag", "phfield"):
        if k in _results:
            lines.append(f"  {k:<22} {_results[k] * 1e6:10.3f}  {(_results[k] - bare) * 1e6:10.3f}"
                         f"  {_allocs.get(k, 0.0):14.3f}")
    lines.append("primitive                  us/op")
    for k, label in (("tq_thread_rtt", "taskqueue enqueue->run->wake"),
                     ("tq_thread_batch", "taskqueue per task (1000 + drain_all)"),
                     ("tq_inline", "taskqueue inline enqueue+run"),
                     ("unr", "unr alloc+free")):
        if k in _results:
            lines.append(f"  {label:<38} {_results[k] * 1e6:8.3f}")
    print("\n".join(lines))
