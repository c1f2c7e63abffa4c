"""unr(9): the unit number allocator of ``sys/kern/subr_unit.c``.

ipsec_offload.c hands out ``drv_spi`` values from one global allocator created
with ``new_unrhdr(IPSEC_ACCEL_DRV_SPI_MIN, IPSEC_ACCEL_DRV_SPI_MAX,
&ipsec_accel_sav_tmp)``, i.e. units 3..0xffff protected by the offload layer's
own "ipasat" mutex.  This module reproduces the parts of unr(9) that matter:

* ``alloc_unr()`` returns the **lowest free unit**, or ``-1`` when the space is
  exhausted (FreeBSD's return value; the model keeps the int so callers can
  write ``if drv_spi == -1`` exactly as ipsec_offload.c does);
* ``alloc_unr_specific(n)`` returns ``n`` if it was free, ``-1`` if it is busy
  or outside ``[low, high]``;
* ``free_unr(n)`` of a unit that is not allocated, or out of range, is a
  KASSERT in FreeBSD (``"UNR: Freeing free item"``); here it raises
  :class:`UnrError` so the bug surfaces in tests instead of corrupting state.

Locking, as in FreeBSD: an allocator created with ``mutex=m`` takes ``m``
itself in ``alloc_unr``/``alloc_unr_specific``/``free_unr``, so the caller must
**not** hold ``m`` around those calls (unr's mutex is not recursive);
``alloc_unrl()`` is the variant for callers that already hold it (FreeBSD's
``alloc_unrl``).  The offload layer passes its "ipasat" lock and, like
ipsec_offload.c, calls ``alloc_unr``/``free_unr`` with that lock dropped.
Without ``mutex`` the allocator uses a private lock (FreeBSD's global
"unit# allocation" mutex).

Representation (not FreeBSD's run-length/bitmap lists, which optimise memory,
not time): a watermark ``_next`` (every unit >= it has never been handed out
since the last shrink) plus a min-heap of freed units below it with lazy
deletion.  ``alloc_unr`` and ``free_unr`` are O(log n); the allocator stays
fast with all 65,533 drv_spi units in play.
"""

from __future__ import annotations

import heapq
import threading
from types import TracebackType
from typing import Iterator, Protocol

__all__ = ["UnrAllocator", "UnrError", "UNR_FAILED", "new_unrhdr"]

#: What alloc_unr()/alloc_unr_specific() return when they cannot allocate.
UNR_FAILED = -1


class UnrError(ValueError):
    """A unr(9) KASSERT: freeing a free or out-of-range unit, deleting a busy
    header."""


class _Mutex(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None: ...


class UnrAllocator:
    """A unit number space ``[low, high]`` (``struct unrhdr``).

    >>> u = UnrAllocator(3, 0xffff)
    >>> u.alloc_unr(), u.alloc_unr(), u.alloc_unr_specific(10)
    (3, 4, 10)
    >>> u.free_unr(3); u.alloc_unr()
    3
    """

    __slots__ = ("low", "high", "_mtx", "_next", "_heap", "_free", "_busy")

    def __init__(self, low: int, high: int, mutex: _Mutex | None = None) -> None:
        # init_unrhdr KASSERTs low >= 0 && low <= high.
        if not (0 <= low <= high):
            raise UnrError(f"UNR: use error: new_unrhdr({low}, {high})")
        self.low = low
        self.high = high
        self._mtx: _Mutex = mutex if mutex is not None else threading.Lock()
        self._next = low          # lowest unit never handed out (watermark)
        self._heap: list[int] = []  # freed units below _next; may hold stale entries
        self._free: set[int] = set()  # the authoritative set of freed units below _next
        self._busy = 0

    # -- allocation ---------------------------------------------------------

    def alloc_unr(self) -> int:
        """Allocate the lowest free unit; ``-1`` when none is left.
        Takes the allocator's mutex (do not hold it)."""
        with self._mtx:
            return self.alloc_unrl()

    def alloc_unrl(self) -> int:
        """``alloc_unrl``: as :meth:`alloc_unr` for a caller already holding
        the mutex passed to the constructor."""
        free = self._free
        heap = self._heap
        while heap:
            unit = heapq.heappop(heap)
            if unit in free:            # skip stale (re-allocated) entries
                free.discard(unit)
                self._busy += 1
                return unit
        if self._next <= self.high:
            unit = self._next
            self._next = unit + 1
            self._busy += 1
            return unit
        return UNR_FAILED

    def alloc_unr_specific(self, item: int) -> int:
        """Allocate exactly ``item``: returns it, or ``-1`` if it is busy or
        outside ``[low, high]`` (``alloc_unr_specific``)."""
        with self._mtx:
            if item < self.low or item > self.high:
                return UNR_FAILED
            if item >= self._next:
                # Units skipped over become free; they are all above every
                # live heap entry's owner but stale entries may be larger, so
                # re-establish the heap invariant rather than assume it.
                if item > self._next:
                    gap = range(self._next, item)
                    self._free.update(gap)
                    self._heap.extend(gap)
                    heapq.heapify(self._heap)
                self._next = item + 1
                self._busy += 1
                return item
            if item in self._free:
                self._free.discard(item)  # its heap entry becomes stale
                self._busy += 1
                self._maybe_compact()
                return item
            return UNR_FAILED

    def free_unr(self, item: int) -> None:
        """Return ``item`` to the space.  Raises :class:`UnrError` for a unit
        that is out of range or not allocated (FreeBSD KASSERTs)."""
        with self._mtx:
            if item < self.low or item > self.high:
                raise UnrError(
                    f"UNR: free_unr({item}) out of range [{self.low}...{self.high}]")
            if item >= self._next or item in self._free:
                raise UnrError(f"UNR: Freeing free item {item}")
            self._busy -= 1
            if item == self._next - 1:
                # Like unr's "ideal split": shrink the allocated prefix instead
                # of recording a hole.  No cascade, so alternating
                # alloc_specific(high)/free(high) stays O(1).
                self._next = item
            else:
                self._free.add(item)
                heapq.heappush(self._heap, item)
                self._maybe_compact()

    # -- inspection ---------------------------------------------------------

    @property
    def in_use(self) -> int:
        """Number of allocated units (``uh->busy``)."""
        return self._busy

    @property
    def capacity(self) -> int:
        return self.high - self.low + 1

    def is_allocated(self, item: int) -> bool:
        with self._mtx:
            return self.low <= item < self._next and item not in self._free

    def allocated(self) -> Iterator[int]:
        """The allocated units in ascending order (a snapshot; O(n))."""
        with self._mtx:
            free = set(self._free)
            top = self._next
        return (u for u in range(self.low, top) if u not in free)

    def clear_unrhdr(self) -> None:
        """``clear_unrhdr``: forget every allocation."""
        with self._mtx:
            self._next = self.low
            self._heap.clear()
            self._free.clear()
            self._busy = 0

    def delete_unrhdr(self) -> None:
        """``delete_unrhdr``: KASSERTs that nothing is still allocated."""
        with self._mtx:
            if self._busy:
                raise UnrError(f"unrhdr has {self._busy} allocations")

    def __repr__(self) -> str:
        return (f"UnrAllocator(low={self.low}, high={self.high}, "
                f"in_use={self._busy})")

    # -- internals ----------------------------------------------------------

    def _maybe_compact(self) -> None:
        # Lazy deletion leaves stale heap entries behind; rebuild once they
        # dominate so the heap stays proportional to the free set.
        if len(self._heap) > 2 * len(self._free) + 64:
            self._heap = list(self._free)
            heapq.heapify(self._heap)


def new_unrhdr(low: int, high: int, mutex: _Mutex | None = None) -> UnrAllocator:
    """FreeBSD spelling of :class:`UnrAllocator`'s constructor."""
    return UnrAllocator(low, high, mutex)
