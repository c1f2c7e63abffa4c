"""Constants of FreeBSD's ``sys/netipsec/ipsec.h`` used by PF_KEY policies.

IPSEC_MODE / IPSEC_DIR / IPSEC_POLICY / IPSEC_POLICYSCOPE / IPSEC_LEVEL as
IntEnums with their C-named aliases (reference pfkey_setkey_reference.md §A.6).
"""

from __future__ import annotations

import enum


class IPSEC_MODE(enum.IntEnum):
    ANY = 0
    TRANSPORT = 1
    TUNNEL = 2
    TCPMD5 = 3


class IPSEC_DIR(enum.IntEnum):
    ANY = 0
    INBOUND = 1
    OUTBOUND = 2
    MAX = 3
    INVALID = 4


class IPSEC_POLICY(enum.IntEnum):
    DISCARD = 0
    NONE = 1
    IPSEC = 2
    ENTRUST = 3
    BYPASS = 4


class IPSEC_POLICYSCOPE(enum.IntEnum):
    ANY = 0
    GLOBAL = 1
    IFNET = 2
    PCB = 4


class IPSEC_LEVEL(enum.IntEnum):
    DEFAULT = 0
    USE = 1
    REQUIRE = 2
    UNIQUE = 3


IPSEC_PORT_ANY = 0
IPSEC_ULPROTO_ANY = 255
IPSEC_PROTO_ANY = 255
IPSEC_MANUAL_REQID_MAX = 0x3FFF
IPSEC_MAXREQ = 4
IPSEC_REPLAYWSIZE = 32

IPPROTO_IPV4 = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
IPPROTO_IPCOMP = 108

_C: dict[str, int] = {}
for _cls, _prefix in ((IPSEC_MODE, "IPSEC_MODE"), (IPSEC_DIR, "IPSEC_DIR"),
                      (IPSEC_POLICY, "IPSEC_POLICY"),
                      (IPSEC_POLICYSCOPE, "IPSEC_POLICYSCOPE"),
                      (IPSEC_LEVEL, "IPSEC_LEVEL")):
    for _n, _m in _cls.__members__.items():
        _C[f"{_prefix}_{_n}"] = _m
globals().update(_C)

__all__ = [
    "IPSEC_MODE", "IPSEC_DIR", "IPSEC_POLICY", "IPSEC_POLICYSCOPE", "IPSEC_LEVEL",
    "IPSEC_PORT_ANY", "IPSEC_ULPROTO_ANY", "IPSEC_PROTO_ANY", "IPSEC_MANUAL_REQID_MAX",
    "IPSEC_MAXREQ", "IPSEC_REPLAYWSIZE", "IPPROTO_IPV4", "IPPROTO_TCP", "IPPROTO_UDP",
    "IPPROTO_IPV6", "IPPROTO_ESP", "IPPROTO_AH", "IPPROTO_ICMP", "IPPROTO_ICMPV6",
    "IPPROTO_IPCOMP",
] + sorted(_C)
