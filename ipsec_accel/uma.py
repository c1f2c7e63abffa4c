"""UMA-like zones: ``sys/vm/uma.h`` / ``sys/vm/uma_core.c`` (``uma_zcreate``,
``uma_zalloc``, ``uma_zfree``, ``uma_zone_set_max``, ``uma_zone_reclaim``)
standing in for malloc(9) types too, with the ``M_NOWAIT``/``M_WAITOK``/
``M_ZERO`` flags of ``sys/sys/malloc.h`` and ``vmstat -z``/``-m`` style
statistics (:class:`ZoneStats`, :func:`all_zones`).

Why a module of its own: a zone is not an mbuf concept.  The mbuf code
(:mod:`ipsec_accel.mbuf`: the "mbuf" and "mbuf_tag" zones), the send tags
(:mod:`ipsec_accel.mbuf_sndtag`), the offload tag strategies
(:mod:`ipsec_accel.accel_tag`) and the mock drivers all allocate from
zones, and FreeBSD keeps UMA apart in ``sys/vm`` for the same reason.
:mod:`ipsec_accel.mbuf` re-exports every name here, so
``from ipsec_accel.mbuf import Zone`` keeps working.

What is modelled: a :class:`Zone` counts requests, frees, failures, current
and peak items and bytes, with an optional free-object cache (UMA buckets: a
cached object is reused instead of building a new Python object), a limit,
and failure injection so ``M_NOWAIT`` failure paths can be tested.  An
``M_WAITOK`` allocation that hits the limit raises :class:`ZoneExhausted`
where FreeBSD would sleep.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Callable, NamedTuple

__all__ = ["Zone", "ZoneStats", "ZoneExhausted", "all_zones", "M_NOWAIT", "M_WAITOK", "M_ZERO"]

# malloc(9) / uma_zalloc flags (sys/sys/malloc.h)
M_NOWAIT = 0x0001
M_WAITOK = 0x0002
M_ZERO = 0x0100


class ZoneExhausted(MemoryError):
    """An M_WAITOK allocation hit the zone limit: FreeBSD would sleep until a
    free; a single-threaded model cannot, so it raises."""


class ZoneStats(NamedTuple):
    """One ``vmstat -z`` / ``vmstat -m`` style line."""

    name: str
    size: int            # nominal item size (0: variable, see bytes)
    limit: int | None
    used: int            # items allocated now
    cached: int          # freed items kept for reuse
    requests: int        # successful allocations
    frees: int
    fails: int
    peak: int            # high-water mark of used
    bytes: int           # bytes allocated now
    peak_bytes: int


_ALL_ZONES: weakref.WeakSet[Zone] = weakref.WeakSet()


class Zone:
    """A UMA zone (or malloc(9) type) with honest accounting.

    ``alloc(size)`` returns an object built by ``factory`` -- or a cached one
    when ``cache > 0`` -- or ``None`` when an ``M_NOWAIT`` allocation fails
    (limit reached or :meth:`fail_next` armed).  ``free(obj, size)`` returns
    it.  ``size`` defaults to the zone's item size and feeds the byte
    counters (tags are variable-size: ``MTAG_HDR_SIZE + len``).

    Counting: allocations and frees are two ``itertools.count`` objects
    (one C call each, atomic under the GIL, like UMA's per-CPU counters), so
    an allocation of the zone's own size with nothing armed takes no lock:
    the per-packet path.  ``used`` = allocations - frees and ``bytes`` are
    read from the counters: always exact.  A limit, an armed failure, or an
    item of another size (outstanding) sends every call through the locked
    path.  A limit is enforced exactly (a limited zone never takes the
    lock-free path); ``peak`` and ``peak_bytes`` are exact for one thread and
    may read a little high while several threads allocate and free at once
    (UMA keeps no peak at all).  Freeing more than was allocated raises
    RuntimeError.  ``locked`` is accepted for compatibility: the lock-free
    path needs no lock and the locked path always takes one.
    """

    __slots__ = ("name", "size", "_limit", "cache_max", "_cache", "_factory", "_lock",
                 "_ac", "_fc", "_av", "_fv", "_a0", "_f0", "_fbad", "fails", "peak",
                 "_xbytes", "peak_bytes", "_fail_next", "_armed", "__weakref__")
    _armed: Any      # truthy: limit, armed failure or other-size items outstanding

    def __init__(self, name: str, size: int = 0, *, factory: Callable[[], Any] | None = None,
                 limit: int | None = None, cache: int = 0, locked: bool = True) -> None:
        self.name = name
        self.size = size
        self.cache_max = cache
        self._cache: list[Any] = []
        self._factory = factory
        self._lock = threading.Lock()
        self._ac = itertools.count(1)     # next() = allocations made, this one included
        self._fc = itertools.count(1)
        self._av = 0                      # last allocation count seen (fast-path hint)
        self._fv = 0                      # last free count seen (fast-path hint)
        self._a0 = self._f0 = 0           # reset_stats() bases
        self._fbad = 0                    # refused frees (counted by _fc, not frees)
        self.fails = 0
        self.peak = 0
        self._xbytes = 0                  # bytes outstanding beyond used * size
        self.peak_bytes = 0
        self._fail_next = 0
        self._limit = limit
        self._rearm()
        _ALL_ZONES.add(self)

    # -- counters ---------------------------------------------------------------------

    @staticmethod
    def _count(c: "itertools.count[int]") -> int:
        # How many next() calls a count(1) has served (its repr is the next
        # value): an exact read without consuming a number.
        r = repr(c)
        return int(r[6:-1]) - 1

    @property
    def allocs(self) -> int:
        return self._count(self._ac) - self._a0

    @property
    def frees(self) -> int:
        return self._count(self._fc) - self._fbad - self._f0

    @property
    def cur(self) -> int:
        return self._count(self._ac) - (self._count(self._fc) - self._fbad)

    @property
    def bytes(self) -> int:
        return self.cur * self.size + self._xbytes

    @property
    def limit(self) -> int | None:
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        with self._lock:
            self._limit = value
            self._rearm()

    def _rearm(self) -> None:
        # Lock held (or construction).
        self._armed = self._fail_next or self._limit is not None or self._xbytes

    # -- alloc / free ---------------------------------------------------------------------

    def alloc(self, size: int | None = None, wait: int = M_NOWAIT) -> Any:
        """``uma_zalloc``/``malloc``.  Returns the object, or None on an
        M_NOWAIT failure."""
        if not self._armed and (size is None or size == self.size):
            # Lock-free: one counter step, the peak hint, the cache.
            a = self._av = next(self._ac)
            cur = a - self._fv + self._fbad
            if cur > self.peak:
                self.peak = cur
                b = cur * self.size
                if b > self.peak_bytes:
                    self.peak_bytes = b
            try:
                return self._cache.pop()
            except IndexError:
                factory = self._factory
                return factory() if factory is not None else True
        nbytes = self.size if size is None else size
        lock = self._lock
        lock.acquire()
        if self._fail_next and wait & M_NOWAIT:
            self._fail_next -= 1
            self.fails += 1
            self._rearm()
            lock.release()
            return None
        # The hints are exact here for a zone that is always locked (a
        # limited one); for the others only the peak can read high.
        cur = self._av - self._fv + self._fbad + 1
        limit = self._limit
        if limit is not None and cur > limit:
            self.fails += 1
            lock.release()
            if wait & M_WAITOK:
                raise ZoneExhausted(f"zone {self.name}: limit {limit} reached")
            return None
        self._av = next(self._ac)
        xb = self._xbytes = self._xbytes + nbytes - self.size
        if cur > self.peak:
            self.peak = cur
        b = cur * self.size + xb
        if b > self.peak_bytes:
            self.peak_bytes = b
        self._rearm()
        cache = self._cache
        obj = cache.pop() if cache else None
        lock.release()
        if obj is None:
            factory = self._factory
            obj = factory() if factory is not None else True
        return obj

    def free(self, obj: Any = None, size: int | None = None) -> None:
        """``uma_zfree``/``free``."""
        if not self._armed and (size is None or size == self.size):
            f = self._fv = next(self._fc)
            if f - self._fbad > self._av:
                self._check_free()
            if obj is not None and len(self._cache) < self.cache_max:
                self._cache.append(obj)
            return
        lock = self._lock
        lock.acquire()
        if self._av - self._fv + self._fbad <= 0 and self.cur <= 0:
            lock.release()
            raise RuntimeError(f"zone {self.name}: free without allocation")
        self._fv = next(self._fc)
        self._xbytes += self.size - (self.size if size is None else size)
        self._rearm()
        if obj is not None and len(self._cache) < self.cache_max:
            self._cache.append(obj)
        lock.release()

    def _check_free(self) -> None:
        # The fast path's hint says more frees than allocations: count
        # exactly (another thread may have allocated without publishing its
        # hint yet); refuse a real underflow.
        with self._lock:
            if self._count(self._fc) - self._fbad > self._count(self._ac):
                self._fbad += 1
                raise RuntimeError(f"zone {self.name}: free without allocation")

    def fail_next(self, n: int = 1) -> None:
        """Make the next ``n`` M_NOWAIT allocations fail (fault injection)."""
        with self._lock:
            self._fail_next = n
            self._rearm()

    def drain(self) -> None:
        """``uma_zone_reclaim``: drop cached free objects."""
        self._cache.clear()

    def reset_stats(self) -> None:
        """Zero the request/free/fail/peak counters (not ``used``)."""
        with self._lock:
            self._a0 = self._count(self._ac)
            self._f0 = self._count(self._fc) - self._fbad
            self.fails = 0
            self.peak = self.cur
            self.peak_bytes = self.bytes

    @property
    def stats(self) -> ZoneStats:
        with self._lock:
            return ZoneStats(self.name, self.size, self._limit, self.cur, len(self._cache),
                             self.allocs, self.frees, self.fails, self.peak, self.bytes,
                             self.peak_bytes)

    def __repr__(self) -> str:
        return f"<Zone {self.name} used={self.cur} req={self.allocs} fail={self.fails}>"


def all_zones() -> list[Zone]:
    """Every live zone, by name (``vmstat -z``)."""
    return sorted(_ALL_ZONES, key=lambda z: z.name)
