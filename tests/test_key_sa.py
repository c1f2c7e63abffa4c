"""SAD messages of key.c: GETSPI, UPDATE, ADD, DELETE, GET, FLUSH, DUMP.

Conformance tables (request -> FreeBSD errno, reference
pfkey_setkey_reference.md §B.1-§B.3) and the SA flows of issue 3.  Every
test names the key.c function whose behaviour it pins.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from pfkey import Message, SadbAddress, SadbIdent, SadbSa, Sockaddr
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.extensions import SadbXNatTPort, SadbXNatTType, SadbXSaReplay
from pfkey.ipsec import IPSEC_MODE
from pfkey.key_testing import (
    AH, AUTH_KEY, E, ENC_KEY, ESP, IPCOMP, PID, TCPSIG, KeyHarness, add_msg, drain,
    exchange, getspi_msg, lifetimes, reply_errno, sa_in, sa_req_msg, update_msg,
)
from pfkey.keydb import DYING, LARVAL, MATURE
from pfkey.pfkeyv2 import SADB, SADB_AALG, SADB_EALG, SADB_SAFLAGS, SADB_SATYPE

Build = Callable[[KeyHarness], Message]


@pytest.fixture
def h() -> KeyHarness:
    """A kernel holding ESP SA 0x2000 and AH SA 0x3000 (10.0.0.1 -> 10.0.0.2)."""
    h = KeyHarness()
    so = h.socket()
    assert reply_errno(so, add_msg(0x2000)) == 0
    assert reply_errno(so, add_msg(0x3000, satype=AH, enc=0, enc_key=None)) == 0
    return h


def larval(h: KeyHarness, spi: int, **kw: Any) -> None:
    so = h.socket()
    got = exchange(so, getspi_msg(spirange=(spi, spi), **kw))
    assert got[0].errno == 0 and got[0].sa.spi == spi


def esp(spi: int = 0x1000, **kw: Any) -> Message:
    return add_msg(spi, **kw)


# ---------------------------------------------------------------------------
# Conformance table: one row per (request, expected FreeBSD errno)
# ---------------------------------------------------------------------------

def _without(msg: Message, t: int) -> Message:
    return msg.replace(exts=tuple(e for e in msg.exts if e.exttype != t))


def _with(msg: Message, *exts: Any) -> Message:
    return msg.replace(exts=msg.exts + exts)


def _sa(msg: Message, **changes: Any) -> Message:
    return msg.replace(exts=tuple(e.replace(**changes) if e.exttype == E.SA else e
                                  for e in msg.exts))


IDENT = SadbIdent(E.IDENTITY_SRC, 2, b"a.example")
NATT = (SadbXNatTType(2), SadbXNatTPort(E.X_NAT_T_SPORT, 4500),
        SadbXNatTPort(E.X_NAT_T_DPORT, 4500))
V6DST = SadbAddress(E.ADDRESS_DST, sa_in("2001:db8::2"))
ODD_SA = Sockaddr(99, 16, bytes(14))

CASES: list[tuple[str, Build, str]] = [
    # key_parse (pre-dispatch) rules reached through SA messages
    ("getspi satype UNSPEC", lambda h: getspi_msg(satype=0), "EINVAL"),
    ("getspi satype RSVP", lambda h: getspi_msg(satype=SADB_SATYPE.RSVP), "EOPNOTSUPP"),
    ("getspi satype 1", lambda h: getspi_msg(satype=1), "EINVAL"),
    ("getspi family mismatch",
     lambda h: _without(getspi_msg(), E.ADDRESS_DST).replace(
         exts=(getspi_msg().src, V6DST)), "EINVAL"),
    ("getspi unknown family", lambda h: getspi_msg().replace(exts=(
        SadbAddress(E.ADDRESS_SRC, ODD_SA, 0), SadbAddress(E.ADDRESS_DST, ODD_SA, 0))),
     "EAFNOSUPPORT"),
    ("getspi prefixlen 33", lambda h: getspi_msg().replace(exts=(
        getspi_msg().src.replace(prefixlen=33), getspi_msg().dst)), "EINVAL"),
    ("getspi proto mismatch", lambda h: getspi_msg().replace(exts=(
        getspi_msg().src.replace(proto=6), getspi_msg().dst)), "EINVAL"),
    # key_getspi
    ("getspi no SRC", lambda h: _without(getspi_msg(), E.ADDRESS_SRC), "EINVAL"),
    ("getspi no DST", lambda h: _without(getspi_msg(), E.ADDRESS_DST), "EINVAL"),
    ("getspi ok", lambda h: getspi_msg(), "0"),
    ("getspi ipv6 ok", lambda h: getspi_msg(src="2001:db8::1", dst="2001:db8::2"), "0"),
    ("getspi fixed SPI in use", lambda h: getspi_msg(spirange=(0x2000, 0x2000)), "EEXIST"),
    ("getspi fixed SPI in use by AH", lambda h: getspi_msg(spirange=(0x3000, 0x3000)),
     "EEXIST"),
    ("getspi fixed SPI free", lambda h: getspi_msg(spirange=(0x2001, 0x2001)), "0"),
    ("getspi reserved SPI", lambda h: getspi_msg(spirange=(200, 200)), "EINVAL"),
    ("getspi ipcomp CPI clamp", lambda h: getspi_msg(satype=IPCOMP,
                                                     spirange=(0x20000, 0x30000)), "0"),
    # key_update
    ("update no SA", lambda h: _without(update_msg(0x2000), E.SA), "EINVAL"),
    ("update no SRC", lambda h: _without(update_msg(0x2000), E.ADDRESS_SRC), "EINVAL"),
    ("update hard without soft",
     lambda h: update_msg(0x2000, auth_key=None, enc_key=None,
                          extra=lifetimes()[:1]), "EINVAL"),
    ("update unknown SPI", lambda h: update_msg(0x9999), "EINVAL"),
    ("update other pid", lambda h: update_msg(0x2000, pid=7, auth_key=None, enc_key=None),
     "EINVAL"),
    ("update other addresses", lambda h: update_msg(0x2000, dst="10.0.0.9", auth_key=None,
                                                    enc_key=None), "ESRCH"),
    ("update mature with key", lambda h: update_msg(0x2000, enc_key=None), "EINVAL"),
    ("update mature lifetimes", lambda h: update_msg(0x2000, auth_key=None, enc_key=None,
                                                     extra=lifetimes()), "0"),
    ("update larval without key",
     lambda h: (larval(h, 0x4000), update_msg(0x4000, enc_key=None))[1], "EINVAL"),
    ("update larval mode mismatch",
     lambda h: (larval(h, 0x4000, mode=IPSEC_MODE.TRANSPORT, dst="10.0.0.5"),
                update_msg(0x4000, mode=IPSEC_MODE.TUNNEL, dst="10.0.0.5"))[1], "ESRCH"),
    # key_getsah is CMP_MODE_REQID: an SAH of mode ANY absorbs a TRANSPORT SA
    ("update larval joined an ANY head",
     lambda h: (larval(h, 0x4000, mode=IPSEC_MODE.TRANSPORT),
                update_msg(0x4000, mode=IPSEC_MODE.TUNNEL))[1], "0"),
    ("update larval ok", lambda h: (larval(h, 0x4000), update_msg(0x4000))[1], "0"),
    # key_add + key_setsaval + xform_init
    ("add dup SPI", lambda h: esp(0x2000), "EEXIST"),
    ("add dup SPI other proto", lambda h: esp(0x3000), "EEXIST"),
    ("add dup SPI of a larval SA", lambda h: (larval(h, 0x4000), esp(0x4000))[1], "EEXIST"),
    ("add no SA", lambda h: _without(esp(), E.SA), "EINVAL"),
    ("add no DST", lambda h: _without(esp(), E.ADDRESS_DST), "EINVAL"),
    ("add esp no KEY_ENCRYPT", lambda h: esp(enc_key=None), "EINVAL"),
    ("add ah no KEY_AUTH", lambda h: esp(satype=AH, enc=0, enc_key=None, auth_key=None),
     "EINVAL"),
    ("add soft without hard", lambda h: esp(extra=lifetimes()[1:]), "EINVAL"),
    ("add SPI 255", lambda h: esp(255), "EINVAL"),
    ("add SPI 256", lambda h: esp(256), "0"),
    ("add flags outside 0xfff", lambda h: esp(flags=0x1000), "EINVAL"),
    ("add 3DES unsupported", lambda h: esp(enc=SADB_EALG._3DESCBC, enc_key=bytes(24)),
     "EINVAL"),
    ("add AES-CBC short key", lambda h: esp(enc_key=bytes(15)), "EINVAL"),
    ("add AES-CBC long key", lambda h: esp(enc_key=bytes(40)), "EINVAL"),
    ("add AES-CBC-256", lambda h: esp(enc_key=bytes(32)), "0"),
    ("add AES-GCM-128", lambda h: esp(enc=SADB_EALG.X_AESGCM16, auth=0, auth_key=None,
                                      enc_key=bytes(20)), "0"),
    ("add AES-GCM 160-bit key", lambda h: esp(enc=SADB_EALG.X_AESGCM16, auth=0,
                                              auth_key=None, enc_key=bytes(24)), "EINVAL"),
    ("add AES-GCM-8 unsupported", lambda h: esp(enc=SADB_EALG.X_AESGCM8, auth=0,
                                                auth_key=None, enc_key=bytes(20)), "EINVAL"),
    ("add ChaCha20-Poly1305", lambda h: esp(enc=SADB_EALG.X_CHACHA20POLY1305, auth=0,
                                            auth_key=None, enc_key=bytes(36)), "0"),
    ("add AES-CTR needs salt", lambda h: esp(enc=SADB_EALG.X_AESCTR, enc_key=bytes(16)),
     "EINVAL"),
    ("add HMAC-SHA1 key over keysize", lambda h: esp(auth_key=bytes(65)), "EINVAL"),
    # ah_init0 rejects only keys *longer* than the hash's keysize (its block
    # length: HMAC keys may be shorter); FreeBSD's xform_ah.c, checked.
    ("add HMAC-SHA1 key at keysize", lambda h: esp(auth_key=bytes(64)), "0"),
    ("add HMAC-SHA1 short key", lambda h: esp(auth_key=bytes(1)), "0"),
    ("add HMAC-SHA2-256", lambda h: esp(auth=SADB_AALG.X_SHA2_256, auth_key=bytes(32)), "0"),
    ("add HMAC-MD5 unsupported", lambda h: esp(auth=SADB_AALG.MD5HMAC, auth_key=bytes(16)),
     "EINVAL"),
    ("add empty auth key", lambda h: esp(auth_key=b""), "EINVAL"),
    ("add NULL auth empty key", lambda h: esp(auth=SADB_AALG.X_NULL, auth_key=b""), "0"),
    ("add ESP auth without key", lambda h: esp(auth_key=None), "EINVAL"),
    ("add ESP NULL cipher", lambda h: esp(enc=SADB_EALG.NULL, enc_key=b""), "0"),
    ("add ESP empty cipher key", lambda h: esp(enc_key=b""), "EINVAL"),
    ("add ESP OLD+DERIV", lambda h: esp(auth=0, auth_key=None,
                                        flags=SADB_SAFLAGS.X_EXT_OLD | SADB_SAFLAGS.X_EXT_DERIV),
     "EINVAL"),
    ("add ESP OLD with auth", lambda h: esp(flags=SADB_SAFLAGS.X_EXT_OLD), "EINVAL"),
    ("add ESP OLD without auth", lambda h: esp(auth=0, auth_key=None,
                                               flags=SADB_SAFLAGS.X_EXT_OLD), "0"),
    ("add ESP IV4B without OLD", lambda h: esp(flags=SADB_SAFLAGS.X_EXT_IV4B), "EINVAL"),
    ("add AH ok", lambda h: esp(satype=AH, enc=0, enc_key=None), "0"),
    ("add AH with cipher", lambda h: esp(satype=AH, enc_key=None), "EINVAL"),
    ("add AH DERIV", lambda h: esp(satype=AH, enc=0, enc_key=None,
                                   flags=SADB_SAFLAGS.X_EXT_DERIV), "EINVAL"),
    ("add AH with KEY_ENCRYPT", lambda h: esp(satype=AH, enc=0), "EINVAL"),
    ("add IPComp deflate", lambda h: esp(0x10, satype=IPCOMP, auth=0, enc=2, auth_key=None,
                                         enc_key=None), "0"),
    ("add IPComp with auth", lambda h: esp(0x10, satype=IPCOMP, enc=2, enc_key=None),
     "EINVAL"),
    ("add IPComp big CPI", lambda h: esp(0x10000, satype=IPCOMP, auth=0, enc=2,
                                         auth_key=None, enc_key=None), "EINVAL"),
    ("add IPComp big CPI RAWCPI", lambda h: esp(0x10000, satype=IPCOMP, auth=0, enc=2,
                                                auth_key=None, enc_key=None,
                                                flags=SADB_SAFLAGS.X_EXT_RAWCPI), "0"),
    ("add IPComp key material", lambda h: esp(0x10, satype=IPCOMP, auth=0, enc=2,
                                              auth_key=None, enc_key=bytes(8)), "EINVAL"),
    ("add IPComp LZS unsupported", lambda h: esp(0x10, satype=IPCOMP, auth=0, enc=3,
                                                 auth_key=None, enc_key=None), "EINVAL"),
    ("add TCP-MD5", lambda h: esp(0x1000, satype=TCPSIG, auth=SADB_AALG.X_TCP_MD5, enc=0,
                                  enc_key=None, auth_key=b"secret"), "0"),
    ("add TCP-MD5 with cipher", lambda h: esp(0x1000, satype=TCPSIG, auth=SADB_AALG.X_TCP_MD5,
                                              auth_key=b"secret", enc_key=None), "EINVAL"),
    ("add TCP-MD5 SPI 0", lambda h: esp(0, satype=TCPSIG, auth=SADB_AALG.X_TCP_MD5, enc=0,
                                        enc_key=None, auth_key=b"secret"), "EEXIST"),
    ("add one identity", lambda h: esp(extra=(IDENT,)), "EINVAL"),
    ("add identity types differ", lambda h: esp(extra=(
        IDENT, IDENT.replace(exttype=E.IDENTITY_DST, type=3))), "EINVAL"),
    ("add identities ignored", lambda h: esp(extra=(
        IDENT, IDENT.replace(exttype=E.IDENTITY_DST))), "0"),
    ("add NAT-T", lambda h: esp(extra=NATT), "0"),
    ("add NAT-T type 1", lambda h: esp(extra=(NATT[0].replace(type=1),) + NATT[1:]),
     "EINVAL"),
    ("add NAT-T sport 0", lambda h: esp(extra=(NATT[0], NATT[1].replace(port=0), NATT[2])),
     "EINVAL"),
    ("add NAT-T partial ignored", lambda h: esp(extra=NATT[:2]), "0"),
    ("add SA_REPLAY too big", lambda h: esp(extra=(SadbXSaReplay(0xFFFFFFFF - 31),)),
     "EINVAL"),
    ("add SA_REPLAY", lambda h: esp(extra=(SadbXSaReplay(2048),)), "0"),
    # key_delete / key_delete_all
    ("delete no SRC", lambda h: _without(sa_req_msg(SADB.DELETE, 0x2000), E.ADDRESS_SRC),
     "EINVAL"),
    ("delete unknown SPI", lambda h: sa_req_msg(SADB.DELETE, 0x9999), "ESRCH"),
    ("delete other addresses", lambda h: sa_req_msg(SADB.DELETE, 0x2000, dst="10.0.0.9"),
     "ESRCH"),
    ("delete other protocol", lambda h: sa_req_msg(SADB.DELETE, 0x2000, satype=AH), "ESRCH"),
    ("delete ok", lambda h: sa_req_msg(SADB.DELETE, 0x2000), "0"),
    ("delete larval", lambda h: (larval(h, 0x4000), sa_req_msg(SADB.DELETE, 0x4000))[1], "0"),
    ("delete-all no match", lambda h: sa_req_msg(SADB.DELETE, None, dst="10.9.9.9"), "0"),
    # key_get
    ("get no SA", lambda h: _without(sa_req_msg(SADB.GET, 0x2000), E.SA), "EINVAL"),
    ("get unknown", lambda h: sa_req_msg(SADB.GET, 0x9999), "ESRCH"),
    ("get other protocol", lambda h: sa_req_msg(SADB.GET, 0x2000, satype=AH), "ESRCH"),
    ("get ok", lambda h: sa_req_msg(SADB.GET, 0x2000), "0"),
    # key_dump / key_flush
    ("dump nothing of that type", lambda h: Message(SADB.DUMP, IPCOMP, pid=PID), "ENOENT"),
    ("flush all", lambda h: Message(SADB.FLUSH, 0, pid=PID), "0"),
    # key_parse: message types without a handler
    ("type RESERVED", lambda h: Message(SADB.RESERVED, 0), "EINVAL"),
    ("type EXPIRE", lambda h: Message(SADB.EXPIRE, ESP), "EINVAL"),
    ("type X_PCHANGE", lambda h: Message(SADB.X_PCHANGE, 0), "EINVAL"),
    ("type X_SPDACQUIRE", lambda h: Message(SADB.X_SPDACQUIRE, 0), "EINVAL"),
    ("type X_SPDEXPIRE", lambda h: Message(SADB.X_SPDEXPIRE, 0), "EINVAL"),
]


@pytest.mark.parametrize("name,build,want", CASES, ids=[c[0] for c in CASES])
def test_sa_conformance(h: KeyHarness, name: str, build: Build, want: str) -> None:
    """key_parse + key_getspi / key_update / key_add (key_setsaval,
    key_setnatt, xform_init) / key_delete / key_get / key_dump / key_flush:
    each request is answered with FreeBSD's errno (0 = success reply)."""
    so = h.socket()
    msg = build(h)
    got = exchange(so, msg)
    assert got, "no reply at all"
    reply = got[-1]
    assert reply.errno == (0 if want == "0" else W[want]), (name, reply)
    assert reply.type == msg.type
    h.key._check()


def test_conformance_case_count() -> None:
    """Issue 3 asks for at least 60 (request, errno) cases over all families."""
    assert len(CASES) >= 60


# ---------------------------------------------------------------------------
# Error replies (key_senderror)
# ---------------------------------------------------------------------------

def test_error_reply_echoes_whole_request_with_keys() -> None:
    """key_senderror: the entire request, keys included, back to the sender
    only, with sadb_msg_errno set and the length unchanged."""
    h = KeyHarness()
    so, other = h.socket(), h.socket()
    req = esp(200).encode()           # SPI <= 255: EINVAL from key_newsav
    so.send(req)
    (raw,) = so.recv_all()
    assert len(raw) == len(req)
    assert raw[2] == W["EINVAL"]
    assert raw[:2] == req[:2] and raw[3:] == req[3:]
    assert other.recv_all() == []


# ---------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------

def test_getspi_update_mature_flow() -> None:
    """key_getspi -> key_update: LARVAL with a fresh SPI, then MATURE; the
    GETSPI reply goes to the sender only (SA with only the SPI set), the
    UPDATE reply to everyone and without keys."""
    h = KeyHarness()
    ike, other = h.socket(), h.socket()
    (rep,) = exchange(ike, getspi_msg(seq=7))
    assert rep.errno == 0 and rep.seq == 7
    spi = rep.sa.spi
    assert rep.sa == SadbSa(spi) and 0x100 <= spi <= 0x0FFFFFFF
    assert rep.ext_types == (E.SA, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert drain(other) == []
    sav = h.key.savhash[spi]
    assert sav.state == LARVAL and sav.created == h.clock.now() and sav.pid == PID
    h.clock.advance(5)
    (upd,) = exchange(ike, update_msg(spi, extra=lifetimes((0, 0, 100, 0), (0, 0, 80, 0))))
    assert upd.errno == 0
    assert upd.ext_types == (E.SA, E.ADDRESS_SRC, E.ADDRESS_DST, E.LIFETIME_HARD,
                             E.LIFETIME_SOFT)
    assert [m.type for m in drain(other)] == [SADB.UPDATE]
    assert sav.state == MATURE and sav.created == h.clock.now()
    assert sav.lft_h.addtime == 100 and sav.lft_s.addtime == 80
    h.key._check()


def test_add_reply_all_no_keys_gather_order() -> None:
    """key_add + key_getmsgbuf_x1: reply to ALL, request extensions in
    key.c's gather order, never the keys."""
    h = KeyHarness()
    so, other = h.socket(), h.socket()
    msg = esp(0x1234, seq=3, mode=IPSEC_MODE.TUNNEL, reqid=7,
              extra=lifetimes((0, 0, 10, 0), (0, 0, 8, 0)) + NATT)
    (rep,) = exchange(so, msg)
    assert rep.errno == 0 and rep.seq == 3 and rep.pid == PID
    assert rep.ext_types == (E.SA, E.X_SA2, E.ADDRESS_SRC, E.ADDRESS_DST, E.LIFETIME_HARD,
                             E.LIFETIME_SOFT, E.X_NAT_T_TYPE, E.X_NAT_T_SPORT,
                             E.X_NAT_T_DPORT)
    (seen,) = drain(other)
    assert seen == rep
    assert h.key.savhash[0x1234].state == MATURE


def test_get_returns_keys_and_dump_format() -> None:
    """key_get + key_setdumpsa: SA, SA2, lifetimes, CURRENT, addresses
    (full prefix, proto any, port 0), keys; refcnt one above a dump's."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000, extra=lifetimes((0, 1000, 50, 0), (0, 800, 40, 0))))
    (rep,) = exchange(so, sa_req_msg(SADB.GET, 0x1000, seq=9))
    assert rep.errno == 0 and rep.type == SADB.GET and rep.satype == ESP and rep.seq == 9
    assert rep.ext_types == (E.SA, E.X_SA2, E.LIFETIME_HARD, E.LIFETIME_SOFT,
                             E.LIFETIME_CURRENT, E.ADDRESS_SRC, E.ADDRESS_DST, E.KEY_AUTH,
                             E.KEY_ENCRYPT)
    assert rep.sa == SadbSa(0x1000, 4, MATURE, SADB_AALG.SHA1HMAC, SADB_EALG.X_AESCBC, 0)
    assert rep.key_auth.key == AUTH_KEY and rep.key_encrypt.key == ENC_KEY
    assert rep.lifetime_current.addtime == h.clock.now()
    assert rep.src.prefixlen == 32 and rep.src.proto == 255
    assert rep.reserved == 2
    (dump,) = exchange(so, Message(SADB.DUMP, 0, pid=1))
    assert dump.reserved == 1


def test_gcm_overwrites_auth_id_in_dump() -> None:
    """esp_init: AES-GCM-16 sets alg_auth to the GMAC id of its key size
    (AES-256 -> 13), so dumps show it without an auth key."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000, enc=SADB_EALG.X_AESGCM16, auth=0, auth_key=None,
                     enc_key=bytes(36)))
    (rep,) = exchange(so, sa_req_msg(SADB.GET, 0x1000))
    assert rep.sa.auth == SADB_AALG.X_AES256GMAC
    assert not rep.has(E.KEY_AUTH)


def test_add_duplicate_eexist_flow() -> None:
    """key_add: a second ADD of the same SPI fails EEXIST and changes nothing."""
    h = KeyHarness()
    so = h.socket()
    assert reply_errno(so, esp(0x1000)) == 0
    assert reply_errno(so, esp(0x1000, dst="10.0.0.3")) == W["EEXIST"]
    assert len(h.key.savhash) == 1
    h.key._check()


def test_dump_seq_countdown_and_order() -> None:
    """key_dump: SAHs newest first; in each, LARVAL (newest first) then
    alive (newest first); seq counts down to 0; pid is the requester's."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1001))                                  # SAH A
    exchange(so, esp(0x1002))
    exchange(so, getspi_msg(spirange=(0x1003, 0x1003)))
    exchange(so, esp(0x2001, src="10.0.0.5"))                  # SAH B (newer)
    exchange(so, getspi_msg(src="10.0.0.5", spirange=(0x2002, 0x2002)))
    got = exchange(so, Message(SADB.DUMP, 0, seq=99, pid=55))
    assert [m.sa.spi for m in got] == [0x2002, 0x2001, 0x1003, 0x1002, 0x1001]
    assert [m.seq for m in got] == [4, 3, 2, 1, 0]
    assert {m.pid for m in got} == {55}
    assert [m.sa.state for m in got] == [LARVAL, MATURE, LARVAL, MATURE, MATURE]
    only_ah = exchange(so, Message(SADB.DUMP, AH, pid=55))
    assert only_ah[0].errno == W["ENOENT"]


def test_delete_and_get_missing_esrch() -> None:
    """key_delete / key_get: an unknown SPI is ESRCH; DELETE replies to ALL
    with SA, SRC, DST and never produces an EXPIRE."""
    h = KeyHarness()
    so, reg = h.socket(), h.socket()
    exchange(reg, Message(SADB.REGISTER, ESP, pid=2))
    exchange(so, esp(0x1000))
    drain(reg)
    (rep,) = exchange(so, sa_req_msg(SADB.DELETE, 0x1000))
    assert rep.errno == 0 and rep.ext_types == (E.SA, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert [m.type for m in drain(reg)] == [SADB.DELETE]
    assert reply_errno(so, sa_req_msg(SADB.DELETE, 0x1000)) == W["ESRCH"]
    assert reply_errno(so, sa_req_msg(SADB.GET, 0x1000)) == W["ESRCH"]
    h.key._check()


def test_delete_all_spares_larval() -> None:
    """key_delete_all: every MATURE/DYING SA of the pair goes, LARVAL stays;
    reply SRC, DST to ALL."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1001))
    exchange(so, esp(0x1002, mode=IPSEC_MODE.TUNNEL))
    exchange(so, esp(0x1003, dst="10.0.0.3"))
    exchange(so, getspi_msg(spirange=(0x1004, 0x1004)))
    (rep,) = exchange(so, sa_req_msg(SADB.DELETE, None))
    assert rep.errno == 0 and rep.ext_types == (E.ADDRESS_SRC, E.ADDRESS_DST)
    assert sorted(h.key.savhash) == [0x1003, 0x1004]
    assert h.key.savhash[0x1004].state == LARVAL
    h.key._check()


def test_flush_by_protocol() -> None:
    """key_flush: satype selects the protocol, UNSPEC flushes all; reply is
    the 16-byte header to ALL."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1001))
    exchange(so, esp(0x1002, satype=AH, enc=0, enc_key=None))
    exchange(so, getspi_msg(spirange=(0x1003, 0x1003)))
    (rep,) = exchange(so, Message(SADB.FLUSH, AH, seq=4, pid=PID))
    assert rep.errno == 0 and rep.exts == () and rep.seq == 4
    assert sorted(h.key.savhash) == [0x1001, 0x1003]
    h.key._check()
    exchange(so, Message(SADB.FLUSH, 0, pid=PID))
    assert not h.key.savhash and not h.key.sahtree
    h.key._check()


def test_update_dying_back_to_mature_and_clearing_lifetimes() -> None:
    """key_update / key_updatelifetimes: DYING -> MATURE; without lifetimes a
    MATURE SA loses them, a DYING one keeps them."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000, extra=lifetimes((0, 0, 100, 0), (0, 0, 10, 0))))
    sav = h.key.savhash[0x1000]
    h.tick(11)
    assert sav.state == DYING
    assert reply_errno(so, update_msg(0x1000, auth_key=None, enc_key=None)) == 0
    assert sav.state == MATURE and sav.lft_h is not None
    assert reply_errno(so, update_msg(0x1000, auth_key=None, enc_key=None)) == 0
    assert sav.lft_h is None and sav.lft_s is None


def test_update_new_address_clones_sa() -> None:
    """key_updateaddresses: NEW_ADDRESS_DST clones the SA under the new
    address (same SPI, keys, MATURE); the old one goes DEAD."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000))
    old = h.key.savhash[0x1000]
    new_dst = SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.7"))
    (rep,) = exchange(so, update_msg(0x1000, auth_key=None, enc_key=None, extra=(new_dst,)))
    assert rep.errno == 0 and rep.has(E.X_NEW_ADDRESS_DST)
    new = h.key.savhash[0x1000]
    assert new is not old and old.state == 3 and new.state == MATURE
    assert new.key_enc is old.key_enc
    assert h.key.key_allocsa(sa_in("10.0.0.7"), 50, 0x1000) is new
    assert h.key.key_allocsa(sa_in("10.0.0.2"), 50, 0x1000) is None
    h.key._check()


def test_update_natt_change_needs_all_three() -> None:
    """key_updateaddresses: a NAT-T change of an ESP SA needs TYPE, SPORT and
    DPORT (EINVAL otherwise); with them the SA is cloned with new ports."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000))
    bad = update_msg(0x1000, auth_key=None, enc_key=None, extra=NATT[:1])
    assert reply_errno(so, bad) == W["EINVAL"]
    good = update_msg(0x1000, auth_key=None, enc_key=None,
                      extra=(NATT[0], NATT[1].replace(port=1111), NATT[2]))
    assert reply_errno(so, good) == 0
    assert h.key.savhash[0x1000].natt.sport == 1111


def test_failed_larval_update_keeps_algorithms() -> None:
    """key_setsaval writes alg_auth / alg_enc / flags before validating, and
    key_cleansav does not undo them: a refused UPDATE leaves them on the
    LARVAL SA (visible in a dump)."""
    h = KeyHarness()
    so = h.socket()
    larval(h, 0x4000)
    assert reply_errno(so, update_msg(0x4000, enc_key=bytes(3))) == W["EINVAL"]
    sav = h.key.savhash[0x4000]
    assert sav.state == LARVAL and sav.alg_enc == SADB_EALG.X_AESCBC
    assert sav.key_enc is None and sav.replay is None


def test_tcpmd5_unique_per_address_pair() -> None:
    """key_add / key_getsav_tcpmd5: TCP-MD5 SAs are unique per address pair
    (EEXIST); a clashing SPI is replaced silently."""
    h = KeyHarness()
    so = h.socket()
    tcp = dict(satype=TCPSIG, auth=SADB_AALG.X_TCP_MD5, enc=0, enc_key=None,
               auth_key=b"secret")
    assert reply_errno(so, esp(0x1000, **tcp)) == 0
    assert reply_errno(so, esp(0x1001, **tcp)) == W["EEXIST"]
    exchange(so, esp(0x2000))
    (rep,) = exchange(so, esp(0x2000, dst="10.0.0.9", **tcp))
    assert rep.errno == 0 and rep.sa.spi == 0x2000       # echo of the request
    (tcp_sav,) = [s for s in h.key.savhash.values() if s.sah.saidx.proto == 6
                  and s.sah.saidx.dst == sa_in("10.0.0.9")]
    assert tcp_sav.spi != 0x2000
    (got,) = exchange(so, sa_req_msg(SADB.GET, 0, satype=TCPSIG, dst="10.0.0.9"))
    assert got.errno == 0 and got.sa.spi == tcp_sav.spi


def test_replay_window_and_sa_replay_extension() -> None:
    """key_setsaval / key_setdumpsa: SA_REPLAY (packets) overrides
    sadb_sa_replay (bytes); windows over 255 bytes dump as replay 255 plus
    an SA_REPLAY extension."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, esp(0x1000, extra=(SadbXSaReplay(4096),)))
    assert h.key.savhash[0x1000].replay.wsize == 512
    (rep,) = exchange(so, sa_req_msg(SADB.GET, 0x1000))
    assert rep.sa.replay == 255
    assert rep.get(E.X_SA_REPLAY).replay == 4096
    assert rep.ext_types[:3] == (E.SA, E.X_SA2, E.X_SA_REPLAY)


def test_getspi_ipcomp_cpi_clamped() -> None:
    """key_do_getnewspi: IPComp ranges are clamped to 0xffff."""
    h = KeyHarness()
    so = h.socket()
    (rep,) = exchange(so, getspi_msg(satype=IPCOMP, spirange=(0x20000, 0x30000)))
    assert rep.sa.spi == 0xFFFF


def test_getspi_exhausted_range_eexist() -> None:
    """key_do_getnewspi: spi_trycnt random tries; a full range is EEXIST."""
    h = KeyHarness()
    so = h.socket()
    h.key.spi_trycnt = 50
    exchange(so, getspi_msg(spirange=(0x300, 0x300)))
    exchange(so, getspi_msg(spirange=(0x301, 0x301)))
    assert reply_errno(so, getspi_msg(spirange=(0x300, 0x301))) == W["EEXIST"]
