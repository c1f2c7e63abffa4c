"""libipsec's policy text parser: ``ipsec_set_policy(3)`` for setkey's ``-P``.

Models FreeBSD's ``lib/libipsec/policy_token.l`` (flex lexer),
``lib/libipsec/policy_parse.y`` (byacc grammar and its actions),
``lib/libipsec/ipsec_strerror.[ch]`` (error codes and texts) and the parts
of libc the actions call (``getaddrinfo`` with ``AI_NUMERICHOST``,
``inet_aton``, ``gai_strerror``, ``atol``).  Reference:
pfkey_setkey_reference.md §D.2.  Policy *dump* text is not here
(``ipsec_dump_policy`` belongs to the dump module).

Grammar (what FreeBSD accepts)::

    in|out                                       type 0 (discard), no requests
    in|out discard|none|ipsec|entrust|bypass [request ...]
    request:  proto/mode/src-dst/level | proto/mode/src-dst/ | proto/mode/src-dst
            | proto/mode/ | proto/mode//level | proto/mode
    proto: esp ah ipcomp tcp     mode: transport tunnel
    src-dst: two numeric addresses | me-any (out only) | any-me (in only)
    level: default use require unique unique:N

Rules kept from FreeBSD
-----------------------
* Lexing is flex's: longest match, the earlier rule on a tie, so ``in`` is a
  keyword but ``inbound`` an address token, ``unique:12`` a level but
  ``unique:1x`` an address token.  Blanks, tabs and newlines separate
  tokens; any other character no rule matches is ECHOed to stdout and
  skipped (pass ``echo`` to see them).  The C string ends at a NUL.
* The parser is byacc's LALR(1) automaton: a rule's action runs as soon as
  the rule is complete, before the next token is read when the state has a
  single reduction (``proto/mode/a-b/level``, addresses, ``me-any``), after
  it when the rule could still grow (``proto/mode``, ``proto/mode/a-b/``).
  That decides which error wins, e.g. ``esp/tunnel//require`` fails with
  "Invalid address specification", ``esp/transport//`` with a syntax error.
* Errors: byacc's "syntax error" leaves ``__ipsec_errcode`` untouched and
  ipsec_set_policy turns "no error" into EIPSEC_INVAL_ARGUMENT ("Invalid
  argument"); ``proto`` or ``proto/`` alone is EIPSEC_FEW_ARGUMENTS; tunnel
  mode without addresses EIPSEC_INVAL_ADDRESS and different families
  EIPSEC_FAMILY_MISMATCH (both only for ``ipsec`` policies); ``me-any`` in
  an inbound or ``any-me`` in an outbound policy EIPSEC_INVAL_DIR ("Invalid
  direciton", FreeBSD's spelling); an address getaddrinfo refuses gives
  EIPSEC_SYSTEM_ERROR with gai_strerror's text ("hostname nor servname
  provided, or not known").  Syntax and address errors also make libipsec
  print ``libipsec: <msg> while parsing "<yytext>"`` to stderr; it is kept in
  ``PolicyError.diagnostic``.
* No request limit: libipsec appends any number of requests; the kernel
  (key_msg2sp) refuses more than IPSEC_MAXREQ (4) with EINVAL.  Requests
  after ``discard``/``none``/``entrust``/``bypass`` are accepted and sent
  (the kernel ignores them), without the tunnel/family checks.
* There is no priority syntax: ipsec-tools' ``prio N``, ``priority N`` and
  ``prio def + N`` are syntax errors.  priority, scope and id are 0.
* The buffer is built as libipsec builds it: a 16-byte ``sadb_x_policy``
  (len = total/8, rounded *down*), each request's ``len`` the exact sum
  8 + sa_len(src) + sa_len(dst) (40 for IPv4, 64 for IPv6, 8 without
  addresses), sockaddrs from getaddrinfo (port 0, flowinfo 0, scope id from
  ``%scope``), ``reqid`` from ``unique:N`` as atol() stored in 16 bits.
  setkey sends ``ipsec_get_policylen()`` bytes, i.e. PFKEY_EXTLEN; with mixed
  families (possible only for non-ipsec policies) the sum is not a multiple
  of 8 and the tail is cut off, which the returned value reproduces (the cut
  request ends up in ``SadbXPolicy.trailer``).

Assumption: libipsec's ``__ipsec_errcode`` is "no error" when
ipsec_set_policy is called (true in setkey, which stops at the first
failure), so a syntax error always reports "Invalid argument".
"""

from __future__ import annotations

import enum
import re
import socket
import struct
from typing import Callable, Iterator, NamedTuple, Optional, Union

from .extensions import SadbXPolicy, Sockaddr
from .ipsec import (
    IPPROTO_AH, IPPROTO_ESP, IPPROTO_IPCOMP, IPPROTO_TCP, IPSEC_DIR, IPSEC_LEVEL,
    IPSEC_MODE, IPSEC_POLICY,
)
from .ipsec_strerror import EIPSEC, ipsec_strerror
from .pfkeyv2 import SADB_EXT

__all__ = [
    "PolicyError", "ipsec_set_policy",
    "ipsec_set_policy_buf", "ipsec_get_policylen", "GAI_ERRMSG", "getaddrinfo_numeric",
    "inet_aton",
]


# FreeBSD lib/libc/net/gai_strerror.c, by EAI_* code.
GAI_ERRMSG: tuple[str, ...] = (
    "Success",
    "Address family for hostname not supported",
    "Temporary failure in name resolution",
    "Invalid value for ai_flags",
    "Non-recoverable failure in name resolution",
    "ai_family not supported",
    "Memory allocation failure",
    "No address associated with hostname",
    "hostname nor servname provided, or not known",
    "servname not supported for ai_socktype",
    "ai_socktype not supported",
    "System error returned in errno",
    "Invalid value for hints",
    "Resolved protocol is unknown",
    "Argument buffer overflow",
)
_EAI_NONAME = 8


class PolicyError(ValueError):
    """ipsec_set_policy() returned NULL.

    ``code`` is ``__ipsec_errcode`` (an :class:`EIPSEC`), ``text`` what
    ``ipsec_strerror()`` then returns (setkey prints ``line N: <text> at
    [<token>]``), ``token`` libipsec's own yytext when the error was found,
    ``diagnostic`` the line libipsec itself wrote to stderr (or None).
    """

    def __init__(self, code: int, text: Optional[str] = None, token: Optional[str] = None,
                 diagnostic: Optional[str] = None) -> None:
        self.code = EIPSEC(code)
        self.text = ipsec_strerror(code) if text is None else text
        self.token = token
        self.diagnostic = diagnostic
        super().__init__(self.text)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (int(self.code), self.text, self.token, self.diagnostic))


# ---------------------------------------------------------------------------
# Lexer (policy_token.l)
# ---------------------------------------------------------------------------

class _T(enum.Enum):
    DIR = "DIR"
    ACTION = "ACTION"
    PROTOCOL = "PROTOCOL"
    MODE = "MODE"
    LEVEL = "LEVEL"
    LEVEL_SPECIFY = "LEVEL_SPECIFY"
    IPADDRESS = "IPADDRESS"
    ME = "ME"
    ANY = "ANY"
    SLASH = "SLASH"
    HYPHEN = "HYPHEN"
    END = "$end"


class _Tok(NamedTuple):
    kind: _T
    value: int
    text: str


_KEYWORDS: dict[str, tuple[_T, int]] = {
    "in": (_T.DIR, IPSEC_DIR.INBOUND),
    "out": (_T.DIR, IPSEC_DIR.OUTBOUND),
    "discard": (_T.ACTION, IPSEC_POLICY.DISCARD),
    "none": (_T.ACTION, IPSEC_POLICY.NONE),
    "ipsec": (_T.ACTION, IPSEC_POLICY.IPSEC),
    "bypass": (_T.ACTION, IPSEC_POLICY.BYPASS),
    "entrust": (_T.ACTION, IPSEC_POLICY.ENTRUST),
    "esp": (_T.PROTOCOL, IPPROTO_ESP),
    "ah": (_T.PROTOCOL, IPPROTO_AH),
    "ipcomp": (_T.PROTOCOL, IPPROTO_IPCOMP),
    "tcp": (_T.PROTOCOL, IPPROTO_TCP),
    "transport": (_T.MODE, IPSEC_MODE.TRANSPORT),
    "tunnel": (_T.MODE, IPSEC_MODE.TUNNEL),
    "me": (_T.ME, 0),
    "any": (_T.ANY, 0),
    "default": (_T.LEVEL, IPSEC_LEVEL.DEFAULT),
    "use": (_T.LEVEL, IPSEC_LEVEL.USE),
    "require": (_T.LEVEL, IPSEC_LEVEL.REQUIRE),
    "unique": (_T.LEVEL, IPSEC_LEVEL.UNIQUE),
}

# {ipaddress}: every keyword is made of these characters too, so the longest
# match at a position is always this one and a keyword wins only when it is
# the whole match (flex: equal length -> the earlier rule).
_WORD = re.compile(r"[A-Za-z0-9:._]+(?:%[A-Za-z0-9]+)?")
_LEVEL_SPECIFY = re.compile(r"unique:[0-9]+")
_BLANKS = re.compile(r"[ \t]+")


def _lex(text: str, echo: Optional[Callable[[str], None]]) -> Iterator[_Tok]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == " " or c == "\t":
            m = _BLANKS.match(text, i)
            assert m is not None
            i = m.end()
            continue
        if c == "\n":
            i += 1
            continue
        if c == "/":
            i += 1
            yield _Tok(_T.SLASH, 0, c)
            continue
        if c == "-":
            i += 1
            yield _Tok(_T.HYPHEN, 0, c)
            continue
        m = _WORD.match(text, i)
        if m is None:
            # flex's default rule: ECHO the character to yyout and go on
            if echo is not None:
                echo(c)
            i += 1
            continue
        word = m.group()
        i = m.end()
        kw = _KEYWORDS.get(word)
        if kw is not None:
            yield _Tok(kw[0], int(kw[1]), word)
        elif _LEVEL_SPECIFY.fullmatch(word):
            yield _Tok(_T.LEVEL_SPECIFY, 0, word)
        else:
            yield _Tok(_T.IPADDRESS, 0, word)
    # at end of input flex leaves yytext empty (derived)
    while True:
        yield _Tok(_T.END, 0, "")


# ---------------------------------------------------------------------------
# libc: getaddrinfo(host, NULL, {PF_UNSPEC, AI_NUMERICHOST}) and friends
# ---------------------------------------------------------------------------

_AF_INET_CHARS = frozenset("0123456789.xabcdefXABCDEF")
_U64 = (1 << 64) - 1


#: The common case: four plain decimal parts, none with a leading zero
#: (a leading zero means octal to inet_aton, so those take the full parse).
_DOTTED_QUAD = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}\Z",
                          re.ASCII)


def inet_aton(text: str) -> Optional[bytes]:
    """FreeBSD ``inet_aton``: a, a.b, a.b.c, a.b.c.d with C-style 0x / 0
    (octal) parts; None when invalid.  (Trailing blanks, which inet_aton
    tolerates, never reach it here.)"""
    if _DOTTED_QUAD.match(text):
        a, b, c, d = text.split(".")
        try:
            return bytes((int(a), int(b), int(c), int(d)))
        except ValueError:          # a part above 255: inet_aton refuses it too
            return None
    parts: list[int] = []
    i, n = 0, len(text)
    val = 0
    digit = False
    while True:
        if i >= n or not text[i].isdigit() or not text[i].isascii():
            return None
        val, base, digit = 0, 10, False
        if text[i] == "0":
            i += 1
            if i < n and text[i] in "xX":
                base = 16
                i += 1
            else:
                base = 8
                digit = True
        while i < n:
            c = text[i]
            if c.isascii() and c.isdigit():
                if base == 8 and c in "89":
                    return None
                val = (val * base + int(c)) & _U64
                digit = True
            elif base == 16 and c in "0123456789abcdefABCDEF":
                val = ((val << 4) | int(c, 16)) & _U64
                digit = True
            else:
                break
            i += 1
        if i < n and text[i] == ".":
            if len(parts) >= 3 or val > 0xFF:
                return None
            parts.append(val)
            i += 1
        else:
            break
    if i < n and not (text[i].isascii() and text[i].isspace()):
        return None
    if not digit:
        return None
    limits = (0xFFFFFFFF, 0xFFFFFF, 0xFFFF, 0xFF)
    if len(parts) and val > limits[len(parts)]:
        return None
    for k, p in enumerate(parts):
        val |= p << (24 - 8 * k)
    return (val & 0xFFFFFFFF).to_bytes(4, "big")


def _is_linklocal_scope(addr: bytes) -> bool:
    # IN6_IS_ADDR_LINKLOCAL, IN6_IS_ADDR_MC_LINKLOCAL, IN6_IS_ADDR_MC_NODELOCAL
    if addr[0] == 0xFE and (addr[1] & 0xC0) == 0x80:
        return True
    return addr[0] == 0xFF and (addr[1] & 0x0F) in (0x01, 0x02)


def _scope_id(scope: str, addr: bytes, if_nametoindex: Callable[[str], int]) -> Optional[int]:
    """getaddrinfo's ``ip6_str2scopeid``: interface name (link-local scopes
    only) or decimal number; None when invalid."""
    if not scope:
        return None
    if _is_linklocal_scope(addr):
        idx = if_nametoindex(scope)
        if idx:
            return idx
    # strtoul(scope, &ep, 10) must consume everything and fit 32 bits
    if not scope.isascii() or not scope.isdigit():
        return None
    v = int(scope)
    return v if v <= 0xFFFFFFFF else None


def _host_if_nametoindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        return 0


class _GaiError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(GAI_ERRMSG[code])
        self.code = code


def getaddrinfo_numeric(host: str,
                        if_nametoindex: Optional[Callable[[str], int]] = None) -> Sockaddr:
    """FreeBSD ``getaddrinfo(host, NULL, PF_UNSPEC + AI_NUMERICHOST)``'s first
    sockaddr (port 0); raises _GaiError(EAI_NONAME) when not numeric."""
    ifidx = if_nametoindex or _host_if_nametoindex
    # explore_numeric_scope for AF_INET6: split off a %scope
    addr_part, pct, scope = host.partition("%")
    try:
        a6 = socket.inet_pton(socket.AF_INET6, addr_part)
    except (OSError, ValueError):
        a6 = None
    if a6 is not None:
        scope_id = 0
        if pct:
            sid = _scope_id(scope, a6, ifidx)
            if sid is None:
                raise _GaiError(_EAI_NONAME)
            scope_id = sid
        return Sockaddr.inet6(a6, scope_id=scope_id)
    # AF_INET is not scoped: the whole string goes to inet_aton
    if host and all(ch in _AF_INET_CHARS for ch in host):
        a4 = inet_aton(host)
        if a4 is not None:
            return Sockaddr.inet(a4)
    raise _GaiError(_EAI_NONAME)


# ---------------------------------------------------------------------------
# Parser (policy_parse.y as byacc runs it)
# ---------------------------------------------------------------------------

_LONG_MAX = (1 << 63) - 1
_POL_HDR = struct.Struct("<HHHBBII")
_REQ_HDR = struct.Struct("<HHBBH")


class _Request(NamedTuple):
    proto: int
    mode: int
    level: int
    reqid: int
    src: Optional[Sockaddr]
    dst: Optional[Sockaddr]


class _Parser:
    def __init__(self, text: str, echo: Optional[Callable[[str], None]],
                 if_nametoindex: Optional[Callable[[str], int]]) -> None:
        self._toks = _lex(text, echo)
        self._ahead: Optional[_Tok] = None
        self._ifidx = if_nametoindex
        self.dir = IPSEC_DIR.INVALID.value
        self.type = IPSEC_POLICY.DISCARD.value
        self.requests: list[_Request] = []
        self._reset()

    # policy_parse_request_init
    def _reset(self) -> None:
        self.protocol = 0
        self.mode = IPSEC_MODE.ANY.value
        self.level = IPSEC_LEVEL.DEFAULT.value
        self.reqid = 0
        self.src: Optional[Sockaddr] = None
        self.dst: Optional[Sockaddr] = None

    def _next(self) -> _Tok:
        if self._ahead is not None:
            tok, self._ahead = self._ahead, None
            return tok
        return next(self._toks)

    def _push(self, tok: _Tok) -> None:
        self._ahead = tok

    @staticmethod
    def _syntax_error(tok: _Tok) -> PolicyError:
        # byacc: yyerror("syntax error"); __ipsec_errcode stays "no error",
        # which ipsec_set_policy turns into EIPSEC_INVAL_ARGUMENT
        return PolicyError(EIPSEC.INVAL_ARGUMENT, token=tok.text,
                           diagnostic=f'libipsec: syntax error while parsing "{tok.text}"')

    def _sockaddr(self, tok: _Tok) -> Sockaddr:
        try:
            return getaddrinfo_numeric(tok.text, self._ifidx)
        except _GaiError as exc:
            raise PolicyError(EIPSEC.SYSTEM_ERROR, GAI_ERRMSG[exc.code], token=tok.text,
                              diagnostic=f'libipsec: invalid IP address while parsing '
                                         f'"{tok.text}"') from None

    def _finish_rule(self) -> None:
        # rules: rules rule { rule_check(); set_x_request(); request_init(); }
        if self.type == IPSEC_POLICY.IPSEC:
            if self.src is None and self.dst is None:
                if self.mode != IPSEC_MODE.TRANSPORT:
                    raise PolicyError(EIPSEC.INVAL_ADDRESS)
            elif self.src is None or self.dst is None or self.src.family != self.dst.family:
                raise PolicyError(EIPSEC.FAMILY_MISMATCH)
        self.requests.append(_Request(self.protocol, self.mode, self.level, self.reqid,
                                      self.src, self.dst))
        self._reset()

    def _level(self, tok: _Tok) -> bool:
        if tok.kind is _T.LEVEL:
            self.level, self.reqid = tok.value, 0
            return True
        if tok.kind is _T.LEVEL_SPECIFY:
            # p_reqid = atol(digits): strtol saturates at LONG_MAX, the int
            # keeps the low 32 bits and the u_int16 reqid field the low 16
            self.level = IPSEC_LEVEL.UNIQUE.value
            self.reqid = min(int(tok.text[7:]), _LONG_MAX) & 0xFFFF
            return True
        return False

    def _addresses(self, tok: _Tok) -> None:
        if tok.kind is _T.IPADDRESS:
            # mid-rule action: a default reduction, runs before the '-' is read
            self.src = self._sockaddr(tok)
            tok = self._next()
            if tok.kind is not _T.HYPHEN:
                raise self._syntax_error(tok)
            tok = self._next()
            if tok.kind is not _T.IPADDRESS:
                raise self._syntax_error(tok)
            self.dst = self._sockaddr(tok)
            return
        if tok.kind is _T.ME or tok.kind is _T.ANY:
            second = _T.ANY if tok.kind is _T.ME else _T.ME
            want_dir = IPSEC_DIR.OUTBOUND if tok.kind is _T.ME else IPSEC_DIR.INBOUND
            tok = self._next()
            if tok.kind is not _T.HYPHEN:
                raise self._syntax_error(tok)
            tok = self._next()
            if tok.kind is not second:
                raise self._syntax_error(tok)
            if self.dir != want_dir:
                raise PolicyError(EIPSEC.INVAL_DIR)
            return
        raise self._syntax_error(tok)

    def _rule(self, tok: _Tok) -> None:
        """One request, ``tok`` being its PROTOCOL token."""
        end = (_T.PROTOCOL, _T.END)
        self.protocol = tok.value
        tok = self._next()
        if tok.kind in end:                       # rule: protocol
            raise PolicyError(EIPSEC.FEW_ARGUMENTS)
        if tok.kind is not _T.SLASH:
            raise self._syntax_error(tok)
        tok = self._next()
        if tok.kind in end:                       # rule: protocol SLASH
            raise PolicyError(EIPSEC.FEW_ARGUMENTS)
        if tok.kind is not _T.MODE:
            raise self._syntax_error(tok)
        self.mode = tok.value
        nxt = self._slash_then()                  # protocol/mode, protocol/mode/
        if nxt is None:
            return
        tok = nxt
        if tok.kind is _T.SLASH:                  # protocol/mode//level
            tok = self._next()
            if not self._level(tok):
                raise self._syntax_error(tok)
            self._finish_rule()                   # default reductions
            return
        self._addresses(tok)
        nxt = self._slash_then()                  # protocol/mode/a-b, protocol/mode/a-b/
        if nxt is None:
            return
        tok = nxt
        if not self._level(tok):
            raise self._syntax_error(tok)
        self._finish_rule()                       # protocol/mode/a-b/level

    def _slash_then(self) -> Optional[_Tok]:
        """The token after the next ``/``; or, where the rule ends before the
        ``/`` or right after it, None with the rule finished (the end token is
        pushed back for the caller)."""
        end = (_T.PROTOCOL, _T.END)
        tok = self._next()
        if tok.kind not in end:
            if tok.kind is not _T.SLASH:
                raise self._syntax_error(tok)
            tok = self._next()
            if tok.kind not in end:
                return tok
        self._push(tok)
        self._finish_rule()
        return None

    def parse(self) -> None:
        tok = self._next()
        if tok.kind is not _T.DIR:
            raise self._syntax_error(tok)
        self.dir = tok.value
        tok = self._next()
        if tok.kind is _T.END:                    # policy_spec: DIR
            self.type = IPSEC_POLICY.DISCARD.value   # "ignored by kernel"
            return
        if tok.kind is not _T.ACTION:
            raise self._syntax_error(tok)
        self.type = tok.value
        while True:
            tok = self._next()
            if tok.kind is _T.END:
                return
            if tok.kind is not _T.PROTOCOL:
                raise self._syntax_error(tok)
            self._rule(tok)

    def build(self) -> bytes:
        """init_x_policy + set_x_request + policy_parse's length update."""
        body = bytearray()
        for r in self.requests:
            addrs = b""
            if r.src is not None:
                addrs += r.src.wire()
            if r.dst is not None:
                addrs += r.dst.wire()
            body += _REQ_HDR.pack(8 + len(addrs), r.proto, r.mode, r.level, r.reqid) + addrs
        tlen = 16 + len(body)
        units = tlen >> 3                         # PFKEY_UNIT64 rounds down
        buf = _POL_HDR.pack(units, SADB_EXT.X_POLICY, self.type, self.dir, 0, 0, 0) + body
        # setkey copies ipsec_get_policylen() = PFKEY_EXTLEN bytes
        return bytes(buf[:units * 8])


def ipsec_set_policy_buf(text: str, *, echo: Optional[Callable[[str], None]] = None,
                         if_nametoindex: Optional[Callable[[str], int]] = None) -> bytes:
    """``ipsec_set_policy()``'s buffer, as many bytes as setkey sends
    (``ipsec_get_policylen``).  Raises :class:`PolicyError`."""
    text = text.split("\0", 1)[0]              # a C string
    parser = _Parser(text, echo, if_nametoindex)
    parser.parse()
    return parser.build()


def ipsec_set_policy(text: str, *, echo: Optional[Callable[[str], None]] = None,
                     if_nametoindex: Optional[Callable[[str], int]] = None) -> SadbXPolicy:
    """``ipsec_set_policy()``: the policy text after setkey's ``-P`` as the
    sadb_x_policy extension setkey sends.

    ``echo`` receives characters flex's default rule would print to stdout;
    ``if_nametoindex`` resolves ``%ifname`` scopes of link-local addresses
    (default: the host's).  Raises :class:`PolicyError`.
    """
    buf = ipsec_set_policy_buf(text, echo=echo, if_nametoindex=if_nametoindex)
    return SadbXPolicy.unpack(SADB_EXT.X_POLICY, buf, 0, len(buf))


def ipsec_get_policylen(policy: Union[SadbXPolicy, bytes]) -> int:
    """``ipsec_get_policylen()``: PFKEY_EXTLEN of a policy buffer, in bytes."""
    if isinstance(policy, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(policy[0:2]), "little") * 8
    return len(policy.pack())

