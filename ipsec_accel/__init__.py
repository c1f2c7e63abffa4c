"""FreeBSD's inline IPsec offload infrastructure (ipsec_offload.c, "ipsec_accel")
and the IPsec datapath around it: ifnets, mbufs and tags, the taskqueue, the
ESP transform (xform_esp.c) with its algorithm descriptors (opencrypto) and IP
packets.  See docs/ARCHITECTURE.md for which module models which FreeBSD file.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

# The public names, loaded on first use (PEP 562) so that importing one
# submodule (the codec's users, a driver) does not import the whole stack.
_EXPORTS: dict[str, str] = {
    "Host": "host", "PfkeyServer": "server", "PfkeyClientSocket": "pfkey_client",
    "IpsecOffload": "ipsec_offload", "TaskQueue": "taskqueue", "TqMode": "taskqueue",
    "UnrAllocator": "unr", "Ifnet": "ifnet", "IfnetRegistry": "ifnet",
    "IfIpsecAccelMethods": "ifnet", "ifconfig": "ifconfig", "Mbuf": "mbuf",
    "EspState": "xform_esp", "Wire": "wire", "PcapWriter": "pcap", "Lab": "lab",
}

__all__ = sorted(_EXPORTS)


def _lazy_exports(namespace: dict[str, Any], exports: dict[str, str],
                 package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's PEP 562 ``__getattr__`` and ``__dir__`` for names that live
    in sibling modules (``exports``: name -> module of ``package``): loaded
    on first use and cached in ``namespace`` (the module's globals()), so
    later lookups are plain attribute reads.  This package uses it, and
    :mod:`ipsec_accel.ifnet` for the names that moved out of it."""
    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))
    return getattr_, dir_


__getattr__, __dir__ = _lazy_exports(globals(), _EXPORTS, __name__)
