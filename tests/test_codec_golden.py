"""Golden (message, bytes) table for the PF_KEY v2 codec.

The bytes were written by hand from the struct layouts in
../shared/reference/pfkey_setkey_reference.md §A.2-§A.5 and
freebsd_ipsec_offload.md §11 (sys/net/pfkeyv2.h): host-order fields are
little-endian (amd64), the SPI, NAT-T ports and sockaddr contents are network
order, every extension is padded to 8 bytes and ``len`` counts 64-bit units.
Each entry drives both directions: ``encode(msg) == bytes`` and
``decode(bytes) == msg``.  There is at least one entry per message type
(0..22) and one per extension type the kernel accepts (1..16, 18..31); type 17
(KMPRIVATE) is refused and lives in the malformed table.
"""

from __future__ import annotations

import pytest

from pfkey import (
    IpsecRequest, Message, SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey,
    SadbLifetime, SadbProp, SadbSa, SadbSens, SadbSpirange, SadbSupported,
    SadbXIfHwOffl, SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2,
    SadbXSaReplay, Sockaddr, decode,
)
from pfkey.pfkeyv2 import SADB, SADB_EXT


def h(*parts: str | bytes) -> bytes:
    """Concatenate hex text and already-built byte pieces."""
    return b"".join(p if isinstance(p, bytes) else bytes.fromhex(p) for p in parts)


V4 = Sockaddr.inet
V6 = Sockaddr.inet6
E = SADB_EXT

# -- reusable hand-written extension bytes ----------------------------------
SA_10001 = h("0200 0100", "00010001", "04 00 00 14", "40000000")      # spi 0x10001 replay 4 enc 20 flags 0x40
SA2_T100 = h("0200 1300", "01 00 0000", "00000000", "64000000")      # transport, reqid 100
SRC_1 = h("0300 0500", "ff 20 0000", "1002 0000 c0a80101 0000000000000000")  # 192.168.1.1/32
DST_2 = h("0300 0600", "ff 20 0000", "1002 0000 c0a80102 0000000000000000")  # 192.168.1.2/32
KEY_ENC_160 = h("0400 0900", "a000 0000", "000102030405060708090a0b0c0d0e0f10111213", "00000000")
KEY_AUTH_256 = h("0500 0800", "0001 0000",
                 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
LFT_HARD_3600 = h("0400 0300", "00000000", "0000000000000000", "100e000000000000", "0000000000000000")
LFT_SOFT_2880 = h("0400 0400", "00000000", "0000000000000000", "400b000000000000", "0000000000000000")
IFHW_MCE0 = h("0500 1f00", "00000000", "6d636530", "00" * 28)
REPLAY_2048 = h("0100 1a00", "00080000")
SRC6 = h("0500 0500", "ff 80 0000", "1c1c 0000 00000000 20010db8000000000000000000000001 00000000",
         "00000000")
DST6 = h("0500 0600", "ff 80 0000", "1c1c 0000 00000000 20010db8000000000000000000000002 00000000",
         "00000000")

sa_10001 = SadbSa(0x10001, replay=4, encrypt=20, flags=0x40)
sa2_t100 = SadbXSa2(mode=1, reqid=100)
src_1 = SadbAddress(E.ADDRESS_SRC, V4("192.168.1.1"))
dst_2 = SadbAddress(E.ADDRESS_DST, V4("192.168.1.2"))
key_enc_160 = SadbKey(E.KEY_ENCRYPT, bytes(range(20)))
key_auth_256 = SadbKey(E.KEY_AUTH, bytes(range(32)))
lft_hard = SadbLifetime(E.LIFETIME_HARD, addtime=3600)
lft_soft = SadbLifetime(E.LIFETIME_SOFT, addtime=2880)
src6 = SadbAddress(E.ADDRESS_SRC, V6("2001:db8::1"))
dst6 = SadbAddress(E.ADDRESS_DST, V6("2001:db8::2"))

COMB = h("00 14 0000", "0000 0000", "0001 0001", "00000000", "01000000 01000000",
         "0000000000000000 0000000000000000", "0000000000000000 8051010000000000",
         "8070000000000000 0000000000000000")
comb = SadbComb(encrypt=20, encrypt_minbits=256, encrypt_maxbits=256, soft_allocations=1,
                hard_allocations=1, hard_addtime=86400, soft_usetime=28800)

TUNNEL_REQ = h("2800 3200 02 02 0000",
               "1002 0000 c0a80001 0000000000000000",
               "1002 0000 c0a80102 0000000000000000")
tunnel_req = IpsecRequest(50, 2, 2, 0, V4("192.168.0.1"), V4("192.168.1.2"))

SPD_SRC = h("0300 0500", "ff 20 0000", "1002 0015 0a000b29 0000000000000000")  # 10.0.11.41[21]
SPD_DST = h("0300 0600", "ff 20 0000", "1002 0000 0a000b21 0000000000000000")  # 10.0.11.33[any]
spd_src = SadbAddress(E.ADDRESS_SRC, V4("10.0.11.41", 21))
spd_dst = SadbAddress(E.ADDRESS_DST, V4("10.0.11.33"))


GOLDEN: list[tuple[str, Message, bytes, bool]] = [
    # (name, message, bytes, strict)
    ("RESERVED header only",
     Message(SADB.RESERVED),
     h("02 00 00 00", "0200 0000", "00000000", "00000000"), True),

    ("GETSPI esp with PROXY and SPIRANGE",
     Message(SADB.GETSPI, 3, seq=1, pid=42, exts=(
         src_1, dst_2,
         SadbAddress(E.ADDRESS_PROXY, V4("10.1.1.1")),
         SadbSpirange(0x100, 0x0FFFFFFF))),
     h("02 01 00 03", "0d00 0000", "01000000", "2a000000",
       SRC_1, DST_2,
       "0300 0700 ff 20 0000 1002 0000 0a010101 0000000000000000",
       "0200 1000 00010000 ffffff0f 00000000"), True),

    ("UPDATE esp NAT-T with OAI/OAR/FRAG and MOBIKE new addresses",
     Message(SADB.UPDATE, 3, seq=7, pid=100, exts=(
         sa_10001, sa2_t100, src_1, dst_2,
         SadbXNatTType(2),
         SadbXNatTPort(E.X_NAT_T_SPORT, 4500),
         SadbXNatTPort(E.X_NAT_T_DPORT, 4500),
         SadbAddress(E.X_NAT_T_OAI, V4("10.0.0.1")),
         SadbAddress(E.X_NAT_T_OAR, V4("10.0.0.2")),
         SadbXNatTFrag(1400),
         SadbAddress(E.X_NEW_ADDRESS_SRC, V4("172.16.0.1")),
         SadbAddress(E.X_NEW_ADDRESS_DST, V4("172.16.0.2")))),
     h("02 02 00 03", "1c00 0000", "07000000", "64000000",
       SA_10001, SA2_T100, SRC_1, DST_2,
       "0100 1400 02 000000",
       "0100 1500 1194 0000",
       "0100 1600 1194 0000",
       "0300 1700 ff 20 0000 1002 0000 0a000001 0000000000000000",
       "0300 1800 ff 20 0000 1002 0000 0a000002 0000000000000000",
       "0100 1900 7805 0000",
       "0300 1b00 ff 20 0000 1002 0000 ac100001 0000000000000000",
       "0300 1c00 ff 20 0000 1002 0000 ac100002 0000000000000000"), True),

    ("ADD esp: keys, lifetimes, SA2, SA_REPLAY, IF_HW_OFFL (setkey build order)",
     Message(SADB.ADD, 3, seq=0, pid=4242, exts=(
         key_enc_160, key_auth_256, lft_hard, lft_soft, sa_10001, sa2_t100,
         SadbXSaReplay(2048), src_1, dst_2, SadbXIfHwOffl("mce0"))),
     h("02 03 00 03", "2300 0000", "00000000", "92100000",
       KEY_ENC_160, KEY_AUTH_256, LFT_HARD_3600, LFT_SOFT_2880, SA_10001, SA2_T100,
       REPLAY_2048, SRC_1, DST_2, IFHW_MCE0), True),

    ("ADD esp with identities and sensitivity",
     Message(SADB.ADD, 3, pid=1, exts=(
         sa_10001, src_1, dst_2, key_enc_160,
         SadbIdent(E.IDENTITY_SRC, 2, b"a.example"),
         SadbIdent(E.IDENTITY_DST, 3, b"u@b"),
         SadbSens(dpd=1, sens_level=2, sens_len=1, integ_level=3,
                  bitmaps=bytes.fromhex("0102030405060708")))),
     h("02 03 00 03", "1800 0000", "00000000", "01000000",
       SA_10001, SRC_1, DST_2, KEY_ENC_160,
       "0400 0a00 0200 0000 0000000000000000", "612e6578616d706c65", "00" * 7,
       "0300 0b00 0300 0000 0000000000000000", "754062", "00" * 5,
       "0300 0c00 01000000 02 01 03 00 00000000 0102030405060708"), True),

    ("DELETE ah",
     Message(SADB.DELETE, 2, seq=3, pid=9, exts=(SadbSa(0x1000), src_1, dst_2)),
     h("02 04 00 02", "0a00 0000", "03000000", "09000000",
       "0200 0100 00001000 00 00 00 00 00000000", SRC_1, DST_2), True),

    ("GET esp IPv6",
     Message(SADB.GET, 3, pid=5, exts=(SadbSa(0x2001), src6, dst6)),
     h("02 05 00 03", "0e00 0000", "00000000", "05000000",
       "0200 0100 00002001 00 00 00 00 00000000", SRC6, DST6), True),

    ("ACQUIRE with PROPOSAL, POLICY header and SA2 (key_acquire layout)",
     Message(SADB.ACQUIRE, 3, seq=1, exts=(
         src_1, dst_2, SadbXPolicy(2, 2, id=5),
         SadbXSa2(mode=2, reqid=16384),
         SadbProp((comb,), replay=32))),
     h("02 06 00 03", "1600 0000", "01000000", "00000000",
       SRC_1, DST_2,
       "0200 1200 0200 02 00 05000000 00000000",
       "0200 1300 02 00 0000 00000000 00400000",
       "0a00 0d00 20 000000", COMB), True),

    ("REGISTER reply with SUPPORTED_AUTH/ENCRYPT",
     Message(SADB.REGISTER, 3, pid=77, exts=(
         SadbSupported(E.SUPPORTED_AUTH, (SadbAlg(3, 0, 160, 160), SadbAlg(5, 0, 256, 256))),
         SadbSupported(E.SUPPORTED_ENCRYPT, (SadbAlg(20, 12, 128, 256),)))),
     h("02 07 00 03", "0700 0000", "00000000", "4d000000",
       "0300 0e00 00000000", "03 00 a000 a000 0000", "05 00 0001 0001 0000",
       "0200 0f00 00000000", "14 0c 8000 0001 0000"), True),

    ("EXPIRE hard (key_expire layout)",
     Message(SADB.EXPIRE, 3, seq=4, reserved=2, exts=(
         sa_10001, sa2_t100,
         SadbLifetime(E.LIFETIME_CURRENT, 3, 4500, 1736078400, 1736078410),
         lft_hard, src_1, dst_2)),
     h("02 08 00 03", "1400 0200", "04000000", "00000000",
       SA_10001, SA2_T100,
       "0400 0200 03000000 9411000000000000 40747a6700000000 4a747a6700000000",
       LFT_HARD_3600, SRC_1, DST_2), True),

    ("FLUSH all",
     Message(SADB.FLUSH, 0, pid=1),
     h("02 09 00 00", "0200 0000", "00000000", "01000000"), True),

    ("DUMP reply of an offloaded SA: SW/HW counters and two IF_HW_OFFL (userland view)",
     Message(SADB.DUMP, 3, seq=0, pid=4242, reserved=1, exts=(
         sa_10001,
         SadbLifetime(E.X_LFT_CUR_SW_OFFL, 10, 15000),
         SadbLifetime(E.X_LFT_CUR_HW_OFFL, 5, 7000),
         SadbXIfHwOffl("mce0"), SadbXIfHwOffl("mce1"))),
     h("02 0a 00 03", "1600 0100", "00000000", "92100000",
       SA_10001,
       "0400 1d00 0a000000 983a000000000000 0000000000000000 0000000000000000",
       "0400 1e00 05000000 581b000000000000 0000000000000000 0000000000000000",
       IFHW_MCE0, "0500 1f00 00000000 6d636531", "00" * 28), False),

    ("X_PROMISC on",
     Message(SADB.X_PROMISC, 1),
     h("02 0b 00 01", "0200 0000", "00000000", "00000000"), True),

    ("X_PCHANGE header only",
     Message(SADB.X_PCHANGE, 0),
     h("02 0c 00 00", "0200 0000", "00000000", "00000000"), True),

    ("X_SPDUPDATE with LIFETIME_HARD",
     Message(SADB.X_SPDUPDATE, 0, exts=(
         SadbXPolicy(1, 1), spd_src, spd_dst,
         SadbLifetime(E.LIFETIME_HARD, addtime=60, usetime=30))),
     h("02 0d 00 00", "0e00 0000", "00000000", "00000000",
       "0200 1200 0100 01 00 00000000 00000000", SPD_SRC, SPD_DST,
       "0400 0300 00000000 0000000000000000 3c00000000000000 1e00000000000000"), True),

    ("X_SPDADD out ipsec esp/tunnel/192.168.0.1-192.168.1.2/require",
     Message(SADB.X_SPDADD, 0, pid=4242, exts=(
         SadbXPolicy(2, 2, requests=(tunnel_req,)), spd_src, spd_dst)),
     h("02 0e 00 00", "0f00 0000", "00000000", "92100000",
       "0700 1200 0200 02 00 00000000 00000000", TUNNEL_REQ, SPD_SRC, SPD_DST), True),

    ("X_SPDADD IPv6 two-request bundle with priority and ifnet scope",
     Message(SADB.X_SPDADD, 0, exts=(
         SadbXPolicy(2, 1, priority=3, scope=2, requests=(
             IpsecRequest(50, 2, 3, 0x4000, V6("2001:db8::a"), V6("2001:db8::b")),
             IpsecRequest(51, 1, 1, 0))),
         SadbAddress(E.ADDRESS_SRC, V6("2001:db8:1::"), 48, 6),
         SadbAddress(E.ADDRESS_DST, V6("2001:db8:2::"), 48, 6))),
     h("02 0e 00 00", "1700 0000", "00000000", "00000000",
       "0b00 1200 0200 01 02 00000000 03000000",
       "4000 3200 02 03 0040",
       "1c1c 0000 00000000 20010db800000000000000000000000a 00000000",
       "1c1c 0000 00000000 20010db800000000000000000000000b 00000000",
       "0800 3300 01 01 0000",
       "0500 0500 06 30 0000 1c1c 0000 00000000 20010db8000100000000000000000000 00000000 00000000",
       "0500 0600 06 30 0000 1c1c 0000 00000000 20010db8000200000000000000000000 00000000 00000000"),
     True),

    ("X_SPDDELETE out (setkey's type 0)",
     Message(SADB.X_SPDDELETE, 0, exts=(SadbXPolicy(0, 2), spd_src, spd_dst)),
     h("02 0f 00 00", "0a00 0000", "00000000", "00000000",
       "0200 1200 0000 02 00 00000000 00000000", SPD_SRC, SPD_DST), True),

    ("X_SPDGET by id",
     Message(SADB.X_SPDGET, 0, exts=(SadbXPolicy(0, 0, id=12),)),
     h("02 10 00 00", "0400 0000", "00000000", "00000000",
       "0200 1200 0000 00 00 0c000000 00000000"), True),

    ("X_SPDACQUIRE header only",
     Message(SADB.X_SPDACQUIRE, 0),
     h("02 11 00 00", "0200 0000", "00000000", "00000000"), True),

    ("X_SPDDUMP scope global",
     Message(SADB.X_SPDDUMP, 1, pid=3),
     h("02 12 00 01", "0200 0000", "00000000", "03000000"), True),

    ("X_SPDFLUSH",
     Message(SADB.X_SPDFLUSH, 0),
     h("02 13 00 00", "0200 0000", "00000000", "00000000"), True),

    ("X_SPDSETIDX none",
     Message(SADB.X_SPDSETIDX, 0, exts=(SadbXPolicy(1, 2), spd_src, spd_dst)),
     h("02 14 00 00", "0a00 0000", "00000000", "00000000",
       "0200 1200 0100 02 00 00000000 00000000", SPD_SRC, SPD_DST), True),

    ("X_SPDEXPIRE (key_spdexpire layout)",
     Message(SADB.X_SPDEXPIRE, 0, exts=(
         SadbLifetime(E.LIFETIME_CURRENT, addtime=1736078400, usetime=1736078410),
         SadbLifetime(E.LIFETIME_HARD, addtime=60),
         spd_src, spd_dst, SadbXPolicy(2, 2, id=9, requests=(tunnel_req,)))),
     h("02 15 00 00", "1700 0000", "00000000", "00000000",
       "0400 0200 00000000 0000000000000000 40747a6700000000 4a747a6700000000",
       "0400 0300 00000000 0000000000000000 3c00000000000000 0000000000000000",
       SPD_SRC, SPD_DST, "0700 1200 0200 02 00 09000000 00000000", TUNNEL_REQ), True),

    ("X_SPDDELETE2 by id",
     Message(SADB.X_SPDDELETE2, 0, seq=2, exts=(SadbXPolicy(2, 2, id=7),)),
     h("02 16 00 00", "0400 0000", "02000000", "00000000",
       "0200 1200 0200 02 00 07000000 00000000"), True),

    ("error reply echo: GET with errno ESRCH (3)",
     Message(SADB.GET, 3, errno=3, exts=(SadbSa(0x2001), src6, dst6)),
     h("02 05 03 03", "0e00 0000", "00000000", "00000000",
       "0200 0100 00002001 00 00 00 00 00000000", SRC6, DST6), True),
]


@pytest.mark.parametrize("name,msg,wire,strict", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_table_is_self_consistent(name: str, msg: Message, wire: bytes, strict: bool) -> None:
    """The hand-written bytes respect sadb_msg_len (pfkeyv2.h: len in 64-bit units)."""
    assert len(wire) % 8 == 0
    assert int.from_bytes(wire[4:6], "little") * 8 == len(wire)


@pytest.mark.parametrize("name,msg,wire,strict", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_encode_matches_golden(name: str, msg: Message, wire: bytes, strict: bool) -> None:
    """Message.encode() produces FreeBSD's exact bytes (pfkeyv2.h layouts)."""
    assert msg.encode().hex() == wire.hex()


@pytest.mark.parametrize("name,msg,wire,strict", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_decode_matches_golden(name: str, msg: Message, wire: bytes, strict: bool) -> None:
    """decode() of FreeBSD's bytes gives back the message (key_parse/key_align accept them)."""
    assert decode(wire, strict=strict) == msg


def test_every_message_type_covered() -> None:
    """At least one golden entry per message type 0..SADB_MAX (pfkeyv2.h)."""
    assert {g[1].type for g in GOLDEN} == set(range(23))


def test_every_accepted_extension_type_covered() -> None:
    """At least one golden entry per extension type key_align accepts (1..16, 18..31)."""
    seen = {e.exttype for g in GOLDEN for e in g[1].exts}
    assert seen == set(range(1, 32)) - {17}


def test_duplicate_if_hw_offl_refused_by_kernel_view() -> None:
    """key_align rejects any duplicate, IF_HW_OFFL included; libipsec's
    pfkey_align allows repeated IF_HW_OFFL (freebsd_ipsec_offload.md §12)."""
    wire = next(g[2] for g in GOLDEN if g[0].startswith("DUMP reply"))
    from pfkey.errors import DuplicateExtension
    with pytest.raises(DuplicateExtension):
        decode(wire)


def test_promiscuous_copy_carries_inner_message() -> None:
    """keysock.c key_sendup: a promiscuous socket gets the kernel's message behind
    a 16-byte X_PROMISC header whose len covers the whole copy (reference §C)."""
    inner = Message(SADB.FLUSH, 0, pid=1).encode()
    wrapped = h("02 0b 00 00", "0400 0000", "00000000", "00000000") + inner
    msg = decode(wrapped, strict=False)
    assert msg.type == SADB.X_PROMISC and msg.inner == inner
    assert msg.encode() == wrapped
    assert decode(msg.inner) == Message(SADB.FLUSH, 0, pid=1)
