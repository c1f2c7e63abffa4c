#!/usr/bin/env python3
"""pfkeyd: the model daemon (:mod:`ipsec_accel.server`) on the default host.

Same options as ``python -m ipsec_accel.server`` (``--socket PATH``,
``--allow-uid UID``, ``--topology FILE``, ``--no-offload``, ``--no-settle``,
``-v``); the difference is the host: this wrapper builds it with
``drivers.topology.build_host`` (the default mock-NIC topology, or
``--topology FILE``), so the daemon has named mock interfaces.
``ipsec_accel`` itself never imports ``drivers``; tools/ may.

    python tools/pfkeyd.py --socket /tmp/pfkeyd.sock &
    python tools/setkey.py --socket /tmp/pfkeyd.sock -f examples/demo.conf
    PFKEY_SOCKET=/tmp/pfkeyd.sock python tools/setkey.py -D
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ipsec_accel import server  # noqa: E402


def default_host_factory() -> Callable[[Optional[str]], Any]:
    """Hosts come from drivers.topology (default topology, or ``--topology``
    FILE); build_host stops the NICs' threads when the host stops."""
    from drivers.topology import build_host

    def build(path: Optional[str] = None) -> Any:
        return build_host(path) if path else build_host()

    return build


def main(argv: Optional[Sequence[str]] = None) -> int:
    return server.main(argv, host_factory=default_host_factory())


if __name__ == "__main__":
    sys.exit(main())
