"""Injected clocks: the key engine never reads the wall clock itself.

key.c works in ``time_second`` (whole seconds since the epoch); the model's
clock returns an int so lifetimes, expiry and dump timestamps behave the same.
``FakeClock`` is for tests (it moves only when told); ``SystemClock`` is for the
daemon and the CLI.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """time_second: whole seconds since the epoch."""
        ...


class SystemClock:
    """The host's wall clock, truncated to seconds like time_second."""

    def now(self) -> int:
        return int(time.time())


class FakeClock:
    """A clock that only moves when told.  Thread-safe.

    The default start, 1736078400, is 2025-01-05 12:00:00 UTC.
    """

    def __init__(self, start: int = 1_736_078_400) -> None:
        self._now = int(start)
        self._lock = threading.Lock()

    def now(self) -> int:
        return self._now

    def advance(self, seconds: int) -> int:
        with self._lock:
            self._now += int(seconds)
            return self._now

    def set(self, when: int) -> None:
        with self._lock:
            self._now = int(when)


__all__ = ["Clock", "SystemClock", "FakeClock"]
