"""Tests for ipsec_accel.unr: unr(9), sys/kern/subr_unit.c."""

from __future__ import annotations

import random
import threading

import pytest

from ipsec_accel.unr import UNR_FAILED, UnrAllocator, UnrError, new_unrhdr
from thread_helpers import run_threads

DRV_SPI_MIN, DRV_SPI_MAX = 3, 0xFFFF


def test_alloc_unr_returns_lowest_free_unit() -> None:
    """alloc_unr (subr_unit.c): "Allocation policy is always lowest free
    number first" -- including holes left by free_unr."""
    u = UnrAllocator(DRV_SPI_MIN, DRV_SPI_MAX)
    assert [u.alloc_unr() for _ in range(5)] == [3, 4, 5, 6, 7]
    u.free_unr(5)
    u.free_unr(4)
    assert u.alloc_unr() == 4
    assert u.alloc_unr() == 5
    assert u.alloc_unr() == 8


def test_alloc_unr_exhaustion_returns_minus_one_at_65533_units() -> None:
    """alloc_unr returns -1 when the space is exhausted; the drv_spi space
    3..0xffff holds exactly 65533 units (reference §7)."""
    u = new_unrhdr(DRV_SPI_MIN, DRV_SPI_MAX)
    got = [u.alloc_unr() for _ in range(65533)]
    assert got[0] == 3 and got[-1] == 0xFFFF
    assert len(set(got)) == 65533
    assert u.in_use == 65533
    assert u.alloc_unr() == UNR_FAILED == -1
    u.free_unr(40000)
    assert u.alloc_unr() == 40000
    assert u.alloc_unr() == -1


def test_alloc_unr_specific() -> None:
    """alloc_unr_specific returns the item, or -1 when busy or outside
    [low, high]; units skipped over stay free and lowest-first still holds."""
    u = UnrAllocator(3, 100)
    assert u.alloc_unr_specific(10) == 10
    assert u.alloc_unr_specific(10) == -1          # busy
    assert u.alloc_unr_specific(2) == -1           # below low
    assert u.alloc_unr_specific(101) == -1         # above high
    assert [u.alloc_unr() for _ in range(8)] == [3, 4, 5, 6, 7, 8, 9, 11]
    u.free_unr(5)
    assert u.alloc_unr_specific(5) == 5
    assert u.alloc_unr() == 12
    assert u.in_use == 10


def test_free_unr_of_free_or_out_of_range_unit_raises() -> None:
    """free_unrl KASSERTs "UNR: Freeing free item" and the range check; the
    model raises UnrError instead of corrupting state."""
    u = UnrAllocator(3, 10)
    a = u.alloc_unr()
    u.free_unr(a)
    with pytest.raises(UnrError):
        u.free_unr(a)                  # double free
    with pytest.raises(UnrError):
        u.free_unr(9)                  # never allocated
    with pytest.raises(UnrError):
        u.free_unr(2)                  # out of range
    with pytest.raises(UnrError):
        u.free_unr(11)
    assert u.in_use == 0


def test_is_allocated_allocated_and_clear() -> None:
    """Inspection helpers and clear_unrhdr / delete_unrhdr (KASSERT busy == 0)."""
    u = UnrAllocator(0, 20)
    for _ in range(6):
        u.alloc_unr()
    u.free_unr(2)
    assert list(u.allocated()) == [0, 1, 3, 4, 5]
    assert u.is_allocated(3) and not u.is_allocated(2) and not u.is_allocated(6)
    with pytest.raises(UnrError):
        u.delete_unrhdr()
    u.clear_unrhdr()
    assert u.in_use == 0 and u.alloc_unr() == 0
    with pytest.raises(UnrError):
        UnrAllocator(5, 4)             # init_unrhdr: low <= high


def test_randomised_against_a_reference_model() -> None:
    """alloc_unr / alloc_unr_specific / free_unr behave like a set-based
    reference (the userland test driver of subr_unit.c does the same mix)."""
    rng = random.Random(1234)
    low, high = 3, 600
    u = UnrAllocator(low, high)
    busy: set[int] = set()
    for _ in range(20000):
        op = rng.random()
        if op < 0.45:
            got = u.alloc_unr()
            free = [x for x in range(low, high + 1) if x not in busy]
            expect = free[0] if free else -1
            assert got == expect
            if got != -1:
                busy.add(got)
        elif op < 0.6:
            item = rng.randint(low - 2, high + 2)
            got = u.alloc_unr_specific(item)
            if low <= item <= high and item not in busy:
                assert got == item
                busy.add(item)
            else:
                assert got == -1
        elif busy:
            item = rng.choice(sorted(busy))
            u.free_unr(item)
            busy.discard(item)
        assert u.in_use == len(busy)
    assert set(u.allocated()) == busy


def test_concurrent_alloc_free_never_hands_out_a_unit_twice() -> None:
    """unr's mutex: allocations from several threads never collide."""
    u = UnrAllocator(DRV_SPI_MIN, DRV_SPI_MAX)
    live: set[int] = set()
    live_lock = threading.Lock()
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[int] = []
        for _ in range(3000):
            if mine and rng.random() < 0.5:
                x = mine.pop(rng.randrange(len(mine)))
                with live_lock:
                    live.discard(x)
                u.free_unr(x)
            else:
                x = u.alloc_unr()
                with live_lock:
                    if x in live:
                        errors.append(f"duplicate {x}")
                    live.add(x)
                mine.append(x)
        for x in mine:
            with live_lock:
                live.discard(x)
            u.free_unr(x)

    threads = run_threads(worker, [(i,) for i in range(4)], 30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert u.in_use == 0


class _CountingLock:
    """A mutex that records use, to check which lock unr takes."""

    def __init__(self) -> None:
        self._l = threading.Lock()
        self.acquired = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.acquired += 1
        return self._l.acquire(blocking, timeout)

    def release(self) -> None:
        self._l.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_given_mutex_is_taken_by_alloc_unr_and_not_by_alloc_unrl() -> None:
    """new_unrhdr(low, high, &ipsec_accel_sav_tmp): alloc_unr/free_unr take
    the given mutex themselves; alloc_unrl is for a caller already holding
    it (subr_unit.c)."""
    m = _CountingLock()
    u = UnrAllocator(DRV_SPI_MIN, DRV_SPI_MAX, mutex=m)
    a = u.alloc_unr()
    assert m.acquired == 1
    with m:
        b = u.alloc_unrl()
    assert m.acquired == 2            # only the caller's own acquire
    u.free_unr(a)
    u.free_unr(b)
    assert m.acquired == 4


@pytest.mark.parametrize("module", ["unr", "taskqueue", "mbuf", "uma", "mbuf_sndtag", "ifnet",
                                    "ifnet_registry", "if_clone", "wire", "pcap"])
def test_public_api_all_names_exist(module: str) -> None:
    """__all__ of the kernel-primitive modules is honest: every name exists
    and none is listed twice."""
    import importlib
    mod = importlib.import_module(f"ipsec_accel.{module}")
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []
    assert len(mod.__all__) == len(set(mod.__all__))
