"""Message plumbing of key.c: ``struct sadb_msghdr``, ``key_gather_mbuf`` and
the ``key_setsadb*`` builders.

A request is kept as FreeBSD keeps its mbuf: the raw bytes (a ``bytearray``
handlers may patch, as key.c patches the mbuf -- SPDADD writes the new policy
id and auto reqids back, SPDDELETE the found id) plus, per extension type,
the decoded value, its offset and its length (``ext``, ``extoff``,
``extlen``).  Replies that echo the request (``key_gather_mbuf``) are sliced
from those bytes, so they carry exactly what the sender sent; replies built
from kernel state use the codec's value classes.

The extension-length checks handlers make with SADB_CHECKLEN are already
enforced for every extension by ``pfkey.decode`` (key_align's minsize /
maxsize table), so handlers only test presence (SADB_CHECKHDR).
"""

from __future__ import annotations

import errno as _errno
import struct
from types import SimpleNamespace
from typing import Any, Optional

from .errors import PfkeyError
from .extensions import (
    SadbAddress, SadbKey, SadbLifetime, SadbSa, SadbXSa2, SadbXSaReplay, Sockaddr,
)
from .keydb import full_plen, seckey, seclifetime, secasvar
from .message import Message
from .pfkeyv2 import SADB_EXT, SADB_KEY_FLAGS_MAX

_EXTHDR = struct.Struct("<HH")

#: SADB_EXT_* as plain ints: IntEnum attribute access and IntFlag arithmetic
#: cost microseconds per message on the SADB_ADD hot path.
E = SimpleNamespace(**{name: int(m) for name, m in SADB_EXT.__members__.items()})
_HDR_LEN = struct.Struct("<H")


def key_error(code: int, why: str) -> PfkeyError:
    """A handler failure answered by key_senderror (an error reply)."""
    return PfkeyError(why, errno=code)


def EINVAL(why: str) -> PfkeyError:
    return PfkeyError(why, errno=_errno.EINVAL)


class sadb_msghdr:
    """struct sadb_msghdr: the decoded message plus where each extension sits."""

    __slots__ = ("msg", "buf", "ext", "extoff", "extlen")

    def __init__(self, msg: Message, data: bytes) -> None:
        self.msg = msg
        self.buf = bytearray(data)
        ext: dict[int, Any] = {}
        extoff: dict[int, int] = {}
        extlen: dict[int, int] = {}
        off = 16
        unpack = _EXTHDR.unpack_from
        for e in msg.exts:
            units, t = unpack(data, off)
            n = units << 3
            if t not in ext:            # IF_HW_OFFL may repeat only in non-strict decodes
                ext[t] = e
                extoff[t] = off
                extlen[t] = n
            off += n
        self.ext = ext
        self.extoff = extoff
        self.extlen = extlen

    def has(self, t: int) -> bool:
        return t in self.ext

    def get(self, t: int) -> Any:
        return self.ext.get(t)

    def raw(self, t: int) -> bytes:
        off = self.extoff[t]
        return bytes(self.buf[off:off + self.extlen[t]])

    def header(self) -> bytearray:
        """The request's sadb_msg, errno cleared (the copy every reply starts from)."""
        h = self.buf[:16]
        h[2] = 0
        return h


def key_gather_mbuf(mhp: sadb_msghdr, *types: int) -> bytes:
    """key_gather_mbuf(RESERVED, types...): header + the listed request
    extensions that are present, in the listed order; errno 0, len recomputed."""
    parts = [mhp.header()]
    buf = mhp.buf
    extoff = mhp.extoff
    extlen = mhp.extlen
    for t in types:
        off = extoff.get(t)
        if off is not None:
            parts.append(buf[off:off + extlen[t]])
    out = b"".join(parts)
    return out[:4] + _HDR_LEN.pack((len(out) >> 3) & 0xFFFF) + out[6:]


def key_setsadbmsg(mtype: int, satype: int, seq: int, pid: int, reserved: int,
                   exts: list[Any]) -> bytes:
    """key_setsadbmsg + the appended extensions, encoded."""
    return Message(mtype, satype, seq & 0xFFFFFFFF, pid & 0xFFFFFFFF, 0,
                   reserved & 0xFFFF, tuple(exts)).encode()


def key_setsadbaddr(exttype: int, sa: Sockaddr, prefixlen: int, ul_proto: int) -> SadbAddress:
    """key_setsadbaddr: FULLMASK (0xff) becomes the family's full length."""
    if prefixlen == 0xFF:
        prefixlen = full_plen(sa)
    return SadbAddress(exttype, sa, prefixlen & 0xFF, ul_proto & 0xFF)


def key_setsadbsa(sav: secasvar) -> SadbSa:
    """key_setsadbsa: replay in bytes capped at 255, flags masked to 0xfff."""
    r = sav.replay
    replay = (255 if r.wsize > 255 else r.wsize) if r is not None else 0
    return SadbSa(sav.spi, replay, sav.state, sav.alg_auth, sav.alg_enc,
                  sav.flags & SADB_KEY_FLAGS_MAX)


def key_setsadbxsa2(sav: secasvar) -> SadbXSa2:
    """The SA2 of dumps and EXPIRE: mode, replay count (low 32 bits), reqid."""
    saidx = sav.sah.saidx  # type: ignore[union-attr]
    count = sav.replay.count if sav.replay is not None else 0
    return SadbXSa2(saidx.mode, saidx.reqid & 0xFFFFFFFF, count & 0xFFFFFFFF)


def key_setsadbxsareplay(sav: secasvar) -> Optional[SadbXSaReplay]:
    """SADB_X_EXT_SA_REPLAY when the window is over 255 bytes (value in packets)."""
    r = sav.replay
    if r is None or r.wsize <= 255:
        return None
    return SadbXSaReplay((r.wsize << 3) & 0xFFFFFFFF)


def key_setlifetime(lt: seclifetime, exttype: int) -> SadbLifetime:
    return SadbLifetime(exttype, lt.allocations & 0xFFFFFFFF, lt.bytes & 0xFFFFFFFFFFFFFFFF,
                        lt.addtime & 0xFFFFFFFFFFFFFFFF, lt.usetime & 0xFFFFFFFFFFFFFFFF)


def key_current_lifetime(sav: secasvar) -> SadbLifetime:
    """LIFETIME_CURRENT of an SA: counters, created, firstused (absolute)."""
    return SadbLifetime(SADB_EXT.LIFETIME_CURRENT, sav.lft_c_allocations & 0xFFFFFFFF,
                        sav.lft_c_bytes & 0xFFFFFFFFFFFFFFFF, sav.created, sav.firstused)


def key_setkey(key: seckey, exttype: int) -> SadbKey:
    """key_setkey: ``bits``, then _KEYLEN (bits/8) bytes of key, padded."""
    return SadbKey(exttype, key.key, key.bits)


def patch_u32(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", buf, off, value & 0xFFFFFFFF)


def patch_u16(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<H", buf, off, value & 0xFFFF)


__all__ = [
    "E", "key_error", "EINVAL", "sadb_msghdr", "key_gather_mbuf", "key_setsadbmsg",
    "key_setsadbaddr", "key_setsadbsa", "key_setsadbxsa2", "key_setsadbxsareplay",
    "key_setlifetime", "key_current_lifetime", "key_setkey", "patch_u32", "patch_u16",
]


class RawExt:
    """Extension bytes built by hand (key_sp2msg), placed in a ``Message``."""

    __slots__ = ("exttype", "data")

    def __init__(self, exttype: int, data: bytes) -> None:
        self.exttype = exttype
        self.data = data

    def pack(self) -> bytes:
        return self.data


__all__ += ["RawExt"]
