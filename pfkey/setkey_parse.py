"""setkey's grammar: a model of FreeBSD ``sbin/setkey/parse.y`` as byacc runs
it.  Text in, PF_KEY messages out, no I/O.  The pieces are split by concept:
this module is the grammar and its actions; :mod:`pfkey.setkey_lex` is
token.l; :mod:`pfkey.setkey_msg` holds parse.y's message builders and
libipsec's ``ipsec_check_keylen``; :mod:`pfkey.setkey_netdb` the libc name
lookups (getaddrinfo, getprotobyname) the actions call.

Reference: pfkey_setkey_reference.md §D (grammar, build order, key-length
rules, messages) and freebsd_ipsec_offload.md §12/§18 (``-hwif``).  The
grammar is FreeBSD main's (2024-10): besides the classic statements it has
``-natt addr[port] addr[port]``, ``-natt_mtu N``, ``-esn`` and ``-hwif IF``.

How FreeBSD runs a script, and so how this module does
--------------------------------------------------------
* **One statement at a time.**  Each statement's action builds and *sends*
  its messages as soon as its ``;`` is read, so everything before a failing
  statement stays applied.  :meth:`SetkeyParser.parse` is a generator of
  :class:`Statement` in script order; a failure raises
  :class:`SetkeyParseError` after the earlier statements were yielded.
* **Errors are yyerror lines**: ``line N: <msg> at [<yytext>]`` then
  ``parse failed, line N.``; a lexical error is ``line N: Syntax error at
  [c]`` alone (yyfatal exits).  Some actions fail with no message (only
  ``parse failed``): a ``tcp-md5`` key outside 1..80 bytes, an upper-layer
  spec after a protocol other than icmp6, ``spdadd tagged``, no src/dst pair
  of one family.  ``N`` and ``<yytext>`` are the scanner's at that moment,
  which depends on when byacc reads a lookahead: an action that completes a
  rule with a single reduction runs *before* the next token is read (a bad
  key reports the key, a bad address the address), others after it.  The
  parser below reads tokens exactly where byacc does.
* **Warnings** (``WARNING: mode is obsolete``, ``WARNING: obsolete
  algorithm``, ``replay window is too large``) are yyerror lines too, printed
  and ignored: they are returned in ``Statement.warnings``.
* **Keys**: ``ipsec_check_keylen`` against the kernel's REGISTER lists
  (``supported``), in bits; salted ciphers (aes-ctr, aes-gcm-16,
  chacha20-poly1305: token.l's ALG_ENC_SALT) are checked without their last
  4 bytes but sent whole.  ``tcp-md5`` keys are only checked for 1..80 bytes.
* **Numbers** behave like the C: strtoul saturating at 2^64-1, then the
  assignment's truncation (a decimal SPI keeps its low 32 bits; "SPI too
  big." can never fire on amd64 because ``~0xffffffff`` is 0 in 32 bits).
* **Messages** are built in FreeBSD's extension order (§D.2, see
  :mod:`pfkey.setkey_msg`), one per src x dst pair of the same family (host
  names may resolve to several addresses); seq 0, pid from the caller.

Quirks (reference freebsd_ipsec_offload.md §18 and below), off by default:

* ``hwif_add_quirk``: FreeBSD's setkeymsg_add appends IF_HW_OFFL *after*
  sending, so ``add ... -hwif IF`` never reaches the kernel; with the flag
  the ADD carries no IF_HW_OFFL.
* ``hwif_spd_quirk``: FreeBSD's policy-text scanner swallows ``-hwif IF``
  written after ``-P ...`` (so it becomes part of the policy text, which
  libipsec then refuses), and spddelete's rule has no ``-hwif`` at all.  By
  default ``spdadd``/``spddelete ... -P <policy> -hwif IF;`` carry the
  extension, as the SPD builder intends.
"""

from __future__ import annotations

import enum
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Union

from .extensions import SadbXPolicy, Sockaddr
from .ipsec import IPPROTO_ESP, IPPROTO_ICMPV6, IPPROTO_TCP, IPSEC_ULPROTO_ANY
from .ipsec_strerror import EIPSEC, ipsec_strerror
from .message import Message
from .pfkeyv2 import (
    AF_INET, AF_INET6, SADB, SADB_AALG, SADB_SAFLAGS, SADB_SATYPE, UDP_ENCAP_ESPINUDP,
)
from .policy import PolicyError, ipsec_set_policy
from .setkey_lex import LexFatal, SetkeyLexer, T, Token, display, strtoul, to_scanner_text
from .setkey_msg import (
    FREEBSD_SUPPORTED, SetkeyParams, Supported, ipsec_check_keylen, setkeymsg0, setkeymsg_add,
    setkeymsg_addr, setkeymsg_spdaddr,
)
from .setkey_netdb import (
    AddressResolver, GaiError, default_resolver, getprotobyname, FREEBSD_PROTOCOLS,
)

_U32 = 0xFFFFFFFF


class ParseWarning(NamedTuple):
    """A yyerror line that does not stop the parse."""

    lineno: int
    message: str
    token: str

    @property
    def text(self) -> str:
        return f"line {self.lineno}: {self.message} at [{self.token}]"


class SetkeyParseError(Exception):
    """The script failed to parse: what setkey prints, then it exits 1.

    ``lines`` are setkey's output lines: the yyerror line (absent when the
    action failed silently: ``message`` is None) and ``parse failed, line
    N.`` (absent for a lexical ``Syntax error``: ``fatal``).  ``warnings``
    are the warning lines of the failing statement printed before it;
    ``policy_error`` is libipsec's error for a refused ``-P`` text (its
    ``diagnostic`` is what libipsec wrote to stderr).
    """

    def __init__(self, lineno: int, message: Optional[str], token: str, *,
                 fatal: bool = False, warnings: Sequence[ParseWarning] = (),
                 policy_error: Optional[PolicyError] = None) -> None:
        self.lineno = lineno
        self.message = message
        self.token = token
        self.fatal = fatal
        self.warnings = tuple(warnings)
        self.policy_error = policy_error
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        out = []
        if self.message is not None:
            out.append(f"line {self.lineno}: {self.message} at [{self.token}]")
        if not self.fatal:
            out.append(f"parse failed, line {self.lineno}.")
        return out


class Replies(enum.Enum):
    """What the caller does with the kernel's replies (setkey.c postproc):
    always print errors; print GET/DUMP replies with pfkey_sadump, SPDDUMP
    replies with pfkey_spdump.  setkey reads replies until one has errno 0
    and seq 0."""

    STATUS = "status"
    SADUMP = "sadump"
    SPDDUMP = "spddump"


class Statement(NamedTuple):
    """One parsed statement: the messages setkey sends for it, in order.

    ``lineno`` is setkey's ``lineno`` when it sends them (the line of the
    ``;``), the N of ``The result of line N: ...``.
    """

    lineno: int
    command: str
    messages: tuple[Message, ...]
    warnings: tuple[ParseWarning, ...] = ()
    replies: Replies = Replies.STATUS


PolicyParser = Callable[[str], SadbXPolicy]

_EXTENSION_TOKENS = frozenset({
    T.F_EXT, T.F_MODE, T.F_REQID, T.F_REPLAY, T.F_LIFETIME_HARD, T.F_LIFETIME_SOFT,
    T.F_NATT, T.F_NATT_MTU, T.F_ESN, T.F_HWIF})
_PROTOCOL_TOKENS = frozenset({T.PR_ESP, T.PR_AH, T.PR_IPCOMP, T.PR_TCP})
_SPI_TOKENS = (T.DECSTRING, T.HEXSTRING)
_REPLAY_WARN = (_U32 - 32) >> 3
_OLD = int(SADB_SAFLAGS.X_EXT_OLD)
_CYCSEQ = int(SADB_SAFLAGS.X_EXT_CYCSEQ)
_RAWCPI = int(SADB_SAFLAGS.X_EXT_RAWCPI)
_ESN = int(SADB_SAFLAGS.X_SAFLAGS_ESN)


def _int32(v: int) -> int:
    """C conversion of an unsigned long to int (two's complement)."""
    v &= _U32
    return v - (1 << 32) if v & 0x80000000 else v


def _hexkey(digits: str) -> bytes:
    """key_string's HEXSTRING: an odd digit count gives a leading nibble."""
    if len(digits) % 2:
        digits = "0" + digits
    return bytes.fromhex(digits)


class SetkeyParser:
    """setkey's parser with its environment.

    ``pid`` goes in every message (setkey sends getpid()); ``supported`` is
    the REGISTER lists keys are checked against (None: setkey never got them,
    every key check fails "Must get supported algorithms list first");
    ``resolver`` is getaddrinfo (see :class:`pfkey.setkey_netdb.Resolver`);
    ``protocols`` is /etc/protocols for upper-layer names; ``policy`` parses
    ``-P`` text (default: :func:`pfkey.policy.ipsec_set_policy`, given the
    resolver's interface table and ``policy_echo`` for characters libipsec's
    scanner echoes).
    """

    def __init__(self, *, pid: int, supported: Optional[Supported] = FREEBSD_SUPPORTED,
                 resolver: Optional[AddressResolver] = None,
                 protocols: Sequence[tuple[tuple[str, ...], int]] = FREEBSD_PROTOCOLS,
                 policy: Optional[PolicyParser] = None,
                 policy_echo: Optional[Callable[[str], None]] = None,
                 hwif_add_quirk: bool = False, hwif_spd_quirk: bool = False) -> None:
        self.pid = pid & _U32
        self.supported = supported
        self.resolver: AddressResolver = resolver if resolver is not None else default_resolver()
        self.protocols = protocols
        ifidx = getattr(self.resolver, "if_nametoindex", None)

        def libipsec_policy(text: str) -> SadbXPolicy:
            return ipsec_set_policy(text, echo=policy_echo, if_nametoindex=ifidx)
        self.policy: PolicyParser = policy if policy is not None else libipsec_policy
        self.hwif_add_quirk = hwif_add_quirk
        self.hwif_spd_quirk = hwif_spd_quirk

    def parse(self, script: Union[str, bytes]) -> Iterator[Statement]:
        """The statements of ``script`` one by one, in order (see module doc)."""
        return _Run(self, to_scanner_text(script)).statements()

    def parse_all(self, script: Union[str, bytes]) -> list[Statement]:
        """Every statement, or SetkeyParseError (statements before it are lost)."""
        return list(self.parse(script))


def parse_script(script: Union[str, bytes], *, pid: int, **options: object) -> Iterator[Statement]:
    """``SetkeyParser(pid=pid, **options).parse(script)``."""
    return SetkeyParser(pid=pid, **options).parse(script)  # type: ignore[arg-type]


class _Run:
    """One yyparse() over one script."""

    def __init__(self, parser: SetkeyParser, text: str) -> None:
        self.opt = parser
        self.lex = SetkeyLexer(text, hwif_spd_quirk=parser.hwif_spd_quirk)
        self.la: Optional[Token] = None
        self.p = SetkeyParams()
        self.warnings: list[ParseWarning] = []

    # -- tokens and errors ------------------------------------------------

    def peek(self) -> Token:
        if self.la is None:
            try:
                self.la = self.lex.next()
            except LexFatal as exc:
                raise SetkeyParseError(exc.lineno, "Syntax error", display(exc.yytext),
                                       fatal=True, warnings=self.warnings) from None
        return self.la

    def take(self) -> Token:
        tok = self.peek()
        self.la = None
        return tok

    def expect(self, *kinds: T) -> Token:
        if self.peek().kind not in kinds:
            raise self.syntax_error()
        return self.take()

    def error(self, message: Optional[str], policy_error: Optional[PolicyError] = None
              ) -> SetkeyParseError:
        """yyerror(message) + ``return -1`` (message None: no yyerror)."""
        return SetkeyParseError(self.lex.lineno, message, display(self.lex.yytext),
                                warnings=self.warnings, policy_error=policy_error)

    def syntax_error(self) -> SetkeyParseError:
        return self.error("syntax error")

    def warn(self, message: str) -> None:
        self.warnings.append(ParseWarning(self.lex.lineno, message, display(self.lex.yytext)))

    # -- commands -----------------------------------------------------------

    def statements(self) -> Iterator[Statement]:
        handlers = {
            T.ADD: self.add, T.GET: self.get, T.DELETE: self.delete,
            T.DELETEALL: self.deleteall, T.FLUSH: self.flush, T.DUMP: self.dump,
            T.SPDADD: self.spdadd, T.SPDDELETE: self.spddelete,
            T.SPDDUMP: self.spddump, T.SPDFLUSH: self.spdflush,
        }
        while True:
            # parse_init() after every command
            self.p = SetkeyParams()
            self.warnings = []
            tok = self.peek()
            if tok.kind == T.EOF:
                return
            handler = handlers.get(tok.kind)
            if handler is None:
                raise self.syntax_error()
            self.take()
            yield handler()

    def _statement(self, command: str, messages: Sequence[Message],
                   replies: Replies = Replies.STATUS) -> Statement:
        return Statement(self.lex.lineno, command, tuple(messages), tuple(self.warnings),
                         replies)

    def add(self) -> Statement:
        src, dst, satype = self.sa_spec(add=True)
        return self._statement("add", self.built(setkeymsg_add(
            self.p, self.opt.pid, satype, src, dst, hwif_add_quirk=self.opt.hwif_add_quirk)))

    def get(self) -> Statement:
        src, dst, satype = self.sa_spec(add=False)
        if self.p.mode != 0:
            self.warn("WARNING: mode is obsolete")
        return self._statement("get", self.built(setkeymsg_addr(
            self.p, self.opt.pid, SADB.GET, satype, src, dst, False)),
                               Replies.SADUMP)

    def delete(self) -> Statement:
        src, dst, satype = self.sa_spec(add=False)
        if len(src) > 1 or len(dst) > 1:
            raise self.error("multiple address specified")
        if self.p.mode != 0:
            self.warn("WARNING: mode is obsolete")
        return self._statement("delete", self.built(setkeymsg_addr(
            self.p, self.opt.pid, SADB.DELETE, satype, src, dst, False)))

    def deleteall(self) -> Statement:
        self.ipaddropts()
        src, dst = self.ipaddr(), self.ipaddr()
        satype = self.protocol_spec((T.EOT,))
        self.expect(T.EOT)
        return self._statement("deleteall",
                               self.built(setkeymsg_addr(
                                   self.p, self.opt.pid, SADB.DELETE, satype, src, dst, True)))

    def flush(self) -> Statement:
        satype = self.protocol_spec((T.EOT,))
        self.expect(T.EOT)
        return self._statement("flush", [self.header(SADB.FLUSH, satype)])

    def dump(self) -> Statement:
        satype = self.protocol_spec((T.EOT,))
        self.expect(T.EOT)
        return self._statement("dump", [self.header(SADB.DUMP, satype)], Replies.SADUMP)

    def spddump(self) -> Statement:
        self.expect(T.EOT)
        return self._statement("spddump", [self.header(SADB.X_SPDDUMP, 0)], Replies.SPDDUMP)

    def spdflush(self) -> Statement:
        self.expect(T.EOT)
        return self._statement("spdflush", [self.header(SADB.X_SPDFLUSH, 0)])

    def spdadd(self) -> Statement:
        if self.peek().kind == T.TAGGED:
            # SPDADD TAGGED QUOTEDSTRING policy_spec EOT { return -1; }
            self.take()
            self.expect(T.QUOTEDSTRING)
            self.policy_spec()
            self.expect(T.EOT)
            raise self.error(None)
        return self.spd_command("spdadd", SADB.X_SPDADD, hwif=True)

    def spddelete(self) -> Statement:
        # FreeBSD's spddelete rule has no spd_hwif; the model fix allows it.
        return self.spd_command("spddelete", SADB.X_SPDDELETE,
                                hwif=not self.opt.hwif_spd_quirk)

    # -- shared rules -------------------------------------------------------

    def sa_spec(self, add: bool) -> tuple[list[Sockaddr], list[Sockaddr], int]:
        """What add, get and delete share: ``ipaddropts ipaddr ipaddr
        protocol_spec spi extension_spec EOT`` (add's extension_spec also takes
        the algorithms).  Returns (src, dst, satype)."""
        self.ipaddropts()
        src, dst = self.ipaddr(), self.ipaddr()
        satype = self.protocol_spec(_SPI_TOKENS)
        self.spi()
        self.extension_spec(add=add)
        self.expect(T.EOT)
        return src, dst, satype

    def header(self, mtype: int, satype: int) -> Message:
        return setkeymsg0(mtype, satype, self.opt.pid)

    def built(self, messages: list[Message]) -> list[Message]:
        """A builder's messages; none (no src/dst pair) is ``return -1``."""
        if not messages:
            raise self.error(None)
        return messages

    def ipaddropts(self) -> None:
        while self.peek().kind == T.F_AIFLAGS:
            flags = str(self.take().value)
            for ch in flags[1:]:
                if ch == "4":
                    self.p.family = AF_INET
                elif ch == "6":
                    self.p.family = AF_INET6
                else:
                    self.p.numeric = True

    def parse_addr(self, host: str, port: Optional[str]) -> list[Sockaddr]:
        """parse.y parse_addr: getaddrinfo, yyerror(gai_strerror) on failure."""
        try:
            return list(self.opt.resolver(host, port, self.p.family, self.p.numeric))
        except GaiError as exc:
            raise self.error(exc.text) from None

    def ipaddr(self) -> list[Sockaddr]:
        tok = self.expect(T.STRING)
        return self.parse_addr(str(tok.value), None)

    def protocol_spec(self, follow: Sequence[T]) -> int:
        tok = self.peek()
        if tok.kind in _PROTOCOL_TOKENS:
            self.take()
            if tok.kind == T.PR_ESP or tok.kind == T.PR_AH:
                if tok.value == 1:
                    self.p.ext |= _OLD
                else:
                    self.p.ext &= ~_OLD
                return int(SADB_SATYPE.ESP if tok.kind == T.PR_ESP else SADB_SATYPE.AH)
            return int(SADB_SATYPE.X_IPCOMP if tok.kind == T.PR_IPCOMP
                       else SADB_SATYPE.X_TCPSIGNATURE)
        if tok.kind in follow:
            return int(SADB_SATYPE.UNSPEC)
        raise self.syntax_error()

    def spi(self) -> None:
        tok = self.expect(*_SPI_TOKENS)
        if tok.kind == T.DECSTRING:
            self.p.spi = int(tok.value) & _U32  # type: ignore[arg-type]
        else:
            # strtoul(.., 16); the "SPI too big." test masks with a 32-bit
            # ~0xffffffff (= 0), so big values are silently truncated.
            self.p.spi = strtoul(str(tok.value), 16) & _U32

    def decstring(self) -> int:
        return int(self.expect(T.DECSTRING).value)  # type: ignore[arg-type]

    def extension_spec(self, add: bool) -> None:
        while True:
            kind = self.peek().kind
            if kind in _EXTENSION_TOKENS:
                self.extension()
            elif add and kind in (T.F_ENC, T.F_AUTH, T.F_COMP):
                self.algorithm_spec()
                return
            elif not add and kind == T.EOT:
                return
            else:
                raise self.syntax_error()

    def extension(self) -> None:
        p = self.p
        kind = self.take().kind
        if kind == T.F_EXT:
            tok = self.expect(T.EXTENSION, T.NOCYCLICSEQ)
            if tok.kind == T.EXTENSION:
                p.ext |= int(tok.value)  # type: ignore[arg-type]
            else:
                p.ext &= ~_CYCSEQ
        elif kind == T.F_MODE:
            tok = self.expect(T.MODE, T.ANY)
            p.mode = int(tok.value) if tok.kind == T.MODE else 0  # type: ignore[arg-type]
        elif kind == T.F_REQID:
            p.reqid = self.decstring() & _U32
        elif kind == T.F_REPLAY:
            value = self.decstring()
            if p.ext & _OLD:
                raise self.error("replay prevention cannot be used with ah/esp-old")
            p.replay = value & _U32
            if p.replay > _REPLAY_WARN:
                self.warn("replay window is too large")
        elif kind == T.F_LIFETIME_HARD:
            p.lt_hard = self.decstring()
        elif kind == T.F_LIFETIME_SOFT:
            p.lt_soft = self.decstring()
        elif kind == T.F_NATT:
            oai = self.ipaddr()
            self.expect(T.BLCL)
            sport = self.decstring()
            self.expect(T.ELCL)
            oar = self.ipaddr()
            self.expect(T.BLCL)
            dport = self.decstring()
            self.expect(T.ELCL)
            p.natt_type = UDP_ENCAP_ESPINUDP
            p.natt_oai, p.natt_oar = oai[0], oar[0]
            p.natt_sport, p.natt_dport = _int32(sport), _int32(dport)
        elif kind == T.F_NATT_MTU:
            p.natt_fraglen = _int32(self.decstring())
        elif kind == T.F_ESN:
            p.ext |= _ESN
        else:  # F_HWIF
            p.hwif = str(self.expect(T.STRING).value)

    def algorithm_spec(self) -> None:
        kind = self.take().kind
        if kind == T.F_ENC:
            self.enc_alg()
            nxt = self.peek().kind
            if nxt == T.F_AUTH:
                self.take()
                self.auth_alg()
            elif nxt != T.EOT:
                raise self.syntax_error()
        elif kind == T.F_AUTH:
            self.auth_alg()
        else:  # F_COMP ALG_COMP [F_RAWCPI]
            alg = int(self.expect(T.ALG_COMP).value)  # type: ignore[arg-type]
            nxt = self.peek().kind
            if nxt == T.F_RAWCPI:
                self.take()
                self.p.ext |= _RAWCPI
            elif nxt != T.EOT:
                raise self.syntax_error()
            self.p.alg_enc = alg

    def key_string(self) -> bytes:
        tok = self.expect(T.QUOTEDSTRING, T.HEXSTRING)
        if tok.kind == T.QUOTEDSTRING:
            return bytes(tok.value)  # type: ignore[arg-type]
        return _hexkey(str(tok.value))

    def check_keylen(self, auth: bool, alg_id: int, bits: int) -> None:
        """ipsec_check_keylen() < 0 -> yyerror(ipsec_strerror())."""
        code = ipsec_check_keylen(self.opt.supported, auth, alg_id, bits)
        if code != EIPSEC.NO_ERROR:
            raise self.error(ipsec_strerror(code))

    def enc_alg(self) -> None:
        tok = self.peek()
        if tok.kind == T.ALG_ENC or tok.kind == T.ALG_ENC_SALT:
            alg = int(tok.value)  # type: ignore[arg-type]
            self.take()
            key = self.key_string()
            self.p.alg_enc, self.p.key_enc = alg, key
            # u_int arithmetic: a salted key shorter than 4 bytes wraps to a
            # huge length ("Invalid key length").
            nbytes = len(key) - 4 if tok.kind == T.ALG_ENC_SALT else len(key)
            self.check_keylen(False, alg, ((nbytes & _U32) << 3) & _U32)
        elif tok.kind == T.ALG_ENC_OLD:
            alg = int(tok.value)  # type: ignore[arg-type]
            self.take()
            self.warn("WARNING: obsolete algorithm")
            self.p.alg_enc, self.p.key_enc = alg, None
            self.check_keylen(False, alg, 0)
        else:
            raise self.syntax_error()

    def auth_alg(self) -> None:
        tok = self.peek()
        if tok.kind == T.ALG_AUTH:
            alg = int(tok.value)  # type: ignore[arg-type]
            self.take()
            key = self.key_string()
            self.p.alg_auth, self.p.key_auth = alg, key
            if alg == SADB_AALG.X_TCP_MD5:
                if not 1 <= len(key) <= 80:
                    raise self.error(None)   # returns -1 without yyerror
            else:
                self.check_keylen(True, alg, ((len(key) & _U32) << 3) & _U32)
        elif tok.kind == T.ALG_AUTH_NOKEY:
            self.take()
            self.p.alg_auth, self.p.key_auth = int(tok.value), None  # type: ignore[arg-type]
        else:
            raise self.syntax_error()

    # -- SPD ----------------------------------------------------------------

    def selector(self) -> tuple[str, int, str]:
        """STRING prefix portstr -> (host, prefix or -1, port string)."""
        host = str(self.expect(T.STRING).value)
        prefix = -1
        if self.peek().kind == T.SLASH:
            self.take()
            prefix = _int32(self.decstring())
        port = "0"
        if self.peek().kind == T.BLCL:
            self.take()
            tok = self.expect(T.ANY, T.DECSTRING, T.STRING)
            if tok.kind == T.DECSTRING:
                port = str(tok.value)
            elif tok.kind == T.STRING:
                port = str(tok.value)
            self.expect(T.ELCL)
        return host, prefix, port

    def upper_spec(self) -> int:
        tok = self.expect(T.DECSTRING, T.ANY, T.PR_TCP, T.PR_ESP, T.STRING)
        if tok.kind == T.DECSTRING:
            return _int32(int(tok.value))  # type: ignore[arg-type]
        if tok.kind == T.ANY:
            return IPSEC_ULPROTO_ANY
        if tok.kind == T.PR_TCP:
            return IPPROTO_TCP
        if tok.kind == T.PR_ESP:
            return IPPROTO_ESP
        name = str(tok.value)
        proto = getprotobyname(name, self.opt.protocols)
        if proto is not None:
            return proto
        if name == "icmp6":
            return IPPROTO_ICMPV6
        if name == "ip4":
            return 4
        raise self.error("invalid upper layer protocol")

    def policy_spec(self) -> SadbXPolicy:
        self.expect(T.F_POLICY)
        text = str(self.expect(T.PL_REQUESTS).value)
        try:
            return self.opt.policy(text)
        except PolicyError as exc:
            raise self.error(exc.text, exc) from None

    def spd_command(self, command: str, mtype: int, hwif: bool) -> Statement:
        self.ipaddropts()
        shost, splen, sport = self.selector()
        dhost, dplen, dport = self.selector()
        upper = self.upper_spec()
        misc = None
        if self.peek().kind == T.STRING:
            misc = str(self.take().value)
        policy = self.policy_spec()
        if hwif and self.peek().kind == T.F_HWIF:
            self.take()
            self.p.hwif = str(self.expect(T.STRING).value)
        self.expect(T.EOT)
        if misc is not None:
            # upper_misc_spec: icmp6 type,code carried in the port fields
            if upper != IPPROTO_ICMPV6:
                raise self.error(None)
            head, comma, tail = misc.partition(",")
            if comma and not tail:
                raise self.error("invalid an upper layer protocol spec")
            sport, dport = head, (tail if comma else "0")
        srcs = self.parse_addr(shost, sport)
        dsts = self.parse_addr(dhost, dport)
        if len(srcs) > 1 or len(dsts) > 1:
            raise self.error("multiple address specified")
        messages = setkeymsg_spdaddr(self.p, self.opt.pid, mtype, upper, policy,
                                     srcs, splen, dsts, dplen)
        if not messages:
            raise self.error(None)
        return self._statement(command, messages)

__all__ = [
    "SetkeyParser", "parse_script", "Statement", "Replies", "SetkeyParseError",
    "ParseWarning", "Supported", "FREEBSD_SUPPORTED", "PolicyParser",
]
