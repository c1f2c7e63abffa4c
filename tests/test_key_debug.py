"""Golden text tests for pfkey.key_debug: ``setkey -v`` / ``-x`` / ``-h`` text.

Expected texts are the printf output of FreeBSD's sys/netipsec/key_debug.c as
built into setkey (userland, INET and INET6) and of sbin/setkey/setkey.c's
promisc()/printdate()/hex dump, FreeBSD main of 2024-10-29.  Messages are
built the way setkey (parse.y) and key.c build them (reference
pfkey_setkey_reference.md §B.2-§B.4, §D.2).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from pfkey import (
    IpsecRequest, Message, RawExtension, SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey,
    SadbLifetime, SadbProp, SadbSa, SadbSens, SadbSpirange, SadbSupported, SadbXIfHwOffl,
    SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2, SadbXSaReplay,
    Sockaddr,
)
from pfkey import key_debug as kd
from pfkey.key_debug import (
    gmt2local, inet_ntop6, ipsec_hexdump, kdebug_sadb, kdebug_sockaddr, message_bytes,
    printdate, promisc_text, sendkeymsg_text, setkey_hexdump,
)
from pfkey.pfkeyv2 import SADB, SADB_EXT as E

V4, V6 = Sockaddr.inet, Sockaddr.inet6
KEY_ENC = bytes.fromhex("00112233445566778899aabbccddeeff")


def setkey_add() -> Message:
    """``add 192.168.1.1 192.168.1.2 esp 0x10001 -m transport -u 100 -r 4 -E aes-cbc ...
    -A hmac-sha2-256 ...;`` in setkey's build order (KEY_ENCRYPT, KEY_AUTH, SA,
    SA2, SRC, DST), pid 4242."""
    return Message(SADB.ADD, 3, 0, 4242, exts=(
        SadbKey(E.KEY_ENCRYPT, KEY_ENC), SadbKey(E.KEY_AUTH, bytes(range(32))),
        SadbSa(0x10001, replay=4, auth=5, encrypt=12, flags=0x40),
        SadbXSa2(mode=1, reqid=100),
        SadbAddress(E.ADDRESS_SRC, V4("192.168.1.1")),
        SadbAddress(E.ADDRESS_DST, V4("192.168.1.2"))))


ADD_TEXT = (
    "sadb_msg{ version=2 type=3(ADD) errno=0 satype=3\n"
    "  len=20 reserved=0 seq=0 pid=4242\n"
    "sadb_ext{ len=3 type=9(KEY_ENCRYPT) }\n"
    "sadb_key{ bits=128 reserved=0\n"
    "  key= 00112233 44556677 8899aabb ccddeeff }\n"
    "sadb_ext{ len=5 type=8(KEY_AUTH) }\n"
    "sadb_key{ bits=256 reserved=0\n"
    "  key= 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f }\n"
    "sadb_ext{ len=2 type=1(SA) }\n"
    "sadb_sa{ spi=65537 replay=4 state=0\n"
    "  auth=5 encrypt=12 flags=0x00000040 }\n"
    "sadb_ext{ len=2 type=19(SA2) }\n"
    "sadb_x_sa2{ mode=1 reqid=100\n"
    "  reserved1=0 reserved2=0 sequence=0 }\n"
    "sadb_ext{ len=3 type=5(ADDRESS_SRC) }\n"
    "sadb_address{ proto=255 prefixlen=32 reserved=0x0000 }\n"
    "sockaddr{ len=16 family=2 addr=192.168.1.1 }\n"
    "sadb_ext{ len=3 type=6(ADDRESS_DST) }\n"
    "sadb_address{ proto=255 prefixlen=32 reserved=0x0000 }\n"
    "sockaddr{ len=16 family=2 addr=192.168.1.2 }\n")


def test_setkey_add_message() -> None:
    """kdebug_sadb, kdebug_sadb_key/_sa/_x_sa2/_address, kdebug_sockaddr: a
    setkey ``add`` as ``setkey -v`` shows it; Message and bytes agree."""
    assert kdebug_sadb(setkey_add()) == ADD_TEXT
    assert kdebug_sadb(setkey_add().encode()) == ADD_TEXT


def test_dump_reply_lifetimes_natt_replay() -> None:
    """kdebug_sadb_lifetime (u32 casts of bytes and times), kdebug_sadb_x_sa_replay,
    kdebug_sadb_x_natt (port in host order), NAT-T OAI address block; a dump
    reply's reserved (refcnt) and seq."""
    msg = Message(SADB.DUMP, 3, 2, 77, 0, 1, (
        SadbSa(0x1000, 255, 1, 3, 12, 0x40), SadbXSa2(2, 7, 9), SadbXSaReplay(8192),
        SadbLifetime(E.LIFETIME_HARD, 10, 2**32 + 5, 3600, 0),
        SadbLifetime(E.LIFETIME_CURRENT, 3, 300, 1736078400, 1736078401),
        SadbXNatTType(2), SadbXNatTPort(E.X_NAT_T_SPORT, 4500),
        SadbXNatTPort(E.X_NAT_T_DPORT, 4501),
        SadbAddress(E.X_NAT_T_OAI, V4("10.9.0.1"))))
    assert kdebug_sadb(msg) == (
        "sadb_msg{ version=2 type=10(DUMP) errno=0 satype=3\n"
        "  len=21 reserved=1 seq=2 pid=77\n"
        "sadb_ext{ len=2 type=1(SA) }\n"
        "sadb_sa{ spi=4096 replay=255 state=1\n"
        "  auth=3 encrypt=12 flags=0x00000040 }\n"
        "sadb_ext{ len=2 type=19(SA2) }\n"
        "sadb_x_sa2{ mode=2 reqid=7\n"
        "  reserved1=0 reserved2=0 sequence=9 }\n"
        "sadb_ext{ len=1 type=26(SA_REPLAY) }\n"
        "sadb_x_sa_replay{ replay=8192 }\n"
        "sadb_ext{ len=4 type=3(LIFETIME_HARD) }\n"
        "sadb_lifetime{ alloc=10, bytes=5\n"
        "  addtime=3600, usetime=0 }\n"
        "sadb_ext{ len=4 type=2(LIFETIME_CURRENT) }\n"
        "sadb_lifetime{ alloc=3, bytes=300\n"
        "  addtime=1736078400, usetime=1736078401 }\n"
        "sadb_ext{ len=1 type=20(NAT_T_TYPE) }\n"
        "sadb_x_nat_t_type{ type=2 }\n"
        "sadb_ext{ len=1 type=21(NAT_T_SPORT) }\n"
        "sadb_x_nat_t_port{ port=4500 }\n"
        "sadb_ext{ len=1 type=22(NAT_T_DPORT) }\n"
        "sadb_x_nat_t_port{ port=4501 }\n"
        "sadb_ext{ len=3 type=23(NAT_T_OAI) }\n"
        "sadb_address{ proto=255 prefixlen=32 reserved=0x0000 }\n"
        "sockaddr{ len=16 family=2 addr=10.9.0.1 }\n")


def test_spdadd_policy_with_requests() -> None:
    """kdebug_sadb_x_policy: id in hex, ``priority=`` label, one block per
    request with both sockaddrs, and a transport request without addresses."""
    pol = SadbXPolicy(2, 2, 0x2a, 100, 1, (
        IpsecRequest(50, 2, 2, 0, V4("192.168.0.1"), V4("192.168.1.2")),
        IpsecRequest(51, 1, 3, 16384)))
    msg = Message(SADB.X_SPDADD, 0, 0, 4242, exts=(
        pol, SadbAddress(E.ADDRESS_SRC, V6("2001:db8::"), 64, 6),
        SadbAddress(E.ADDRESS_DST, V6("2001:db8:1::", 80), 48, 6)))
    assert kdebug_sadb(msg) == (
        "sadb_msg{ version=2 type=14(X_SPDADD) errno=0 satype=0\n"
        "  len=20 reserved=0 seq=0 pid=4242\n"
        "sadb_ext{ len=8 type=18(POLICY) }\n"
        "sadb_x_policy{ type=2 dir=2 id=2a scope=1 priority=100 }\n"
        " { len=40 proto=50 mode=2 level=2 reqid=0\n"
        "sockaddr{ len=16 family=2 addr=192.168.0.1 }\n"
        "sockaddr{ len=16 family=2 addr=192.168.1.2 }\n"
        " }\n"
        " { len=8 proto=51 mode=1 level=3 reqid=16384\n"
        " }\n"
        "sadb_ext{ len=5 type=5(ADDRESS_SRC) }\n"
        "sadb_address{ proto=6 prefixlen=64 reserved=0x0000 }\n"
        "sockaddr{ len=28 family=28 addr=2001:db8:: }\n"
        "sadb_ext{ len=5 type=6(ADDRESS_DST) }\n"
        "sadb_address{ proto=6 prefixlen=48 reserved=0x0000 }\n"
        "sockaddr{ len=28 family=28 addr=2001:db8:1:: }\n")


def test_ifnet_scope_policy_and_discard() -> None:
    """kdebug_sadb_x_policy: scope IFNET labels the last field ``ifindex``;
    non-IPSEC policies print no request blocks."""
    ifnet = Message(SADB.X_SPDDUMP, exts=(SadbXPolicy(0, 1, 31, 5, 2),))
    assert kdebug_sadb(ifnet).split("\n")[3] == \
        "sadb_x_policy{ type=0 dir=1 id=1f scope=2 ifindex=5 }"


def test_register_reply_supported() -> None:
    """kdebug_sadb_supported: ``sadb_sup{`` with one ``{ id= ivlen= min= max= }``
    per algorithm (the kernel's REGISTER reply)."""
    msg = Message(SADB.REGISTER, 0, 0, 9, exts=(
        SadbSupported(E.SUPPORTED_AUTH, (SadbAlg(3, 0, 160, 160), SadbAlg(251, 0, 8, 2048))),
        SadbSupported(E.SUPPORTED_ENCRYPT, (SadbAlg(20, 12, 128, 256),))))
    assert kdebug_sadb(msg).split("\n")[2:] == [
        "sadb_ext{ len=3 type=14(SUPPORTED_AUTH) }",
        "sadb_sup{",
        "  { id=3 ivlen=0 min=160 max=160 }",
        "  { id=251 ivlen=0 min=8 max=2048 }",
        "}",
        "sadb_ext{ len=2 type=15(SUPPORTED_ENCRYPT) }",
        "sadb_sup{",
        "  { id=20 ivlen=12 min=128 max=256 }",
        "}", ""]


def test_acquire_proposal_combs() -> None:
    """kdebug_sadb_prop: four lines per sadb_comb; the fourth reuses the
    ``soft_alloc ... hard_bytes`` labels for the add/use times, as key_debug.c
    does; flags in %04x and reserved in %08x."""
    comb = SadbComb(auth=0, encrypt=20, flags=1, encrypt_minbits=256, encrypt_maxbits=256,
                    soft_allocations=1, hard_allocations=1, hard_addtime=86400,
                    soft_usetime=28800)
    msg = Message(SADB.ACQUIRE, 3, 5, 0, exts=(SadbProp((comb,), replay=32),))
    assert kdebug_sadb(msg).split("\n")[2:] == [
        "sadb_ext{ len=10 type=13(PROPOSAL) }",
        "sadb_prop{ replay=32",
        "sadb_comb{ auth=0 encrypt=20 flags=0x0001 reserved=0x00000000",
        "  auth_minbits=0 auth_maxbits=0 encrypt_minbits=256 encrypt_maxbits=256",
        "  soft_alloc=1 hard_alloc=1 soft_bytes=0 hard_bytes=0",
        "  soft_alloc=0 hard_alloc=86400 soft_bytes=28800 hard_bytes=0 }",
        "}", ""]


def test_identity_strings() -> None:
    """kdebug_sadb_identity (userland branch): ``sadb_ident_src{ type= id=`` and
    the string up to its NUL, non-printable bytes as ``\\ooo``; no string part
    for a bare 16-byte ident."""
    msg = Message(SADB.ACQUIRE, 3, exts=(
        SadbIdent(E.IDENTITY_SRC, 2, b"gw.example\x01\xe9"),
        SadbIdent(E.IDENTITY_DST, 3, b"", 77)))
    assert kdebug_sadb(msg).split("\n")[2:] == [
        "sadb_ext{ len=4 type=10(IDENTITY_SRC) }",
        'sadb_ident_src{ type=2 id=0',
        '  str="gw.example\\001\\351" }',
        "sadb_ext{ len=2 type=11(IDENTITY_DST) }",
        "sadb_ident_dst{ type=3 id=77 }", ""]


def test_silent_extensions() -> None:
    """kdebug_sadb: SENSITIVITY, SPIRANGE print only their sadb_ext line."""
    msg = Message(SADB.GETSPI, 3, exts=(SadbSpirange(0x100, 0x1000), SadbSens(dpd=1)))
    assert kdebug_sadb(msg).split("\n")[2:] == [
        "sadb_ext{ len=2 type=16(SPIRANGE) }", "sadb_ext{ len=2 type=12(SENSITIVITY) }", ""]


def test_kmprivate_is_silent_unknown_types_stop() -> None:
    """kdebug_sadb: KMPRIVATE has a name and an empty case; a type without a
    case (NAT_T_FRAG, 0, 40) ends the dump with ``invalid ext_type``."""
    kmp = Message(SADB.GETSPI, 3, exts=(RawExtension(17, bytes(4)), SadbSpirange(1, 2)))
    assert kdebug_sadb(kmp).split("\n")[2:] == [
        "sadb_ext{ len=1 type=17(KMPRIVATE) }", "sadb_ext{ len=2 type=16(SPIRANGE) }", ""]
    for ext, head in ((SadbXNatTFrag(1400), "sadb_ext{ len=1 type=25(NAT_T_FRAG) }"),
                      (RawExtension(0, bytes(4)), "sadb_ext{ len=1 type=0(RESERVED) }"),
                      (RawExtension(40, bytes(4)), "sadb_ext{ len=1 type=40(UNKNOWN) }")):
        msg = Message(SADB.ADD, 3, exts=(ext, SadbSa(0x1000)))
        for quirk in (False, True):
            assert kdebug_sadb(msg, quirk_kdebug_offl=quirk).split("\n")[2:] == [
                head, "kdebug_sadb: invalid ext_type %u" % ext.exttype, ""]


def offloaded_dump() -> Message:
    return Message(SADB.DUMP, 3, 0, 1, 0, 1, (
        SadbSa(0x9000, 0, 1, 11, 20, 0x40),
        SadbLifetime(E.X_LFT_CUR_SW_OFFL, 2, 200),
        SadbLifetime(E.X_LFT_CUR_HW_OFFL, 10, 2800),
        SadbXIfHwOffl("mce0"), SadbXIfHwOffl("mce1")))


def test_offload_extensions_model_behaviour() -> None:
    """kdebug_sadb with the offload extensions, quirk off (the model's
    behaviour): 29/30 print their lifetime and the walk goes on; 31 is named
    IF_HW_OFFL and printed as ``sadb_x_if_hw_offl{ flags= if= }``."""
    assert kdebug_sadb(offloaded_dump()).split("\n")[5:] == [
        "sadb_ext{ len=4 type=29(LFT_CUR_SW_OFFL) }",
        "sadb_lifetime{ alloc=2, bytes=200",
        "  addtime=0, usetime=0 }",
        "sadb_ext{ len=4 type=30(LFT_CUR_HW_OFFL) }",
        "sadb_lifetime{ alloc=10, bytes=2800",
        "  addtime=0, usetime=0 }",
        "sadb_ext{ len=5 type=31(IF_HW_OFFL) }",
        "sadb_x_if_hw_offl{ flags=0x00000000 if=mce0 }",
        "sadb_ext{ len=5 type=31(IF_HW_OFFL) }",
        "sadb_x_if_hw_offl{ flags=0x00000000 if=mce1 }", ""]


def test_offload_extensions_freebsd_quirk() -> None:
    """kdebug_sadb with quirk_kdebug_offl: FreeBSD 2024-10-29 prints the
    offload lifetime, falls through into the default case and stops; an
    IF_HW_OFFL (here after a policy, as key.c sends for an SP with
    accel_ifname) is ``type=31(UNKNOWN)`` and stops the dump."""
    assert kdebug_sadb(offloaded_dump(), quirk_kdebug_offl=True).split("\n")[5:] == [
        "sadb_ext{ len=4 type=29(LFT_CUR_SW_OFFL) }",
        "sadb_lifetime{ alloc=2, bytes=200",
        "  addtime=0, usetime=0 }",
        "kdebug_sadb: invalid ext_type 29", ""]
    spd = Message(SADB.X_SPDADD, exts=(SadbXPolicy(0, 2), SadbXIfHwOffl("mce0"),
                                       SadbAddress(E.ADDRESS_SRC, V4("10.0.0.1"))))
    assert kdebug_sadb(spd, quirk_kdebug_offl=True).split("\n")[4:] == [
        "sadb_ext{ len=5 type=31(UNKNOWN) }", "kdebug_sadb: invalid ext_type 31", ""]


def test_length_errors_stop_the_walk() -> None:
    """kdebug_sadb: ``invalid ext_len=0`` and ``ext_len too big`` (which
    compares 64-bit units with the bytes left, as key_debug.c does)."""
    zero = Message(SADB.ADD, 3, exts=(SadbSa(0x1000), RawExtension(1, bytes(4), 0)))
    assert kdebug_sadb(zero).split("\n")[-3:] == [
        "sadb_ext{ len=0 type=1(SA) }", "kdebug_sadb: invalid ext_len=0 was passed.", ""]
    # 3 units in an 8-byte tail: 3 <= 8, so FreeBSD does not notice; 9 > 8 it does.
    small = Message(SADB.ADD, 3, exts=(RawExtension(26, bytes(4), 3),))
    assert kdebug_sadb(small).split("\n")[2:] == [
        "sadb_ext{ len=3 type=26(SA_REPLAY) }", "sadb_x_sa_replay{ replay=0 }", ""]
    big = Message(SADB.ADD, 3, exts=(RawExtension(26, bytes(4), 9),))
    assert kdebug_sadb(big).split("\n")[2:] == [
        "sadb_ext{ len=9 type=26(SA_REPLAY) }", "kdebug_sadb: ext_len too big (9 > 8).", ""]


def test_key_length_mismatch() -> None:
    """kdebug_sadb_key: a key whose bits exceed the extension prints the
    mismatch line, then the bytes anyway (zeros past the message here)."""
    msg = Message(SADB.ADD, 3, exts=(SadbKey(E.KEY_AUTH, b"\xaa" * 8, bits=96),))
    assert kdebug_sadb(msg).split("\n")[2:] == [
        "sadb_ext{ len=2 type=8(KEY_AUTH) }",
        "sadb_key{ bits=96 reserved=0",
        "  key=kdebug_sadb_key: key length mismatch, bit:12 len:8.",
        " aaaaaaaa aaaaaaaa 00000000 }", ""]


def test_policy_request_walk_errors() -> None:
    """kdebug_sadb_x_policy: a zero-length request (``wrong policy struct``)
    and one longer than what is left (``invalid ipsec policy length``); the
    message walk continues with the next extension."""
    zero = SadbXPolicy(2, 2, trailer=bytes(8))
    msg = Message(SADB.X_SPDADD, exts=(zero, SadbAddress(E.ADDRESS_SRC, V4("10.0.0.1"))))
    assert kdebug_sadb(msg).split("\n")[2:7] == [
        "sadb_ext{ len=3 type=18(POLICY) }",
        "sadb_x_policy{ type=2 dir=2 id=0 scope=0 priority=0 }",
        " { len=0 proto=0 mode=0 level=0 reqid=0",
        " }",
        "kdebug_sadb_x_policy: wrong policy struct."]
    assert "sadb_ext{ len=3 type=5(ADDRESS_SRC) }" in kdebug_sadb(msg)
    long_req = bytes.fromhex("1800 3200 01 01 0000")
    msg = Message(SADB.X_SPDADD, exts=(SadbXPolicy(2, 2, trailer=long_req),))
    assert kdebug_sadb(msg).split("\n")[4:] == [
        " { len=24 proto=50 mode=1 level=1 reqid=0",
        "sockaddr{ len=0 family=0 addr=unknown }",
        "sockaddr{ len=0 family=0 addr=unknown }",
        " }",
        "kdebug_sadb_x_policy: invalid ipsec policy length (24 > 8)", ""]


def test_unknown_message_type_and_errno() -> None:
    """kdebug_sadb header: unknown types print UNKNOWN; errno and the
    X_ names (X_SPDDELETE2) as key_debug.c's SADB_NAME macro gives them."""
    assert kdebug_sadb(Message(23, 0, errno=22)).split("\n")[0] == \
        "sadb_msg{ version=2 type=23(UNKNOWN) errno=22 satype=0"
    assert kdebug_sadb(Message(SADB.X_SPDDELETE2)).split("\n")[0] == \
        "sadb_msg{ version=2 type=22(X_SPDDELETE2) errno=0 satype=0"


def test_sockaddr_forms() -> None:
    """kdebug_sockaddr: link-local IPv6 with a numeric scope (never a name),
    other IPv6 without one even when a scope id is set, unknown families."""
    assert kdebug_sockaddr(V6("fe80::1", scope_id=3).wire()) == \
        "sockaddr{ len=28 family=28 addr=fe80::1%3 }\n"
    assert kdebug_sockaddr(V6("2001:db8::1", scope_id=3).wire()) == \
        "sockaddr{ len=28 family=28 addr=2001:db8::1 }\n"
    assert kdebug_sockaddr(V6("::ffff:192.0.2.1").wire()) == \
        "sockaddr{ len=28 family=28 addr=::ffff:192.0.2.1 }\n"
    assert kdebug_sockaddr(bytes([6, 1, 1, 2, 3, 4])) == \
        "sockaddr{ len=6 family=1 addr=unknown }\n"


@given(st.binary(min_size=16, max_size=16))
def test_inet_ntop6_matches_rfc5952_text(raw: bytes) -> None:
    """key_debug/getnameinfo's inet_ntop6 (BIND's): the same text as Python's
    ipaddress except for the dotted forms ::a.b.c.d and ::ffff:a.b.c.d."""
    words = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, 16, 2)]
    dotted = words[:5] == [0] * 5 and ((words[5] == 0 and words[6] != 0)
                                       or (words[5] == 0xFFFF))
    text = inet_ntop6(raw)
    if dotted:
        assert text.endswith(str(ipaddress.IPv4Address(raw[12:])))
    else:
        assert text == str(ipaddress.IPv6Address(raw))


def test_inet_ntop6_corner_cases() -> None:
    """inet_ntop6: ``::``, ``::1``, ``::2`` (the len-7 IPv4 case is unreachable),
    ``::1.2.3.4``, ``::ffff:0.0.0.0``, single zero words not compressed."""
    def t(a: str) -> str:
        return inet_ntop6(ipaddress.IPv6Address(a).packed)
    assert t("::") == "::"
    assert t("::1") == "::1"
    assert t("::2") == "::2"
    assert t("::102:304") == "::1.2.3.4"
    assert t("::ffff:0:0") == "::ffff:0.0.0.0"
    assert t("1:0:2:0:3:0:4:0") == "1:0:2:0:3:0:4:0"
    assert t("1:0:0:2:0:0:3:4") == "1::2:0:0:3:4"


def test_ipsec_hexdump() -> None:
    """key_debug.c ipsec_hexdump: a blank before each 4-byte group, newline
    before each 32-byte line but the first, none at the end."""
    assert ipsec_hexdump(b"") == ""
    assert ipsec_hexdump(b"\x01\x02\x03\x04\x05") == " 01020304 05"
    assert ipsec_hexdump(bytes(33)) == " " + " ".join(["00000000"] * 8) + "\n 00"


def test_setkey_hex_dump() -> None:
    """setkey.c ``-h``: ``%08x: `` offsets, ``%02x `` per byte, 16 a line,
    a final newline only after a partial line."""
    assert setkey_hexdump(bytes(range(18))) == (
        "00000000: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f \n"
        "00000010: 10 11 \n")
    assert setkey_hexdump(bytes(16)) == "00000000: " + "00 " * 16 + "\n"
    assert setkey_hexdump(b"") == ""


def test_printdate_and_gmt2local() -> None:
    """setkey.c printdate: ``-x`` local ``HH:MM:SS.uuuuuu `` (UTC + thiszone),
    ``-xx`` ``sec.usec ``, each ending the line; gmt2local from the hour and
    minute fields, across a date change."""
    t = 1736078400 + 3 * 3600 + 4 * 60 + 5          # 2025-01-05 15:04:05 UTC
    assert printdate(t, 42, tflag=1) == "15:04:05.000042 \n"
    assert printdate(t, 42, tflag=2) == "1736089445.000042 \n"
    assert printdate(t, 42, tflag=3) == "1736089445.000042 \n"
    assert printdate(t, 7, tflag=1, thiszone=-5 * 3600) == "10:04:05.000007 \n"
    assert gmt2local(t) == 0
    assert gmt2local(t, timezone(timedelta(hours=9, minutes=30))) == 34200
    assert gmt2local(1736078400 + 23 * 3600, timezone(timedelta(hours=2))) == 7200
    # Seconds of the offset are dropped through the minute field: -5:00:07 gives -5:01.
    assert gmt2local(1736078400 + 3600, timezone(timedelta(hours=-5, seconds=-7))) == -18060


def test_promisc_print_step() -> None:
    """setkey.c promisc(): the date line, the ``-h`` dump of all bytes read,
    kdebug_sadb of the mirrored message after the X_PROMISC header and a blank
    line; a bare X_PROMISC header prints only the date; an ordinary broadcast
    is printed as is."""
    inner = setkey_add().encode()
    wrapped = Message(SADB.X_PROMISC, inner=inner).encode()
    t = 1736078400                                   # 2025-01-05 12:00:00 UTC
    assert promisc_text(wrapped, sec=t, usec=1) == "12:00:00.000001 \n" + ADD_TEXT + "\n"
    with_hex = promisc_text(wrapped, sec=t, usec=1, tflag=2, hexdump=True)
    assert with_hex == "1736078400.000001 \n" + setkey_hexdump(wrapped) + ADD_TEXT + "\n"
    bare = Message(SADB.X_PROMISC, 1, 0, 99).encode()
    assert promisc_text(bare, sec=t, usec=0) == "12:00:00.000000 \n"
    assert promisc_text(inner, sec=t, usec=0, thiszone=3600) == \
        "13:00:00.000000 \n" + ADD_TEXT + "\n"


def test_sendkeymsg_text() -> None:
    """setkey.c sendkeymsg: ``-v`` shows kdebug_sadb and a blank line, ``-h``
    the hex dump of the request (independently of -v)."""
    msg = setkey_add()
    assert sendkeymsg_text(msg) == ""
    assert sendkeymsg_text(msg, verbose=True) == ADD_TEXT + "\n"
    assert sendkeymsg_text(msg, hexdump=True) == setkey_hexdump(msg.encode())
    assert sendkeymsg_text(msg, verbose=True, hexdump=True) == \
        ADD_TEXT + "\n" + setkey_hexdump(msg.encode())


def test_unencodable_message_is_still_printed() -> None:
    """message_bytes: header values wider than their C fields are truncated and
    extensions that cannot be packed are left out; kdebug_sadb never raises."""
    msg = Message(SADB.ADD, 3, seq=2**32 + 1, exts=(SadbSa(2**40), SadbXSa2(1, 5)))
    raw = message_bytes(msg)
    assert len(raw) == 32
    assert kdebug_sadb(msg).split("\n")[:3] == [
        "sadb_msg{ version=2 type=3(ADD) errno=0 satype=3",
        "  len=4 reserved=0 seq=1 pid=0",
        "sadb_ext{ len=2 type=19(SA2) }"]


def test_short_and_empty_input() -> None:
    """kdebug_sadb on fewer than 16 bytes or a zero length: the header only."""
    assert kdebug_sadb(b"\x02\x03") == (
        "sadb_msg{ version=2 type=3(ADD) errno=0 satype=0\n"
        "  len=0 reserved=0 seq=0 pid=0\n")


def test_public_names() -> None:
    """pfkey.key_debug exports what its __all__ lists."""
    for name in kd.__all__:
        assert hasattr(kd, name), name
