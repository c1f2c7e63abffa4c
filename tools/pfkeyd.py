#!/usr/bin/env python3
"""pfkeyd: the model daemon (:mod:`ipsec_accel.server`) on the default host.

Same options as ``python -m ipsec_accel.server`` (``--socket PATH``,
``--allow-uid UID``, ``--topology FILE``, ``--no-offload``, ``--no-settle``,
``-v``); the difference is the host: when ``drivers.topology`` exists this
wrapper builds the host with its ``build_host`` (the default mock-NIC
topology, or ``--topology FILE``), so the daemon has named mock interfaces.
``ipsec_accel`` itself never imports ``drivers``; the choice is made here, at
run time.

    python tools/pfkeyd.py --socket /tmp/pfkeyd.sock &
    python tools/setkey.py --socket /tmp/pfkeyd.sock -f examples/demo.conf
    PFKEY_SOCKET=/tmp/pfkeyd.sock python tools/setkey.py -D
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Optional, Sequence

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ipsec_accel import server  # noqa: E402


def default_host_factory() -> Optional[Any]:
    """drivers.topology.build_host when that module exists (else None), with
    the NICs' poll threads stopped when the host stops."""
    if importlib.util.find_spec("drivers") is None or \
            importlib.util.find_spec("drivers.topology") is None:
        return None
    topo = importlib.import_module("drivers.topology")

    def build(path: Optional[str] = None) -> Any:
        host = topo.build_host(path) if path else topo.build_host()

        def stop_nics() -> None:
            for nic in topo.nics(host).values():
                nic.stop_poll()
                mbx = getattr(nic, "_mailbox", None)
                if mbx is not None:
                    mbx.stop()

        host.add_stop_hook(stop_nics)
        return host

    return build


def main(argv: Optional[Sequence[str]] = None) -> int:
    return server.main(argv, host_factory=default_host_factory())


if __name__ == "__main__":
    sys.exit(main())
