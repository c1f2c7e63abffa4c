"""Running one function on several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Optional


def run_threads(target: Callable[..., object], args: Iterable[tuple[Any, ...]],
                timeout: Optional[float] = None) -> list[threading.Thread]:
    """One thread per tuple in ``args`` running ``target(*a)``: start them
    all, then join each (``timeout`` per join).  Returns the threads, so a
    test can check none is still running."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return threads
