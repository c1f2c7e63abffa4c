"""Tests for ipsec_accel.taskqueue: taskqueue(9), sys/kern/subr_taskqueue.c
and sys/sys/taskqueue.h.  Thread tests wait on events with timeouts; nothing
asserts on elapsed time."""

from __future__ import annotations

import errno
import threading
from typing import Any, Iterator

import pytest

from ipsec_accel.taskqueue import USHRT_MAX, Task, TaskQueue, TqMode, taskqueue_create
from thread_helpers import run_threads

T = 5.0   # generous bound for every wait; tests never rely on it being short


@pytest.fixture
def tq() -> Iterator[TaskQueue]:
    q = TaskQueue("ipsec_offload")
    yield q
    q.free(timeout=T)


def _recorder() -> tuple[list[tuple[Any, int]], Any]:
    seen: list[tuple[Any, int]] = []

    def fn(ctx: Any, pending: int) -> None:
        seen.append((ctx, pending))
    return seen, fn


# ---------------------------------------------------------------- THREAD mode

def test_worker_is_one_named_daemon_thread(tq: TaskQueue) -> None:
    """taskqueue_start_threads(&tq, 1, PWAIT, "ipsec_offload"): one thread
    named after the queue; the model makes it a daemon."""
    assert tq.thread is not None
    assert tq.thread.name == "ipsec_offload"
    assert tq.thread.daemon
    where: list[bool] = []
    t = Task(lambda c, p: where.append(tq.member()), name="m")
    tq.enqueue(t)
    assert tq.drain(t, T)
    assert where == [True]
    assert not tq.member()           # taskqueue_member: caller is not the worker


def test_fifo_order_single_thread(tq: TaskQueue) -> None:
    """taskqueue_enqueue inserts at the tail for equal priorities and one
    thread runs them in order (ipsec_offload relies on it)."""
    seen, fn = _recorder()
    concurrent = []
    active = [0]
    lock = threading.Lock()

    def guarded(ctx: Any, pending: int) -> None:
        with lock:
            active[0] += 1
            concurrent.append(active[0])
        fn(ctx, pending)
        with lock:
            active[0] -= 1

    for i in range(200):
        tq.enqueue(Task(guarded, i))
    assert tq.drain_all(T)
    assert [c for c, _ in seen] == list(range(200))
    assert max(concurrent) == 1


def test_coalescing_bumps_ta_pending_and_runs_once(tq: TaskQueue) -> None:
    """taskqueue_enqueue: "Count multiple enqueues" -- a pending task only
    gets ta_pending++, and the function receives the count."""
    seen, fn = _recorder()
    t = Task(fn, "ctx")
    tq.block()
    for _ in range(3):
        assert tq.enqueue(t) == 0
    assert t.ta_pending == 3
    tq.unblock()
    assert tq.drain(t, T)
    assert seen == [("ctx", 3)]
    st = tq.stats
    assert (st.enqueued, st.coalesced, st.run) == (3, 2, 1)


def test_ta_pending_saturates_at_ushrt_max() -> None:
    """taskqueue_enqueue_locked: ``if (task->ta_pending < USHRT_MAX)``."""
    q = TaskQueue("m", TqMode.MANUAL)
    seen, fn = _recorder()
    t = Task(fn)
    q.enqueue(t)
    t.ta_pending = USHRT_MAX - 1
    q.enqueue(t)
    q.enqueue(t)
    assert t.ta_pending == USHRT_MAX
    q.run()
    assert seen == [(None, USHRT_MAX)]


def test_fail_if_pending_returns_eexist() -> None:
    """taskqueue_enqueue_flags(TASKQUEUE_FAIL_IF_PENDING) -> EEXIST."""
    q = TaskQueue("m", TqMode.MANUAL)
    t = Task(lambda c, p: None)
    assert q.enqueue(t, fail_if_pending=True) == 0
    assert q.enqueue(t, fail_if_pending=True) == errno.EEXIST
    assert t.ta_pending == 1


def test_task_reenqueued_while_running_runs_again(tq: TaskQueue) -> None:
    """taskqueue_run_locked zeroes ta_pending before calling the function,
    so an enqueue during the run queues the task again."""
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []

    def fn(ctx: Any, pending: int) -> None:
        runs.append(pending)
        if len(runs) == 1:
            started.set()
            assert release.wait(T)

    t = Task(fn)
    tq.enqueue(t)
    assert started.wait(T)
    tq.enqueue(t)                     # while running
    assert t.ta_pending == 1
    release.set()
    assert tq.drain(t, T)
    assert runs == [1, 1]


def test_cancel_pending_and_running(tq: TaskQueue) -> None:
    """taskqueue_cancel: removes a pending task and reports its count; a
    running task yields EBUSY and is not stopped."""
    started = threading.Event()
    release = threading.Event()
    seen, fn = _recorder()

    def blocker(ctx: Any, pending: int) -> None:
        started.set()
        assert release.wait(T)

    b = Task(blocker, name="blocker")
    victim = Task(fn, "victim")
    tq.enqueue(b)
    assert started.wait(T)
    tq.enqueue(victim)
    tq.enqueue(victim)
    assert tq.cancel(victim) == (0, 2)
    assert victim.ta_pending == 0
    assert tq.cancel(b) == (errno.EBUSY, 0)
    release.set()
    assert tq.drain_all(T)
    assert seen == []
    assert tq.stats.cancelled == 1


def test_drain_waits_for_pending_and_running_task(tq: TaskQueue) -> None:
    """taskqueue_drain: sleeps while ta_pending != 0 or the task runs."""
    gate = threading.Event()
    done: list[bool] = []

    def slow(ctx: Any, pending: int) -> None:
        assert gate.wait(T)
        done.append(True)

    t = Task(slow)
    tq.enqueue(t)
    threading.Timer(0.05, gate.set).start()
    assert tq.drain(t, T)
    assert done == [True]
    assert not tq.poll_is_busy(t)


def test_drain_all_waits_for_everything_queued_before_the_call(tq: TaskQueue) -> None:
    """taskqueue_drain_all = drain_tq_queue (barrier behind all queued
    tasks) + drain_tq_active; this is ipsec_accel_sync()."""
    gate = threading.Event()
    seen, fn = _recorder()
    tq.enqueue(Task(lambda c, p: gate.wait(T), name="gate"))
    for i in range(20):
        tq.enqueue(Task(fn, i))
    threading.Timer(0.05, gate.set).start()
    assert tq.drain_all(T)
    assert [c for c, _ in seen] == list(range(20))
    assert tq.stats.depth == 0


def test_drain_all_does_not_wait_for_tasks_enqueued_by_running_tasks(tq: TaskQueue) -> None:
    """subr_taskqueue.c: "Tasks queued during execution of this function are
    ignored" -- a task enqueued by a running task lands behind the barrier,
    so drain_all may return before it finishes; taskqueue_quiesce waits."""
    a_running = threading.Event()
    release_a = threading.Event()
    release_b = threading.Event()
    b_done = threading.Event()

    def b_fn(ctx: Any, pending: int) -> None:
        assert release_b.wait(T)
        b_done.set()

    b = Task(b_fn, name="B")

    def a_fn(ctx: Any, pending: int) -> None:
        a_running.set()
        assert release_a.wait(T)
        tq.enqueue(b)                 # enqueued after drain_all started

    tq.enqueue(Task(a_fn, name="A"))
    assert a_running.wait(T)
    result: list[bool] = []
    drainer = threading.Thread(target=lambda: result.append(tq.drain_all(T)))
    drainer.start()
    release_a.set()
    drainer.join(T)
    assert result == [True]
    assert not b_done.is_set()        # drain_all returned without waiting for B
    release_b.set()
    assert tq.quiesce(T)
    assert b_done.is_set()


def test_task_exception_is_logged_counted_and_worker_survives(
        tq: TaskQueue, caplog: pytest.LogCaptureFixture) -> None:
    """A failing task must never kill the worker (the offload layer treats a
    driver exception as a driver error); the queue keeps running."""
    seen, fn = _recorder()

    def boom(ctx: Any, pending: int) -> None:
        raise ValueError("driver exploded")

    def exit_(ctx: Any, pending: int) -> None:
        raise SystemExit(3)

    with caplog.at_level("ERROR", logger="ipsec_accel.taskqueue"):
        tq.enqueue(Task(boom, name="boom"))
        tq.enqueue(Task(exit_, name="exit"))
        tq.enqueue(Task(fn, "after"))
        assert tq.drain_all(T)
    assert seen == [("after", 1)]
    assert tq.stats.failed == 2
    assert [n for n, _ in tq.errors] == ["boom", "exit"]
    assert isinstance(tq.last_error, SystemExit)
    assert tq.thread is not None and tq.thread.is_alive()
    assert "driver exploded" in caplog.text


def test_block_holds_tasks_until_unblock(tq: TaskQueue) -> None:
    """taskqueue_block / taskqueue_unblock: enqueued tasks accumulate and run
    after unblock.  (A drain on a blocked queue cannot finish: bounded here.)"""
    seen, fn = _recorder()
    tq.block()
    t = Task(fn, "x")
    tq.enqueue(t)
    assert not tq.drain_all(timeout=0.1)
    assert seen == [] and tq.stats.depth == 1
    tq.unblock()
    assert tq.drain_all(T)
    assert seen == [("x", 1)]


def test_priority_order() -> None:
    """taskqueue_enqueue_locked: a higher ta_priority is inserted before the
    first queued task of lower priority; equal priorities stay FIFO."""
    q = TaskQueue("m", TqMode.MANUAL)
    seen, fn = _recorder()
    for name, prio in [("a0", 0), ("b0", 0), ("c5", 5), ("d1", 1), ("e5", 5)]:
        q.enqueue(Task(fn, name, priority=prio))
    q.run()
    assert [c for c, _ in seen] == ["c5", "e5", "d1", "a0", "b0"]


def test_drain_from_the_worker_thread_raises_instead_of_deadlocking(tq: TaskQueue) -> None:
    """FreeBSD would sleep forever draining its own queue; the model raises
    in the task, which the queue records like any task failure."""
    tq.enqueue(Task(lambda c, p: tq.drain_all(), name="selfdrain"))
    assert tq.drain_all(T)
    assert isinstance(tq.last_error, RuntimeError)


def test_free_runs_remaining_tasks_and_stops_the_thread() -> None:
    """taskqueue_free: the thread runs what is still queued
    (taskqueue_run_locked after the loop) and exits; no enqueue afterwards."""
    q = taskqueue_create("f")
    seen, fn = _recorder()
    gate = threading.Event()
    q.enqueue(Task(lambda c, p: gate.wait(T)))
    for i in range(5):
        q.enqueue(Task(fn, i))
    threading.Timer(0.05, gate.set).start()
    assert q.free(timeout=T)
    assert [c for c, _ in seen] == list(range(5))
    assert q.thread is not None and not q.thread.is_alive()
    with pytest.raises(RuntimeError):
        q.enqueue(Task(fn))
    assert q.free()                    # idempotent


def test_many_producers_every_task_runs_exactly_once(tq: TaskQueue) -> None:
    """Concurrent taskqueue_enqueue from several threads: per-producer FIFO,
    no loss, no duplicate runs."""
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def fn(ctx: Any, pending: int) -> None:
        with lock:
            seen.append(ctx)

    def producer(pid: int) -> None:
        for i in range(500):
            tq.enqueue(Task(fn, (pid, i)))

    run_threads(producer, [(p,) for p in range(4)], T)
    assert tq.quiesce(T)
    assert len(seen) == 2000
    for p in range(4):
        assert [i for pid, i in seen if pid == p] == list(range(500))
    st = tq.stats
    assert st.run == 2000 and st.depth == 0 and st.max_depth >= 1


def test_yield_between_tasks_keeps_order_counts_and_drain(tq: TaskQueue) -> None:
    """The daemon's knob (yield the interpreter between backlog tasks)
    changes scheduling only: FIFO per producer, every task once, drain_all
    waits for what was queued (taskqueue_run_locked semantics)."""
    tq.yield_between_tasks = True
    seen: list[tuple[int, int]] = []
    started = threading.Event()

    def fn(ctx: Any, pending: int) -> None:
        started.wait(T)
        seen.append(ctx)

    def producer(pid: int) -> None:
        for i in range(300):
            tq.enqueue(Task(fn, (pid, i)))

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join(T)
    assert tq.drain_all(T)
    assert len(seen) == 900
    for p in range(3):
        assert [i for pid, i in seen if pid == p] == list(range(300))
    assert tq.stats.run == 900 and tq.stats.depth == 0


# ---------------------------------------------------------------- INLINE mode

def test_inline_mode_runs_synchronously_and_nested_enqueues_run_after() -> None:
    """Inline mode: enqueue runs the task before returning; a task enqueued
    from inside a task runs after the current one (FIFO, never nested), as
    the single ipsec_offload thread would run it."""
    q = TaskQueue("i", TqMode.INLINE)
    order: list[str] = []

    def inner(ctx: Any, pending: int) -> None:
        order.append("inner")

    def outer(ctx: Any, pending: int) -> None:
        order.append("outer-start")
        q.enqueue(Task(inner))
        order.append("outer-end")

    q.enqueue(Task(outer))
    assert order == ["outer-start", "outer-end", "inner"]
    assert q.stats.run == 2 and q.thread is None


def test_inline_mode_drain_inside_a_task_raises_and_block_defers() -> None:
    """Inline mode keeps FreeBSD's rules: draining from the running task is
    an error (recorded); a blocked queue accumulates until unblock."""
    q = TaskQueue("i", TqMode.INLINE)
    q.enqueue(Task(lambda c, p: q.drain_all(), name="selfdrain"))
    assert isinstance(q.last_error, RuntimeError)
    seen, fn = _recorder()
    q.block()
    q.enqueue(Task(fn, "held"))
    assert seen == [] and not q.drain_all()
    q.unblock()
    assert seen == [("held", 1)]


# ---------------------------------------------------------------- MANUAL mode

def test_manual_mode_runs_only_when_asked() -> None:
    """Manual mode opens race windows: nothing runs until run()/run_one()/
    drain()/drain_all(), which execute in the calling thread."""
    q = TaskQueue("m", TqMode.MANUAL)
    seen, fn = _recorder()
    tasks = [Task(fn, i) for i in range(4)]
    for t in tasks:
        q.enqueue(t)
    assert seen == [] and q.depth == 4
    assert q.run_one()
    assert seen == [(0, 1)]
    assert q.drain(tasks[2])          # runs 1 and 2 (FIFO ahead of it)
    assert [c for c, _ in seen] == [0, 1, 2]
    assert q.run() == 1
    assert not q.run_one()


def test_manual_mode_drain_all_stops_at_the_barrier() -> None:
    """taskqueue_drain_all in manual mode: runs what was queued before the
    call; a task enqueued by a running task stays queued."""
    q = TaskQueue("m", TqMode.MANUAL)
    seen, fn = _recorder()
    late = Task(fn, "late")
    q.enqueue(Task(lambda c, p: q.enqueue(late), name="spawner"))
    q.enqueue(Task(fn, "early"))
    assert q.drain_all()
    assert seen == [("early", 1)]
    assert late.ta_pending == 1
    assert q.quiesce()
    assert seen == [("early", 1), ("late", 1)]


def test_enqueue_of_a_task_pending_elsewhere_is_refused() -> None:
    """A struct task can be on one queue at a time."""
    q1 = TaskQueue("a", TqMode.MANUAL)
    q2 = TaskQueue("b", TqMode.MANUAL)
    t = Task(lambda c, p: None)
    q1.enqueue(t)
    with pytest.raises(RuntimeError):
        q2.enqueue(t)
    assert q1.cancel(t) == (0, 1)
    q2.enqueue(t)
    assert q2.run() == 1


def test_inline_mode_with_two_threads_keeps_one_runner() -> None:
    """Inline mode never runs two tasks at once: a thread enqueueing while
    another thread is running tasks leaves its task to that runner, which
    runs the queue to empty before returning (no task is stranded)."""
    q = TaskQueue("i2", TqMode.INLINE)
    gate = threading.Event()
    started = threading.Event()
    order: list[str] = []

    def first(ctx: Any, pending: int) -> None:
        order.append("first")
        started.set()
        assert gate.wait(T)

    runner = threading.Thread(target=lambda: q.enqueue(Task(first)))
    runner.start()
    assert started.wait(T)
    q.enqueue(Task(lambda c, p: order.append("second")))
    assert order == ["first"]          # left to the runner thread
    gate.set()
    runner.join(T)
    assert order == ["first", "second"] and q.depth == 0
