"""FreeBSD's inline IPsec offload infrastructure (ipsec_offload.c, "ipsec_accel")
and the IPsec datapath around it: ifnets, mbufs and tags, the taskqueue, the
ESP transform (xform_esp.c) with its algorithm descriptors (opencrypto) and IP
packets.  See docs/ARCHITECTURE.md for which module models which FreeBSD file.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ipsec_accel' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
