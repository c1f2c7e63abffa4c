"""setkey grammar: pfkey.setkey_lex (token.l), pfkey.setkey_parse (parse.y,
libipsec pfkey.c ipsec_check_keylen) and pfkey.setkey_netdb (getaddrinfo,
getprotobyname as parse.y calls them).

Golden bytes were written by hand from the struct layouts of
pfkey_setkey_reference.md §A.5 and the build order of §D.2 (parse.y
setkeymsg_add / setkeymsg_addr / setkeymsg_spdaddr).  Error texts are
FreeBSD's: byacc's "syntax error", token.l's yyfatal "Syntax error",
parse.y's yyerror strings, libipsec ipsec_strerror and libc gai_strerror, all
printed as ``line N: <msg> at [<yytext>]`` (token.l yyerror) then ``parse
failed, line N.`` (token.l parse()).  No test touches DNS: every parser gets a
static Resolver.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfkey import Message, SadbAlg, SadbSupported, decode
from pfkey.extensions import (
    IpsecRequest, SadbAddress, SadbKey, SadbSa, SadbXIfHwOffl, SadbXPolicy, SadbXSa2,
    SadbXSaReplay, Sockaddr,
)
from pfkey.pfkeyv2 import SADB, SADB_EXT
from pfkey.setkey_lex import S, SetkeyLexer, T, to_scanner_text
from pfkey.setkey_netdb import Resolver, getprotobyname
from pfkey.setkey_parse import (
    FREEBSD_SUPPORTED, Replies, SetkeyParseError, SetkeyParser, Statement, Supported,
    parse_script,
)

PID = 1234
E = SADB_EXT
V4 = Sockaddr.inet
V6 = Sockaddr.inet6

RESOLVER = Resolver(
    hosts={"gw-a": ["192.0.2.1"], "gw-b": ["192.0.2.2"],
           "dual-a": ["10.0.0.1", "2001:db8::1"], "dual-b": ["10.0.0.2", "2001:db8::2"],
           "v6only": ["2001:db8::9"]},
    interfaces={"em0": 1, "mce0": 4})


def parser(**kw: object) -> SetkeyParser:
    kw.setdefault("resolver", RESOLVER)
    return SetkeyParser(pid=PID, **kw)  # type: ignore[arg-type]


def parse(text: str | bytes, **kw: object) -> list[Statement]:
    return parser(**kw).parse_all(text)


def one(text: str, **kw: object) -> Message:
    (stmt,) = parse(text, **kw)
    (msg,) = stmt.messages
    return msg


def fail(text: str | bytes, **kw: object) -> SetkeyParseError:
    with pytest.raises(SetkeyParseError) as info:
        parse(text, **kw)
    return info.value


def h(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


# ---------------------------------------------------------------------------
# Golden bytes
# ---------------------------------------------------------------------------

def test_add_aes_gcm_golden_bytes() -> None:
    """parse.y setkeymsg_add: header, KEY_ENCRYPT (20 bytes = 128-bit key +
    32-bit salt, padded to 24), SA (spi network order, replay 0, state 0,
    encrypt 20, flags CYCSEQ 0x40 set by parse_init), SA2 (mode any, reqid
    0), SRC, DST (/32, proto 255); seq 0, pid from the caller."""
    msg = one('add 198.51.100.2 198.51.100.6 esp 0x1000 -E aes-gcm-16 "12345678901234567890";')
    assert msg.encode() == h(
        "02 03 00 03 1000 0000 00000000 d2040000",
        "0400 0900 a000 0000", b"12345678901234567890".hex(), "00000000",
        "0200 0100 00001000 00 00 00 14 40000000",
        "0200 1300 00 00 0000 00000000 00000000",
        "0300 0500 ff 20 0000 1002 0000 c6336402 0000000000000000",
        "0300 0600 ff 20 0000 1002 0000 c6336406 0000000000000000")


def test_spdadd_tunnel_golden_bytes() -> None:
    """parse.y setkeymsg_spdaddr: header (satype 0), X_POLICY from
    ipsec_set_policy (libipsec: request len 8+16+16 = 40), SRC/DST with the
    /prefix and proto 255 ("any"), port 0."""
    msg = one("spdadd 192.0.2.0/24 203.0.113.0/24 any -P out ipsec "
              "esp/tunnel/198.51.100.2-198.51.100.6/require;")
    assert msg.encode() == h(
        "02 0e 00 00 0f00 0000 00000000 d2040000",
        "0700 1200 0200 02 00 00000000 00000000",
        "2800 3200 02 02 0000",
        "1002 0000 c6336402 0000000000000000", "1002 0000 c6336406 0000000000000000",
        "0300 0500 ff 18 0000 1002 0000 c0000200 0000000000000000",
        "0300 0600 ff 18 0000 1002 0000 cb007100 0000000000000000")


def test_get_ipv6_golden_bytes() -> None:
    """parse.y get_command -> setkeymsg_addr(SADB_GET): SA (decimal spi
    123456, auth/encrypt 0, flags 0x40), SA2, SRC/DST sockaddr_in6 (28 bytes
    padded to 32, /128)."""
    msg = one("get 2001:db8::1 2001:db8::2 ah 123456 ;")
    assert msg.encode() == h(
        "02 05 00 02 1000 0000 00000000 d2040000",
        "0200 0100 0001e240 00 00 00 00 40000000",
        "0200 1300 00 00 0000 00000000 00000000",
        "0500 0500 ff 80 0000 1c1c 0000 00000000 20010db8000000000000000000000001 00000000",
        "00000000",
        "0500 0600 ff 80 0000 1c1c 0000 00000000 20010db8000000000000000000000002 00000000",
        "00000000")


@pytest.mark.parametrize("text, golden", [
    ("flush;", "02 09 00 00 0200 0000 00000000 d2040000"),
    ("flush esp;", "02 09 00 03 0200 0000 00000000 d2040000"),
    ("dump ah ;", "02 0a 00 02 0200 0000 00000000 d2040000"),
    ("dump ipcomp;", "02 0a 00 09 0200 0000 00000000 d2040000"),
    ("flush tcp;", "02 09 00 0b 0200 0000 00000000 d2040000"),
    ("spddump;", "02 12 00 00 0200 0000 00000000 d2040000"),
    ("spdflush;", "02 13 00 00 0200 0000 00000000 d2040000"),
])
def test_header_only_commands(text: str, golden: str) -> None:
    """parse.y flush/dump/spddump/spdflush: setkeymsg0 only, satype from
    protocol_spec (UNSPEC when absent; esp 3, ah 2, ipcomp 9, tcp 11)."""
    assert one(text).encode() == h(golden)


def test_deleteall_and_delete() -> None:
    """parse.y deleteall_command: setkeymsg_addr(SADB_DELETE, no_spi=1):
    SRC and DST only; delete_command keeps SA and SA2."""
    m = one("deleteall 10.0.0.1 10.0.0.2 esp;")
    assert (m.type, m.satype, m.ext_types) == (SADB.DELETE, 3, (E.ADDRESS_SRC, E.ADDRESS_DST))
    m = one("delete 10.0.0.1 10.0.0.2 esp 10020;")
    assert m.ext_types == (E.SA, E.X_SA2, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert m.sa == SadbSa(10020, flags=0x40)


def test_add_full_build_order() -> None:
    """Reference §D.2 / parse.y setkeymsg_add order: KEY_ENCRYPT KEY_AUTH
    LIFETIME_HARD LIFETIME_SOFT SA SA2 SA_REPLAY SRC DST IF_HW_OFFL (the
    IF_HW_OFFL inside the sent message is the model fix, offload §18)."""
    m = one("add 10.0.0.1 10.0.0.2 esp 0x1000 -m tunnel -u 100 -r 300 -lh 3600 -ls 2880 "
            "-hwif mce0 -E aes-cbc 0x00112233445566778899aabbccddeeff "
            '-A hmac-sha2-256 "12345678901234567890123456789012";')
    assert m.ext_types == (E.KEY_ENCRYPT, E.KEY_AUTH, E.LIFETIME_HARD, E.LIFETIME_SOFT,
                           E.SA, E.X_SA2, E.X_SA_REPLAY, E.ADDRESS_SRC, E.ADDRESS_DST,
                           E.X_IF_HW_OFFL)
    assert m.sa == SadbSa(0x1000, replay=255, auth=5, encrypt=12, flags=0x40)
    assert m.sa2 == SadbXSa2(mode=2, reqid=100)
    assert m.get(E.X_SA_REPLAY) == SadbXSaReplay(2400)
    assert m.key_encrypt == SadbKey(E.KEY_ENCRYPT, bytes.fromhex("00112233445566778899aabbccddeeff"))
    assert (m.lifetime_hard.addtime, m.lifetime_soft.addtime) == (3600, 2880)  # type: ignore[union-attr]
    assert m.get(E.X_IF_HW_OFFL) == SadbXIfHwOffl("mce0")
    decode(m.encode())  # the kernel's key_parse/key_align accept it


def test_add_natt_esn_build_order() -> None:
    """parse.y (FreeBSD main) -natt/-natt_mtu/-esn: after SA2 come NAT_T_TYPE
    (2), NAT_T_OAI (proto 0, full prefix), NAT_T_SPORT, NAT_T_OAR,
    NAT_T_DPORT, NAT_T_FRAG; -esn sets SADB_X_SAFLAGS_ESN (0x400)."""
    m = one("add 10.0.0.1 10.0.0.2 esp 0x2000 -natt 192.0.2.1[4500] 192.0.2.2[4501] "
            '-natt_mtu 1400 -esn -E null "";')
    assert m.ext_types == (E.KEY_ENCRYPT, E.SA, E.X_SA2, E.X_NAT_T_TYPE, E.X_NAT_T_OAI,
                           E.X_NAT_T_SPORT, E.X_NAT_T_OAR, E.X_NAT_T_DPORT, E.X_NAT_T_FRAG,
                           E.ADDRESS_SRC, E.ADDRESS_DST)
    assert m.sa.flags == 0x440  # type: ignore[union-attr]
    assert m.get(E.X_NAT_T_OAI) == SadbAddress(E.X_NAT_T_OAI, V4("192.0.2.1"), 32, 0)
    assert m.get(E.X_NAT_T_DPORT).port == 4501  # type: ignore[union-attr]
    assert m.get(E.X_NAT_T_FRAG).fraglen == 1400  # type: ignore[union-attr]
    assert m.key_encrypt == SadbKey(E.KEY_ENCRYPT, b"")  # -E null "": 8-byte key ext
    decode(m.encode())


def test_ipcomp_rawcpi_and_pad_flags() -> None:
    """parse.y ipcomp_spec: -C deflate puts 2 in sadb_sa_encrypt, no key
    extension (setkeymsg_add skips KEY_ENCRYPT for IPComp); -R sets RAWCPI
    (0x80); -f random-pad 0x100, zero-pad 0x200, seq-pad 0, nocyclic-seq
    clears CYCSEQ."""
    m = one("add 10.0.0.1 10.0.0.2 ipcomp 0x4000 -C deflate -R;")
    assert (m.satype, m.sa.encrypt, m.sa.flags) == (9, 2, 0xC0)  # type: ignore[union-attr]
    assert m.ext_types == (E.SA, E.X_SA2, E.ADDRESS_SRC, E.ADDRESS_DST)
    m = one('add 10.0.0.1 10.0.0.2 esp 300 -f random-pad -f zero-pad -f seq-pad -f nocyclic-seq '
            '-E null "";')
    assert m.sa.flags == 0x300  # type: ignore[union-attr]


def test_spdadd_ports_upper_and_icmp6() -> None:
    """parse.y spdadd: [port] numbers, [any] = 0, [service] via getaddrinfo
    (SOCK_DGRAM: udp services), upper-layer proto in both addresses; icmp6
    type,code (fix_portstr) travel in the src/dst port fields."""
    m = one("spdadd 10.0.0.0/8[21] 0.0.0.0/0[l2tp] udp -P out none;")
    assert m.src == SadbAddress(E.ADDRESS_SRC, V4("10.0.0.0", 21), 8, 17)
    assert m.dst == SadbAddress(E.ADDRESS_DST, V4("0.0.0.0", 1701), 0, 17)
    m = one("spdadd ::/0 ::/0 icmp6 135,0 -P in none;")
    assert m.src == SadbAddress(E.ADDRESS_SRC, V6("::", 135), 0, 58)
    assert m.dst == SadbAddress(E.ADDRESS_DST, V6("::", 0), 0, 58)
    assert m.policy == SadbXPolicy(type=1, dir=1)
    m = one("spdadd ::1 ::1 icmp6 136,1 -P in none;")
    assert (m.src.addr.port, m.dst.addr.port) == (136, 1)  # type: ignore[union-attr]


@pytest.mark.parametrize("upper, proto", [
    ("any", 255), ("tcp", 6), ("esp", 50), ("udp", 17), ("TCP", 6), ("icmp", 1),
    ("icmp6", 58), ("ipv6-icmp", 58), ("ip4", 4), ("ipencap", 4), ("gre", 47), ("ip", 0),
    ("300", 44), ("divert", 2), ("carp", 112), ("vrrp", 112),
])
def test_upper_spec(upper: str, proto: int) -> None:
    """parse.y upper_spec: DECSTRING (int, sent as u8), ANY 255, PR_TCP,
    PR_ESP, else getprotobyname over FreeBSD's /etc/protocols (aliases,
    case-sensitive), then the "icmp6"/"ip4" fallbacks."""
    m = one(f"spdadd 10.0.0.1 10.0.0.2 {upper} -P out none;")
    assert m.src.proto == m.dst.proto == proto  # type: ignore[union-attr]


def test_prefix_and_decimal_truncations() -> None:
    """C conversions in parse.y: prefix is an int then a u8 (/33 is sent as
    33, /4294967295 is -1 = "no prefix"); a decimal SPI keeps 32 bits; a hex
    SPI too (``v & ~0xffffffff`` is 0 on amd64, so "SPI too big." never
    fires); -u keeps 32 bits."""
    m = one("spdadd 10.0.0.0/33 10.0.0.0/4294967295 any -P out none;")
    assert (m.src.prefixlen, m.dst.prefixlen) == (33, 32)  # type: ignore[union-attr]
    assert one("get 10.0.0.1 10.0.0.2 esp 4294967297;").sa.spi == 1  # type: ignore[union-attr]
    m = one("get 10.0.0.1 10.0.0.2 esp 0x100000002 -u 4294967298;")
    assert (m.sa.spi, m.sa2.reqid) == (2, 2)  # type: ignore[union-attr]
    m = one("get 10.0.0.1 10.0.0.2 esp 99999999999999999999999999;")
    assert m.sa.spi == 0xFFFFFFFF  # type: ignore[union-attr]  # strtoul saturates


def test_keys_hex_odd_and_quoted() -> None:
    """parse.y key_string: 0x digits with an odd count get a leading nibble;
    quoted keys are raw bytes (UTF-8 stays UTF-8), no escapes, may span
    lines."""
    m = one("add 10.0.0.1 10.0.0.2 ah 300 -A hmac-sha1 0xabcdef0123456789abcdef0123456789abcdef0;")
    assert m.key_auth.key == bytes.fromhex("0abcdef0123456789abcdef0123456789abcdef0")  # type: ignore[union-attr]
    m = one('add 10.0.0.1 10.0.0.2 ah 300 -A hmac-sha1 "12345678\n90123456\\n1";')
    assert m.key_auth.key == b"12345678\n90123456\\n1"  # type: ignore[union-attr]
    m = one('add 10.0.0.1 10.0.0.2 ah 300 -A hmac-sha1 "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9";')
    assert m.key_auth.key == "\u00e9".encode() * 10  # type: ignore[union-attr]


@pytest.mark.parametrize("alg, nbytes, ok", [
    ("aes-cbc", 16, True), ("rijndael-cbc", 24, True), ("aes-cbc", 32, True),
    ("aes-cbc", 20, True), ("aes-cbc", 15, False), ("aes-cbc", 33, False),
    ("aes-gcm-16", 20, True), ("aes-gcm-16", 28, True), ("aes-gcm-16", 36, True),
    ("aes-gcm-16", 16, False), ("aes-gcm-16", 3, False), ("aes-gcm-16", 0, False),
    ("aes-ctr", 20, True), ("aes-ctr", 37, False),
    ("chacha20-poly1305", 36, True), ("chacha20-poly1305", 32, False),
    ("null", 0, True), ("null", 256, True), ("null", 257, False),
])
def test_encryption_key_lengths(alg: str, nbytes: int, ok: bool) -> None:
    """ipsec_check_keylen against the kernel's REGISTER list (reference
    §B.2); ALG_ENC_SALT names (aes-ctr, aes-gcm-16, chacha20-poly1305) are
    checked 4 bytes short, in u_int arithmetic (shorter than 4 wraps)."""
    text = f'add 10.0.0.1 10.0.0.2 esp 300 -E {alg} "{"k" * nbytes}";'
    if ok:
        assert one(text).key_encrypt.key == b"k" * nbytes  # type: ignore[union-attr]
    else:
        err = fail(text)
        assert err.lines == [f"line 1: Invalid key length at [{'k' * nbytes}]",
                             "parse failed, line 1."]


@pytest.mark.parametrize("alg, nbytes, message", [
    ("hmac-sha1", 20, None), ("hmac-sha2-256", 32, None), ("hmac-sha2-384", 48, None),
    ("hmac-sha2-512", 64, None), ("chacha20-poly1305", 16, None),
    ("hmac-sha1", 16, "Invalid key length"), ("hmac-sha2-256", 20, "Invalid key length"),
    ("aes-xcbc-mac", 16, "Not supported"),
])
def test_auth_key_lengths(alg: str, nbytes: int, message: str | None) -> None:
    """ipsec_check_keylen(SADB_EXT_SUPPORTED_AUTH, ...): exact hash key sizes;
    aes-xcbc-mac (9) is lexed but not in the kernel list: "Not supported"."""
    text = f'add 10.0.0.1 10.0.0.2 ah 300 -A {alg} "{"a" * nbytes}";'
    if message is None:
        assert one(text).key_auth.bits == nbytes * 8  # type: ignore[union-attr]
    else:
        assert fail(text).lines[0] == f"line 1: {message} at [{'a' * nbytes}]"


def test_auth_null_and_tcp_md5() -> None:
    """token.l: -A null is ALG_AUTH_NOKEY (no key, no check, no KEY_AUTH);
    tcp-md5 keys are only checked for 1..80 bytes and fail *silently*
    (parse.y returns -1 without yyerror)."""
    m = one("add 10.0.0.1 10.0.0.2 ah 300 -lh 100 -ls 100 -A null ;")
    assert m.ext_types == (E.LIFETIME_HARD, E.LIFETIME_SOFT, E.SA, E.X_SA2,
                           E.ADDRESS_SRC, E.ADDRESS_DST)
    assert m.sa.auth == 251  # type: ignore[union-attr]
    m = one('add 10.1.10.34 10.1.10.36 tcp 0x1000 -A tcp-md5 "TCP-MD5 BGP secret" ;')
    assert (m.satype, m.sa.auth, m.key_auth.key) == (11, 252, b"TCP-MD5 BGP secret")  # type: ignore[union-attr]
    assert one(f'add 1.1.1.1 1.1.1.2 tcp 1 -A tcp-md5 "{"x" * 80}";').key_auth.bits == 640  # type: ignore[union-attr]
    for key in ('""', '"' + "x" * 81 + '"'):
        assert fail(f"add 1.1.1.1 1.1.1.2 tcp 1 -A tcp-md5 {key};").lines == \
            ["parse failed, line 1."]


def test_supported_lists() -> None:
    """libipsec findsupportedalg: without the REGISTER lists every check is
    EIPSEC_DO_GET_SUPP_LIST; Supported.from_register reads a REGISTER reply
    (pfkey_set_supported)."""
    err = fail('add 1.1.1.1 1.1.1.2 esp 300 -E aes-cbc "1234567890123456";', supported=None)
    assert err.lines[0] == "line 1: Must get supported algorithms list first at [1234567890123456]"
    reply = Message(SADB.REGISTER, 0, 0, PID, exts=(
        SadbSupported(E.SUPPORTED_AUTH, (SadbAlg(3, 0, 160, 160),)),
        SadbSupported(E.SUPPORTED_ENCRYPT, (SadbAlg(12, 16, 128, 128),))))
    sup = Supported.from_register(decode(reply.encode(), strict=False))
    assert sup == Supported((SadbAlg(3, 0, 160, 160),), (SadbAlg(12, 16, 128, 128),))
    assert fail('add 1.1.1.1 1.1.1.2 esp 300 -E aes-cbc "123456789012345678901234";',
                supported=sup).lines[0].startswith("line 1: Invalid key length")
    assert fail('add 1.1.1.1 1.1.1.2 esp 300 -E aes-gcm-16 "12345678901234567890";',
                supported=sup).lines[0].startswith("line 1: Not supported")
    assert len(FREEBSD_SUPPORTED.auth) == 9 and len(FREEBSD_SUPPORTED.encrypt) == 6  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# -hwif and its quirks (freebsd_ipsec_offload.md §12, §18)
# ---------------------------------------------------------------------------

def test_hwif_add_correct_and_quirk() -> None:
    """offload §18: setkeymsg_add appends IF_HW_OFFL after sendkeymsg, so
    FreeBSD never sends it; the model sends it (after DST) unless
    hwif_add_quirk.  The name is strlcpy'd into 32 bytes (31 kept)."""
    text = 'add 10.0.0.1 10.0.0.2 esp 300 -hwif mce0 -E null "";'
    assert one(text).ext_types[-1] == E.X_IF_HW_OFFL
    assert not one(text, hwif_add_quirk=True).has(E.X_IF_HW_OFFL)
    long_name = "i" * 40
    m = one(f'add 10.0.0.1 10.0.0.2 esp 300 -hwif {long_name} -E null "";')
    assert m.get(E.X_IF_HW_OFFL) == SadbXIfHwOffl("i" * 31)


def test_hwif_get_delete_parse_but_never_send() -> None:
    """offload §12: get/delete share extension_spec, so -hwif parses, but
    setkeymsg_addr never sends it."""
    for cmd in ("get", "delete"):
        m = one(f"{cmd} 10.0.0.1 10.0.0.2 esp 300 -hwif mce0;")
        assert not m.has(E.X_IF_HW_OFFL)


def test_hwif_spd_correct_and_quirk() -> None:
    """offload §12: spd_hwif after the policy puts IF_HW_OFFL right after
    X_POLICY (setkeymsg_spdaddr).  FreeBSD's S_PL scanner swallows
    ``-hwif IF`` into the policy text (libipsec then fails: Invalid
    argument) and spddelete has no spd_hwif: hwif_spd_quirk reproduces that."""
    m = one("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//require -hwif mce0;")
    assert m.ext_types == (E.X_POLICY, E.X_IF_HW_OFFL, E.ADDRESS_SRC, E.ADDRESS_DST)
    m = one("spddelete 10.0.0.1 10.0.0.2 any -P out\n -hwif mce0 ;")
    assert m.ext_types == (E.X_POLICY, E.X_IF_HW_OFFL, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert m.policy == SadbXPolicy(type=0, dir=2)
    err = fail("spdadd 10.0.0.1 10.0.0.2 any -P out none -hwif mce0;", hwif_spd_quirk=True)
    assert err.lines == ["line 1: Invalid argument at [ out none -hwif mce0]",
                         "parse failed, line 1."]
    assert err.policy_error is not None
    err = fail("spddelete 10.0.0.1 10.0.0.2 any -P out -hwif mce0;", hwif_spd_quirk=True)
    assert err.lines[0] == "line 1: Invalid argument at [ out -hwif mce0]"
    # the policy text ends at a blank before -hwif; the name is a STRING
    err = fail("spdadd 10.0.0.1 10.0.0.2 any -P out none -hwif 0;")
    assert err.lines[0] == "line 1: syntax error at [0]"


# ---------------------------------------------------------------------------
# Statements: order, lines, addresses
# ---------------------------------------------------------------------------

def test_statements_are_yielded_one_by_one_before_a_failure() -> None:
    """setkey applies each statement as its action runs: statements before a
    failing one are sent (the generator yields them first)."""
    gen = parser().parse('flush;\nspdflush;\nadd 10.0.0.1 10.0.0.2 esp 300 -E des-cbc "x";\nflush;')
    assert next(gen).command == "flush"
    assert next(gen).command == "spdflush"
    with pytest.raises(SetkeyParseError) as info:
        next(gen)
    assert info.value.lines == ["line 3: syntax error at [des-cbc]", "parse failed, line 3."]


def test_lineno_is_the_line_of_the_semicolon() -> None:
    """token.l counts newlines as they are scanned; an action runs when its
    ``;`` is read, so ``The result of line N`` names that line.  Newlines in
    policy text count (PL rule); several statements may share a line."""
    stmts = parse("# comment\nflush; spdflush;\nspdadd 10.0.0.1 10.0.0.2 any\n\t-P out ipsec\n"
                  "\tesp/transport//require\n\t;\nadd 10.0.0.1\n10.0.0.2 esp 300\n"
                  '-E null "" ; dump;')
    assert [(s.command, s.lineno) for s in stmts] == [
        ("flush", 2), ("spdflush", 2), ("spdadd", 6), ("add", 9), ("dump", 9)]
    assert [s.replies for s in stmts] == [Replies.STATUS, Replies.STATUS, Replies.STATUS,
                                          Replies.STATUS, Replies.SADUMP]


def test_replies_kind() -> None:
    """setkey.c postproc prints GET and DUMP replies with pfkey_sadump and
    SPDDUMP replies with pfkey_spdump; everything else only reports errors."""
    kinds = {s.command: s.replies for s in parse(
        "get 10.0.0.1 10.0.0.2 esp 300; dump; spddump; flush; spdflush;")}
    assert kinds == {"get": Replies.SADUMP, "dump": Replies.SADUMP,
                     "spddump": Replies.SPDDUMP, "flush": Replies.STATUS,
                     "spdflush": Replies.STATUS}


def test_names_resolve_to_pairs_of_one_family() -> None:
    """parse.y setkeymsg_add/_addr: one message per src x dst pair of the
    same family; -4/-6 restrict getaddrinfo's family, -n forbids names."""
    stmt, = parse('add dual-a dual-b esp 300 -E null "";')
    assert [(m.src.addr, m.dst.addr) for m in stmt.messages] == [  # type: ignore[union-attr]
        (V4("10.0.0.1"), V4("10.0.0.2")), (V6("2001:db8::1"), V6("2001:db8::2"))]
    stmt, = parse('add -6 dual-a dual-b esp 300 -E null "";')
    assert len(stmt.messages) == 1 and stmt.messages[0].src.addr.family == 28  # type: ignore[union-attr]
    stmt, = parse("get -4 dual-a dual-b esp 300;")
    assert len(stmt.messages) == 1
    err = fail("add -n gw-a gw-b esp 300;")
    assert err.lines[0] == "line 1: hostname nor servname provided, or not known at [gw-a]"
    err = fail("add -6n 10.0.0.1 10.0.0.2 esp 300;")
    assert err.lines[0].startswith("line 1: hostname nor servname provided, or not known at [10.0.0.1]")
    # no pair of one family: setkeymsg_add returns -1, no yyerror
    assert fail('add gw-a v6only esp 300 -E null "";').lines == ["parse failed, line 1."]
    assert fail("deleteall 10.0.0.1 ::1 esp;").lines == ["parse failed, line 1."]


def test_numeric_address_forms() -> None:
    """FreeBSD getaddrinfo: IPv4 via inet_aton (127.1, hex parts); IPv6
    %scope = interface index for link-local, decimal otherwise."""
    assert one("get 127.1 0x7f.0.0.2 esp 300;").src.addr == V4("127.0.0.1")  # type: ignore[union-attr]
    m = one("get fe80::1%em0 fe80::2%7 esp 300;")
    assert (m.src.addr.scope_id, m.dst.addr.scope_id) == (1, 7)  # type: ignore[union-attr]
    err = fail("get fe80::1%eth0 fe80::2 esp 300;")
    assert err.lines[0] == "line 1: hostname nor servname provided, or not known at [fe80::1%eth0]"
    err = fail("get 2001:db8::1%em0 2001:db8::2 esp 300;")   # names only for link-local
    assert err.lines[0].endswith("at [2001:db8::1%em0]")


def test_warnings_are_reported_not_raised() -> None:
    """parse.y: yyerror("WARNING: mode is obsolete") for get/delete with -m
    (at the ``;``), "WARNING: obsolete algorithm" for -E simple, and "replay
    window is too large" -- all printed in yyerror format, parsing goes on."""
    st_get, st_del, st_simple, st_replay = parse(
        "get 10.0.0.1 10.0.0.2 esp 300 -m transport;\n"
        "delete 10.0.0.1 10.0.0.2 esp 300 -m tunnel ;\n"
        "add 10.0.0.1 10.0.0.2 esp 301 -E simple;\n"
        'add 10.0.0.1 10.0.0.2 esp 302 -r 536870908 -E null "";')
    assert [w.text for w in st_get.warnings] == ["line 1: WARNING: mode is obsolete at [;]"]
    assert [w.text for w in st_del.warnings] == ["line 2: WARNING: mode is obsolete at [;]"]
    assert [w.text for w in st_simple.warnings] == ["line 3: WARNING: obsolete algorithm at [simple]"]
    msg = st_simple.messages[0]
    assert (msg.sa.encrypt, msg.has(E.KEY_ENCRYPT)) == (11, False)  # type: ignore[union-attr]
    assert [w.text for w in st_replay.warnings] == [
        "line 4: replay window is too large at [536870908]"]
    assert st_replay.messages[0].get(E.X_SA_REPLAY) == SadbXSaReplay((536870908 << 3) & 0xFFFFFFFF)
    assert not parse("get 10.0.0.1 10.0.0.2 esp 300 -m any;")[0].warnings


def test_warning_before_an_error_travels_with_it() -> None:
    """A warning printed earlier in the failing statement is part of its output."""
    err = fail("add 10.0.0.1 10.0.0.2 esp 301 -E simple -A hmac-sha1 \"short\";")
    assert [w.text for w in err.warnings] == ["line 1: WARNING: obsolete algorithm at [simple]"]
    assert err.lines[0] == "line 1: Invalid key length at [short]"


# ---------------------------------------------------------------------------
# Every error message form
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, lines", [
    # byacc "syntax error" at the lookahead token
    ("add 10.0.0.1 10.0.0.2 esp 300 -E blowfish-cbc \"kamekame\";",
     ["line 1: syntax error at [blowfish-cbc]"]),
    ("add ::1 ::1 esp 10001 -m transport -E null ;", ["line 1: syntax error at [;]"]),
    ("update 10.0.0.1 10.0.0.2 esp 1;", ["line 1: syntax error at [update]"]),
    ("ADD 10.0.0.1 10.0.0.2 esp 1;", ["line 1: syntax error at [ADD]"]),
    ("add 10.0.0.1 [4500] 10.0.0.2 esp 1;", ["line 1: syntax error at [[]"]),
    ("add 10.0.0.1 10.0.0.2 esp-udp 1;", ["line 1: syntax error at [esp-udp]"]),
    ('add 10.0.0.1 10.0.0.2 esp 1 -E null "" -m tunnel;', ["line 1: syntax error at [-m]"]),
    ("spdadd 10.0.0.1 10.0.0.2 ah -P out none;", ["line 1: syntax error at [ah]"]),
    ("spdadd ::/0 ::/0 icmp6 135 -P in none;", ["line 1: syntax error at [135]"]),
    ("flush;\n;", ["line 2: syntax error at [;]"]),
    # EOF: yytext is empty, or the yymore()'d policy text
    ("flush", ["line 1: syntax error at []"]),
    ("flush;\n", []),
    ("spdadd 10.0.0.1 10.0.0.2 any -P out none\n", ["line 2: syntax error at [ out none\n]"]),
    # a token right after policy text carries it (yymore)
    ("spdadd 10.0.0.1 10.0.0.2 any -P out none [x];", ["line 1: syntax error at [ out none []"]),
    ('spdadd 10.0.0.1 10.0.0.2 any -P out none "x";', ["line 1: syntax error at [out none ]"]),
    ("spdadd 10.0.0.1 10.0.0.2 any -P out none # c\n;", ["line 2: syntax error at [\n]"]),
    # parse.y yyerror strings
    ("spdadd 10.0.0.1 10.0.0.2 foo -P out none;", ["line 1: invalid upper layer protocol at [foo]"]),
    ("spdadd ::/0 ::/0 icmp6 135, -P in none;",
     ["line 1: invalid an upper layer protocol spec at [ in none;]"]),
    ("add 10.0.0.1 10.0.0.2 esp-old 300 -r 4 -E null \"\";",
     ["line 1: replay prevention cannot be used with ah/esp-old at [4]"]),
    ("delete dual-a 10.0.0.2 esp 300;", ["line 1: multiple address specified at [;]"]),
    ("spdadd dual-a 10.0.0.2 any -P out none;",
     ["line 1: multiple address specified at [ out none;]"]),
    # gai_strerror texts from parse_addr
    ("add nosuchhost 10.0.0.2 esp 300;",
     ["line 1: hostname nor servname provided, or not known at [nosuchhost]"]),
    ("spdadd 10.0.0.1[nosuchservice] 10.0.0.2 any -P out none;",
     ["line 1: servname not supported for ai_socktype at [ out none;]"]),
    ("spdadd 10.0.0.1[65536] 10.0.0.2 any -P out none;",
     ["line 1: servname not supported for ai_socktype at [ out none;]"]),
    # libipsec ipsec_strerror via ipsec_set_policy, at the policy text
    ("spdadd 10.0.0.1 10.0.0.2 any -P out prio 100 none;",
     ["line 1: Invalid argument at [ out prio 100 none]"]),
    ("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel//require;",
     ["line 1: Invalid address specification at [ out ipsec esp/tunnel//require]"]),
])
def test_error_messages(text: str, lines: list[str]) -> None:
    """token.l yyerror format + parse(): ``line N: <msg> at [<yytext>]`` then
    ``parse failed, line N.``."""
    if not lines:
        assert [s.command for s in parse(text)] == ["flush"]
        return
    err = fail(text)
    n = err.lineno
    assert err.lines == lines + [f"parse failed, line {n}."]
    assert str(err) == "\n".join(err.lines)


@pytest.mark.parametrize("text, lines", [
    ("add 10.0.0.1 10.0.0.2 esp 300 -m tunnel \\\n -E null \"\";", ["line 1: Syntax error at [\\]"]),
    ("flush;\r\n", ["line 1: Syntax error at [\r]"]),
    ("add 10.0.0.1 10.0.0.2 esp 300 -E null \"abc;\n", ["line 1: Syntax error at [\"]"]),
    ("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel/a-b+c;",
     ["line 1: hostname nor servname provided, or not known at [ out ipsec esp/tunnel/a-b]"]),
    ("spdadd 10.0.0.1 10.0.0.2 any -P out none +;", ["line 1: Syntax error at [ out none +]"]),
    ("flush; -x", ["line 1: Syntax error at [-]"]),
    ("flush; \u00e9", ["line 1: Syntax error at [\ufffd]"]),
])
def test_lexical_errors_are_fatal(text: str, lines: list[str]) -> None:
    """token.l's ``.`` rule: yyfatal("Syntax error") prints one line and
    exits -- no "parse failed" line (unless the parser failed first)."""
    err = fail(text)
    if lines[0].startswith("line 1: Syntax error"):
        assert err.fatal and err.lines == lines
    else:
        assert err.lines == lines + ["parse failed, line 1."]


@pytest.mark.parametrize("text", [
    "spdadd 10.0.0.1 10.0.0.2 udp 1,2 -P out none;",          # misc spec, not icmp6
    'spdadd tagged "x" -P out none;',                          # always fails
    "add 10.0.0.1 ::1 esp 300 -E null \"\";",                  # no same-family pair
    'add 1.1.1.1 1.1.1.2 tcp 1 -A tcp-md5 "";',                # tcp-md5 1..80 bytes
])
def test_silent_failures(text: str) -> None:
    """parse.y actions that ``return -1`` without yyerror: setkey prints only
    ``parse failed, line N.``."""
    err = fail(text)
    assert err.message is None and err.lines == ["parse failed, line 1."]


def test_policy_error_is_attached() -> None:
    """The libipsec error (with its stderr diagnostic) rides on the parse error."""
    err = fail("spdadd 10.0.0.1 10.0.0.2 any -P out prio 100 none;")
    assert err.policy_error is not None
    assert err.policy_error.diagnostic == 'libipsec: syntax error while parsing "prio"'


# ---------------------------------------------------------------------------
# Scanner details (token.l)
# ---------------------------------------------------------------------------

def kinds(text: str, **kw: bool) -> list[tuple[T, str]]:
    lex = SetkeyLexer(to_scanner_text(text), **kw)
    out = []
    while True:
        tok = lex.next()
        out.append((tok.kind, tok.yytext))
        if tok.kind == T.EOF:
            return out


def test_lexer_longest_match_and_rule_order() -> None:
    """flex: longest match, then the earlier rule.  Keywords only as whole
    words (esp-udp is a STRING), 0x.. is HEXSTRING unless more follows,
    [0-9,]+ beats a shorter decimal, -natt beats the -n flag, and in S_PL the
    earlier "-P"/keyword rules win a tie with the policy rule."""
    assert kinds("esp esp-old esp-udp 0x10 0x10g 1,2 12 -natt -n4 -natt_mtu")[:-1] == [
        (T.PR_ESP, "esp"), (T.PR_ESP, "esp-old"), (T.STRING, "esp-udp"),
        (T.HEXSTRING, "0x10"), (T.STRING, "0x10g"), (T.STRING, "1,2"), (T.DECSTRING, "12"),
        (T.F_NATT, "-natt"), (T.F_AIFLAGS, "-n4"), (T.F_NATT_MTU, "-natt_mtu")]
    assert kinds("-Padd;")[:2] == [(T.F_POLICY, "-P"), (T.ADD, "add")]
    assert kinds("-P-P;")[:2] == [(T.F_POLICY, "-P"), (T.F_POLICY, "-P")]


def test_lexer_algorithm_states() -> None:
    """S_ENCALG/S_AUTHALG: only a known name leaves them; "null" means
    different things after -E and -A; removed names are plain STRINGs."""
    assert kinds("-E null -A null null")[:-1] == [
        (T.F_ENC, "-E"), (T.ALG_ENC, "null"), (T.F_AUTH, "-A"), (T.ALG_AUTH_NOKEY, "null"),
        (T.STRING, "null")]
    lex = SetkeyLexer(to_scanner_text("-E 3des-cbc x"))
    lex.next()
    assert (lex.next().kind, lex.state) == (T.STRING, S.ENCALG)


def test_protocol_and_service_tables() -> None:
    """FreeBSD lib/libc/net/protocols: icmp6 is an alias of ipv6-icmp, there
    is no "ipv4"; getaddrinfo's udp ports: l2tp is an alias of l2f 1701."""
    assert getprotobyname("icmp6") == 58 and getprotobyname("ipv4") is None
    r = Resolver()
    assert (r.port("l2tp"), r.port("isakmp"), r.port("0"), r.port(None)) == (1701, 500, 0, 0)


# ---------------------------------------------------------------------------
# API and robustness
# ---------------------------------------------------------------------------

def test_parse_script_and_pid() -> None:
    """Every message carries pid (setkey: getpid()) and seq 0."""
    (stmt,) = list(parse_script("flush;", pid=0x1_0000_0005, resolver=RESOLVER))
    assert (stmt.messages[0].pid, stmt.messages[0].seq) == (5, 0)


def test_bytes_input_and_injected_policy() -> None:
    """Scripts may be bytes; the policy parser is injectable."""
    seen = []

    def fake_policy(text: str) -> SadbXPolicy:
        seen.append(text)
        return SadbXPolicy(type=1, dir=2)

    m = one(b"spdadd 10.0.0.1 10.0.0.2 any -P out whatever ;", policy=fake_policy)
    assert seen == [" out whatever "] and m.policy == SadbXPolicy(type=1, dir=2)


def test_spd_ipsec_policy_requests() -> None:
    """The X_POLICY is libipsec's (transport without addresses: len 8)."""
    m = one("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//require "
            "ah/transport//use;")
    assert m.policy == SadbXPolicy(type=2, dir=2, requests=(
        IpsecRequest(50, 1, 2), IpsecRequest(51, 1, 1)))


_FRAGMENTS = [
    "add ", "get ", "delete ", "deleteall ", "flush", "dump", "spdadd ", "spddelete ",
    "spddump", "spdflush", "tagged ", "10.0.0.1 ", "::1 ", "fe80::1%em0 ", "dual-a ", "gw-b ",
    "esp ", "ah ", "ipcomp ", "tcp ", "esp-old ", "0x1000 ", "300 ", "-m ", "tunnel ", "any ",
    "-u 5 ", "-r 300 ", "-lh 10 ", "-ls 5 ", "-f random-pad ", "-f nocyclic-seq ", "-E ",
    "-A ", "-C ", "deflate ", "-R ", "aes-gcm-16 ", "null ", "simple ", "hmac-sha1 ",
    "tcp-md5 ", '"12345678901234567890" ', '"" ', "0xabc ", "-natt 1.1.1.1[1] 2.2.2.2[2] ",
    "-natt_mtu 9 ", "-esn ", "-hwif em0 ", "/24", "[80]", "[any]", "[l2tp]", "icmp6 ",
    "135,0 ", "-P ", "out ", "in ", "ipsec ", "none ", "esp/transport//require ",
    "esp/tunnel/1.1.1.1-2.2.2.2/unique:3 ", "-4 ", "-6n ", ";", ";\n", "\n", "# c\n", "\\",
    "[", "]", ",", "%", "\t", "\0", "\u00e9",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30), st.booleans(), st.booleans())
def test_fuzz_only_parse_errors(parts: list[str], q1: bool, q2: bool) -> None:
    """Any text gives statements whose messages encode, or SetkeyParseError --
    never another exception."""
    p = parser(hwif_add_quirk=q1, hwif_spd_quirk=q2)
    try:
        for stmt in p.parse("".join(parts)):
            for msg in stmt.messages:
                msg.encode()
    except SetkeyParseError as exc:
        assert exc.lines


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    """Random bytes: the same guarantee."""
    try:
        for stmt in parser().parse(data):
            for msg in stmt.messages:
                msg.encode()
    except SetkeyParseError:
        pass


def test_public_api_is_honest() -> None:
    """Every name in the setkey modules' ``__all__`` exists."""
    from pfkey import setkey_lex, setkey_msg, setkey_netdb, setkey_parse

    for mod in (setkey_lex, setkey_msg, setkey_netdb, setkey_parse):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.__name__, name)
