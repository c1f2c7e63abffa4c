"""The variable-size PF_KEY v2 extensions (``sys/net/pfkeyv2.h``): a fixed
header followed by a body whose length only ``sadb_ext_len`` gives --
``sadb_address`` + sockaddr, ``sadb_key`` + key bits, ``sadb_ident`` +
string, ``sadb_sens`` + bitmaps, ``sadb_prop`` + ``sadb_comb`` x n and
``sadb_supported`` + ``sadb_alg`` x n.

Bodies are padded to 8 bytes on encode.  On decode each class reads only
inside the extension's own length, so a lying inner length (``sa_len``,
key bits) never reaches into the next extension, and keeps bytes it cannot
interpret (a partial ``sadb_comb``, key bytes past ``bits``) rather than
dropping them.  Split out of :mod:`pfkey.extensions`, which re-exports every
class and registers them in ``EXT_CLASSES``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .ext_codec import _check_type, _pad8, _tnew, _units, _value
from .pfkeyv2 import SADB_EXT
from .sockaddr import Sockaddr

_ADDR = struct.Struct("<HHBBH")


class _SadbAddressFields(NamedTuple):
    exttype: int
    addr: Sockaddr
    prefixlen: int = -1
    proto: int = 255
    reserved: int = 0


@_value
class SadbAddress(_SadbAddressFields):
    """struct sadb_address + sockaddr: SRC/DST/PROXY, NAT-T OAI/OAR and the
    MOBIKE NEW_ADDRESS_SRC/DST.  ``proto`` 255 means any upper layer;
    ``prefixlen`` defaults to the family's full length (32 or 128)."""

    __slots__ = ()
    ALLOWED_TYPES = frozenset({
        SADB_EXT.ADDRESS_SRC, SADB_EXT.ADDRESS_DST, SADB_EXT.ADDRESS_PROXY,
        SADB_EXT.X_NAT_T_OAI, SADB_EXT.X_NAT_T_OAR,
        SADB_EXT.X_NEW_ADDRESS_SRC, SADB_EXT.X_NEW_ADDRESS_DST})

    def __new__(cls, exttype: int, addr: Sockaddr, prefixlen: int = -1, proto: int = 255,
                reserved: int = 0) -> "SadbAddress":
        if prefixlen < 0:
            prefixlen = addr.plen
        return _tnew(cls, (exttype, addr, prefixlen, proto, reserved))

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        body = _pad8(self.addr.wire())
        return _ADDR.pack(_units(8 + len(body)), self.exttype, self.proto,
                            self.prefixlen, self.reserved) + body

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbAddress":
        _, _, proto, plen, res = _ADDR.unpack_from(buf, off)
        # Sockaddr.parse inlined: addresses are the most frequent extension.
        a = off + 8
        sa_len = buf[a]
        end = a + (sa_len if sa_len > 2 else 2)
        limit = off + extlen
        sa = _tnew(Sockaddr, (buf[a + 1], sa_len, buf[a + 2:end if end < limit else limit]))
        return _tnew(cls, (exttype, sa, plen, proto, res))


_KEY = struct.Struct("<HHHH")


class _SadbKeyFields(NamedTuple):
    exttype: int
    key: bytes
    bits: int = -1
    reserved: int = 0


@_value
class SadbKey(_SadbKeyFields):
    """struct sadb_key + key bytes (KEY_AUTH / KEY_ENCRYPT).

    ``bits`` defaults to ``8 * len(key)``.  On the wire the key is zero-padded
    to 8 bytes; decoding keeps ``ceil(bits/8)`` bytes when the rest is padding
    (key.c uses bits/8 bytes and never checks bits against the length).
    """

    __slots__ = ()
    ALLOWED_TYPES = frozenset({SADB_EXT.KEY_AUTH, SADB_EXT.KEY_ENCRYPT})

    def __new__(cls, exttype: int, key: bytes, bits: int = -1, reserved: int = 0) -> "SadbKey":
        if bits < 0:
            bits = 8 * len(key)
        return _tnew(cls, (exttype, key, bits, reserved))

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        body = _pad8(self.key)
        return _KEY.pack(_units(8 + len(body)), self.exttype, self.bits,
                            self.reserved) + body

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbKey":
        _, _, bits, res = _KEY.unpack_from(buf, off)
        payload = buf[off + 8: off + extlen]
        n = (bits + 7) >> 3
        if n <= len(payload) and not any(payload[n:]):
            payload = payload[:n]
        return _tnew(cls, (exttype, payload, bits, res))


_IDENT = struct.Struct("<HHHHQ")


class _SadbIdentFields(NamedTuple):
    exttype: int
    type: int
    data: bytes = b""
    id: int = 0
    reserved: int = 0


@_value
class SadbIdent(_SadbIdentFields):
    """struct sadb_ident (16 bytes) + string or, for SADB_X_IDENTTYPE_ADDR, a
    sockaddr.  ``data`` is stored NUL-padded to a multiple of 8 bytes."""

    __slots__ = ()
    ALLOWED_TYPES = frozenset({SADB_EXT.IDENTITY_SRC, SADB_EXT.IDENTITY_DST})

    def __new__(cls, exttype: int, type: int, data: bytes = b"", id: int = 0,
                reserved: int = 0) -> "SadbIdent":
        return _tnew(cls, (exttype, type, _pad8(data), id, reserved))

    @property
    def string(self) -> str:
        return self.data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        return _IDENT.pack(_units(16 + len(self.data)), self.exttype, self.type,
                            self.reserved, self.id) + self.data

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbIdent":
        _, _, t, res, ident = _IDENT.unpack_from(buf, off)
        return _tnew(cls, (exttype, t, buf[off + 16: off + extlen], ident, res))


_SENS = struct.Struct("<HHIBBBBI")


class _SadbSensFields(NamedTuple):
    dpd: int = 0
    sens_level: int = 0
    sens_len: int = 0
    integ_level: int = 0
    integ_len: int = 0
    bitmaps: bytes = b""
    reserved: int = 0


@_value
class SadbSens(_SadbSensFields):
    """struct sadb_sens (16 bytes) + sensitivity and integrity bitmaps.

    ``sens_len`` / ``integ_len`` count 64-bit words; ``bitmaps`` holds the raw
    words that follow (key.c never interprets them beyond the minimum size).
    """

    __slots__ = ()
    exttype = SADB_EXT.SENSITIVITY
    ALLOWED_TYPES = frozenset({SADB_EXT.SENSITIVITY})

    def __new__(cls, dpd: int = 0, sens_level: int = 0, sens_len: int = 0,
                integ_level: int = 0, integ_len: int = 0, bitmaps: bytes = b"",
                reserved: int = 0) -> "SadbSens":
        return _tnew(cls, (dpd, sens_level, sens_len, integ_level, integ_len,
                           _pad8(bitmaps), reserved))

    def pack(self) -> bytes:
        return _SENS.pack(_units(16 + len(self.bitmaps)), self.exttype, self.dpd,
                            self.sens_level, self.sens_len, self.integ_level,
                            self.integ_len, self.reserved) + self.bitmaps

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbSens":
        _, _, dpd, sl, sn, il, iln, res = _SENS.unpack_from(buf, off)
        return _tnew(cls, (dpd, sl, sn, il, iln, buf[off + 16: off + extlen], res))


_COMB = struct.Struct("<BBHHHHHIIIQQQQQQ")


class _SadbCombFields(NamedTuple):
    auth: int = 0
    encrypt: int = 0
    flags: int = 0
    auth_minbits: int = 0
    auth_maxbits: int = 0
    encrypt_minbits: int = 0
    encrypt_maxbits: int = 0
    reserved: int = 0
    soft_allocations: int = 0
    hard_allocations: int = 0
    soft_bytes: int = 0
    hard_bytes: int = 0
    soft_addtime: int = 0
    hard_addtime: int = 0
    soft_usetime: int = 0
    hard_usetime: int = 0


@_value
class SadbComb(_SadbCombFields):
    """struct sadb_comb (72 bytes), one proposal combination."""

    __slots__ = ()
    SIZE = 72

    def pack(self) -> bytes:
        return _COMB.pack(*self)

    @classmethod
    def unpack(cls, buf: bytes, off: int) -> "SadbComb":
        return _tnew(cls, _COMB.unpack_from(buf, off))


_PROP = struct.Struct("<HHB3s")


class _SadbPropFields(NamedTuple):
    combs: tuple[SadbComb, ...] = ()
    replay: int = 0
    reserved: bytes = b"\0\0\0"
    extra: bytes = b""


@_value
class SadbProp(_SadbPropFields):
    """struct sadb_prop (8 bytes) + sadb_comb x n.  Bytes after the last whole
    comb (a malformed proposal) are kept in ``extra`` so nothing is lost."""

    __slots__ = ()
    exttype = SADB_EXT.PROPOSAL
    ALLOWED_TYPES = frozenset({SADB_EXT.PROPOSAL})

    def pack(self) -> bytes:
        body = _pad8(b"".join(c.pack() for c in self.combs) + self.extra)
        return _PROP.pack(_units(8 + len(body)), self.exttype, self.replay,
                            self.reserved) + body

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbProp":
        _, _, replay, res = _PROP.unpack_from(buf, off)
        combs = []
        pos, end = off + 8, off + extlen
        while pos + 72 <= end:
            combs.append(SadbComb.unpack(buf, pos))
            pos += 72
        return _tnew(cls, (tuple(combs), replay, res, buf[pos:end]))


_ALG = struct.Struct("<BBHHH")


class _SadbAlgFields(NamedTuple):
    id: int
    ivlen: int = 0
    minbits: int = 0
    maxbits: int = 0
    reserved: int = 0


@_value
class SadbAlg(_SadbAlgFields):
    """struct sadb_alg (8 bytes): id, ivlen, minbits, maxbits."""

    __slots__ = ()
    SIZE = 8

    def pack(self) -> bytes:
        return _ALG.pack(*self)


_SUPP = struct.Struct("<HHI")


class _SadbSupportedFields(NamedTuple):
    exttype: int
    algs: tuple[SadbAlg, ...] = ()
    reserved: int = 0


@_value
class SadbSupported(_SadbSupportedFields):
    """struct sadb_supported (8 bytes) + sadb_alg x n (SUPPORTED_AUTH/ENCRYPT)."""

    __slots__ = ()
    ALLOWED_TYPES = frozenset({SADB_EXT.SUPPORTED_AUTH, SADB_EXT.SUPPORTED_ENCRYPT})

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        body = b"".join(a.pack() for a in self.algs)
        return _SUPP.pack(_units(8 + len(body)), self.exttype, self.reserved) + body

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbSupported":
        res = _SUPP.unpack_from(buf, off)[2]
        algs = tuple(_tnew(SadbAlg, _ALG.unpack_from(buf, p))
                     for p in range(off + 8, off + extlen, 8))
        return _tnew(cls, (exttype, algs, res))


__all__ = [
    "SadbAddress", "SadbKey", "SadbIdent", "SadbSens", "SadbComb", "SadbProp", "SadbAlg",
    "SadbSupported",
]
