"""taskqueue(9): ``sys/kern/subr_taskqueue.c`` and ``sys/sys/taskqueue.h``.

ipsec_offload.c creates one queue, "ipsec_offload", with exactly one thread
("Must be single-threaded": the install/forget/spdadd/spddel tasks rely on
FIFO order and on never running concurrently), and ``ipsec_accel_sync()`` is
``taskqueue_drain_all()``.  This module models that queue:

* :class:`Task` is ``struct task``: ``ta_func(ta_context, pending)``,
  ``ta_priority``, and ``ta_pending`` coalescing -- enqueueing a task that is
  already pending only bumps ``ta_pending`` (capped at ``USHRT_MAX``) and the
  callback runs once with the count.  A task re-enqueued while it runs is
  queued again (its pending count was zeroed when it was dequeued).
* Order is FreeBSD's: FIFO among equal priorities; a higher priority task is
  inserted before the first queued task of lower priority.
* :meth:`TaskQueue.drain_all` is FreeBSD's barrier algorithm
  (``taskqueue_drain_tq_queue`` + ``taskqueue_drain_tq_active``): it waits for
  every task queued *before the call* and for the task running at the call.
  It does **not** wait for tasks enqueued after the call -- including tasks
  that a draining task enqueues, which land behind the barrier.  (Checked
  against subr_taskqueue.c: the barrier has priority USHRT_MAX so newly queued
  tasks cannot pass it, and its comment says "Tasks queued during execution of
  this function are ignored".)  :meth:`TaskQueue.quiesce` is
  ``taskqueue_quiesce``: repeat until the queue is empty and idle.
* ``block``/``unblock``, ``cancel`` (EBUSY when running), ``drain(task)``,
  ``poll_is_busy``, ``member``, ``free``.

Modes (:class:`TqMode`):

``THREAD`` (default)
    One real daemon worker thread named after the queue, as
    ``taskqueue_start_threads(&tq, 1, PWAIT, name)``.
``INLINE``
    Deterministic unit tests: ``enqueue`` runs the task (and anything queued
    behind it) synchronously in the caller's thread before returning.  A task
    enqueued from inside a running task is queued and runs right after the
    current one (FIFO, never nested).  If another thread is already running
    the queue inline, ``enqueue`` returns at once and that thread runs the
    task before it returns (one runner at a time, as with one worker).
    Caution: the task runs with the
    *enqueuer's* locks held; use MANUAL mode when the enqueuer holds a
    non-reentrant lock the task needs (e.g. key.c calling newkey under
    SAHTREE_WLOCK).
``MANUAL``
    Nothing runs until the test calls :meth:`TaskQueue.run`,
    :meth:`TaskQueue.run_one`, :meth:`TaskQueue.drain` or
    :meth:`TaskQueue.drain_all`, which run tasks in the calling thread.  This
    is how a test opens a race window (e.g. delete an SA before its install
    task runs).

Failures: a task raising an exception is logged (logger
``ipsec_accel.taskqueue``), counted in ``stats.failed`` and remembered in
:attr:`TaskQueue.errors`; it never kills the worker thread.

Deliberate departures from FreeBSD, all documented where they happen:
``block()`` stops the worker before its next task (FreeBSD only suppresses
wake-ups, so a thread already looping finishes the batch); draining from the
queue's own thread raises RuntimeError instead of deadlocking; drain_all on a
blocked queue in INLINE/MANUAL mode returns False instead of sleeping forever.
"""

from __future__ import annotations

import enum
import errno
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, NamedTuple

__all__ = [
    "Task", "TaskQueue", "TaskQueueStats", "TqMode", "TaskFn", "USHRT_MAX",
    "taskqueue_create",
]

log = logging.getLogger("ipsec_accel.taskqueue")

USHRT_MAX = 0xFFFF

#: ``task_fn_t``: ``func(context, pending)``.
TaskFn = Callable[[Any, int], None]


class TqMode(enum.Enum):
    THREAD = "thread"
    INLINE = "inline"
    MANUAL = "manual"


class Task:
    """``struct task`` (``TASK_INIT(task, priority, func, context)``).

    A Task object is reusable, like a preallocated kernel task: enqueue it as
    often as needed; while it is pending further enqueues coalesce.
    """

    __slots__ = ("ta_func", "ta_context", "ta_priority", "ta_pending", "name", "_tq")

    def __init__(self, func: TaskFn, context: Any = None, priority: int = 0,
                 name: str | None = None) -> None:
        if not 0 <= priority <= USHRT_MAX:
            raise ValueError("ta_priority is a u_short")
        self.ta_func = func
        self.ta_context = context
        self.ta_priority = priority
        self.ta_pending = 0
        self.name = name if name is not None else getattr(func, "__name__", "task")
        self._tq: TaskQueue | None = None   # queue it is pending on

    def __repr__(self) -> str:
        return f"<Task {self.name} prio={self.ta_priority} pending={self.ta_pending}>"


class _Barrier:
    """The ``t_barrier`` of taskqueue_drain_tq_queue: a no-op marker that
    completes when every task ahead of it has been dequeued."""

    __slots__ = ("done",)
    ta_priority = USHRT_MAX

    def __init__(self) -> None:
        self.done = False


class TaskQueueStats(NamedTuple):
    """Counters; ``depth`` is the number of queued tasks (barriers excluded)."""

    enqueued: int      # enqueue calls that queued or coalesced
    coalesced: int     # of those, calls that only bumped ta_pending
    run: int           # task executions started
    failed: int        # executions that raised
    cancelled: int     # pending tasks removed by cancel()
    depth: int
    max_depth: int
    running: bool


class TaskQueue:
    """A named taskqueue with one worker (see module docstring for modes).

    >>> tq = TaskQueue("demo", TqMode.INLINE)
    >>> seen = []
    >>> t = Task(lambda ctx, pending: seen.append((ctx, pending)), "x")
    >>> tq.enqueue(t); seen
    0
    [('x', 1)]
    """

    def __init__(self, name: str = "taskqueue", mode: TqMode = TqMode.THREAD,
                 *, max_errors: int = 32) -> None:
        self.name = name
        self.mode = mode
        # tq_mutex.  Every field below is protected by it; the task callback
        # always runs with it dropped (taskqueue_run_locked does the same).
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._queue: deque[Task | _Barrier] = deque()
        self._depth = 0
        self._active = True          # TQ_FLAGS_ACTIVE
        self._blocked = False        # TQ_FLAGS_BLOCKED
        self._running: Task | None = None
        self._runner: int | None = None   # ident of the thread executing tasks
        self._started = 0            # executions dequeued (sequence numbers)
        self._finished = 0           # highest sequence number completed
        self._enqueued = 0
        self._coalesced = 0
        self._run = 0
        self._failed = 0
        self._cancelled = 0
        self._max_depth = 0
        #: Recent failures as (task name, exception), newest last.
        self.errors: deque[tuple[str, BaseException]] = deque(maxlen=max_errors)
        #: THREAD mode (model knob): give the interpreter away between the
        #: tasks of a backlog.  A kernel's taskqueue thread is preempted; under
        #: the GIL a busy one makes a thread that woke for a socket wait a
        #: whole switch interval (5 ms).  On for the PF_KEY daemon, whose
        #: socket threads block between messages; off by default, because a
        #: producer thread that never blocks would then starve the queue.
        self.yield_between_tasks = False
        self._thread: threading.Thread | None = None
        if mode is TqMode.THREAD:
            self._thread = threading.Thread(target=self._thread_loop, name=name,
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ API

    def enqueue(self, task: Task, *, fail_if_pending: bool = False) -> int:
        """``taskqueue_enqueue``; with ``fail_if_pending``,
        ``taskqueue_enqueue_flags(TASKQUEUE_FAIL_IF_PENDING)`` which returns
        EEXIST instead of coalescing.  Returns 0 on success."""
        with self._lock:
            if not self._active:
                raise RuntimeError(f"taskqueue {self.name!r} has been freed")
            if task.ta_pending:
                if task._tq is not self:
                    raise RuntimeError(f"{task!r} is pending on another taskqueue")
                if fail_if_pending:
                    return errno.EEXIST
                if task.ta_pending < USHRT_MAX:
                    task.ta_pending += 1
                self._enqueued += 1
                self._coalesced += 1
                return 0
            self._insert(task)
            task.ta_pending = 1
            task._tq = self
            self._enqueued += 1
            self._depth += 1
            if self._depth > self._max_depth:
                self._max_depth = self._depth
            if self.mode is TqMode.THREAD:
                if not self._blocked:
                    self._cv.notify_all()
                return 0
            if self.mode is TqMode.MANUAL or self._blocked or self._runner is not None:
                # MANUAL waits for run(); INLINE with a runner active (a nested
                # enqueue, or another thread mid-run) leaves it to that runner.
                return 0
            self._run_in_caller(lambda: False)
            return 0

    def enqueue_fn(self, func: TaskFn, context: Any = None, priority: int = 0,
                   name: str | None = None) -> Task:
        """Convenience: enqueue a fresh one-shot :class:`Task` and return it."""
        task = Task(func, context, priority, name)
        self.enqueue(task)
        return task

    def cancel(self, task: Task) -> tuple[int, int]:
        """``taskqueue_cancel``: remove a pending task.  Returns
        ``(error, pending)``: error is EBUSY if the task is running right now
        (it is not stopped), pending the count it had."""
        with self._lock:
            pending = task.ta_pending
            if pending and task._tq is self:
                self._queue.remove(task)
                self._depth -= 1
                self._cancelled += 1
                task.ta_pending = 0
                task._tq = None
            else:
                pending = 0
            busy = self._running is task
            return (errno.EBUSY if busy else 0, pending)

    def drain(self, task: Task, timeout: float | None = None) -> bool:
        """``taskqueue_drain``: wait until ``task`` is neither pending nor
        running.  Returns False on timeout."""
        with self._lock:
            self._check_not_self_drain()
            if self.mode is TqMode.THREAD:
                return self._wait(lambda: not (task.ta_pending or self._running is task),
                                  timeout)
            if not self._wait(lambda: self._runner is None, timeout):
                return False
            if task.ta_pending and self._blocked:
                return False
            self._run_in_caller(lambda: not task.ta_pending)
            return not task.ta_pending

    def drain_all(self, timeout: float | None = None) -> bool:
        """``taskqueue_drain_all`` (what ``ipsec_accel_sync`` calls): wait for
        every task queued before this call and for the one running at this
        call.  Tasks enqueued later are not waited for.  Returns False on
        timeout (or, in INLINE/MANUAL mode, when the queue is blocked)."""
        with self._lock:
            self._check_not_self_drain()
            if self.mode is TqMode.THREAD:
                return self._drain_all_thread(timeout)
            if not self._wait(lambda: self._runner is None, timeout):
                return False
            if not self._queue:
                return True
            if self._blocked:
                return False
            barrier = _Barrier()
            self._queue.append(barrier)
            self._run_in_caller(lambda: barrier.done)
            return True

    def quiesce(self, timeout: float | None = None) -> bool:
        """``taskqueue_quiesce``: wait until the queue is empty and nothing
        runs, including tasks enqueued meanwhile by running tasks."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.drain_all(left):
                return False
            with self._lock:
                if not self._queue and self._running is None:
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def run(self, max_tasks: int | None = None) -> int:
        """``taskqueue_run``: in INLINE/MANUAL mode run queued tasks in the
        calling thread until the queue is empty (or ``max_tasks`` ran).
        Returns the number of tasks executed."""
        if self.mode is TqMode.THREAD:
            raise RuntimeError("run() is for INLINE/MANUAL queues; the worker runs THREAD queues")
        with self._lock:
            self._check_not_self_drain()
            self._wait(lambda: self._runner is None, None)
            if self._blocked:
                return 0
            before = self._run
            limit = None if max_tasks is None else before + max_tasks
            self._run_in_caller(lambda: limit is not None and self._run >= limit)
            return self._run - before

    def run_one(self) -> bool:
        """Run the task at the head of the queue (INLINE/MANUAL mode)."""
        return self.run(1) == 1

    def block(self) -> None:
        """``taskqueue_block``: queued and newly enqueued tasks do not start
        until :meth:`unblock`.  A task already running finishes."""
        with self._lock:
            self._blocked = True

    def unblock(self) -> None:
        """``taskqueue_unblock``; an INLINE queue runs what accumulated."""
        with self._lock:
            self._blocked = False
            if self.mode is TqMode.THREAD:
                self._cv.notify_all()
            elif (self.mode is TqMode.INLINE and self._queue and self._runner is None):
                self._run_in_caller(lambda: False)

    def poll_is_busy(self, task: Task) -> bool:
        """``taskqueue_poll_is_busy``: pending or running."""
        with self._lock:
            return bool(task.ta_pending) or self._running is task

    def member(self, thread: threading.Thread | None = None) -> bool:
        """``taskqueue_member``: is ``thread`` (default: the caller) the one
        executing this queue's tasks?"""
        ident = (thread or threading.current_thread()).ident
        with self._lock:
            return ident is not None and ident == self._runner

    def free(self, timeout: float = 5.0) -> bool:
        """``taskqueue_free``: stop accepting tasks, run what is still queued
        (FreeBSD's thread does a final taskqueue_run_locked, ignoring block),
        stop the worker.  Returns False if the worker did not exit in time
        (e.g. a task hangs)."""
        with self._lock:
            if not self._active:
                return True
            self._active = False
            self._blocked = False
            self._cv.notify_all()
            if self.mode is not TqMode.THREAD:
                if self._runner is None:
                    self._run_in_caller(lambda: False)
                return True
        assert self._thread is not None
        if threading.current_thread() is self._thread:
            raise RuntimeError("taskqueue_free from its own thread")
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stats(self) -> TaskQueueStats:
        with self._lock:
            return TaskQueueStats(self._enqueued, self._coalesced, self._run, self._failed,
                                  self._cancelled, self._depth, self._max_depth,
                                  self._running is not None)

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def blocked(self) -> bool:
        return self._blocked

    @property
    def active(self) -> bool:
        return self._active

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread (THREAD mode)."""
        return self._thread

    @property
    def last_error(self) -> BaseException | None:
        return self.errors[-1][1] if self.errors else None

    def __enter__(self) -> TaskQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        return (f"<TaskQueue {self.name!r} {self.mode.value} depth={self._depth} "
                f"blocked={self._blocked} active={self._active}>")

    # ------------------------------------------------------------ internals

    def _insert(self, item: Task | _Barrier) -> None:
        # taskqueue_enqueue_locked's ordering: tail when the last entry's
        # priority is >= ours (the common all-zero case), else before the first
        # entry of lower priority.  Barriers have USHRT_MAX so nothing passes.
        q = self._queue
        prio = item.ta_priority
        if not q or q[-1].ta_priority >= prio:
            q.append(item)
            return
        for i, other in enumerate(q):
            if other.ta_priority < prio:
                q.insert(i, item)
                return
        q.append(item)

    def _wait(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        # Condition.wait_for with the lock held on entry and exit.
        return self._cv.wait_for(predicate, timeout)

    def _check_not_self_drain(self) -> None:
        # FreeBSD would sleep forever waiting for itself; make it loud.
        if self._runner is not None and self._runner == threading.get_ident():
            raise RuntimeError(
                f"taskqueue {self.name!r}: drain/run from the queue's own thread would deadlock")

    def _drain_all_thread(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._queue:
            # taskqueue_drain_tq_queue: a barrier behind everything queued now.
            barrier = _Barrier()
            self._queue.append(barrier)
            self._cv.notify_all()
            if not self._wait(lambda: barrier.done, timeout):
                # Leave no stale barrier behind on timeout.
                try:
                    self._queue.remove(barrier)
                except ValueError:
                    pass
                return False
        # taskqueue_drain_tq_active: wait for the execution active right now
        # (with one worker, at most one).  Like FreeBSD this may be a task that
        # started after the barrier.
        if self._running is not None:
            seq = self._started
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return self._wait(lambda: self._finished >= seq, left)
        return True

    def _run_locked_one(self) -> None:
        """Dequeue and execute the head entry.  Lock held on entry and exit;
        dropped around the callback (taskqueue_run_locked)."""
        item = self._queue.popleft()
        if isinstance(item, _Barrier):
            item.done = True
            self._cv.notify_all()
            return
        task = item
        self._depth -= 1
        pending = task.ta_pending
        task.ta_pending = 0
        task._tq = None
        self._running = task
        self._started += 1
        seq = self._started
        self._run += 1
        self._lock.release()
        try:
            task.ta_func(task.ta_context, pending)
        except Exception as exc:   # a task must never take the queue down
            self._record_failure(task, exc)
        except BaseException as exc:
            if self.mode is TqMode.THREAD:
                self._record_failure(task, exc)   # worker thread survives even this
            else:
                # KeyboardInterrupt/SystemExit in the caller's own thread: keep
                # the queue consistent, then let it through.
                self._lock.acquire()
                self._running = None
                self._finished = seq
                self._failed += 1
                self._cv.notify_all()
                raise
        self._lock.acquire()
        self._running = None
        self._finished = seq
        self._cv.notify_all()   # wakeup(task) + drain waiters

    def _record_failure(self, task: Task, exc: BaseException) -> None:
        # Called without the lock; counters are updated under it.
        log.error("taskqueue %s: task %s raised %r", self.name, task.name, exc,
                  exc_info=(type(exc), exc, exc.__traceback__))
        with self._lock:
            self._failed += 1
        self.errors.append((task.name, exc))

    def _run_in_caller(self, stop: Callable[[], bool]) -> None:
        """INLINE/MANUAL: the calling thread becomes the runner and executes
        queued entries until ``stop()`` or the queue empties.  Lock held."""
        me = threading.get_ident()
        self._runner = me
        # INLINE queues always run to empty: tasks other threads enqueued
        # while we were the runner have nobody else to run them.
        honour_stop = self.mode is TqMode.MANUAL
        try:
            while self._queue and not (honour_stop and stop()):
                if self._blocked and self._active:
                    break
                self._run_locked_one()
        finally:
            self._runner = None
            self._cv.notify_all()

    def _thread_loop(self) -> None:
        with self._lock:
            self._runner = threading.get_ident()
            while True:
                while self._active and (not self._queue or self._blocked):
                    self._cv.wait()
                if not self._active:
                    break
                self._run_locked_one()
                if self._queue and self.yield_between_tasks:
                    self._lock.release()
                    time.sleep(0)           # hands the GIL to a waiting thread
                    self._lock.acquire()
            # Shutdown: FreeBSD's loop runs the queue once more before exiting.
            while self._queue:
                self._run_locked_one()
            self._runner = None
            self._cv.notify_all()


def taskqueue_create(name: str, mode: TqMode = TqMode.THREAD) -> TaskQueue:
    """``taskqueue_create`` + ``taskqueue_start_threads(&tq, 1, ...)``."""
    return TaskQueue(name, mode)
