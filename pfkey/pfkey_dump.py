"""setkey's dump text: ``setkey -D``, ``-DP`` and the ``-l`` short format.

Models FreeBSD ``lib/libipsec/pfkey_dump.c`` (``pfkey_sadump``,
``pfkey_spdump`` and their ``str_*`` helpers), ``lib/libipsec/ipsec_dump_policy.c``
(``ipsec_dump_policy``), the parts of ``lib/libipsec/pfkey.c`` they run first
(``pfkey_align``, ``pfkey_check``), ``lib/libipsec/ipsec_strerror.c``, and from
``sbin/setkey/setkey.c`` the ``-l`` short format (``shortdump_hdr``,
``shortdump``) and ``postproc``'s error texts (``No SAD entries.`` ...).
Source read: FreeBSD main of 2024-10-29 as vendored by RTEMS libbsd -- the
version that prints the inline-offload lines (``hw offl if:``, ``sw offl use:``,
``hw offl use:``) and knows ``chacha20-poly1305``.

Rules:

* Every function returns exactly the characters FreeBSD's ``printf`` calls
  write, trailing blanks and TABs included (``state=mature `` ends with a
  blank; so does ``scope=global ``).  Bytes that are not ASCII (an interface
  name, say) come back as the latin-1 character of the same value.
* The input is a :class:`~pfkey.message.Message` or the raw bytes a PF_KEY
  socket returned; either way the printers walk the wire bytes as libipsec does
  (``pfkey_align`` then ``pfkey_check``), so a strange message prints what
  FreeBSD prints: the ``ipsec_strerror`` text (``Invalid extension type``),
  ``no SA extension.``, ``(null)`` where ``printf`` got a NULL string, numbers
  for unknown ids.  Where the C code would read past the message the model
  reads zeros, and where it would loop forever or crash (a policy request of
  length 0; a time ``ctime()`` cannot represent) the model picks a documented
  text instead (``Invalid sadb message``; twenty ``?``).
* Nothing depends on the host: protocol names come from FreeBSD's
  ``/etc/protocols`` (embedded), interface names from an ``if_indextoname``
  argument (a mapping or a callable; without one, IPv6 scopes print as numbers
  and ``scope=ifnet`` policies print no ``ifname=``), local time from a ``tz``
  argument that defaults to UTC, and "now" from a ``now`` argument.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Mapping, Optional, Union

from .errors import FREEBSD_ERRNO, EncodeError, freebsd_strerror
from .extensions import SadbXPolicy
from .ipsec_strerror import EIPSEC, ipsec_strerror
from .key_debug import (
    MessageLike, inet_ntop4, inet_ntop6, ipsec_hexdump, is_linklocal6, message_bytes, peek,
)
from .pfkeyv2 import AF_INET, AF_INET6, PF_KEY_V2, SADB, SADB_EXT, SADB_MAX, SADB_SATYPE

IfNameResolver = Union[Mapping[int, str], Callable[[int], Optional[str]]]
"""ifindex -> interface name (``if_indextoname``); None or a missing key: unknown."""

_M32 = (1 << 32) - 1
_M64 = (1 << 64) - 1
_EXTHDR = struct.Struct("<HH")
_MSGHDR = struct.Struct("<BBBBHHII")
_SA = struct.Struct("<HH4sBBBBI")
_SA2 = struct.Struct("<HHBBHII")
_LFT = struct.Struct("<HHIQQQ")
_POL = struct.Struct("<HHHBBII")
_REQ = struct.Struct("<HHBBH")


# ---------------------------------------------------------------------------
# Name tables (pfkey_dump.c, setkey.c, FreeBSD /etc/protocols)
# ---------------------------------------------------------------------------

STR_SATYPE = ("unspec", "unknown", "ah", "esp", "unknown", "rsvp", "ospfv2", "ripv2", "mip",
              "ipcomp", "policy", "tcp")
STR_MODE = ("any", "transport", "tunnel")
STR_STATE = ("larval", "mature", "dying", "dead")
# Only the names pfkey_dump.c has for ids FreeBSD's pfkeyv2.h defines; GMAC
# (11-13), MD5/RIPEMD/keyed hashes, DES/3DES/CAST/Blowfish/Camellia print as numbers.
STR_ALG_AUTH: Mapping[int, str] = {
    0: "none", 3: "hmac-sha1", 251: "null", 252: "tcp-md5", 5: "hmac-sha2-256",
    6: "hmac-sha2-384", 7: "hmac-sha2-512", 9: "aes-xcbc-mac", 14: "chacha20-poly1305"}
STR_ALG_ENC: Mapping[int, str] = {
    0: "none", 11: "null", 12: "aes-cbc", 13: "aes-ctr", 20: "aes-gcm-16",
    15: "chacha20-poly1305"}
STR_ALG_COMP: Mapping[int, str] = {0: "none", 1: "oui", 2: "deflate", 3: "lzs"}
STR_SP_SCOPE: Mapping[int, str] = {1: "global", 2: "ifnet", 4: "pcb"}
IPSP_DIR_STRS = ("any", "in", "out")
IPSP_POLICY_STRS = ("discard", "none", "ipsec", "entrust", "bypass")
_REQ_PROTO: Mapping[int, str] = {50: "esp", 51: "ah", 108: "ipcomp", 6: "tcp"}
_REQ_LEVEL = ("default", "use", "require", "unique")

# FreeBSD lib/libc/net/protocols: number -> official (first) name, which is
# what getprotobynumber() returns.  255 never gets here ("any").
_PROTOCOL_NAMES = dict(enumerate((
    "ip", "icmp", "igmp", "ggp", "ipencap", "st2", "tcp", "cbt", "egp", "igp", "bbn-rcc",
    "nvp", "pup", "argus", "emcon", "xnet", "chaos", "udp", "mux", "dcn", "hmp", "prm",
    "xns-idp", "trunk-1", "trunk-2", "leaf-1", "leaf-2", "rdp", "irtp", "iso-tp4", "netblt",
    "mfe-nsp", "merit-inp", "dccp", "3pc", "idpr", "xtp", "ddp", "idpr-cmtp", "tp++", "il",
    "ipv6", "sdrp", "ipv6-route", "ipv6-frag", "idrp", "rsvp", "gre", "dsr", "bna", "esp",
    "ah", "i-nlsp", "swipe", "narp", "mobile", "tlsp", "skip", "ipv6-icmp", "ipv6-nonxt",
    "ipv6-opts", "", "cftp", "", "sat-expak", "kryptolan", "rvd", "ippc", "", "sat-mon",
    "visa", "ipcv", "cpnx", "cphb", "wsn", "pvp", "br-sat-mon", "sun-nd", "wb-mon",
    "wb-expak", "iso-ip", "vmtp", "secure-vmtp", "vines", "ttp", "nsfnet-igp", "dgp", "tcf",
    "eigrp", "ospf", "sprite-rpc", "larp", "mtp", "ax.25", "ipip", "micp", "scc-sp",
    "etherip", "encap", "", "gmtp", "ifmp", "pnni", "pim", "aris", "scps", "qnx", "a/n",
    "ipcomp", "snp", "compaq-peer", "ipx-in-ip", "carp", "pgm", "", "l2tp", "ddx", "iatp",
    "stp", "srp", "uti", "smp", "sm", "ptp", "isis", "fire", "crtp", "crudp", "sscopmce",
    "iplt", "sps", "pipe", "sctp", "fc", "rsvp-e2e-ignore", "mobility-header", "udplite",
    "mpls-in-ip", "manet", "hip", "shim6", "wesp", "rohc",
)))
_PROTOCOL_NAMES[240] = "pfsync"
PROTOCOLS: Mapping[int, str] = {k: v for k, v in _PROTOCOL_NAMES.items() if v}


def getprotobynumber(proto: int) -> Optional[str]:
    """The protocol's name in FreeBSD's /etc/protocols, or None."""
    return PROTOCOLS.get(proto)


def _getmsgstr(table: tuple[str, ...], num: int) -> str:
    """GETMSGSTR: the table entry and a blank, or the number and a blank."""
    if num < len(table) and table[num]:
        return table[num] + " "
    return "%u " % num


def _getmsgv2s(table: Mapping[int, str], num: int) -> str:
    """GETMSGV2S: the value->string entry and a blank, or the number and a blank."""
    name = table.get(num)
    return name + " " if name else "%u " % num


# ---------------------------------------------------------------------------
# Times: str_time (ctime from offset 4, 20 characters)
# ---------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _year_text(year: int) -> str:
    """strftime ``%Y`` as FreeBSD's tzcode writes it (two ``%02d`` halves)."""
    a = year - 1900
    lead = _c_div(a, 100) + 19
    trail = a - 100 * _c_div(a, 100)
    lead += _c_div(trail, 100)
    trail -= 100 * _c_div(trail, 100)
    if trail < 0 < lead:
        trail += 100
        lead -= 1
    elif lead < 0 < trail:
        trail -= 100
        lead += 1
    head = "-0" if lead == 0 and trail < 0 else "%02d" % lead
    return head + "%02d" % abs(trail)


def _civil(t: int, offset: int) -> Optional[tuple[int, int, int, int, int, int]]:
    """(year, month, mday, hour, min, sec) of ``t`` + ``offset``, proleptic
    Gregorian, for times datetime cannot hold; None where localtime() fails
    (the year does not fit tm_year)."""
    t += offset
    days, secs = divmod(t, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    mday = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    if not -(1 << 31) <= year - 1900 < (1 << 31):
        return None
    return year, month, mday, secs // 3600, secs % 3600 // 60, secs % 60


def str_time(t: int, tz: tzinfo = timezone.utc) -> str:
    """pfkey_dump.c ``str_time``: 20 blanks for 0, else ``ctime()`` from its
    5th character, 20 characters (``Jan  5 12:00:00 2025``).  ``t`` is the u64
    from the message, read as a signed time_t."""
    t &= _M64
    if t >= 1 << 63:
        t -= 1 << 64
    if t == 0:
        return " " * 20
    fields: Optional[tuple[int, int, int, int, int, int]]
    try:
        d = datetime.fromtimestamp(t, tz)
        fields = (d.year, d.month, d.day, d.hour, d.minute, d.second)
    except (OverflowError, ValueError, OSError):
        off = tz.utcoffset(None)
        fields = _civil(t, int(off.total_seconds()) if isinstance(off, timedelta) else 0)
    if fields is None:
        # localtime() fails, ctime() returns NULL and setkey would crash.
        return "?" * 20
    year, month, mday, hour, minute, sec = fields
    ytext = _year_text(year)
    # asctime: "%-4s" for the year, or five blanks and the long year.
    ypart = " %-4s" % ytext if len(ytext) <= 4 else "     " + ytext
    return ("%s%3d %02d:%02d:%02d%s" % (_MONTHS[month - 1], mday, hour, minute, sec, ypart))[:20]


# ---------------------------------------------------------------------------
# pfkey_align + pfkey_check over the wire bytes
# ---------------------------------------------------------------------------

_ALIGN_TYPES = frozenset(range(1, 17)) | frozenset(range(18, 32))
_IF_HW_OFFL = int(SADB_EXT.X_IF_HW_OFFL)
_SATYPE_UNSPEC_REFUSED = frozenset({SADB.GETSPI, SADB.UPDATE, SADB.ADD, SADB.DELETE, SADB.GET,
                                    SADB.ACQUIRE, SADB.EXPIRE})
_SATYPE_SPD_REFUSED = frozenset({SADB.X_SPDADD, SADB.X_SPDDELETE, SADB.X_SPDGET,
                                 SADB.X_SPDDUMP, SADB.X_SPDFLUSH})


class _View:
    """A message as libipsec sees it: header fields, ``mhp[type] -> (offset,
    length)`` (the last IF_HW_OFFL wins, as in C) and every IF_HW_OFFL offset."""

    __slots__ = ("data", "version", "type", "errno", "satype", "units", "reserved", "seq",
                 "pid", "mhp", "hwifs", "error")

    def __init__(self, raw: bytes) -> None:
        (self.version, self.type, self.errno, self.satype, self.units, self.reserved,
         self.seq, self.pid) = _MSGHDR.unpack(peek(raw, 0, 16))
        # pfkey_align trusts sadb_msg_len; what is not there reads as zeros.
        self.data = peek(raw, 0, max(self.units * 8, 16))
        self.mhp: dict[int, tuple[int, int]] = {}
        self.hwifs: list[int] = []
        self.error = self._align()
        if self.error == EIPSEC.NO_ERROR:
            self.error = self._check()

    def _align(self) -> int:
        data, ep, p = self.data, self.units * 8, 16
        while p < ep:
            units, etype = _EXTHDR.unpack(peek(data, p, 4))
            elen = units * 8
            if ep < p + 4 or elen < 4 or ep < p + elen:
                break
            # mhp[0] holds the message itself, so type 0 counts as a duplicate.
            if (etype == 0 or etype in self.mhp) and etype != _IF_HW_OFFL:
                return EIPSEC.INVAL_EXTTYPE
            if etype not in _ALIGN_TYPES:
                return EIPSEC.INVAL_EXTTYPE
            self.mhp[etype] = (p, elen)
            if etype == _IF_HW_OFFL:
                self.hwifs.append(p)
            p += elen
        return EIPSEC.INVAL_SADBMSG if p != ep else EIPSEC.NO_ERROR

    def _check(self) -> int:
        if self.version != PF_KEY_V2:
            return EIPSEC.INVAL_VERSION
        if self.type > SADB_MAX:
            return EIPSEC.INVAL_MSGTYPE
        st, mt = self.satype, self.type
        if st == SADB_SATYPE.UNSPEC:
            if mt in _SATYPE_UNSPEC_REFUSED:
                return EIPSEC.INVAL_SATYPE
        elif st in (SADB_SATYPE.ESP, SADB_SATYPE.AH, SADB_SATYPE.X_IPCOMP,
                    SADB_SATYPE.X_TCPSIGNATURE):
            if mt in _SATYPE_SPD_REFUSED:
                return EIPSEC.INVAL_SATYPE
        elif st in (SADB_SATYPE.RSVP, SADB_SATYPE.OSPFV2, SADB_SATYPE.RIPV2, SADB_SATYPE.MIP):
            return EIPSEC.NOT_SUPPORTED
        elif not (st == 1 and mt == SADB.X_PROMISC):
            return EIPSEC.INVAL_SATYPE
        src = self.mhp.get(SADB_EXT.ADDRESS_SRC)
        dst = self.mhp.get(SADB_EXT.ADDRESS_DST)
        if src is not None and dst is not None:
            s, d = peek(self.data, src[0], 10), peek(self.data, dst[0], 10)
            if s[4] != d[4]:
                return EIPSEC.PROTO_MISMATCH
            if s[9] != d[9]:
                return EIPSEC.FAMILY_MISMATCH
            if s[9] not in (AF_INET, AF_INET6):
                return EIPSEC.INVAL_FAMILY
        return EIPSEC.NO_ERROR

    def get(self, exttype: int) -> Optional[int]:
        """Offset of the extension, or None."""
        e = self.mhp.get(exttype)
        return None if e is None else e[0]

    def lifetime(self, exttype: int) -> Optional[tuple[int, int, int, int]]:
        """(allocations, bytes, addtime, usetime) or None."""
        off = self.get(exttype)
        if off is None:
            return None
        _, _, alloc, nbytes, addtime, usetime = _LFT.unpack(peek(self.data, off, 32))
        return alloc, nbytes, addtime, usetime


# ---------------------------------------------------------------------------
# getnameinfo(NI_NUMERICHOST / NI_NUMERICSERV) over a sockaddr's bytes
# ---------------------------------------------------------------------------

def _ifname(resolver: Optional[IfNameResolver], index: int) -> Optional[str]:
    if resolver is None:
        return None
    if callable(resolver):
        return resolver(index)
    return resolver.get(index)


def _sockaddr_ok(raw: bytes) -> bool:
    """getnameinfo's length checks: at least the family's size, at most a
    sockaddr_storage (128); only INET and INET6 are printable here."""
    sa_len, family = raw[0], raw[1]
    need = 16 if family == AF_INET else 28 if family == AF_INET6 else 0
    return bool(need) and need <= sa_len <= 128


def getnameinfo_host(raw: bytes, if_indextoname: Optional[IfNameResolver] = None) -> Optional[str]:
    """Numeric host of the sockaddr at the start of ``raw``, or None where
    getnameinfo fails.  A nonzero IPv6 scope id is appended after ``%``: the
    interface name for link-local and link/node-local multicast addresses when
    it resolves, the number otherwise."""
    raw = peek(raw, 0, 28)
    if not _sockaddr_ok(raw):
        return None
    if raw[1] == AF_INET:
        return inet_ntop4(raw[4:8])
    a6 = raw[8:24]
    host = inet_ntop6(a6)
    scope = int.from_bytes(raw[24:28], "little")
    if scope:
        zone = None
        if is_linklocal6(a6) or (a6[0] == 0xFF and (a6[1] & 0x0F) in (1, 2)):
            zone = _ifname(if_indextoname, scope)
        host += "%" + (zone if zone else "%u" % scope)
    return host


def getnameinfo_port(raw: bytes) -> Optional[int]:
    """Numeric service (the port) of the sockaddr, or None where getnameinfo fails."""
    raw = peek(raw, 0, 28)
    if not _sockaddr_ok(raw):
        return None
    return int.from_bytes(raw[2:4], "big")


def _str_ipaddr(v: _View, off: int, resolver: Optional[IfNameResolver]) -> str:
    host = getnameinfo_host(peek(v.data, off, 28), resolver)
    return "(null)" if host is None else host


def _str_prefport(family: int, pref: int, port: int, ulp: int) -> str:
    if family == AF_INET:
        plen = 32
    elif family == AF_INET6:
        plen = 128
    else:
        return "?"
    prefbuf = "" if pref == plen else "/%u" % pref
    if ulp == 58:
        return prefbuf
    return prefbuf + ("[any]" if port == 0 else "[%u]" % port)


def _str_upperspec(ulp: int, p1: int, p2: int) -> str:
    if ulp == 255:
        return "any"
    if ulp == 58:
        return "icmp6" if p1 == 0 and p2 == 0 else "icmp6 %u,%u" % (p1, p2)
    if ulp == 4:
        return "ip4"
    name = getprotobynumber(ulp)
    return name if name else "%u" % ulp


def _str_lifetime_byte(lft: Optional[tuple[int, int, int, int]], label: str) -> str:
    # The byte count goes through a double and "%.0f".
    return "\t%s: %.0f(bytes)" % (label, float(lft[1]) if lft is not None else 0.0)


# ---------------------------------------------------------------------------
# ipsec_dump_policy
# ---------------------------------------------------------------------------

def _dump_request(data: bytes, pos: int, bound: int,
                  resolver: Optional[IfNameResolver]) -> tuple[Optional[str], int]:
    rlen, proto, mode, level, reqid = _REQ.unpack(peek(data, pos, 8))
    if rlen > bound:
        return None, EIPSEC.INVAL_PROTO
    pname = _REQ_PROTO.get(proto)
    if pname is None:
        return None, EIPSEC.INVAL_PROTO
    if mode >= len(STR_MODE):
        return None, EIPSEC.INVAL_MODE
    abuf = ""
    if rlen > 8:
        sa1 = peek(data, pos + 8, 28)
        sa2 = peek(data, pos + 8 + sa1[0], 28)
        if 8 + sa1[0] + sa2[0] != rlen:
            return None, EIPSEC.INVAL_ADDRESS
        h1, h2 = getnameinfo_host(sa1, resolver), getnameinfo_host(sa2, resolver)
        if h1 is None or h2 is None:
            return None, EIPSEC.INVAL_ADDRESS
        abuf = "%s-%s" % (h1, h2)
    if level >= len(_REQ_LEVEL):
        return None, EIPSEC.INVAL_LEVEL
    text = "%s/%s/%s/%s" % (pname, STR_MODE[mode], abuf, _REQ_LEVEL[level])
    if reqid:
        # Manual reqids (unique:N, N <= IPSEC_MANUAL_REQID_MAX) print ':',
        # the kernel's automatic ones '#'.
        text += "%s%u" % ("#" if reqid > 0x3FFF else ":", reqid)
    return text, EIPSEC.NO_ERROR


def _dump_policy(data: bytes, base: int, delimiter: Optional[str],
                 resolver: Optional[IfNameResolver]) -> tuple[Optional[str], int]:
    units, exttype, ptype, pdir, _scope, _id, _prio = _POL.unpack(peek(data, base, 16))
    if exttype != SADB_EXT.X_POLICY:
        return None, EIPSEC.INVAL_EXTTYPE
    if delimiter is None:
        delimiter = " "
    if pdir >= len(IPSP_DIR_STRS):
        return None, EIPSEC.INVAL_DIR
    if ptype >= len(IPSP_POLICY_STRS):
        return None, EIPSEC.INVAL_POLICY
    text = "%s %s" % (IPSP_DIR_STRS[pdir], IPSP_POLICY_STRS[ptype])
    if ptype != 2:
        return text, EIPSEC.NO_ERROR
    extlen = units * 8
    off = 16
    while off < extlen:
        rlen = _REQ.unpack(peek(data, base + off, 8))[0]
        if rlen == 0:
            # libipsec would spin forever on a zero-length request.
            return None, EIPSEC.INVAL_SADBMSG
        off += rlen
    if off != extlen:
        return None, EIPSEC.INVAL_SADBMSG
    parts = [text]
    off = 16
    while off < extlen:
        req, err = _dump_request(data, base + off, extlen - off, resolver)
        if req is None:
            return None, err
        parts.append(req)
        off += _REQ.unpack(peek(data, base + off, 8))[0]
    return delimiter.join(parts), EIPSEC.NO_ERROR


def ipsec_dump_policy(policy: Union[SadbXPolicy, bytes, bytearray, memoryview],
                      delimiter: Optional[str] = None, *,
                      if_indextoname: Optional[IfNameResolver] = None) -> Optional[str]:
    """ipsec_dump_policy(3): ``"<dir> <action>"`` then, for IPSEC policies,
    each request ``proto/mode/src-dst/level`` after ``delimiter`` (a blank when
    None).  Returns None where libipsec returns NULL; :func:`ipsec_dump_policy_error`
    gives the error code as well."""
    return ipsec_dump_policy_error(policy, delimiter, if_indextoname=if_indextoname)[0]


def ipsec_dump_policy_error(policy: Union[SadbXPolicy, bytes, bytearray, memoryview],
                            delimiter: Optional[str] = None, *,
                            if_indextoname: Optional[IfNameResolver] = None,
                            ) -> tuple[Optional[str], int]:
    """:func:`ipsec_dump_policy` and the EIPSEC code it leaves behind."""
    if isinstance(policy, SadbXPolicy):
        try:
            raw = policy.pack()
        except (EncodeError, struct.error, ValueError, OverflowError):
            # A value no sadb_x_policy can hold: nothing libipsec could see.
            return None, EIPSEC.INVAL_SADBMSG
    else:
        raw = bytes(policy)
    units = _EXTHDR.unpack(peek(raw, 0, 4))[0]
    return _dump_policy(peek(raw, 0, max(units * 8, 16)), 0, delimiter, if_indextoname)


# ---------------------------------------------------------------------------
# pfkey_sadump / pfkey_spdump
# ---------------------------------------------------------------------------

def pfkey_sadump(msg: MessageLike, *, now: int, tz: tzinfo = timezone.utc,
                 if_indextoname: Optional[IfNameResolver] = None) -> str:
    """One SA as ``setkey -D`` prints it (pfkey_dump.c ``pfkey_sadump``).

    ``now`` is setkey's ``time(0)`` (the ``current:`` date and ``diff:``),
    ``tz`` its local time zone.  Lines in FreeBSD's order: ``src[port] dst[port]``,
    the type/mode/spi/reqid line, ``NAT: OAI= OAR=``, ``C:`` (no newline),
    ``E:``/``A:`` with the key in hex, ``seq= replay= flags= state=``,
    ``hw offl if:``, the five lifetime lines, ``sadb_seq= pid= refcnt=``, then
    ``sw offl use:`` and ``hw offl use:``.
    """
    v = _View(message_bytes(msg))
    if v.error:
        return ipsec_strerror(v.error) + "\n"
    d = v.data
    out: list[str] = []
    w = out.append
    src, dst = v.get(SADB_EXT.ADDRESS_SRC), v.get(SADB_EXT.ADDRESS_DST)
    natt_type = v.get(SADB_EXT.X_NAT_T_TYPE)
    sport, dport = v.get(SADB_EXT.X_NAT_T_SPORT), v.get(SADB_EXT.X_NAT_T_DPORT)
    if src is None:
        return "no ADDRESS_SRC extension.\n"
    w(_str_ipaddr(v, src + 8, if_indextoname))
    if natt_type is not None and sport is not None:
        w("[%u]" % int.from_bytes(peek(d, sport + 4, 2), "big"))
    if dst is None:
        w("\nno ADDRESS_DST extension.\n")
        return "".join(out)
    w(" " + _str_ipaddr(v, dst + 8, if_indextoname))
    if natt_type is not None and dport is not None:
        w("[%u]" % int.from_bytes(peek(d, dport + 4, 2), "big"))
    sa, sa2 = v.get(SADB_EXT.SA), v.get(SADB_EXT.X_SA2)
    if sa is None:
        w("\nno SA extension.\n")
        return "".join(out)
    if sa2 is None:
        w("\nno SA2 extension.\n")
        return "".join(out)
    _, _, spi_raw, sa_replay, state, aalg, ealg, flags = _SA.unpack(peek(d, sa, 16))
    _, _, mode, _, _, sequence, reqid = _SA2.unpack(peek(d, sa2, 16))
    spi = int.from_bytes(spi_raw, "big")
    w("\n\t")
    if v.satype == SADB_SATYPE.ESP and natt_type is not None:
        w("esp-udp ")
    else:
        w(_getmsgstr(STR_SATYPE, v.satype))
    w("mode=" + _getmsgstr(STR_MODE, mode))
    w("spi=%u(0x%08x) reqid=%u(0x%08x)\n" % (spi, spi, reqid, reqid))

    oai, oar = v.get(SADB_EXT.X_NAT_T_OAI), v.get(SADB_EXT.X_NAT_T_OAR)
    if natt_type is not None and (oai is not None or oar is not None):
        w("\tNAT:")
        if oai is not None:
            w(" OAI=" + _str_ipaddr(v, oai + 8, if_indextoname))
        if oar is not None:
            w(" OAR=" + _str_ipaddr(v, oar + 8, if_indextoname))
        w("\n")

    enc, auth = v.get(SADB_EXT.KEY_ENCRYPT), v.get(SADB_EXT.KEY_AUTH)
    if v.satype == SADB_SATYPE.X_IPCOMP:
        # No newline: the seq= text continues this line.
        w("\tC: " + _getmsgv2s(STR_ALG_COMP, ealg))
    elif v.satype == SADB_SATYPE.ESP and enc is not None:
        bits = int.from_bytes(peek(d, enc + 4, 2), "little")
        w("\tE: " + _getmsgv2s(STR_ALG_ENC, ealg)
          + ipsec_hexdump(peek(d, enc + 8, bits // 8)) + "\n")
    if auth is not None:
        bits = int.from_bytes(peek(d, auth + 4, 2), "little")
        w("\tA: " + _getmsgv2s(STR_ALG_AUTH, aalg)
          + ipsec_hexdump(peek(d, auth + 8, bits // 8)) + "\n")

    replay_ext = v.get(SADB_EXT.X_SA_REPLAY)
    replay = (int.from_bytes(peek(d, replay_ext + 4, 4), "little") >> 3
              if replay_ext is not None else sa_replay)
    w("\tseq=0x%08x replay=%u flags=0x%08x " % (sequence, replay, flags))
    w("state=" + _getmsgstr(STR_STATE, state) + "\n")

    if v.hwifs:
        names = []
        for off in v.hwifs:
            # printf("%s") of the 32-byte field: up to the first NUL, wherever it is.
            end = d.find(b"\0", off + 8)
            names.append(d[off + 8:end if end >= 0 else len(d)].decode("latin-1"))
        w("\thw offl if: " + ",".join(names) + "\n")

    lftc = v.lifetime(SADB_EXT.LIFETIME_CURRENT)
    lfth = v.lifetime(SADB_EXT.LIFETIME_HARD)
    lfts = v.lifetime(SADB_EXT.LIFETIME_SOFT)
    if lftc is not None:
        h = lfth if lfth is not None else (0, 0, 0, 0)
        s = lfts if lfts is not None else (0, 0, 0, 0)
        created = lftc[2]
        diff = 0 if created == 0 else (now - created) & _M64
        w("\tcreated: %s\tcurrent: %s\n" % (str_time(created, tz), str_time(now, tz)))
        w("\tdiff: %u(s)\thard: %u(s)\tsoft: %u(s)\n" % (diff, h[2], s[2]))
        w("\tlast: %s\thard: %u(s)\tsoft: %u(s)\n" % (str_time(lftc[3], tz), h[3], s[3]))
        w(_str_lifetime_byte(lftc, "current") + _str_lifetime_byte(lfth, "hard")
          + _str_lifetime_byte(lfts, "soft") + "\n")
        w("\tallocated: %u\thard: %u\tsoft: %u\n" % (lftc[0], h[0], s[0]))

    w("\tsadb_seq=%u pid=%u refcnt=%u\n" % (v.seq, v.pid, v.reserved))

    for exttype, label in ((SADB_EXT.X_LFT_CUR_SW_OFFL, "sw offl"),
                           (SADB_EXT.X_LFT_CUR_HW_OFFL, "hw offl")):
        lft = v.lifetime(exttype)
        if lft is not None:
            w("\t%s use: %s\t%s allocated: %u%s\n"
              % (label, str_time(lft[3], tz), label, lft[0], _str_lifetime_byte(lft, label)))
    return "".join(out)


def pfkey_spdump(msg: MessageLike, *, tz: tzinfo = timezone.utc,
                 if_indextoname: Optional[IfNameResolver] = None) -> str:
    """One policy as ``setkey -DP`` prints it (pfkey_dump.c ``pfkey_spdump``):
    the selector line, ``<dir> <action>`` and the requests (one per line), the
    lifetime lines when the kernel sent them, ``spid= seq= pid= scope=`` with
    ``ifname=`` for ifnet scope, and ``refcnt=``."""
    v = _View(message_bytes(msg))
    if v.error:
        return ipsec_strerror(v.error) + "\n"
    d = v.data
    out: list[str] = []
    w = out.append
    src, dst = v.get(SADB_EXT.ADDRESS_SRC), v.get(SADB_EXT.ADDRESS_DST)
    pol = v.get(SADB_EXT.X_POLICY)
    if src is not None and dst is not None:
        sproto = d[src + 4]
        ports = []
        for a in (src, dst):
            sa_raw = peek(d, a + 8, 28)
            if sa_raw[1] in (AF_INET, AF_INET6):
                port = getnameinfo_port(sa_raw) or 0
                w("%s%s " % (_str_ipaddr(v, a + 8, if_indextoname),
                             _str_prefport(sa_raw[1], d[a + 5], port, sproto)))
            else:
                port = 0
                w("unknown-af ")
            ports.append(port)
        if sproto != d[dst + 4]:
            w("upper layer protocol mismatched.\n")
            return "".join(out)
        w(_str_upperspec(sproto, ports[0], ports[1]))
    else:
        w("(no selector, probably per-socket policy) ")
    if pol is None:
        w("no X_POLICY extension.\n")
        return "".join(out)
    text, _err = _dump_policy(d, pol, "\n\t", if_indextoname)
    w("\n\t%s\n" % ("(null)" if text is None else text))

    lftc = v.lifetime(SADB_EXT.LIFETIME_CURRENT)
    lfth = v.lifetime(SADB_EXT.LIFETIME_HARD)
    if lftc is not None:
        w("\tcreated: %s  lastused: %s\n" % (str_time(lftc[2], tz), str_time(lftc[3], tz)))
    if lfth is not None:
        w("\tlifetime: %u(s) validtime: %u(s)\n" % (lfth[2], lfth[3]))
    _, _, _, _, scope, spid, prio = _POL.unpack(peek(d, pol, 16))
    w("\tspid=%u seq=%u pid=%u scope=" % (spid, v.seq, v.pid))
    w(_getmsgv2s(STR_SP_SCOPE, scope))
    if scope == 2:
        name = _ifname(if_indextoname, prio)
        if name is not None:
            w("ifname=%s" % name)
    w("\n\trefcnt=%u\n" % v.reserved)
    return "".join(out)


# ---------------------------------------------------------------------------
# setkey.c: -l short format and postproc's messages
# ---------------------------------------------------------------------------

NO_SAD_ENTRIES = "No SAD entries.\n"
NO_SPD_ENTRIES = "No SPD entries.\n"

_SHORT_SATYPE = {2: "ah", 3: "esp"}
_SHORT_STATE = ("L", "M", "D", "d")
_SHORT_PROTO: Mapping[int, str] = {
    0: "ip", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ip4", 6: "tcp", 8: "egp", 17: "udp",
    22: "idp", 29: "tp", 41: "ip6", 43: "rt6", 44: "frag6", 46: "rsvp", 47: "gre", 50: "esp",
    51: "ah", 58: "icmp6", 59: "none", 60: "dst6"}


def shortdump_hdr() -> str:
    """The header ``setkey -l`` prints once."""
    return "%-4s %-3s %-1s %-8s %-7s %s -> %s\n" % ("time", "p", "s", "spi", "ltime", "src",
                                                   "dst")


def _short_addr(v: _View, exttype: int, resolver: Optional[IfNameResolver]) -> str:
    off = v.get(exttype)
    if off is None:
        return "?"
    proto = v.data[off + 4]
    head = "%s " % _SHORT_PROTO.get(proto, "#%d" % proto) if proto else ""
    raw = peek(v.data, off + 8, 28)
    host = getnameinfo_host(raw, resolver)
    port = getnameinfo_port(raw)
    if host is None:
        # getnameinfo failed: setkey prints whatever its buffers held.
        return head + "?"
    return head + (host if not port else "%s[%u]" % (host, port))


def shortdump(msg: MessageLike, *, now: int,
              if_indextoname: Optional[IfNameResolver] = None) -> str:
    """One SA as ``setkey -l`` prints it: ``MMSS`` of ``now``, type, state
    letter, SPI, age/hard lifetime (``big`` from 1000 s), ``src -> dst`` with
    the address's protocol (``#255`` for any) and ``[port]`` when nonzero.
    Errors of pfkey_align/pfkey_check are ignored, as setkey ignores them
    (the extensions found before the error are used)."""
    v = _View(message_bytes(msg))
    d = v.data
    out = ["%02u%02u" % ((now % 3600) // 60, now % 60)]
    out.append(" %-3s" % _SHORT_SATYPE.get(v.satype, "#%d" % v.satype))
    sa = v.get(SADB_EXT.SA)
    if sa is not None:
        _, _, spi_raw, _, state, _, _, _ = _SA.unpack(peek(d, sa, 16))
        out.append(" %-1s" % (_SHORT_STATE[state] if state < 4 else "#%d" % state))
        out.append(" %08x" % int.from_bytes(spi_raw, "big"))
    else:
        out.append("%-1s %-8s" % ("?", "?"))
    lts = v.lifetime(SADB_EXT.LIFETIME_SOFT)
    lth = v.lifetime(SADB_EXT.LIFETIME_HARD)
    ltc = v.lifetime(SADB_EXT.LIFETIME_CURRENT)
    if lts is not None and lth is not None and ltc is not None:
        t = 0 if ltc[2] == 0 else (now - ltc[2]) & _M32
        out.append(" big/" if t >= 1000 else " %3u/" % t)
        t = lth[2] & _M32
        out.append("big" if t >= 1000 else "%-3u" % t)
    else:
        out.append(" ???/???")
    out.append(" ")
    out.append(_short_addr(v, SADB_EXT.ADDRESS_SRC, if_indextoname))
    out.append(" -> ")
    out.append(_short_addr(v, SADB_EXT.ADDRESS_DST, if_indextoname))
    out.append("\n")
    return "".join(out)


_ENOENT = FREEBSD_ERRNO["ENOENT"]
_ENOENT_TEXT: Mapping[int, str] = {
    SADB.DELETE: "No entry", SADB.GET: "No entry", SADB.X_SPDDELETE: "No entry",
    SADB.DUMP: "No SAD entries", SADB.X_SPDDUMP: "No SPD entries"}


def postproc_errmsg(msg_type: int, wire_errno: int, *, lineno: Optional[int] = None) -> str:
    """setkey.c ``postproc`` for a reply with ``sadb_msg_errno`` set:
    ``[The result of line N: ]<text>.``; ENOENT has per-type texts (and none
    -- ``(null)`` -- for other types), anything else is FreeBSD's strerror."""
    prefix = "The result of line %d: " % lineno if lineno is not None else ""
    if wire_errno == _ENOENT:
        text = _ENOENT_TEXT.get(msg_type, "(null)")
    else:
        text = freebsd_strerror(wire_errno)
    return "%s%s.\n" % (prefix, text)


__all__ = [
    "IfNameResolver", "STR_SATYPE", "STR_MODE", "STR_STATE",
    "STR_ALG_AUTH", "STR_ALG_ENC", "STR_ALG_COMP", "STR_SP_SCOPE", "IPSP_DIR_STRS",
    "IPSP_POLICY_STRS", "PROTOCOLS", "getprotobynumber", "str_time", "getnameinfo_host",
    "getnameinfo_port", "ipsec_dump_policy", "ipsec_dump_policy_error", "pfkey_sadump",
    "pfkey_spdump", "NO_SAD_ENTRIES", "NO_SPD_ENTRIES", "shortdump_hdr", "shortdump",
    "postproc_errmsg",
]
