"""struct sadb_msg, ``decode`` / ``Message.encode`` and key_parse validation.

``decode(data)`` is the kernel's view of a message written to a PF_KEY socket:
it applies, in FreeBSD's order, every check keysock.c ``key_output`` and key.c
``key_parse`` / ``key_align`` / ``key_validate_ext`` make before dispatching to
a handler (reference pfkey_setkey_reference.md §B.1):

1. fewer than 16 bytes, or a buffer length other than ``sadb_msg_len * 8``:
   EINVAL from ``send()``;
2. version other than PF_KEY_V2, type above SADB_MAX: EINVAL *reply*;
3. more than MCLBYTES (2048) bytes: ENOBUFS from ``send()``;
4. key_align: unknown extension type (0, 17 KMPRIVATE, > 31) or a duplicate:
   EINVAL; a length outside key.c's minsize/maxsize table or an address (or
   ident-addr) extension whose length is not 8 + ALIGN8(sa_len): EINVAL; an
   extension running past the end (``m_pulldown`` fails): ENOBUFS -- all from
   ``send()``;
5. satype not allowed for the message type: EINVAL (EOPNOTSUPP for RSVP,
   OSPFv2, RIPv2, MIP) *reply*; for SPDDUMP the satype is a scope mask that
   must be 0, 1, 2 or 4;
6. with both ADDRESS_SRC and ADDRESS_DST: proto, family, sa_len, sa_len per
   family and prefix length must agree (EINVAL reply), an unknown family gives
   EAFNOSUPPORT (reply).

Each failure raises a ``PfkeyError`` subclass whose ``delivery`` records
whether FreeBSD fails ``send()`` or answers with an error reply.  Dispatch
(a type with no handler) is the key engine's job.

``decode(data, strict=False)`` is libipsec's ``pfkey_align`` view, used by
userland to read what the kernel sends: no satype/address/size checks, several
IF_HW_OFFL extensions allowed (a dump lists one per offloading interface), and
an X_PROMISC copy carries the mirrored message in ``Message.inner``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, NamedTuple, Optional, TypeVar, overload

from . import errors as E
from .extensions import (
    EXT_CLASSES, EXT_MAXSIZE, EXT_MINSIZE, Extension, ExtensionClass, ExtensionT, SadbAddress,
    _value,
    SadbKey, SadbLifetime, SadbSa, SadbXPolicy, SadbXSa2,
)
from .pfkeyv2 import (
    AF_INET, AF_INET6, MCLBYTES, PF_KEY_V2, SADB, SADB_EXT, SADB_IDENTTYPE, SADB_MAX,
    SADB_SATYPE,
)

_MSG = struct.Struct("<BBBBHHII")
_tnew = tuple.__new__
_EXTHDR = struct.Struct("<HH")

T = TypeVar("T")


@_value
class Message(NamedTuple):
    """One PF_KEY v2 message: the sadb_msg header fields and its extensions.

    ``errno`` is the FreeBSD number carried in ``sadb_msg_errno`` (see
    ``host_errno`` for the host's); ``reserved`` carries the refcount FreeBSD
    reports in dumps.  ``exts`` keeps wire order, which is significant (setkey's
    build order, key.c's reply gather order) and may repeat IF_HW_OFFL in kernel
    dumps.  ``inner`` holds the mirrored message of a promiscuous copy.
    """

    type: int
    satype: int = 0
    seq: int = 0
    pid: int = 0
    errno: int = 0
    reserved: int = 0
    exts: tuple[ExtensionT, ...] = ()
    version: int = PF_KEY_V2
    inner: Optional[bytes] = None

    # -- access ------------------------------------------------------------

    @overload
    def get(self, exttype: int) -> Optional[ExtensionT]: ...
    @overload
    def get(self, exttype: int, default: T) -> ExtensionT | T: ...

    def get(self, exttype: int, default: object = None) -> object:
        """The first extension of ``exttype``, or ``default``."""
        for e in self.exts:
            if e.exttype == exttype:
                return e
        return default

    def get_all(self, exttype: int) -> list[ExtensionT]:
        return [e for e in self.exts if e.exttype == exttype]

    def has(self, exttype: int) -> bool:
        return any(e.exttype == exttype for e in self.exts)

    @property
    def ext_types(self) -> tuple[int, ...]:
        return tuple(e.exttype for e in self.exts)

    @property
    def host_errno(self) -> int:
        """``errno`` translated to the host's numbering (0 when no error)."""
        return E.from_wire(self.errno)

    # Typed shortcuts for the extensions nearly every handler needs.
    @property
    def sa(self) -> Optional[SadbSa]:
        return self.get(SADB_EXT.SA)  # type: ignore[return-value]

    @property
    def sa2(self) -> Optional[SadbXSa2]:
        return self.get(SADB_EXT.X_SA2)  # type: ignore[return-value]

    @property
    def src(self) -> Optional[SadbAddress]:
        return self.get(SADB_EXT.ADDRESS_SRC)  # type: ignore[return-value]

    @property
    def dst(self) -> Optional[SadbAddress]:
        return self.get(SADB_EXT.ADDRESS_DST)  # type: ignore[return-value]

    @property
    def policy(self) -> Optional[SadbXPolicy]:
        return self.get(SADB_EXT.X_POLICY)  # type: ignore[return-value]

    @property
    def key_auth(self) -> Optional[SadbKey]:
        return self.get(SADB_EXT.KEY_AUTH)  # type: ignore[return-value]

    @property
    def key_encrypt(self) -> Optional[SadbKey]:
        return self.get(SADB_EXT.KEY_ENCRYPT)  # type: ignore[return-value]

    @property
    def lifetime_current(self) -> Optional[SadbLifetime]:
        return self.get(SADB_EXT.LIFETIME_CURRENT)  # type: ignore[return-value]

    @property
    def lifetime_hard(self) -> Optional[SadbLifetime]:
        return self.get(SADB_EXT.LIFETIME_HARD)  # type: ignore[return-value]

    @property
    def lifetime_soft(self) -> Optional[SadbLifetime]:
        return self.get(SADB_EXT.LIFETIME_SOFT)  # type: ignore[return-value]

    # -- building ----------------------------------------------------------

    def replace(self, **changes: Any) -> "Message":
        """A copy with header fields (or ``exts``) replaced."""
        return self._replace(**changes)

    def with_exts(self, *exts: ExtensionT) -> "Message":
        return self._replace(exts=tuple(exts))

    def encode(self) -> bytes:
        """The exact wire bytes: header with the computed ``len``, then every
        extension in order (each already 8-byte aligned)."""
        if self.inner is not None:
            body = self.inner
        else:
            try:
                body = b"".join([e.pack() for e in self.exts])
            except (struct.error, OverflowError) as exc:
                raise E.EncodeError(f"extension value out of range: {exc}") from None
        total = 16 + len(body)
        if total & 7:
            raise E.EncodeError(f"message body of {len(body)} bytes is not 8-byte aligned")
        units = total >> 3
        if units > 0xFFFF:
            raise E.EncodeError(f"message of {total} bytes does not fit sadb_msg_len")
        try:
            hdr = _MSG.pack(self.version, self.type, self.errno, self.satype, units,
                            self.reserved, self.seq, self.pid)
        except struct.error as exc:
            raise E.EncodeError(f"header value out of range: {exc}") from None
        return hdr + body


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

_IDENT_TYPES = frozenset({SADB_EXT.IDENTITY_SRC, SADB_EXT.IDENTITY_DST})
_ADDR_CHECKED = frozenset({
    SADB_EXT.ADDRESS_SRC, SADB_EXT.ADDRESS_DST, SADB_EXT.ADDRESS_PROXY,
    SADB_EXT.X_NAT_T_OAI, SADB_EXT.X_NAT_T_OAR,
    SADB_EXT.X_NEW_ADDRESS_SRC, SADB_EXT.X_NEW_ADDRESS_DST})

# key_parse satype rules.
_NEEDS_SATYPE = frozenset({SADB.GETSPI, SADB.UPDATE, SADB.ADD, SADB.DELETE, SADB.GET,
                           SADB.ACQUIRE, SADB.EXPIRE})
_SPD_TYPES = frozenset({SADB.X_SPDADD, SADB.X_SPDDELETE, SADB.X_SPDGET, SADB.X_SPDFLUSH,
                        SADB.X_SPDSETIDX, SADB.X_SPDUPDATE, SADB.X_SPDDELETE2})
_SA_SATYPES = frozenset({SADB_SATYPE.AH, SADB_SATYPE.ESP, SADB_SATYPE.X_IPCOMP,
                         SADB_SATYPE.X_TCPSIGNATURE})
_UNSUPPORTED_SATYPES = frozenset({SADB_SATYPE.RSVP, SADB_SATYPE.OSPFV2, SADB_SATYPE.RIPV2,
                                  SADB_SATYPE.MIP})
_SPDDUMP_SCOPES = frozenset({0, 1, 2, 4})

_ADDR_LIKE = (SadbAddress,)
_ALIGN8: Callable[[int], int] = lambda n: (n + 7) & ~7  # noqa: E731


def check_satype(mtype: int, satype: int) -> None:
    """key_parse's satype rules (reply errors)."""
    if mtype == SADB.X_SPDDUMP:
        if satype not in _SPDDUMP_SCOPES:
            raise E.BadSatype(f"SPDDUMP scope mask {satype} is not 0, 1, 2 or 4")
        return
    if satype == SADB_SATYPE.UNSPEC:
        if mtype in _NEEDS_SATYPE:
            raise E.BadSatype(f"message type {mtype} needs an SA type")
    elif satype in _SA_SATYPES:
        if mtype in _SPD_TYPES:
            raise E.BadSatype(f"SA type {satype} is not allowed for SPD message {mtype}")
    elif satype in _UNSUPPORTED_SATYPES:
        raise E.SatypeNotSupported(f"SA type {satype} is not supported")
    elif not (satype == 1 and mtype == SADB.X_PROMISC):
        raise E.BadSatype(f"invalid SA type {satype}")


def check_address_pair(src: SadbAddress, dst: SadbAddress) -> None:
    """key_parse's src/dst consistency rules (reply errors)."""
    if src.proto != dst.proto:
        raise E.BadAddress(f"upper layer protocol mismatch ({src.proto} vs {dst.proto})")
    sfam, dfam = src.addr.family, dst.addr.family
    if sfam != dfam:
        raise E.BadAddress(f"address family mismatch ({sfam} vs {dfam})")
    if src.addr.sa_len != dst.addr.sa_len:
        raise E.BadAddress(f"sockaddr size mismatch ({src.addr.sa_len} vs {dst.addr.sa_len})")
    if sfam == AF_INET:
        if src.addr.sa_len != 16:
            raise E.BadAddress(f"sockaddr_in with sa_len {src.addr.sa_len}")
        plen = 32
    elif sfam == AF_INET6:
        if src.addr.sa_len != 28:
            raise E.BadAddress(f"sockaddr_in6 with sa_len {src.addr.sa_len}")
        plen = 128
    else:
        raise E.AddressFamilyNotSupported(f"unsupported address family {sfam}")
    if src.prefixlen > plen or dst.prefixlen > plen:
        raise E.BadAddress(
            f"prefix length {max(src.prefixlen, dst.prefixlen)} above {plen}")


def _build_ext_table() -> list[Optional[tuple[ExtensionClass, int, int, int]]]:
    """Per extension type: (class, minsize, maxsize, sockaddr offset or 0).

    One list indexed by the wire number, so key_align's checks cost a single
    index per extension.  The ident offset (16) is applied only to
    SADB_X_IDENTTYPE_ADDR idents, decided per extension.
    """
    table: list[Optional[tuple[ExtensionClass, int, int, int]]] = [None] * 32
    for t in range(32):
        cls = EXT_CLASSES[t]
        if cls is None:
            continue
        base = 8 if t in _ADDR_CHECKED else 16 if t in _IDENT_TYPES else 0
        table[t] = (cls, EXT_MINSIZE[t], EXT_MAXSIZE[t], base)
    return table


_EXT_TABLE = _build_ext_table()
_IF_HW_OFFL = int(SADB_EXT.X_IF_HW_OFFL)
_IDENTTYPE_ADDR = int(SADB_IDENTTYPE.X_ADDR)


def _align(data: bytes, end: int, strict: bool) -> tuple[ExtensionT, ...]:
    """key_align + key_validate_ext: walk, check and decode the extensions."""
    exts: list[ExtensionT] = []
    append = exts.append
    seen = 0
    off = 16
    hdr = _EXTHDR.unpack_from
    table = _EXT_TABLE
    while off < end:
        units, etype = hdr(data, off)
        entry = table[etype] if etype < 32 else None
        if entry is None:
            raise E.UnknownExtension(f"invalid extension type {etype} at offset {off}")
        cls, mn, mx, base = entry
        bit = 1 << etype
        if seen & bit and (strict or etype != _IF_HW_OFFL):
            raise E.DuplicateExtension(f"duplicate extension type {etype} at offset {off}")
        seen |= bit
        extlen = units << 3
        if extlen < mn or (mx and extlen > mx):
            raise E.BadExtensionLength(
                f"extension type {etype} has length {extlen} "
                f"(allowed {mn}..{mx or 'any'})")
        if base and (base == 8 or data[off + 4] | (data[off + 5] << 8) == _IDENTTYPE_ADDR):
            _check_sockaddr_len(data, off, end, etype, extlen, base)
        if off + extlen > end:
            raise E.TruncatedExtension(
                f"extension type {etype} ({extlen} bytes at offset {off}) runs past "
                f"the end of the {end}-byte message")
        append(cls.unpack(etype, data, off, extlen))
        off += extlen
    return tuple(exts)


def _check_sockaddr_len(data: bytes, off: int, end: int, etype: int, extlen: int,
                        base: int) -> None:
    """key_validate_ext's ADDR rule: len >= base + 1 and len == base + ALIGN8(sa_len)."""
    if extlen < base + 1:
        raise E.BadExtensionLength(
            f"extension type {etype} of {extlen} bytes has no room for a sockaddr")
    if off + base >= end:
        # key_validate_ext would read sa_len beyond the message; m_pulldown of
        # the extension fails right after, so the sender sees ENOBUFS.
        raise E.TruncatedExtension(
            f"extension type {etype} runs past the end of the message")
    sa_len = data[off + base]
    if base + _ALIGN8(sa_len) != extlen:
        raise E.BadExtensionLength(
            f"extension type {etype} has length {extlen} but its sockaddr "
            f"needs {base + _ALIGN8(sa_len)} (sa_len {sa_len})")


def decode(data: bytes | bytearray | memoryview, *, strict: bool = True) -> Message:
    """Decode and validate one PF_KEY message.

    ``strict=True`` (the default) is key_parse's view: every check FreeBSD
    makes before dispatch, in FreeBSD's order, raising a ``PfkeyError`` that
    carries FreeBSD's errno and delivery.  ``strict=False`` is libipsec's view
    for messages coming *from* the kernel (see the module docstring).
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    if n < 16:
        raise E.ShortMessage(f"message of {n} bytes is shorter than sadb_msg (16)")
    version, mtype, errno_, satype, units, reserved, seq, pid = _MSG.unpack_from(data, 0)
    if units << 3 != n:
        raise E.LengthMismatch(f"sadb_msg_len says {units << 3} bytes, buffer has {n}")
    if version != PF_KEY_V2:
        raise E.BadVersion(f"PF_KEY version {version} is not {PF_KEY_V2}")
    if mtype > SADB_MAX:
        raise E.BadMessageType(f"invalid message type {mtype}")
    if not strict and mtype == SADB.X_PROMISC and n > 16:
        return Message(mtype, satype, seq, pid, errno_, reserved, (), version, data[16:])
    if strict and n > MCLBYTES:
        raise E.MessageTooBig(f"message of {n} bytes exceeds MCLBYTES ({MCLBYTES})")
    exts = _align(data, n, strict)
    msg = _tnew(Message, (mtype, satype, seq, pid, errno_, reserved, exts, version, None))
    if strict:
        check_satype(mtype, satype)
        src = dst = None
        for e in exts:
            t = e.exttype
            if t == SADB_EXT.ADDRESS_SRC:
                src = e
            elif t == SADB_EXT.ADDRESS_DST:
                dst = e
        if src is not None and dst is not None:
            # ADDRESS_SRC/DST are decoded by SadbAddress only (EXT_CLASSES), a
            # fact the type of ``exts`` cannot carry; no isinstance on this path.
            check_address_pair(src, dst)  # type: ignore[arg-type]
    return msg


def decode_header(data: bytes | bytearray | memoryview) -> Message:
    """Only the 16-byte sadb_msg header, no checks (for echoing and logging)."""
    if len(data) < 16:
        raise E.ShortMessage(f"message of {len(data)} bytes is shorter than sadb_msg (16)")
    version, mtype, errno_, satype, _units, reserved, seq, pid = _MSG.unpack_from(data, 0)
    return Message(mtype, satype, seq, pid, errno_, reserved, (), version)


def set_errno(data: bytes, wire_errno: int) -> bytes:
    """The request bytes with ``sadb_msg_errno`` set: key_senderror's echo.

    Nothing else changes -- not the length, not the extensions, not the keys.
    """
    return data[:2] + bytes((wire_errno & 0xFF,)) + data[3:]


__all__ = [
    "Message", "decode", "decode_header", "set_errno", "check_satype",
    "check_address_pair", "Extension",
]
