"""setkey's tokenizer: a model of FreeBSD ``sbin/setkey/token.l``.

The rules are those of FreeBSD main as vendored in 2024-10 (the copy with the
IPsec-offload ``-hwif`` option; reference freebsd_ipsec_offload.md §12), and
the scanner keeps flex's semantics, because setkey's error messages print
flex's ``yytext`` and ``lineno``:

* **longest match, then earliest rule.**  Keywords (``add``, ``esp``,
  ``transport`` ...) win only when the whole word is the keyword: ``esp-udp``
  is a STRING, ``esp-old`` is PR_ESP with the OLD flag.  Keywords are
  case-sensitive.
* **start conditions are inclusive** (``%s``).  ``-E`` enters S_ENCALG and
  ``-A`` S_AUTHALG; only a known algorithm name leaves them.  A name FreeBSD
  dropped (``des-cbc``, ``blowfish-cbc``, ``hmac-md5``, ``camellia-cbc`` ...)
  is then just a STRING, and the grammar fails with ``syntax error`` on it --
  exactly how FreeBSD 13+/14 refuses old scripts.
* **-P switches to raw policy text** (S_PL): one PL_REQUESTS token holding
  every character of ``[A-Za-z0-9:.\\-_/ \\t\\n%]`` up to the next other
  character (normally the ``;``), newlines included and counted.  Its action
  calls ``yymore()``, so the *next* token's ``yytext`` starts with the policy
  text -- which is what an error reported on that token prints.
* ``#`` comments run to the end of the line; a ``"quoted"`` key may span lines
  (and, as in FreeBSD, those newlines are not counted); the action replaces
  the closing quote with a NUL and advances ``yytext``, so errors on a quoted
  key print its contents without quotes.
* any other character (``\\``, ``\\r``, ``+``, an unterminated ``"`` ...) is
  ``yyfatal("Syntax error")``: setkey prints ``line N: Syntax error at [c]``
  and exits *without* the ``parse failed`` line.

Deliberate departure (quirk): FreeBSD's S_PL rule also swallows a ``-hwif
NAME`` written after the policy, so the grammar's ``spd_hwif`` is unreachable
and the option ends up in the policy text.  By default this tokenizer ends the
policy text before a whitespace-preceded ``-hwif`` and scans the rest of the
statement (F_HWIF, the name, ``;``) in INITIAL; ``hwif_spd_quirk=True``
restores FreeBSD's lexing.

The scanner works on a ``str`` holding one character per input byte
(latin-1), so key bytes are exact; ``display()`` turns ``yytext`` back into
readable text for messages.
"""

from __future__ import annotations

import enum
import re
from typing import NamedTuple, Optional, Union

from .ipsec import IPSEC_MODE
from .pfkeyv2 import SADB_AALG, SADB_EALG, SADB_SAFLAGS, SADB_X_CALG


class T(enum.IntEnum):
    """Token kinds: the ``%token`` names of parse.y."""

    EOF = 0
    EOT = 1
    SLASH = 2
    BLCL = 3
    ELCL = 4
    ADD = 5
    GET = 6
    DELETE = 7
    DELETEALL = 8
    FLUSH = 9
    DUMP = 10
    PR_ESP = 11
    PR_AH = 12
    PR_IPCOMP = 13
    PR_TCP = 14
    F_AUTH = 15
    F_ENC = 16
    F_REPLAY = 17
    F_COMP = 18
    F_RAWCPI = 19
    F_MODE = 20
    MODE = 21
    F_REQID = 22
    F_EXT = 23
    EXTENSION = 24
    NOCYCLICSEQ = 25
    ALG_AUTH = 26
    ALG_AUTH_NOKEY = 27
    ALG_ENC = 28
    ALG_ENC_OLD = 29
    ALG_ENC_SALT = 30
    ALG_COMP = 31
    F_LIFETIME_HARD = 32
    F_LIFETIME_SOFT = 33
    DECSTRING = 34
    QUOTEDSTRING = 35
    HEXSTRING = 36
    STRING = 37
    ANY = 38
    SPDADD = 39
    SPDDELETE = 40
    SPDDUMP = 41
    SPDFLUSH = 42
    F_POLICY = 43
    PL_REQUESTS = 44
    F_AIFLAGS = 45
    F_NATT = 46
    F_NATT_MTU = 47
    F_ESN = 48
    F_HWIF = 49
    TAGGED = 50


class S(enum.IntEnum):
    """flex start conditions (all inclusive)."""

    INITIAL = 0
    PL = 1
    AUTHALG = 2
    ENCALG = 3


TokenValue = Union[int, str, bytes, None]


class Token(NamedTuple):
    """One token: its kind, its ``yylval`` and what ``yytext`` holds after its
    action ran (yymore prefix included) -- the text an error message prints."""

    kind: T
    value: TokenValue
    yytext: str
    lineno: int


# ---------------------------------------------------------------------------
# Rule tables.  Numbers are the rule's position in token.l: on equal match
# length flex picks the lowest.
# ---------------------------------------------------------------------------

_RULE_PL = 13          # <S_PL> policy text
_RULE_STRING = 71      # [A-Za-z0-9:][A-Za-z0-9:%\.-]*
_RULE_DIGCOMMA = 72    # [0-9,]+

# Whole-word rules active in every start condition: word -> (rule, kind, value).
_WORDS: dict[str, tuple[int, T, TokenValue]] = {
    "add": (1, T.ADD, None), "delete": (2, T.DELETE, None),
    "deleteall": (3, T.DELETEALL, None), "get": (4, T.GET, None),
    "flush": (5, T.FLUSH, None), "dump": (6, T.DUMP, None),
    "spdadd": (7, T.SPDADD, None), "spddelete": (8, T.SPDDELETE, None),
    "spddump": (9, T.SPDDUMP, None), "spdflush": (10, T.SPDFLUSH, None),
    "tagged": (11, T.TAGGED, None),
    # yylval 1 marks the "-old" protocols (they set SADB_X_EXT_OLD).
    "ah": (16, T.PR_AH, 0), "esp": (17, T.PR_ESP, 0),
    "ah-old": (18, T.PR_AH, 1), "esp-old": (19, T.PR_ESP, 1),
    "ipcomp": (20, T.PR_IPCOMP, 0), "tcp": (21, T.PR_TCP, 0),
    "oui": (40, T.ALG_COMP, int(SADB_X_CALG.OUI)),
    "deflate": (41, T.ALG_COMP, int(SADB_X_CALG.DEFLATE)),
    "lzs": (42, T.ALG_COMP, int(SADB_X_CALG.LZS)),
    "transport": (45, T.MODE, int(IPSEC_MODE.TRANSPORT)),
    "tunnel": (46, T.MODE, int(IPSEC_MODE.TUNNEL)),
    "random-pad": (49, T.EXTENSION, int(SADB_SAFLAGS.X_EXT_PRAND)),
    "seq-pad": (50, T.EXTENSION, 0),  # SADB_X_EXT_PSEQ
    "zero-pad": (51, T.EXTENSION, int(SADB_SAFLAGS.X_EXT_PZERO)),
    "nocyclic-seq": (52, T.NOCYCLICSEQ, None),
    "any": (60, T.ANY, None),
}

# <S_AUTHALG> names (rules 23-30).  FreeBSD 14 dropped hmac-md5, keyed-md5,
# keyed-sha1 and hmac-ripemd160; main added chacha20-poly1305 (auth id 14).
_AUTH_ALGS: dict[str, tuple[T, int]] = {
    "chacha20-poly1305": (T.ALG_AUTH, int(SADB_AALG.X_CHACHA20POLY1305)),
    "hmac-sha1": (T.ALG_AUTH, int(SADB_AALG.SHA1HMAC)),
    "hmac-sha2-256": (T.ALG_AUTH, int(SADB_AALG.X_SHA2_256)),
    "hmac-sha2-384": (T.ALG_AUTH, int(SADB_AALG.X_SHA2_384)),
    "hmac-sha2-512": (T.ALG_AUTH, int(SADB_AALG.X_SHA2_512)),
    "aes-xcbc-mac": (T.ALG_AUTH, int(SADB_AALG.X_AES_XCBC_MAC)),
    "tcp-md5": (T.ALG_AUTH, int(SADB_AALG.X_TCP_MD5)),
    "null": (T.ALG_AUTH_NOKEY, int(SADB_AALG.X_NULL)),
}

# <S_ENCALG> names (rules 32-38).  ALG_ENC_SALT marks keys that carry a 4-byte
# salt/nonce after the cipher key.  ``null`` is ALG_ENC (a key token is
# required: ``-E null ""``); DES, 3DES, Blowfish, CAST and Camellia are gone.
_ENC_ALGS: dict[str, tuple[T, int]] = {
    "null": (T.ALG_ENC, int(SADB_EALG.NULL)),
    "simple": (T.ALG_ENC_OLD, int(SADB_EALG.NULL)),
    "rijndael-cbc": (T.ALG_ENC, int(SADB_EALG.X_AESCBC)),
    "aes-cbc": (T.ALG_ENC, int(SADB_EALG.X_AESCBC)),
    "aes-ctr": (T.ALG_ENC_SALT, int(SADB_EALG.X_AESCTR)),
    "aes-gcm-16": (T.ALG_ENC_SALT, int(SADB_EALG.X_AESGCM16)),
    "chacha20-poly1305": (T.ALG_ENC_SALT, int(SADB_EALG.X_CHACHA20POLY1305)),
}

# "-x" rules other than the address flags, by rule number order.
_DASH: dict[str, tuple[int, T]] = {
    "-P": (12, T.F_POLICY), "-A": (22, T.F_AUTH), "-E": (31, T.F_ENC),
    "-C": (39, T.F_COMP), "-R": (43, T.F_RAWCPI), "-m": (44, T.F_MODE),
    "-u": (47, T.F_REQID), "-f": (48, T.F_EXT), "-r": (53, T.F_REPLAY),
    "-lh": (54, T.F_LIFETIME_HARD), "-ls": (55, T.F_LIFETIME_SOFT),
    "-natt": (56, T.F_NATT), "-natt_mtu": (57, T.F_NATT_MTU), "-esn": (58, T.F_ESN),
    "-hwif": (59, T.F_HWIF),
}
_DASH_RE = re.compile(r"-(?:natt_mtu|natt|hwif|esn|lh|ls|[PAECRmufr])")
_AIFLAGS_RE = re.compile(r"-[n46]+")                    # rule 15
_WORD_RE = re.compile(r"[A-Za-z0-9:][A-Za-z0-9:%.\-]*")  # rule 71
_DEC_RE = re.compile(r"[0-9]+")                         # rule 68
_HEX_RE = re.compile(r"0[xX][0-9A-Fa-f]+")              # rule 69
_DIGCOMMA_RE = re.compile(r"[0-9,]+")                   # rule 72
_WS_RE = re.compile(r"[ \t]+")
_QUOTED_RE = re.compile(r'"[^"]*"')                     # rule 70: newlines allowed
_PL_RE = re.compile(r"[A-Za-z0-9:.\-_/ \n\t][A-Za-z0-9:.%\-_/ \n\t]*")
_PL_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:.-_/ \n\t")
_WORD_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:")
# A "-hwif" starting a word inside policy text (model fix, see module doc).
_PL_HWIF_RE = re.compile(r"(?<=[ \t\n])-hwif(?=[ \t\n;]|$)")

ULONG_MAX = (1 << 64) - 1


def strtoul(digits: str, base: int) -> int:
    """C ``strtoul`` on a string of valid digits: clamps at ULONG_MAX (amd64).

    Long digit strings are clamped before conversion (Python refuses to
    convert more than a few thousand digits)."""
    digits = digits.lstrip("0")
    if len(digits) > (20 if base == 10 else 16):
        return ULONG_MAX
    v = int(digits, base) if digits else 0
    return v if v <= ULONG_MAX else ULONG_MAX


def display(yytext: str) -> str:
    """``yytext`` as printf("%s") shows it: cut at the first NUL, bytes read as UTF-8."""
    cut = yytext.split("\0", 1)[0]
    return cut.encode("latin-1").decode("utf-8", "replace")


class LexFatal(Exception):
    """token.l's ``yyfatal("Syntax error")``: the caller turns it into the
    parse error (the lexer knows nothing about statements)."""

    def __init__(self, yytext: str, lineno: int) -> None:
        super().__init__(f"line {lineno}: Syntax error at [{display(yytext)}]")
        self.yytext = yytext
        self.lineno = lineno


class SetkeyLexer:
    """The scanner; ``next()`` is ``yylex()``.

    ``lineno`` and ``yytext`` are the globals setkey prints; they change only
    when a token is scanned, which is why the parser reads a lookahead token
    exactly when byacc would.
    """

    def __init__(self, text: str, *, hwif_spd_quirk: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.lineno = 1
        self.yytext = ""
        self.state = S.INITIAL
        self._more = ""              # pending yymore() prefix
        self._hwif_spd_quirk = hwif_spd_quirk
        self._hwif_next = False      # model fix: "-hwif" cut out of policy text comes next

    # -- helpers -------------------------------------------------------------

    def _emit(self, kind: T, value: TokenValue, matched: str, end: int) -> Token:
        text = self._more + matched
        self._more = ""
        self.pos = end
        self.yytext = text
        return Token(kind, value, text, self.lineno)

    def _absorb(self, matched: str, end: int) -> None:
        """A rule without return (blanks, comments): consumes a pending yymore."""
        self._more = ""
        self.pos = end

    def _fatal(self, ch: str) -> LexFatal:
        self.yytext = self._more + ch
        self._more = ""
        return LexFatal(self.yytext, self.lineno)

    # -- yylex ---------------------------------------------------------------

    def next(self) -> Token:
        text = self.text
        n = len(text)
        while True:
            pos = self.pos
            if pos >= n:
                # flex at EOF: yytext is empty (or the yymore()'d text).
                self.yytext = self._more
                return Token(T.EOF, None, self.yytext, self.lineno)
            c = text[pos]
            if self.state == S.PL and not self._hwif_next:
                tok = self._next_pl(c, pos)
                if tok is not None:
                    return tok
                continue
            if c == " " or c == "\t":
                m = _WS_RE.match(text, pos)
                assert m is not None
                self._absorb(m.group(), m.end())
                continue
            if c == "\n":
                self.lineno += 1
                self._absorb(c, pos + 1)
                continue
            if c == "#":
                end = text.find("\n", pos)
                self._absorb("", n if end < 0 else end)
                continue
            return self._next_token(c, pos)

    def _next_pl(self, c: str, pos: int) -> Optional[Token]:
        """One scan in S_PL; None when a rule matched without returning."""
        text = self.text
        if c == ";":
            # <S_PL>{semi} comes before {semi}: back to INITIAL.
            self.state = S.INITIAL
            return self._emit(T.EOT, None, c, pos + 1)
        if c == "#":
            end = text.find("\n", pos)
            self._absorb("", len(text) if end < 0 else end)
            return None
        if c not in _PL_FIRST:
            return self._next_token(c, pos)
        m = _PL_RE.match(text, pos)
        assert m is not None
        pl = m.group()
        # Earlier whole-word rules win a tie with the policy rule: "-P" (12)
        # and the command keywords (1-11), e.g. "-Pin" vs "-Padd".
        if pl == "-P":
            return self._emit(T.F_POLICY, None, pl, m.end())
        kw = _WORDS.get(pl)
        if kw is not None and kw[0] < _RULE_PL:
            return self._emit(kw[1], kw[2], pl, m.end())
        if c.isdigit():
            dc = _DIGCOMMA_RE.match(text, pos)
            if dc is not None and dc.end() > m.end():
                return self._emit(T.STRING, dc.group(), dc.group(), dc.end())
        if not self._hwif_spd_quirk:
            h = _PL_HWIF_RE.search(pl)
            if h is not None:
                pl = pl[:h.start()]
                self._hwif_next = True
        self.lineno += pl.count("\n")
        tok = self._emit(T.PL_REQUESTS, pl, pl, pos + len(pl))
        self._more = pl          # yymore(): the next token's yytext starts here
        return tok

    def _next_token(self, c: str, pos: int) -> Token:
        """One token by the rules active in every start condition."""
        text = self.text
        if c in _WORD_FIRST:
            return self._word(c, pos)
        if c == "-":
            return self._dash(pos)
        if c == ";":
            return self._emit(T.EOT, None, c, pos + 1)
        if c == "/":
            return self._emit(T.SLASH, None, c, pos + 1)
        if c == "[":
            return self._emit(T.BLCL, None, c, pos + 1)
        if c == "]":
            return self._emit(T.ELCL, None, c, pos + 1)
        if c == '"':
            m = _QUOTED_RE.match(text, pos)
            if m is not None:
                body = m.group()[1:-1]
                more = self._more
                tok = self._emit(T.QUOTEDSTRING, body.encode("latin-1"), m.group(), m.end())
                # The action NULs the first '"' after yytext[0] and does
                # yytext++: normally that leaves the key's contents; after a
                # yymore() it cuts at the *opening* quote instead.
                self.yytext = more[1:] if more else body
                return tok._replace(yytext=self.yytext)
        if c == ",":
            m = _DIGCOMMA_RE.match(text, pos)
            assert m is not None
            return self._emit(T.STRING, m.group(), m.group(), m.end())
        raise self._fatal(c)

    def _word(self, c: str, pos: int) -> Token:
        text = self.text
        m = _WORD_RE.match(text, pos)
        assert m is not None
        word = m.group()
        end = m.end()
        if c.isdigit():
            dc = _DIGCOMMA_RE.match(text, pos)
            assert dc is not None
            if dc.end() > end:
                return self._emit(T.STRING, dc.group(), dc.group(), dc.end())
            d = _DEC_RE.match(text, pos)
            assert d is not None
            if d.end() == end:
                return self._emit(T.DECSTRING, strtoul(word, 10), word, end)
            h = _HEX_RE.match(text, pos)
            if h is not None and h.end() == end:
                return self._emit(T.HEXSTRING, word[2:], word, end)
            return self._emit(T.STRING, word, word, end)
        # Algorithm names come first in their start condition (rules 23-38
        # precede every whole-word rule they could tie with).
        if self.state == S.AUTHALG:
            alg = _AUTH_ALGS.get(word)
            if alg is not None:
                self.state = S.INITIAL
                return self._emit(alg[0], alg[1], word, end)
        elif self.state == S.ENCALG:
            alg = _ENC_ALGS.get(word)
            if alg is not None:
                self.state = S.INITIAL
                return self._emit(alg[0], alg[1], word, end)
        kw = _WORDS.get(word)
        if kw is not None:
            return self._emit(kw[1], kw[2], word, end)
        return self._emit(T.STRING, word, word, end)

    def _dash(self, pos: int) -> Token:
        text = self.text
        best_len, best_rule, best_kind = 0, 1000, T.EOF
        m = _DASH_RE.match(text, pos)
        if m is not None:
            # The alternation lists longer spellings first, so this is the
            # longest fixed "-x" word that matches here.
            best_len = m.end() - pos
            best_rule, best_kind = _DASH[m.group()]
        f = _AIFLAGS_RE.match(text, pos)
        if f is not None and (f.end() - pos > best_len
                              or (f.end() - pos == best_len and 15 < best_rule)):
            return self._emit(T.F_AIFLAGS, f.group(), f.group(), f.end())
        if best_len == 0:
            raise self._fatal("-")
        word = text[pos:pos + best_len]
        if best_kind == T.F_HWIF and self._hwif_next:
            # The "-hwif" cut out of policy text ends the policy: the name
            # and the ";" are scanned by the INITIAL rules.
            self._hwif_next = False
            self.state = S.INITIAL
        elif best_kind == T.F_POLICY:
            self.state = S.PL
        elif best_kind == T.F_AUTH:
            self.state = S.AUTHALG
        elif best_kind == T.F_ENC:
            self.state = S.ENCALG
        return self._emit(best_kind, None, word, pos + best_len)


def to_scanner_text(script: Union[str, bytes]) -> str:
    """Script text as the scanner sees it: one character per input byte."""
    if isinstance(script, str):
        script = script.encode("utf-8", "surrogateescape")
    return script.decode("latin-1")


__all__ = ["T", "S", "Token", "SetkeyLexer", "LexFatal", "display", "strtoul",
           "to_scanner_text", "ULONG_MAX"]
