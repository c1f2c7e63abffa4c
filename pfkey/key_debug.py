"""``kdebug_sadb`` text (``setkey -v`` / ``-x``) and setkey's raw dumps and timestamps.

Models FreeBSD ``sys/netipsec/key_debug.c`` as setkey builds it into itself
(userland, with INET, INET6 and IPSEC_DEBUG: ``kdebug_sadb`` and its per-extension
helpers, ``kdebug_sockaddr``, ``ipsec_hexdump``), and from ``sbin/setkey/setkey.c``
the ``-h`` hex dump, the ``printdate()``/``gmt2local()`` timestamps of ``-x``/``-xx``
and the print step of ``promisc()``.  Source read: FreeBSD main of 2024-10-29 (as
vendored by RTEMS libbsd), the version with the inline-offload extensions 29-31.

Rules:

* Everything works on the **wire bytes**, as the C code walks the buffer: a
  :class:`~pfkey.message.Message` is encoded first.  Lengths that lie are
  followed the way key_debug.c follows them; bytes it would read past the end of
  the message read as zeros here (the C code reads whatever is in setkey's
  receive buffer) -- the model never raises on a strange message.
* Every line is the C format string's output, byte for byte, including
  key_debug.c's own slips (the ``ext_len too big`` check compares 64-bit units
  with bytes; the fourth ``sadb_comb`` line labels the add/use times
  ``soft_alloc``/``hard_alloc``/``soft_bytes``/``hard_bytes``; NAT_T_FRAG is
  reported as an invalid type and ends the dump).
* **Quirk** ``quirk_kdebug_offl`` (default off).  In the 2024-10-29 snapshot the
  offload lifetimes (29, 30) are printed and then *fall through* into the
  ``invalid ext_type`` default, which ends the dump, and IF_HW_OFFL (31) has no
  case and no name at all, so ``setkey -v``/``-x`` never shows anything after
  the first offload extension.  With the quirk on, that is exactly what is
  printed.  With it off (the model's correct behaviour) 29/30 print their
  lifetime block and the walk goes on, and 31 prints as
  ``sadb_ext{ len=5 type=31(IF_HW_OFFL) }`` followed by
  ``sadb_x_if_hw_offl{ flags=0x%08x if=<name> }`` -- a line of the model's own,
  in key_debug.c's style, since FreeBSD has none.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone, tzinfo
from typing import Union

from .errors import EncodeError
from .message import Message
from .pfkeyv2 import AF_INET, AF_INET6, SADB, SADB_EXT

MessageLike = Union[Message, bytes, bytearray, memoryview]

_MSG = struct.Struct("<BBBBHHII")
_EXTHDR = struct.Struct("<HH")
_SA = struct.Struct("<HH4sBBBBI")
_LFT = struct.Struct("<HHIQQQ")
_ADDR = struct.Struct("<HHBBBB")
_KEY = struct.Struct("<HHHH")
_IDENT = struct.Struct("<HHHHQ")
_PROP = struct.Struct("<HHB")
_COMB = struct.Struct("<BBHHHHHIIIQQQQQQ")
_ALG = struct.Struct("<BBHHH")
_POL = struct.Struct("<HHHBBII")
_REQ = struct.Struct("<HHBBH")
_SA2 = struct.Struct("<HHBBHII")
_U32 = struct.Struct("<HHI")
_NATT_TYPE = struct.Struct("<HHB")
_NATT_PORT = struct.Struct("<HH2s")
_IFHW = struct.Struct("<HHI32s")

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


# ---------------------------------------------------------------------------
# Bytes of a message, and reading past the end the way C does (zeros here)
# ---------------------------------------------------------------------------

def message_bytes(msg: MessageLike) -> bytes:
    """The wire bytes of ``msg`` (a Message is encoded).

    A Message that cannot be encoded (a value that does not fit its C field)
    can never reach FreeBSD's printers; rather than raise, the header fields
    are truncated to their C width and the extensions that do not pack are left
    out, so the printers still show everything that can exist on the wire.
    """
    if not isinstance(msg, Message):
        return bytes(msg)
    try:
        return msg.encode()
    except EncodeError:
        pass
    parts: list[bytes] = []
    if msg.inner is not None:
        parts.append(bytes(msg.inner))
    else:
        for ext in msg.exts:
            try:
                parts.append(ext.pack())
            except (EncodeError, struct.error, ValueError, OverflowError):
                continue
    body = b"".join(parts)
    body += bytes(-len(body) & 7)
    hdr = _MSG.pack(msg.version & 0xFF, msg.type & 0xFF, msg.errno & 0xFF, msg.satype & 0xFF,
                    ((16 + len(body)) >> 3) & 0xFFFF, msg.reserved & 0xFFFF, msg.seq & _M32,
                    msg.pid & _M32)
    return hdr + body


def peek(data: bytes, off: int, n: int) -> bytes:
    """``n`` bytes at ``off``; whatever lies past the end of ``data`` reads as 0."""
    if n <= 0:
        return b""
    chunk = data[off:off + n] if off >= 0 else b""
    if len(chunk) < n:
        chunk += bytes(n - len(chunk))
    return chunk


# ---------------------------------------------------------------------------
# Addresses (inet_ntop as FreeBSD libc prints them) and hex dumps
# ---------------------------------------------------------------------------

def inet_ntop4(raw: bytes) -> str:
    """Dotted quad of 4 bytes."""
    return "%u.%u.%u.%u" % (raw[0], raw[1], raw[2], raw[3])


def inet_ntop6(raw: bytes) -> str:
    """FreeBSD libc's (BIND's) inet_ntop6: the longest run of two or more zero
    words (the first on a tie) becomes ``::``; ``::a.b.c.d`` and
    ``::ffff:a.b.c.d`` keep their embedded IPv4 in dotted form."""
    words = struct.unpack("!8H", raw[:16])
    best_base, best_len = -1, 0
    cur_base, cur_len = -1, 0
    for i, w in enumerate(words):
        if w == 0:
            if cur_base == -1:
                cur_base, cur_len = i, 1
            else:
                cur_len += 1
        elif cur_base != -1:
            if best_base == -1 or cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if cur_base != -1 and (best_base == -1 or cur_len > best_len):
        best_base, best_len = cur_base, cur_len
    if best_base != -1 and best_len < 2:
        best_base = -1
    out: list[str] = []
    for i in range(8):
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                out.append(":")
            continue
        if i != 0:
            out.append(":")
        if i == 6 and best_base == 0 and (
                best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            out.append(inet_ntop4(raw[12:16]))
            break
        out.append("%x" % words[i])
    if best_base != -1 and best_base + best_len == 8:
        out.append(":")
    return "".join(out)


def is_linklocal6(raw: bytes) -> bool:
    """IN6_IS_ADDR_LINKLOCAL: fe80::/10."""
    return raw[0] == 0xFE and (raw[1] & 0xC0) == 0x80


def ipsec_hexdump(data: bytes) -> str:
    """key_debug.c ``ipsec_hexdump``: a blank before every 4-byte group, a
    newline before every 32-byte line but the first, no final newline."""
    out: list[str] = []
    for i, b in enumerate(data):
        if i and i % 32 == 0:
            out.append("\n")
        if i % 4 == 0:
            out.append(" ")
        out.append("%02x" % b)
    return "".join(out)


def setkey_hexdump(data: bytes) -> str:
    """setkey.c's ``-h`` dump of a whole message: ``%08x: `` offset, ``%02x ``
    per byte, 16 bytes a line, a final newline after a partial line."""
    out: list[str] = []
    n = len(data)
    for i, b in enumerate(data):
        if i % 16 == 0:
            out.append("%08x: " % i)
        out.append("%02x " % b)
        if i % 16 == 15:
            out.append("\n")
    if n % 16:
        out.append("\n")
    return "".join(out)


def kdebug_sockaddr(raw: bytes) -> str:
    """``sockaddr{ len= family= addr= }``: link-local IPv6 gets ``%<scope id>``
    (always numeric here); families other than INET/INET6 print ``unknown``."""
    raw = peek(raw, 0, 28)
    sa_len, family = raw[0], raw[1]
    if family == AF_INET:
        addr = inet_ntop4(raw[4:8])
    elif family == AF_INET6:
        a6 = raw[8:24]
        addr = inet_ntop6(a6)
        if is_linklocal6(a6):
            addr += "%%%u" % int.from_bytes(raw[24:28], "little")
    else:
        addr = "unknown"
    return "sockaddr{ len=%u family=%u addr=%s }\n" % (sa_len, family, addr)


# ---------------------------------------------------------------------------
# kdebug_sadb
# ---------------------------------------------------------------------------

def kdebug_sadb_type(mtype: int) -> str:
    """Message type name as key_debug.c prints it (``X_SPDADD``), else UNKNOWN."""
    try:
        return SADB(mtype).name
    except ValueError:
        return "UNKNOWN"


# key_debug.c names: SADB_EXT_* without the prefix, SADB_X_EXT_* without
# "X_"; the deprecated OA alias never shows (OAI comes first).
_EXT_NAMES: dict[int, str] = {}
for _m in SADB_EXT:
    if _m.value not in _EXT_NAMES:
        _EXT_NAMES[_m.value] = _m.name[2:] if _m.name.startswith("X_") else _m.name


def kdebug_sadb_exttype(exttype: int, *, quirk_kdebug_offl: bool = False) -> str:
    """Extension type name; IF_HW_OFFL is unnamed (UNKNOWN) in FreeBSD."""
    if quirk_kdebug_offl and exttype == SADB_EXT.X_IF_HW_OFFL:
        return "UNKNOWN"
    return _EXT_NAMES.get(exttype, "UNKNOWN")


def _sa(d: bytes) -> str:
    _, _, spi, replay, state, auth, enc, flags = _SA.unpack(peek(d, 0, 16))
    return ("sadb_sa{ spi=%u replay=%u state=%u\n  auth=%u encrypt=%u flags=0x%08x }\n"
            % (int.from_bytes(spi, "big"), replay, state, auth, enc, flags))


def _lifetime(d: bytes) -> str:
    _, _, alloc, nbytes, addtime, usetime = _LFT.unpack(peek(d, 0, 32))
    # The C code casts bytes/addtime/usetime to u_int32_t for %u.
    return ("sadb_lifetime{ alloc=%u, bytes=%u\n  addtime=%u, usetime=%u }\n"
            % (alloc, nbytes & _M32, addtime & _M32, usetime & _M32))


def _address(d: bytes) -> str:
    _, _, proto, plen, r0, r1 = _ADDR.unpack(peek(d, 0, 8))
    return ("sadb_address{ proto=%u prefixlen=%u reserved=0x%02x%02x }\n"
            % (proto, plen, r0, r1)) + kdebug_sockaddr(peek(d, 8, 28))


def _key(d: bytes, extlen: int) -> str:
    _, _, bits, reserved = _KEY.unpack(peek(d, 0, 8))
    out = "sadb_key{ bits=%u reserved=%u\n  key=" % (bits, reserved)
    nbytes = bits >> 3
    if nbytes > extlen - 8:
        out += ("kdebug_sadb_key: key length mismatch, bit:%d len:%d.\n"
                % (nbytes, extlen - 8))
    return out + ipsec_hexdump(peek(d, 8, nbytes)) + " }\n"


def _identity(d: bytes, extlen: int) -> str:
    _, exttype, itype, _, ident = _IDENT.unpack(peek(d, 0, 16))
    out = "sadb_ident_%s{" % ("src" if exttype == SADB_EXT.IDENTITY_SRC else "dst")
    out += " type=%d id=%u" % (itype, ident)
    strlen = extlen - 16
    if strlen:
        # userland branch: the string up to its NUL, non-printables in octal.
        chars: list[str] = []
        for b in peek(d, 16, max(strlen, 0)):
            if b == 0:
                break
            chars.append(chr(b) if 0x20 <= b <= 0x7E else "\\%03o" % b)
        out += '\n  str="' + "".join(chars) + '"'
    return out + " }\n"


def _prop(d: bytes, extlen: int) -> str:
    replay = _PROP.unpack(peek(d, 0, 5))[2]
    out = ["sadb_prop{ replay=%u\n" % replay]
    for i in range((extlen - 8) // 72):
        (auth, enc, flags, amin, amax, emin, emax, res, salloc, halloc, sbytes, hbytes,
         sadd, hadd, suse, huse) = _COMB.unpack(peek(d, 8 + 72 * i, 72))
        out.append("sadb_comb{ auth=%u encrypt=%u flags=0x%04x reserved=0x%08x\n"
                   % (auth, enc, flags, res))
        out.append("  auth_minbits=%u auth_maxbits=%u encrypt_minbits=%u encrypt_maxbits=%u\n"
                   % (amin, amax, emin, emax))
        out.append("  soft_alloc=%u hard_alloc=%u soft_bytes=%u hard_bytes=%u\n"
                   % (salloc, halloc, sbytes, hbytes))
        # key_debug.c prints the add/use times under the allocation/byte labels.
        out.append("  soft_alloc=%u hard_alloc=%u soft_bytes=%u hard_bytes=%u }\n"
                   % (sadd, hadd, suse, huse))
    out.append("}\n")
    return "".join(out)


def _supported(d: bytes, extlen: int) -> str:
    out = ["sadb_sup{\n"]
    for i in range((extlen - 8) // 8):
        aid, ivlen, mn, mx, _ = _ALG.unpack(peek(d, 8 + 8 * i, 8))
        out.append("  { id=%d ivlen=%d min=%d max=%d }\n" % (aid, ivlen, mn, mx))
    out.append("}\n")
    return "".join(out)


def kdebug_sadb_x_policy(d: bytes) -> str:
    """``sadb_x_policy{ ... }`` and, for IPSEC policies, one block per request
    (the id is printed in hex; scope IFNET labels the last field ``ifindex``)."""
    elen, _, ptype, pdir, scope, pid, prio = _POL.unpack(peek(d, 0, 16))
    out = ["sadb_x_policy{ type=%u dir=%u id=%x scope=%u %s=%u }\n"
           % (ptype, pdir, pid, scope, "ifindex" if scope == 2 else "priority", prio)]
    if ptype == 2:
        tlen = elen * 8 - 16
        pos = 16
        while tlen > 0:
            rlen, proto, mode, level, reqid = _REQ.unpack(peek(d, pos, 8))
            out.append(" { len=%u proto=%u mode=%u level=%u reqid=%u\n"
                       % (rlen, proto, mode, level, reqid))
            if rlen > 8:
                out.append(kdebug_sockaddr(peek(d, pos + 8, 28)))
                sa_len = peek(d, pos + 8, 1)[0]
                out.append(kdebug_sockaddr(peek(d, pos + 8 + sa_len, 28)))
            out.append(" }\n")
            if rlen == 0:
                out.append("kdebug_sadb_x_policy: wrong policy struct.\n")
                break
            if rlen > tlen:
                out.append("kdebug_sadb_x_policy: invalid ipsec policy length (%u > %u)\n"
                           % (rlen, tlen))
                break
            tlen -= rlen
            pos += rlen
    return "".join(out)


def _sa2(d: bytes) -> str:
    _, _, mode, r1, r2, seq, reqid = _SA2.unpack(peek(d, 0, 16))
    return ("sadb_x_sa2{ mode=%u reqid=%u\n  reserved1=%u reserved2=%u sequence=%u }\n"
            % (mode, reqid, r1, r2, seq))


def _natt(d: bytes, exttype: int) -> str:
    if exttype == SADB_EXT.X_NAT_T_TYPE:
        return "sadb_x_nat_t_type{ type=%u }\n" % _NATT_TYPE.unpack(peek(d, 0, 5))[2]
    port = _NATT_PORT.unpack(peek(d, 0, 6))[2]
    return "sadb_x_nat_t_port{ port=%u }\n" % int.from_bytes(port, "big")


def _if_hw_offl(d: bytes) -> str:
    # The model's own line (FreeBSD's key_debug.c has none); see the docstring.
    _, _, flags, name = _IFHW.unpack(peek(d, 0, 40))
    return "sadb_x_if_hw_offl{ flags=0x%08x if=%s }\n" % (
        flags, name.split(b"\0", 1)[0].decode("latin-1"))


_ADDRESS_TYPES = frozenset({
    SADB_EXT.ADDRESS_SRC, SADB_EXT.ADDRESS_DST, SADB_EXT.ADDRESS_PROXY,
    SADB_EXT.X_NAT_T_OAI, SADB_EXT.X_NAT_T_OAR, SADB_EXT.X_NEW_ADDRESS_SRC,
    SADB_EXT.X_NEW_ADDRESS_DST})
_LIFETIME_TYPES = frozenset({
    SADB_EXT.LIFETIME_CURRENT, SADB_EXT.LIFETIME_HARD, SADB_EXT.LIFETIME_SOFT})
_SILENT_TYPES = frozenset({SADB_EXT.SENSITIVITY, SADB_EXT.SPIRANGE, SADB_EXT.X_KMPRIVATE})
_OFFL_LFT_TYPES = frozenset({SADB_EXT.X_LFT_CUR_SW_OFFL, SADB_EXT.X_LFT_CUR_HW_OFFL})


def kdebug_sadb(msg: MessageLike, *, quirk_kdebug_offl: bool = False) -> str:
    """key_debug.c ``kdebug_sadb``: the sadb_msg header, then per extension a
    ``sadb_ext{ len= type=N(NAME) }`` line and its type's block.

    The walk stops, as FreeBSD's does, at an extension of length 0, at one
    whose length (in units) exceeds the bytes left, and at a type with no case
    (``kdebug_sadb: invalid ext_type N``).  See the module docstring for
    ``quirk_kdebug_offl``.
    """
    data = message_bytes(msg)
    version, mtype, errno_, satype, mlen, reserved, seq, pid = _MSG.unpack(peek(data, 0, 16))
    out = ["sadb_msg{ version=%u type=%u(%s) errno=%u satype=%u\n"
           % (version, mtype, kdebug_sadb_type(mtype), errno_, satype),
           "  len=%u reserved=%u seq=%u pid=%u\n" % (mlen, reserved, seq, pid)]
    tlen = mlen * 8 - 16
    off = 16
    while tlen > 0:
        units, etype = _EXTHDR.unpack(peek(data, off, 4))
        out.append("sadb_ext{ len=%u type=%u(%s) }\n"
                   % (units, etype, kdebug_sadb_exttype(etype,
                                                        quirk_kdebug_offl=quirk_kdebug_offl)))
        if units == 0:
            out.append("kdebug_sadb: invalid ext_len=0 was passed.\n")
            break
        # key_debug.c compares the length in 64-bit units with the bytes left.
        if units > tlen:
            out.append("kdebug_sadb: ext_len too big (%u > %u).\n" % (units, tlen))
            break
        extlen = units * 8
        d = peek(data, off, max(extlen, 64))
        if etype == SADB_EXT.SA:
            out.append(_sa(d))
        elif etype in _LIFETIME_TYPES:
            out.append(_lifetime(d))
        elif etype in _ADDRESS_TYPES:
            out.append(_address(d))
        elif etype in (SADB_EXT.KEY_AUTH, SADB_EXT.KEY_ENCRYPT):
            out.append(_key(peek(data, off, max(extlen, 8 + 8192)), extlen))
        elif etype in (SADB_EXT.IDENTITY_SRC, SADB_EXT.IDENTITY_DST):
            out.append(_identity(d, extlen))
        elif etype in _SILENT_TYPES:
            pass
        elif etype == SADB_EXT.PROPOSAL:
            out.append(_prop(d, extlen))
        elif etype in (SADB_EXT.SUPPORTED_AUTH, SADB_EXT.SUPPORTED_ENCRYPT):
            out.append(_supported(d, extlen))
        elif etype == SADB_EXT.X_POLICY:
            out.append(kdebug_sadb_x_policy(d))
        elif etype == SADB_EXT.X_SA2:
            out.append(_sa2(d))
        elif etype == SADB_EXT.X_SA_REPLAY:
            out.append("sadb_x_sa_replay{ replay=%u }\n" % _U32.unpack(peek(d, 0, 8))[2])
        elif etype in (SADB_EXT.X_NAT_T_TYPE, SADB_EXT.X_NAT_T_SPORT, SADB_EXT.X_NAT_T_DPORT):
            out.append(_natt(d, etype))
        elif etype in _OFFL_LFT_TYPES:
            out.append(_lifetime(d))
            if quirk_kdebug_offl:
                # FreeBSD: no break after the lifetime -> the default case.
                out.append("kdebug_sadb: invalid ext_type %u\n" % etype)
                break
        elif etype == SADB_EXT.X_IF_HW_OFFL and not quirk_kdebug_offl:
            out.append(_if_hw_offl(d))
        else:
            out.append("kdebug_sadb: invalid ext_type %u\n" % etype)
            break
        tlen -= extlen
        off += extlen
    return "".join(out)


# ---------------------------------------------------------------------------
# setkey -x: timestamps and the per-message print of promisc()
# ---------------------------------------------------------------------------

def gmt2local(t: int, tz: tzinfo = timezone.utc) -> int:
    """setkey.c ``gmt2local``: local minus UTC wall time at ``t``, in seconds,
    from the hour and minute fields (seconds of the offset are ignored) with a
    day's correction when the two dates differ."""
    loc = datetime.fromtimestamp(t, tz)
    gmt = datetime.fromtimestamp(t, timezone.utc)
    dt = (loc.hour - gmt.hour) * 3600 + (loc.minute - gmt.minute) * 60
    direction = loc.year - gmt.year
    if direction == 0:
        direction = loc.timetuple().tm_yday - gmt.timetuple().tm_yday
    return dt + direction * 86400


def _c_div(a: int, b: int) -> int:
    """C's integer ``/`` (truncates toward zero)."""
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _c_mod(a: int, b: int) -> int:
    """C's ``%`` (the sign follows the dividend)."""
    return a - b * _c_div(a, b)


def printdate(sec: int, usec: int, *, tflag: int = 1, thiszone: int = 0) -> str:
    """setkey.c ``printdate``: ``-x`` prints ``HH:MM:SS.uuuuuu `` (local time,
    ``thiszone`` = :func:`gmt2local` at start-up), ``-xx`` prints
    ``sec.usec ``; either way the line ends there."""
    if tflag == 1:
        s = _c_mod(sec + thiszone, 86400)
        head = "%02d:%02d:%02d.%06u " % (_c_div(s, 3600), _c_div(_c_mod(s, 3600), 60),
                                          _c_mod(s, 60), usec & _M32)
    elif tflag > 1:
        head = "%u.%06u " % (sec & _M32, usec & _M32)
    else:
        head = ""
    return head + "\n"


def promisc_text(data: bytes, *, sec: int, usec: int, tflag: int = 1, hexdump: bool = False,
                 thiszone: int = 0, quirk_kdebug_offl: bool = False) -> str:
    """What ``setkey -x`` prints for one message read from its promiscuous
    socket: the timestamp line, the ``-h`` hex dump of everything read, then
    ``kdebug_sadb`` of the message -- of the mirrored one after the 16-byte
    X_PROMISC header, or nothing for a bare X_PROMISC header -- and a blank
    line."""
    data = bytes(data)
    out = printdate(sec, usec, tflag=tflag, thiszone=thiszone)
    if hexdump:
        out += setkey_hexdump(data)
    base: bytes | None = data
    if len(data) > 1 and data[1] == SADB.X_PROMISC:
        base = data[16:] if len(data) > 16 else None
    if base is not None:
        out += kdebug_sadb(base, quirk_kdebug_offl=quirk_kdebug_offl) + "\n"
    return out


def sendkeymsg_text(data: MessageLike, *, verbose: bool = False, hexdump: bool = False,
                    quirk_kdebug_offl: bool = False) -> str:
    """What setkey's ``sendkeymsg`` prints before sending a message: with
    ``-v`` its ``kdebug_sadb`` and a blank line, with ``-h`` its hex dump.
    (Each message received is then shown, with ``-v``, as ``kdebug_sadb`` plus
    a blank line, without hex.)"""
    raw = message_bytes(data)
    out = ""
    if verbose:
        out += kdebug_sadb(raw, quirk_kdebug_offl=quirk_kdebug_offl) + "\n"
    if hexdump:
        out += setkey_hexdump(raw)
    return out


__all__ = [
    "MessageLike", "message_bytes", "peek", "inet_ntop4", "inet_ntop6", "is_linklocal6",
    "ipsec_hexdump", "setkey_hexdump", "kdebug_sockaddr", "kdebug_sadb_type",
    "kdebug_sadb_exttype", "kdebug_sadb_x_policy", "kdebug_sadb", "gmt2local", "printdate",
    "promisc_text", "sendkeymsg_text",
]
