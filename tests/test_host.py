"""ipsec_accel.host.Host: the modelled machine (kernel, ifnets, taskqueue,
offload layer, key timer).

The key timer is key.c's ``key_timehandler`` callout (once a second): with a
FakeClock it runs only through ``Host.tick``; with a wall clock, on a thread
from ``start()``.  Reference: pfkey_setkey_reference.md §B.3 (LARVAL SAs die
30 s after creation; hard lifetimes; EXPIRE messages).
"""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest

from ipsec_accel.host import KEY_TIMER_INTERVAL, TASKQUEUE_NAME, Host
from ipsec_accel.ifnet import Ifnet
from ipsec_accel.taskqueue import TqMode
from pfkey import FakeClock, SystemClock, decode
from pfkey.key_testing import add_msg, getspi_msg
from pfkey.pfkeyv2 import SADB, SADB_EXT

HAVE_OFFLOAD = importlib.util.find_spec("ipsec_accel.ipsec_offload") is not None


def test_parts_and_names() -> None:
    """A host owns one Key, one IfnetRegistry and the "ipsec_offload" queue."""
    h = Host(clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    try:
        assert h.taskqueue.name == TASKQUEUE_NAME == "ipsec_offload"
        assert h.key.clock is h.clock
        assert len(h.ifnets) == 0
        assert h.interfaces() == {}
        assert KEY_TIMER_INTERVAL == 1.0
        assert "interfaces: none" in h.describe()
    finally:
        h.stop()


def test_if_index_name_lookups() -> None:
    """if_indextoname / if_nametoindex read the host's V_ifnet."""
    h = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    try:
        h.ifnets.if_attach(Ifnet("mce0"))
        h.ifnets.if_attach(Ifnet("ix0"))
        assert h.interfaces() == {"mce0": 1, "ix0": 2}
        assert h.if_indextoname(2) == "ix0"
        assert h.if_indextoname(9) is None
        assert h.if_nametoindex("mce0") == 1
        assert h.if_nametoindex("em0") == 0
        assert "mce0" in h.describe() and "ix0" in h.describe()
    finally:
        h.stop()


def test_socket_is_a_keysocket_on_the_kernel() -> None:
    """Host.socket() is socket(PF_KEY, SOCK_RAW, PF_KEY_V2) on host.key."""
    with Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE) as h:
        so = h.socket()
        so.send(add_msg(0x1000).encode())
        reply = decode(so.recv(0))
        assert reply.type == SADB.ADD and reply.errno == 0
        assert h.key.sa_count() == 1


def test_tick_runs_key_timehandler_each_second() -> None:
    """key.c key_flush_sad: a LARVAL SA is deleted silently once
    ``now - created`` reaches larval_lifetime (30 s): tick() advances the
    FakeClock a second at a time and runs the callout after each."""
    clock = FakeClock()
    with Host(clock=clock, offload=False, taskqueue_mode=TqMode.INLINE) as h:
        assert h._timer_thread is None          # no thread with a FakeClock
        so = h.socket()
        so.send(getspi_msg().encode())
        so.recv(0)
        assert h.key.sa_count() == 1
        t0 = clock.now()
        h.tick(29)
        assert clock.now() == t0 + 29 and h.timer_ticks == 29
        assert h.key.sa_count() == 1
        h.tick(1)
        assert h.key.sa_count() == 0
        assert so.pending() == 0                # LARVAL death is silent


def test_hard_lifetime_expires_through_tick() -> None:
    """key_flush_sad: a hard addtime limit makes the SA DEAD and sends
    SADB_EXPIRE (REGISTERED) with the HARD lifetime."""
    from pfkey import SadbLifetime
    E = SADB_EXT
    clock = FakeClock()
    with Host(clock=clock, offload=False, taskqueue_mode=TqMode.INLINE) as h:
        reg = h.socket()
        reg.send(add_msg(0x2000).replace(type=SADB.REGISTER, exts=()).encode())
        reg.recv_all()
        so = h.socket()
        so.send(add_msg(0x2000, extra=(SadbLifetime(E.LIFETIME_HARD, 0, 0, 5, 0),
                                       SadbLifetime(E.LIFETIME_SOFT, 0, 0, 4, 0))).encode())
        so.recv(0)
        reg.recv_all()
        h.tick(5)
        types = [decode(m).type for m in reg.recv_all()]
        assert types == [SADB.EXPIRE]           # soft at 5 s (> 4)
        h.tick(1)
        msgs = [decode(m) for m in reg.recv_all()]
        assert [m.type for m in msgs] == [SADB.EXPIRE]
        assert msgs[0].has(E.LIFETIME_HARD)
        assert h.key.sa_count() == 0


def test_timer_thread_with_a_wall_clock() -> None:
    """With SystemClock, start() runs the callout on a thread; stop() ends it."""
    h = Host(clock=SystemClock(), offload=False, taskqueue_mode=TqMode.INLINE,
             timer_interval=0.01)
    h.start()
    try:
        deadline = time.monotonic() + 5
        while h.timer_ticks < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert h.timer_ticks >= 3
        assert h._timer_thread is not None and h._timer_thread.is_alive()
    finally:
        h.stop()
    assert h._timer_thread is not None and not h._timer_thread.is_alive()
    n = h.timer_ticks
    time.sleep(0.05)
    assert h.timer_ticks == n


def test_timer_survives_a_failing_timehandler(monkeypatch: pytest.MonkeyPatch) -> None:
    """A callout that raises is logged and counted; the next one still runs."""
    h = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    calls = []

    def boom(now: int) -> None:
        calls.append(now)
        raise RuntimeError("bug in a timer pass")

    monkeypatch.setattr(h.key, "key_timehandler", boom)
    h.tick(3)
    assert len(calls) == 3 and h.timer_errors == 3 and h.timer_ticks == 3
    h.stop()


def test_start_stop_idempotent_and_context_manager() -> None:
    h = Host(clock=SystemClock(), offload=False, timer_interval=0.05)
    assert not h.running
    with h:
        assert h.running
        h.start()                               # second start: no second thread
        threads = [t for t in threading.enumerate() if t.name == "host.key_timer"]
        assert len(threads) == 1
    assert not h.running
    h.stop()
    h.start()                                   # a stopped host does not restart
    assert not h.running
    assert not h.taskqueue.active


def test_offload_absent_or_disabled() -> None:
    """offload=False: no layer, key.c's hooks stay the no-op table."""
    from pfkey.hooks import NO_HOOKS
    h = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    assert h.offload is None and h.key.hooks is NO_HOOKS
    assert "offload: none" in h.describe()
    h.stop()


def test_custom_offload_factory_attached_and_detached() -> None:
    """A factory attaches a layer; stop() detaches it (its detach() runs)."""
    events = []

    class Layer:
        def detach(self) -> None:
            events.append("detach")

    def factory(host: Host) -> Layer:
        events.append(("attach", host.key))
        return Layer()

    h = Host(clock=FakeClock(), offload=factory, taskqueue_mode=TqMode.INLINE)
    assert events == [("attach", h.key)] and h.offload is not None
    h.stop()
    assert events[-1] == "detach" and h.offload is None


@pytest.mark.skipif(not HAVE_OFFLOAD, reason="ipsec_accel.ipsec_offload not present")
def test_default_offload_layer_uses_the_host_taskqueue() -> None:
    """The default layer is ipsec_offload.c on this host's kernel, interfaces
    and "ipsec_offload" taskqueue; its hooks are key.c's table."""
    h = Host(clock=FakeClock())
    try:
        assert h.offload is not None
        assert h.offload.tq is h.taskqueue
        assert h.key.hooks is h.offload.hooks
        assert h.sync(5.0)
    finally:
        h.stop()
    from pfkey.hooks import NO_HOOKS
    assert h.key.hooks is NO_HOOKS and not h.taskqueue.active


@pytest.mark.skipif(not HAVE_OFFLOAD, reason="ipsec_accel.ipsec_offload not present")
def test_settle_for_waits_only_before_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    """settle_for syncs the offload taskqueue before GET/DUMP/SPDGET/SPDDUMP only."""
    h = Host(clock=FakeClock())
    calls = []
    monkeypatch.setattr(h, "sync", lambda timeout=5.0: calls.append(1) or True)
    try:
        for mtype, want in ((SADB.ADD, 0), (SADB.DUMP, 1), (SADB.GET, 1), (SADB.X_SPDDUMP, 1),
                            (SADB.X_SPDGET, 1), (SADB.FLUSH, 0)):
            calls.clear()
            h.settle_for(bytes([2, mtype]) + bytes(14))
            assert len(calls) == want, SADB(mtype).name
    finally:
        h.stop()
