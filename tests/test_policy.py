"""setkey's ``-P`` policy text: pfkey/policy.py against libipsec.

FreeBSD facts are from lib/libipsec/policy_token.l (lexer),
lib/libipsec/policy_parse.y (grammar, rule_check, set_x_request,
parse_sockaddr, ipsec_set_policy), lib/libipsec/ipsec_strerror.[ch],
lib/libc/net/getaddrinfo.c, lib/libc/inet/inet_addr.c and
sys/netipsec/key.c (key_msg2sp, for what the kernel refuses later);
reference pfkey_setkey_reference.md §D.2.
"""

from __future__ import annotations

import pickle
import re
import struct
from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pfkey.extensions import IpsecRequest, SadbXPolicy, Sockaddr
from pfkey.ipsec import (
    IPPROTO_AH, IPPROTO_ESP, IPPROTO_IPCOMP, IPPROTO_TCP, IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE,
    IPSEC_POLICY,
)
from pfkey.ipsec_strerror import EIPSEC, IPSEC_ERRMSG, ipsec_strerror
from pfkey.policy import (
    PolicyError, inet_aton, ipsec_get_policylen, ipsec_set_policy, ipsec_set_policy_buf,
)
from shared_corpus import SETKEY_CORPUS as CORPUS

IN, OUT = IPSEC_DIR.INBOUND, IPSEC_DIR.OUTBOUND
TRANSPORT, TUNNEL = IPSEC_MODE.TRANSPORT, IPSEC_MODE.TUNNEL
DEFAULT, USE, REQUIRE, UNIQUE = (IPSEC_LEVEL.DEFAULT, IPSEC_LEVEL.USE, IPSEC_LEVEL.REQUIRE,
                                 IPSEC_LEVEL.UNIQUE)


def no_ifaces(name: str) -> int:
    return 0


def policy(text: str, **kw: Any) -> SadbXPolicy:
    kw.setdefault("if_nametoindex", no_ifaces)
    return ipsec_set_policy(text, **kw)


def fails(text: str, **kw: Any) -> PolicyError:
    kw.setdefault("if_nametoindex", no_ifaces)
    with pytest.raises(PolicyError) as info:
        ipsec_set_policy(text, **kw)
    return info.value


def req(proto: int, mode: int, level: int, reqid: int = 0, src: Optional[str] = None,
        dst: Optional[str] = None) -> IpsecRequest:
    return IpsecRequest(proto, mode, level, reqid,
                        None if src is None else Sockaddr.from_ip(src),
                        None if dst is None else Sockaddr.from_ip(dst))


# ---------------------------------------------------------------------------
# ipsec_strerror
# ---------------------------------------------------------------------------

def test_ipsec_errmsg_table() -> None:
    """ipsec_strerror.c: 28 entries, FreeBSD's texts (including the
    "direciton" typo); entry 26 is filled at run time; out of range reads
    EIPSEC_MAX."""
    assert len(IPSEC_ERRMSG) == 28 == EIPSEC.MAX + 1
    assert IPSEC_ERRMSG[EIPSEC.NO_ERROR] == "Success"
    assert IPSEC_ERRMSG[EIPSEC.INVAL_ARGUMENT] == "Invalid argument"
    assert IPSEC_ERRMSG[EIPSEC.INVAL_ADDRESS] == "Invalid address specification"
    assert IPSEC_ERRMSG[EIPSEC.INVAL_DIR] == "Invalid direciton"
    assert IPSEC_ERRMSG[EIPSEC.DO_GET_SUPP_LIST] == "Must get supported algorithms list first"
    assert IPSEC_ERRMSG[EIPSEC.FAMILY_MISMATCH] == "Family mismatch"
    assert IPSEC_ERRMSG[EIPSEC.FEW_ARGUMENTS] == "Too few arguments"
    assert IPSEC_ERRMSG[EIPSEC.SYSTEM_ERROR] is None
    assert IPSEC_ERRMSG[EIPSEC.MAX] == "Unknown error"
    assert all(isinstance(t, str) for i, t in enumerate(IPSEC_ERRMSG) if i != 26)
    assert ipsec_strerror(99) == ipsec_strerror(-1) == "Unknown error"
    assert ipsec_strerror(26, "boom") == "boom"
    assert ipsec_strerror(26) == "(null)"


def test_policy_error_carries_code_text_token() -> None:
    """What setkey needs for ``line N: <ipsec_strerror()> at [...]``."""
    e = fails("out prio 100 none")
    assert (e.code, e.text, str(e), e.token) == (EIPSEC.INVAL_ARGUMENT, "Invalid argument",
                                                 "Invalid argument", "prio")
    assert e.diagnostic == 'libipsec: syntax error while parsing "prio"'
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.code, copy.text, copy.token, copy.diagnostic) == (
        e.code, e.text, e.token, e.diagnostic)


# ---------------------------------------------------------------------------
# Accepted forms
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,dir", [("in", IN), ("out", OUT), (" out\n", OUT)])
def test_direction_alone_is_type_zero(text: str, dir: int) -> None:
    """policy_spec: DIR -- p_type = 0 ("ignored by kernel"): what setkey's
    ``spddelete ... -P out;`` sends; a 16-byte extension."""
    p = policy(text)
    assert p == SadbXPolicy(IPSEC_POLICY.DISCARD, dir)
    assert ipsec_set_policy_buf(text) == struct.pack("<HHHBBII", 2, 18, 0, dir, 0, 0, 0)


@pytest.mark.parametrize("word,ptype", [
    ("discard", IPSEC_POLICY.DISCARD), ("none", IPSEC_POLICY.NONE),
    ("ipsec", IPSEC_POLICY.IPSEC), ("entrust", IPSEC_POLICY.ENTRUST),
    ("bypass", IPSEC_POLICY.BYPASS)])
@pytest.mark.parametrize("dword,dir", [("in", IN), ("out", OUT)])
def test_actions(word: str, ptype: int, dword: str, dir: int) -> None:
    """policy_token.l ACTION tokens; priority, scope and id stay 0
    (init_x_policy).  (key_spdadd later refuses entrust and bypass.)"""
    p = policy(f"{dword} {word}")
    assert (p.type, p.dir, p.id, p.priority, p.scope, p.requests) == (ptype, dir, 0, 0, 0, ())


@pytest.mark.parametrize("rule,want", [
    ("esp/tunnel/10.0.0.1-10.0.0.2/require", req(IPPROTO_ESP, TUNNEL, REQUIRE, 0,
                                                 "10.0.0.1", "10.0.0.2")),
    ("esp/tunnel/10.0.0.1-10.0.0.2/", req(IPPROTO_ESP, TUNNEL, DEFAULT, 0,
                                          "10.0.0.1", "10.0.0.2")),
    ("esp/tunnel/10.0.0.1-10.0.0.2", req(IPPROTO_ESP, TUNNEL, DEFAULT, 0,
                                         "10.0.0.1", "10.0.0.2")),
    ("esp/transport/", req(IPPROTO_ESP, TRANSPORT, DEFAULT)),
    ("esp/transport//use", req(IPPROTO_ESP, TRANSPORT, USE)),
    ("esp/transport", req(IPPROTO_ESP, TRANSPORT, DEFAULT)),
    ("ah/transport/10.0.0.1-10.0.0.2/require", req(IPPROTO_AH, TRANSPORT, REQUIRE, 0,
                                                   "10.0.0.1", "10.0.0.2")),
    ("ipcomp/tunnel/2001:db8::1-2001:db8::2/use", req(IPPROTO_IPCOMP, TUNNEL, USE, 0,
                                                      "2001:db8::1", "2001:db8::2")),
    ("tcp/transport//require", req(IPPROTO_TCP, TRANSPORT, REQUIRE)),
    ("esp / transport / / require", req(IPPROTO_ESP, TRANSPORT, REQUIRE)),
])
def test_request_forms(rule: str, want: IpsecRequest) -> None:
    """policy_parse.y ``rule``: p/m/a-b/level, p/m/a-b/, p/m/a-b (level
    default), p/m/, p/m//level, p/m; blanks may separate every token.
    ``tcp`` is lexed (key_msg2sp answers EPROTONOSUPPORT later)."""
    p = policy("out ipsec " + rule)
    assert p.requests == (want,)
    assert p.trailer == b""


@pytest.mark.parametrize("level,want_level,reqid", [
    ("default", DEFAULT, 0), ("use", USE, 0), ("require", REQUIRE, 0), ("unique", UNIQUE, 0),
    ("unique:1", UNIQUE, 1), ("unique:0", UNIQUE, 0), ("unique:16383", UNIQUE, 0x3FFF),
    ("unique:28000", UNIQUE, 28000), ("unique:65537", UNIQUE, 1),
    ("unique:00042", UNIQUE, 42), ("unique:99999999999999999999999", UNIQUE, 0xFFFF)])
def test_levels(level: str, want_level: int, reqid: int) -> None:
    """LEVEL / LEVEL_SPECIFY: ``unique:N`` sets UNIQUE with reqid atol(N)
    stored in the 16-bit field (atol saturates at LONG_MAX).  reqids above
    IPSEC_MANUAL_REQID_MAX are passed on; key_msg2sp replaces them."""
    (r,) = policy(f"in ipsec esp/transport//{level}").requests
    assert (r.level, r.reqid) == (want_level, reqid)


def test_me_any_and_any_me() -> None:
    """addresses: ME HYPHEN ANY (outbound only) / ANY HYPHEN ME (inbound
    only) carry no addresses: an 8-byte request."""
    assert policy("out ipsec esp/transport/me-any/require").requests == (
        req(IPPROTO_ESP, TRANSPORT, REQUIRE),)
    assert policy("in ipsec ah/transport/any-me/unique:3").requests == (
        req(IPPROTO_AH, TRANSPORT, UNIQUE, 3),)
    assert len(ipsec_set_policy_buf("out ipsec esp/transport/me-any/require")) == 24


def test_bundles_and_no_request_limit_in_libipsec() -> None:
    """rules: rules rule -- any number of requests, in order.  libipsec has
    no limit; key_msg2sp refuses a fifth (tcount >= IPSEC_MAXREQ: EINVAL)."""
    four = policy("out ipsec esp/tunnel/10.0.0.1-10.0.0.2/require ah/transport//require\n"
                  "\tipcomp/transport//use esp/transport//unique:7")
    assert [(r.proto, r.mode, r.level, r.reqid) for r in four.requests] == [
        (IPPROTO_ESP, TUNNEL, REQUIRE, 0), (IPPROTO_AH, TRANSPORT, REQUIRE, 0),
        (IPPROTO_IPCOMP, TRANSPORT, USE, 0), (IPPROTO_ESP, TRANSPORT, UNIQUE, 7)]
    five = policy("out ipsec " + " ".join(["esp/transport//require"] * 5))
    assert len(five.requests) == 5
    assert ipsec_get_policylen(five) == 16 + 5 * 8


def test_requests_after_non_ipsec_actions_are_kept() -> None:
    """``DIR ACTION rules`` for every action; rule_check only checks ipsec
    policies, so a tunnel without addresses passes under ``none``."""
    p = policy("out none esp/tunnel//require ah/transport//use")
    assert p.type == IPSEC_POLICY.NONE
    assert p.requests == (req(IPPROTO_ESP, TUNNEL, REQUIRE), req(IPPROTO_AH, TRANSPORT, USE))


def test_exact_bytes_ipv4_tunnel() -> None:
    """init_x_policy + set_x_request: header len = total/8; request len the
    exact 8 + 16 + 16; sockaddr_in from getaddrinfo with port 0."""
    buf = ipsec_set_policy_buf("out ipsec esp/tunnel/192.168.0.1-192.168.1.2/require")
    sin = lambda a: bytes([16, 2, 0, 0]) + bytes(a) + bytes(8)  # noqa: E731
    assert buf == (struct.pack("<HHHBBII", 7, 18, 2, 2, 0, 0, 0)
                   + struct.pack("<HHBBH", 40, 50, 2, 2, 0)
                   + sin([192, 168, 0, 1]) + sin([192, 168, 1, 2]))
    p = SadbXPolicy.unpack(18, buf, 0, len(buf))
    assert p.pack() == buf == policy("out ipsec esp/tunnel/192.168.0.1-192.168.1.2/require").pack()
    assert ipsec_get_policylen(buf) == ipsec_get_policylen(p) == 56


def test_exact_bytes_ipv6_tunnel_and_transport_bundle() -> None:
    """IPv6 requests are 8 + 28 + 28 = 64 bytes, address-less ones 8."""
    buf = ipsec_set_policy_buf("in ipsec esp/tunnel/2001:db8::2-2001:db8::1/unique:5 "
                               "ah/transport//require")
    assert struct.unpack_from("<HHHBBII", buf) == (11, 18, 2, 1, 0, 0, 0)
    assert struct.unpack_from("<HHBBH", buf, 16) == (64, 50, 2, 3, 5)
    assert buf[24:26] == bytes([28, 28]) and buf[52:54] == bytes([28, 28])
    assert struct.unpack_from("<HHBBH", buf, 80) == (8, 51, 1, 2, 0)
    assert len(buf) == 88


def test_mixed_families_outside_ipsec_are_cut_by_the_header_length() -> None:
    """Without rule_check's family test (non-ipsec policy) the request is
    8 + 16 + 28 = 52 bytes; sadb_x_policy_len = 68 >> 3 = 8 units, and setkey
    sends only ipsec_get_policylen() = 64 bytes."""
    buf = ipsec_set_policy_buf("out none esp/tunnel/10.0.0.1-::1/require")
    assert len(buf) == 64 and struct.unpack_from("<H", buf)[0] == 8
    assert struct.unpack_from("<HH", buf, 16) == (52, 50)
    p = policy("out none esp/tunnel/10.0.0.1-::1/require")
    assert p.requests == () and p.trailer == buf[16:] and p.pack() == buf


# ---------------------------------------------------------------------------
# Addresses: getaddrinfo(AI_NUMERICHOST)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text,addr", [
    ("10.1.2.3", "10.1.2.3"), ("10.1", "10.0.0.1"), ("10.1.2", "10.1.0.2"),
    ("167772161", "10.0.0.1"), ("0x0a000001", "10.0.0.1"), ("012.0.0.1", "10.0.0.1"),
    ("0X0A.0x1.0.0", "10.1.0.0"), ("4294967297", "0.0.0.1"),
    ("2001:db8::1", "2001:db8::1"), ("::", "::"), ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
])
def test_numeric_address_forms(text: str, addr: str) -> None:
    """parse_sockaddr: getaddrinfo(PF_UNSPEC, AI_NUMERICHOST); IPv4 goes
    through inet_aton (a, a.b, a.b.c, 0x and octal parts)."""
    (r,) = policy(f"out ipsec esp/tunnel/{text}-{text}/require").requests
    assert r.src == r.dst == Sockaddr.from_ip(addr)


@pytest.mark.parametrize("text", [
    "gw.example.com", "localhost", "1.2.3.256", "08.0.0.1", "1.2.3.4.5", "256.1.1.1",
    "1.2.3.4%1", "2001:db8::1%em0", "fe80::1%nosuchif", "1.2.3.0x100",
    "0x", "2001:db8:::1", "1:2:3:4:5:6:7:8:9"])
def test_non_numeric_addresses_are_refused(text: str) -> None:
    """AI_NUMERICHOST: anything else is EAI_NONAME; parse_sockaddr prints
    "invalid IP address" and sets EIPSEC_SYSTEM_ERROR to gai_strerror()."""
    e = fails(f"out ipsec esp/tunnel/{text}-10.0.0.2/require")
    assert e.code == EIPSEC.SYSTEM_ERROR
    assert e.text == "hostname nor servname provided, or not known"
    assert e.token == text
    assert e.diagnostic == f'libipsec: invalid IP address while parsing "{text}"'


def test_destination_address_checked_too() -> None:
    """The second parse_sockaddr runs as soon as the dst token is read."""
    e = fails("out ipsec esp/tunnel/10.0.0.1-bogus/require")
    assert (e.code, e.token) == (EIPSEC.SYSTEM_ERROR, "bogus")


def test_ipv6_scope_ids() -> None:
    """getaddrinfo's ip6_str2scopeid: link-local (and multicast link/node
    local) scopes take an interface name or a number; other addresses only
    a number.  The scope lands in sin6_scope_id."""
    idx = {"em0": 4, "vlan10": 9}.get
    look = lambda n: idx(n) or 0  # noqa: E731
    (r,) = policy("out ipsec esp/tunnel/fe80::1%em0-fe80::2%7/require",
                  if_nametoindex=look).requests
    assert (r.src.scope_id, r.dst.scope_id) == (4, 7)
    (r,) = policy("out ipsec esp/tunnel/ff02::1%vlan10-2001:db8::1%3/require",
                  if_nametoindex=look).requests
    assert (r.src.scope_id, r.dst.scope_id) == (9, 3)
    e = fails("out ipsec esp/tunnel/2001:db8::1%em0-2001:db8::2/require", if_nametoindex=look)
    assert e.code == EIPSEC.SYSTEM_ERROR


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["out ipsec esp", "out ipsec esp/", "in ipsec ah",
                                  "out ipsec esp ah/transport//require",
                                  "out ipsec esp/ ah/transport//require", "out ipsec esp/esp",
                                  "out ipsec esp/transport//require ipcomp"])
def test_too_few_arguments(text: str) -> None:
    """rule: protocol | protocol SLASH -- EIPSEC_FEW_ARGUMENTS."""
    e = fails(text)
    assert (e.code, e.text, e.diagnostic) == (EIPSEC.FEW_ARGUMENTS, "Too few arguments", None)


@pytest.mark.parametrize("text", [
    "out ipsec esp/tunnel", "out ipsec esp/tunnel/", "out ipsec esp/tunnel//require",
    "out ipsec esp/tunnel/me-any/require", "in ipsec ah/tunnel/any-me",
    "out ipsec esp/transport//require esp/tunnel//use"])
def test_tunnel_without_addresses(text: str) -> None:
    """rule_check: an ipsec request in tunnel mode needs addresses --
    EIPSEC_INVAL_ADDRESS."""
    e = fails(text)
    assert (e.code, e.text) == (EIPSEC.INVAL_ADDRESS, "Invalid address specification")


def test_family_mismatch() -> None:
    """rule_check: src and dst families differ -- EIPSEC_FAMILY_MISMATCH."""
    e = fails("out ipsec esp/tunnel/10.0.0.1-2001:db8::1/require")
    assert (e.code, e.text) == (EIPSEC.FAMILY_MISMATCH, "Family mismatch")
    e = fails("in ipsec esp/transport/2001:db8::1-10.0.0.1")
    assert e.code == EIPSEC.FAMILY_MISMATCH


@pytest.mark.parametrize("text", ["in ipsec esp/transport/me-any/require",
                                  "out ipsec esp/transport/any-me/require",
                                  "in ipsec esp/transport/me-any"])
def test_me_any_in_the_wrong_direction(text: str) -> None:
    """addresses: me-any needs IPSEC_DIR_OUTBOUND, any-me INBOUND --
    EIPSEC_INVAL_DIR, whose FreeBSD text is misspelt."""
    e = fails(text)
    assert (e.code, e.text) == (EIPSEC.INVAL_DIR, "Invalid direciton")


@pytest.mark.parametrize("text,token", [
    ("out prio 100 none", "prio"),
    ("in prio 100 none", "prio"),
    ("out priority 1 none", "priority"),
    ("out prio def + 5 ipsec esp/transport//require", "prio"),
    ("out prio 2000 ipsec esp/tunnel/10.23.4.104-10.23.4.204/require", "prio"),
    ("out ipsec prio 10 esp/transport//require", "prio"),
])
def test_linux_priority_forms_are_refused(text: str, token: str) -> None:
    """FreeBSD's policy_parse.y has no priority syntax (ipsec-tools' ``prio``
    / ``priority`` / ``prio def + N``): a byacc syntax error, reported as
    "Invalid argument" by ipsec_set_policy."""
    e = fails(text)
    assert (e.code, e.text, e.token) == (EIPSEC.INVAL_ARGUMENT, "Invalid argument", token)
    assert e.diagnostic == f'libipsec: syntax error while parsing "{token}"'


@pytest.mark.parametrize("text,token", [
    ("", ""), ("ipsec", "ipsec"), ("fwd ipsec esp/transport//require", "fwd"),
    ("OUT ipsec", "OUT"), ("out IPsec", "IPsec"), ("inbound none", "inbound"),
    ("out in", "in"), ("out ipsec in", "in"), ("out ipsec esp/transport//", ""),
    ("out ipsec esp/transport/require", "require"), ("out ipsec esp/in", "in"),
    ("out ipsec esp/any/require", "any"), ("out ipsec esp/tunnel/10.0.0.1/require", "/"),
    ("out ipsec esp/tunnel/10.0.0.1-", ""), ("out ipsec esp/transport//unique:1x", "unique:1x"),
    ("out ipsec esp/transport//require/", "/"), ("out ipsec esp/transport/me/require", "/"),
    ("out ipsec esp/transport/me-me/require", "me"), ("out ipsec esp/transport/any-any", "any"),
    ("out ipsec esp/tunnel/1.2.3.4-5.6.7.8/require/use", "/"),
    ("out ipsec esp/tunnel garbage", "garbage"), ("out none none", "none"),
])
def test_syntax_errors(text: str, token: str) -> None:
    """byacc "syntax error" at the offending token (empty at end of input);
    __ipsec_errcode is still "no error", so ipsec_set_policy reports
    EIPSEC_INVAL_ARGUMENT."""
    e = fails(text)
    assert (e.code, e.text, e.token) == (EIPSEC.INVAL_ARGUMENT, "Invalid argument", token)
    assert e.diagnostic == f'libipsec: syntax error while parsing "{token}"'


@pytest.mark.parametrize("text,code", [
    # complete rules reduce before the next token is read: their checks win
    ("out ipsec esp/tunnel//require garbage", EIPSEC.INVAL_ADDRESS),
    ("in ipsec esp/transport/me-any garbage", EIPSEC.INVAL_DIR),
    ("out ipsec esp/tunnel/10.0.0.1-::1/require garbage", EIPSEC.FAMILY_MISMATCH),
    ("out ipsec esp/tunnel/nope-x/require", EIPSEC.SYSTEM_ERROR),
    # rules that could still grow read the next token first: syntax error
    ("out ipsec esp/tunnel in", EIPSEC.INVAL_ARGUMENT),
    ("out ipsec esp/tunnel/ in", EIPSEC.INVAL_ARGUMENT),
    ("out ipsec esp/tunnel/10.0.0.1-::1 in", EIPSEC.INVAL_ARGUMENT),
    ("out ipsec esp/tunnel/10.0.0.1-::1/ in", EIPSEC.INVAL_ARGUMENT),
    ("out ipsec esp in", EIPSEC.INVAL_ARGUMENT),
    # ... and an address token there is parsed as an address first
    ("out ipsec esp/tunnel/ garbage", EIPSEC.SYSTEM_ERROR),
])
def test_which_error_wins_follows_byacc(text: str, code: int) -> None:
    """byacc performs a rule's action without reading a lookahead only when
    the state has a single reduction; otherwise the next token is read (and
    may be a syntax error) before rule_check runs."""
    assert fails(text).code == code


# ---------------------------------------------------------------------------
# Lexer details
# ---------------------------------------------------------------------------

def test_blanks_tabs_newlines_separate_tokens() -> None:
    """policy_token.l: {ws} = [ \\t]+ and {nl} are skipped."""
    p = policy("\n out\t\tipsec\n\tesp/tunnel/10.0.0.1-10.0.0.2/require\n\n"
               "  ah/transport//require \n")
    assert [r.proto for r in p.requests] == [IPPROTO_ESP, IPPROTO_AH]


def test_unmatched_characters_are_echoed_and_skipped() -> None:
    """flex's default rule ECHOes a character no rule matches (to stdout)
    and the scan goes on: ``+`` and ``[`` do not stop the parse by
    themselves."""
    seen: list[str] = []
    p = ipsec_set_policy("out + ipsec esp/transport//require,", echo=seen.append)
    assert p.type == IPSEC_POLICY.IPSEC and len(p.requests) == 1
    assert seen == ["+", ","]
    seen.clear()
    p = ipsec_set_policy("out ipsec esp/tunnel/2001:db8::1%-2001:db8::2/require",
                         echo=seen.append)
    assert p.requests[0].src == Sockaddr.from_ip("2001:db8::1") and seen == ["%"]
    seen.clear()
    e = fails("out ipsec esp/tunnel/192.168.1.50[4500]-203.0.113.1[4500]/require",
              echo=seen.append)
    assert (e.code, e.token, seen) == (EIPSEC.INVAL_ARGUMENT, "4500", ["["])


def test_text_ends_at_nul() -> None:
    """yy_scan_string reads a C string."""
    assert policy("out\0 ipsec esp/transport//require") == SadbXPolicy(0, OUT)


def test_inet_aton_edge_cases() -> None:
    """inet_aton: 8/9 are not octal digits; parts above 255 before the last
    are refused; the last part fills the remaining bits; ``0x`` alone in a
    non-final part counts as 0 (only the last part must have a digit)."""
    assert inet_aton("1.2.3.4") == bytes([1, 2, 3, 4])
    assert inet_aton("1.65535") == bytes([1, 0, 255, 255])
    assert inet_aton("1.16777216") is None and inet_aton("1.256.1") is None
    assert inet_aton("1.16777215") == bytes([1, 255, 255, 255])
    assert inet_aton("1.2.65535") == bytes([1, 2, 255, 255])
    assert inet_aton("09") is None and inet_aton("07") == bytes([0, 0, 0, 7])
    assert inet_aton("0x.1.2.3") == bytes([0, 1, 2, 3])
    assert inet_aton("1.2.3.0x") is None
    assert inet_aton("") is None and inet_aton(".1") is None


_PART = st.one_of(
    st.tuples(st.booleans(), st.integers(0, 300)).map(lambda t: ("0" if t[0] else "") + str(t[1])),
    st.sampled_from(["0", "00", "08", "0x1f", "1f", "", "-1", "1e3"]))


@given(st.one_of(st.lists(_PART, min_size=4, max_size=4), st.lists(_PART, min_size=1,
                                                                   max_size=5)))
def test_inet_aton_fast_path_agrees_with_the_full_parse(parts: list[object]) -> None:
    """inet_aton's dotted-quad shortcut (four plain decimal parts) gives
    exactly what the full C-style parse gives, for any text of parts."""
    text = ".".join(str(p) for p in parts)
    assert inet_aton(text) == _inet_aton_full(text)


def _inet_aton_full(text: str) -> object:
    """A reference inet_aton written from FreeBSD's rules (C-style 0x and
    octal parts, the last part filling the remaining bytes, a bare "0x"
    counting as 0 except as the last part)."""
    if not text:
        return None
    vals = []
    pieces = text.split(".")
    if pieces[-1] in ("0x", "0X"):
        return None
    for part in pieces:
        if not part:
            return None
        try:
            if part[:2] in ("0x", "0X"):
                v = int(part[2:], 16) if part[2:] else 0
            elif part.startswith("0"):
                v = int(part, 8)
            elif part.isdigit():
                v = int(part)
            else:
                return None
        except ValueError:
            return None
        vals.append(v)
    if len(vals) > 4 or any(v > 255 for v in vals[:-1]):
        return None
    last = vals[-1]
    if last >= 1 << (8 * (5 - len(vals))):
        return None
    return bytes(vals[:-1]) + last.to_bytes(5 - len(vals), "big")


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

_SETKEY_PL = re.compile(r"-P([A-Za-z0-9:.\-_/ \t\n%]*)(.?)")
_LINUX_PRIO = re.compile(r"\s*(in|out)\s+(prio|priority)\b")


def _strip_comments(text: str) -> str:
    out = []
    for line in text.split("\n"):
        quoted = False
        keep = []
        for ch in line:
            if ch == '"':
                quoted = not quoted
            if ch == "#" and not quoted:
                break
            keep.append(ch)
        out.append("".join(keep))
    return "\n".join(out)


def corpus_policies() -> list[tuple[str, str]]:
    """(file, text) for each ``-P`` text setkey's lexer hands to
    ipsec_set_policy: the run of its policy characters up to ``;``.  (Texts
    stopped by another character -- ``[``, ``\\`` -- never reach libipsec:
    setkey's own lexer fails first.)"""
    found = []
    for path in sorted(CORPUS.glob("*.conf")):
        text = _strip_comments(path.read_text(encoding="utf-8"))
        for m in _SETKEY_PL.finditer(text):
            if m.group(2) == ";":
                found.append((path.name, m.group(1)))
    return found


_CORPUS = corpus_policies()


def test_corpus_has_policies() -> None:
    """The extraction finds the corpus's -P texts (setkey token.l S_PL state)."""
    assert len(_CORPUS) > 90
    assert {f[:2] for f, _ in _CORPUS} >= {"01", "04", "26", "37", "42", "43", "52"}


@pytest.mark.parametrize("name,text", _CORPUS, ids=[f"{n[:2]}:{t.split()[0] if t.split() else ''}"
                                                    for n, t in _CORPUS])
def test_corpus_policy_text(name: str, text: str) -> None:
    """Every corpus ``-P`` text: FreeBSD forms parse (ipsec policies with
    their requests); ipsec-tools' priority forms (files 42, 43, 52) fail
    with "Invalid argument" at the keyword, as FreeBSD's setkey reports."""
    if _LINUX_PRIO.match(text):
        e = fails(text)
        assert e.code == EIPSEC.INVAL_ARGUMENT and e.token in ("prio", "priority")
        return
    p = policy(text)
    words = text.split()
    assert p.dir == (IN if words[0] == "in" else OUT)
    assert p.id == p.priority == p.scope == 0 and p.trailer == b""
    if len(words) == 1:
        assert p.type == IPSEC_POLICY.DISCARD and p.requests == ()
        return
    assert p.type == {"ipsec": 2, "none": 1, "discard": 0}[words[1]]
    assert len(p.requests) == len(words) - 2
    for r in p.requests:
        assert r.mode in (TRANSPORT, TUNNEL) and r.proto in (IPPROTO_ESP, IPPROTO_AH,
                                                             IPPROTO_IPCOMP)
        assert (r.src is None) == (r.mode == TRANSPORT)
        assert r.src is None or (r.src.port == 0 and r.src.family == r.dst.family)


def test_corpus_representative_policies() -> None:
    """Spot checks: bundles (04, 26), unique reqids (37), dir-only (06)."""
    texts = {name[:2]: [] for name, _ in _CORPUS}
    for name, text in _CORPUS:
        texts[name[:2]].append(text)
    p = policy(texts["04"][0])
    assert p.requests == (req(IPPROTO_ESP, TUNNEL, REQUIRE, 0, "fec0:0:0:1::1", "fec0:0:0:2::1"),
                          req(IPPROTO_AH, TRANSPORT, REQUIRE))
    p = policy(texts["26"][0])
    assert p.requests == (req(IPPROTO_IPCOMP, TUNNEL, REQUIRE, 0, "20.0.0.1", "20.0.0.2"),
                          req(IPPROTO_ESP, TRANSPORT, REQUIRE))
    assert [policy(t).requests[0].reqid for t in texts["37"]] == [2, 1, 2, 1, 0, 0, 28000]
    assert [policy(t).requests[0].level for t in texts["37"]] == [UNIQUE] * 5 + [REQUIRE, UNIQUE]
    assert policy(texts["06"][0]) == SadbXPolicy(IPSEC_POLICY.DISCARD, OUT)
    assert policy(texts["01"][0]).requests == (req(IPPROTO_ESP, TRANSPORT, USE),)
