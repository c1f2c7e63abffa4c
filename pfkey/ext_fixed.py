"""The fixed-size PF_KEY v2 extensions (``sys/net/pfkeyv2.h``): ``sadb_sa``,
``sadb_lifetime``, ``sadb_spirange``, ``sadb_x_sa2``, the NAT-T
``sadb_x_nat_t_type`` / ``_port`` / ``_frag``, ``sadb_x_sa_replay`` and
FreeBSD's offload ``sadb_x_if_hw_offl``.

Each is one ``struct.Struct`` wide: key.c's ``minsize`` and ``maxsize``
(``EXT_MINSIZE`` / ``EXT_MAXSIZE`` in :mod:`pfkey.extensions`) are equal for
them, so ``unpack`` reads the struct and never looks at a length.  Split
out of :mod:`pfkey.extensions`, which re-exports every class and registers
them in ``EXT_CLASSES``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .errors import EncodeError
from .ext_codec import _check_type, _tnew, _value
from .pfkeyv2 import SADB_EXT, SADB_X_IF_HW_OFFL_NAMESIZE

_SA = struct.Struct("<HH4sBBBBI")


class _SadbSaFields(NamedTuple):
    spi: int
    replay: int = 0
    state: int = 0
    auth: int = 0
    encrypt: int = 0
    flags: int = 0


@_value
class SadbSa(_SadbSaFields):
    """struct sadb_sa (16 bytes).  ``replay`` is the window in *bytes* on FreeBSD;
    ``spi`` is the integer value (network order on the wire)."""

    __slots__ = ()
    exttype = SADB_EXT.SA
    ALLOWED_TYPES = frozenset({SADB_EXT.SA})

    def pack(self) -> bytes:
        if not 0 <= self.spi <= 0xFFFFFFFF:
            raise EncodeError(f"spi {self.spi:#x} does not fit 32 bits")
        return _SA.pack(2, 1, self.spi.to_bytes(4, "big"), self.replay, self.state,
                            self.auth, self.encrypt, self.flags)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbSa":
        _, _, spi, replay, state, auth, enc, flags = _SA.unpack_from(buf, off)
        return _tnew(cls, (int.from_bytes(spi, "big"), replay, state, auth, enc, flags))


_LFT = struct.Struct("<HHIQQQ")


class _SadbLifetimeFields(NamedTuple):
    exttype: int
    allocations: int = 0
    bytes: int = 0
    addtime: int = 0
    usetime: int = 0


@_value
class SadbLifetime(_SadbLifetimeFields):
    """struct sadb_lifetime (32 bytes): CURRENT/HARD/SOFT and the offload
    counters LFT_CUR_SW_OFFL (29) / LFT_CUR_HW_OFFL (30)."""

    __slots__ = ()
    ALLOWED_TYPES = frozenset({
        SADB_EXT.LIFETIME_CURRENT, SADB_EXT.LIFETIME_HARD, SADB_EXT.LIFETIME_SOFT,
        SADB_EXT.X_LFT_CUR_SW_OFFL, SADB_EXT.X_LFT_CUR_HW_OFFL})

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        return _LFT.pack(4, *self)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbLifetime":
        return _tnew(cls, _LFT.unpack_from(buf, off)[1:])


_SPIRANGE = struct.Struct("<HHIII")


class _SadbSpirangeFields(NamedTuple):
    min: int
    max: int
    reserved: int = 0


@_value
class SadbSpirange(_SadbSpirangeFields):
    """struct sadb_spirange (16 bytes); min/max in host order."""

    __slots__ = ()
    exttype = SADB_EXT.SPIRANGE
    ALLOWED_TYPES = frozenset({SADB_EXT.SPIRANGE})

    def pack(self) -> bytes:
        return _SPIRANGE.pack(2, self.exttype, *self)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbSpirange":
        return _tnew(cls, _SPIRANGE.unpack_from(buf, off)[2:])


_SA2 = struct.Struct("<HHBBHII")


class _SadbXSa2Fields(NamedTuple):
    mode: int = 0
    reqid: int = 0
    sequence: int = 0
    reserved1: int = 0
    reserved2: int = 0


@_value
class SadbXSa2(_SadbXSa2Fields):
    """struct sadb_x_sa2 (16 bytes): mode, replay sequence (low 32 bits), reqid."""

    __slots__ = ()
    exttype = SADB_EXT.X_SA2
    ALLOWED_TYPES = frozenset({SADB_EXT.X_SA2})

    def pack(self) -> bytes:
        return _SA2.pack(2, self.exttype, self.mode, self.reserved1, self.reserved2,
                            self.sequence, self.reqid)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXSa2":
        _, _, mode, r1, r2, seq, reqid = _SA2.unpack_from(buf, off)
        return _tnew(cls, (mode, reqid, seq, r1, r2))


_NATT_TYPE = struct.Struct("<HHB3s")


class _SadbXNatTTypeFields(NamedTuple):
    type: int
    reserved: bytes = b"\0\0\0"


@_value
class SadbXNatTType(_SadbXNatTTypeFields):
    """struct sadb_x_nat_t_type (8 bytes); only UDP_ENCAP_ESPINUDP (2) is valid."""

    __slots__ = ()
    exttype = SADB_EXT.X_NAT_T_TYPE
    ALLOWED_TYPES = frozenset({SADB_EXT.X_NAT_T_TYPE})

    def pack(self) -> bytes:
        return _NATT_TYPE.pack(1, self.exttype, self.type, self.reserved)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXNatTType":
        return _tnew(cls, _NATT_TYPE.unpack_from(buf, off)[2:])


_NATT_PORT = struct.Struct("<HH2sH")


class _SadbXNatTPortFields(NamedTuple):
    exttype: int
    port: int
    reserved: int = 0


@_value
class SadbXNatTPort(_SadbXNatTPortFields):
    """struct sadb_x_nat_t_port (8 bytes): NAT_T_SPORT / NAT_T_DPORT; the port
    is in network order on the wire and held here as its integer value."""

    __slots__ = ()
    ALLOWED_TYPES = frozenset({SADB_EXT.X_NAT_T_SPORT, SADB_EXT.X_NAT_T_DPORT})

    def pack(self) -> bytes:
        _check_type(self, self.ALLOWED_TYPES)
        if not 0 <= self.port <= 0xFFFF:
            raise EncodeError(f"NAT-T port {self.port} out of range")
        return _NATT_PORT.pack(1, self.exttype, self.port.to_bytes(2, "big"),
                            self.reserved)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXNatTPort":
        _, _, port, res = _NATT_PORT.unpack_from(buf, off)
        return _tnew(cls, (exttype, int.from_bytes(port, "big"), res))


_NATT_FRAG = struct.Struct("<HHHH")


class _SadbXNatTFragFields(NamedTuple):
    fraglen: int
    reserved: int = 0


@_value
class SadbXNatTFrag(_SadbXNatTFragFields):
    """struct sadb_x_nat_t_frag (8 bytes); parsed then ignored by key.c."""

    __slots__ = ()
    exttype = SADB_EXT.X_NAT_T_FRAG
    ALLOWED_TYPES = frozenset({SADB_EXT.X_NAT_T_FRAG})

    def pack(self) -> bytes:
        return _NATT_FRAG.pack(1, self.exttype, *self)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXNatTFrag":
        return _tnew(cls, _NATT_FRAG.unpack_from(buf, off)[2:])


_REPLAY = struct.Struct("<HHI")


class _SadbXSaReplayFields(NamedTuple):
    replay: int


@_value
class SadbXSaReplay(_SadbXSaReplayFields):
    """struct sadb_x_sa_replay (8 bytes): replay window in *packets*."""

    __slots__ = ()
    exttype = SADB_EXT.X_SA_REPLAY
    ALLOWED_TYPES = frozenset({SADB_EXT.X_SA_REPLAY})

    def pack(self) -> bytes:
        return _REPLAY.pack(1, self.exttype, self.replay)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXSaReplay":
        return _tnew(cls, _REPLAY.unpack_from(buf, off)[2:])


_IFHW = struct.Struct("<HHI32s")


class _SadbXIfHwOfflFields(NamedTuple):
    ifname: str
    flags: int = 0


@_value
class SadbXIfHwOffl(_SadbXIfHwOfflFields):
    """struct sadb_x_if_hw_offl (40 bytes): flags (always 0) and a 32-byte
    NUL-padded interface name (freebsd_ipsec_offload.md §11)."""

    __slots__ = ()
    exttype = SADB_EXT.X_IF_HW_OFFL
    ALLOWED_TYPES = frozenset({SADB_EXT.X_IF_HW_OFFL})

    def pack(self) -> bytes:
        raw = self.ifname.encode("latin-1", "replace")
        if len(raw) > SADB_X_IF_HW_OFFL_NAMESIZE or b"\0" in raw:
            raise EncodeError(f"interface name {self.ifname!r} does not fit 32 bytes")
        return _IFHW.pack(5, self.exttype, self.flags, raw)

    @classmethod
    def unpack(cls, exttype: int, buf: bytes, off: int, extlen: int) -> "SadbXIfHwOffl":
        _, _, flags, raw = _IFHW.unpack_from(buf, off)
        # strncpy semantics: the name ends at the first NUL or after 32 bytes.
        return _tnew(cls, (raw.split(b"\0", 1)[0].decode("latin-1"), flags))


__all__ = [
    "SadbSa", "SadbLifetime", "SadbSpirange", "SadbXSa2", "SadbXNatTType", "SadbXNatTPort",
    "SadbXNatTFrag", "SadbXSaReplay", "SadbXIfHwOffl",
]
