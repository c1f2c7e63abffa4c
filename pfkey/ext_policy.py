"""The policy extension: ``struct sadb_x_policy`` followed by
``struct sadb_x_ipsecrequest`` x n, each with optional source and
destination sockaddrs (``sys/net/pfkeyv2.h``; built by libipsec's
``ipsec_set_policy``, read by key.c ``key_msg2sp``).

The codec keeps what key_msg2sp, not key_align, would reject: request bytes
that do not parse as well-formed requests stay verbatim in
``SadbXPolicy.trailer`` (the kernel answers EINVAL), and a request whose
``len`` is not the canonical ALIGN8 sum keeps it in ``IpsecRequest.length``.
Split out of :mod:`pfkey.extensions`, which re-exports both classes and
registers SadbXPolicy in ``EXT_CLASSES``; the policy *text* lives in
:mod:`pfkey.policy`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Optional

from .errors import EncodeError
from .ext_codec import _tnew, _units, _value
from .pfkeyv2 import SADB_EXT
from .sockaddr import Sockaddr

_REQ = struct.Struct("<HHBBH")


@_value
class IpsecRequest(NamedTuple):
    """struct sadb_x_ipsecrequest (8 bytes) + optional src and dst sockaddrs
    back to back.  ``length`` is the request's ``len`` field in *bytes*; None
    means ALIGN8(8 + sa_len(src) + sa_len(dst)), what key.c emits (libipsec's
    exact sum is the same value for IPv4 and IPv6)."""

    proto: int
    mode: int
    level: int
    reqid: int = 0
    src: Optional[Sockaddr] = None
    dst: Optional[Sockaddr] = None
    length: Optional[int] = None

    def _addrs(self) -> bytes:
        a = b""
        if self.src is not None:
            a += self.src.wire()
        if self.dst is not None:
            a += self.dst.wire()
        return a

    def canonical_length(self) -> int:
        return (8 + len(self._addrs()) + 7) & ~7

    def pack(self) -> bytes:
        addrs = self._addrs()
        length = (8 + len(addrs) + 7) & ~7 if self.length is None else self.length
        if length < 8 + len(addrs):
            raise EncodeError(f"ipsecrequest len {length} shorter than its addresses")
        return _REQ.pack(length, self.proto, self.mode, self.level,
                            self.reqid) + addrs.ljust(length - 8, b"\0")


_POL = struct.Struct("<HHHBBII")


def _parse_requests(buf: bytes, pos: int, end: int) -> tuple[list[IpsecRequest], int]:
    """Parse well-formed sadb_x_ipsecrequests; stop at the first malformed one."""
    reqs: list[IpsecRequest] = []
    while pos + 8 <= end:
        rlen, proto, mode, level, reqid = _REQ.unpack_from(buf, pos)
        rend = pos + rlen
        if rlen < 8 or rend > end:
            break
        src = dst = None
        if rlen > 8:
            a = pos + 8
            sl = buf[a]
            b = a + sl
            if sl < 2 or b >= rend:
                break
            dl = buf[b]
            if dl < 2 or b + dl > rend:
                break
            src = Sockaddr.parse(buf, a, b)
            dst = Sockaddr.parse(buf, b, b + dl)
            canon = (8 + sl + dl + 7) & ~7
        else:
            canon = 8
        reqs.append(_tnew(IpsecRequest, (proto, mode, level, reqid, src, dst,
                                         None if rlen == canon else rlen)))
        pos = rend
    return reqs, pos


class _SadbXPolicyFields(NamedTuple):
    type: int
    dir: int
    id: int = 0
    priority: int = 0
    scope: int = 0
    requests: tuple[IpsecRequest, ...] = ()
    trailer: bytes = b""


@_value
class SadbXPolicy(_SadbXPolicyFields):
    """struct sadb_x_policy (16 bytes) + sadb_x_ipsecrequest x n.

    ``scope`` is FreeBSD's IPSEC_POLICYSCOPE (byte 7); with scope IFNET the
    ``priority`` field carries the ifindex.  Request bytes that do not parse as
    well-formed requests are kept verbatim in ``trailer``: key_msg2sp, not
    key_align, rejects them (EINVAL reply), so the codec must carry them.
    """

    __slots__ = ()
    exttype = SADB_EXT.X_POLICY
    ALLOWED_TYPES = frozenset({SADB_EXT.X_POLICY})

    def pack(self) -> bytes:
        body = b"".join(r.pack() for r in self.requests) + self.trailer
        if len(body) & 7:
            raise EncodeError(f"policy requests total {len(body)} bytes, not a multiple of 8")
        return _POL.pack(_units(16 + len(body)), self.exttype, self.type, self.dir,
                            self.scope, self.id, self.priority) + body

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXPolicy":
        _, _, ptype, pdir, scope, pid, prio = _POL.unpack_from(buf, off)
        end = off + extlen
        reqs, pos = _parse_requests(buf, off + 16, end)
        return _tnew(cls, (ptype, pdir, pid, prio, scope, tuple(reqs), buf[pos:end]))


__all__ = ["IpsecRequest", "SadbXPolicy"]
