"""SPD messages of key.c: SPDADD/SPDUPDATE/SPDSETIDX, SPDDELETE(2), SPDGET,
SPDDUMP, SPDFLUSH, if_ipsec policies and the packet-side key_allocsp.

Reference pfkey_setkey_reference.md §B.2 (SPD messages) and key.c.
"""

from __future__ import annotations

import struct
from typing import Callable

import pytest

from pfkey import IpsecRequest, Message, SadbAddress, SadbXPolicy
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY, IPSEC_POLICYSCOPE
from pfkey.key_testing import (
    E, ESP, PID, KeyHarness, drain, exchange, policy, reply_errno, sa_in, spd_msg,
    spdid_msg,
)
from pfkey.keydb import IPSEC_SPSTATE_IFNET, secpolicy
from pfkey.pfkeyv2 import SADB
from pfkey.spd import SecPolicyIndex

OUT, IN = IPSEC_DIR.OUTBOUND, IPSEC_DIR.INBOUND
T, U = IPSEC_MODE.TRANSPORT, IPSEC_MODE.TUNNEL
REQ = IPSEC_LEVEL.REQUIRE
Build = Callable[[KeyHarness], Message]


def tun(proto: int = 50, level: int = REQ, reqid: int = 0) -> IpsecRequest:
    return IpsecRequest(proto, U, level, reqid, sa_in("192.0.2.1"), sa_in("192.0.2.2"))


def _without(msg: Message, t: int) -> Message:
    return msg.replace(exts=tuple(e for e in msg.exts if e.exttype != t))


def raw_req(length: int, proto: int = 50, mode: int = T, level: int = REQ) -> bytes:
    return struct.pack("<HHBBH", length, proto, mode, level, 0)


@pytest.fixture
def h() -> KeyHarness:
    """A kernel with one outbound IPsec policy 10.0.0.0/24 -> 10.0.1.0/24."""
    h = KeyHarness()
    assert reply_errno(h.socket(), spd_msg()) == 0
    return h


CASES: list[tuple[str, Build, str]] = [
    # key_parse
    ("spdadd satype ESP", lambda h: spd_msg(src="10.1.0.0").replace(satype=ESP), "EINVAL"),
    ("spdadd proto mismatch", lambda h: spd_msg(src="10.1.0.0").replace(exts=(
        spd_msg().src.replace(proto=6), spd_msg().dst, policy())), "EINVAL"),
    ("spdadd family mismatch", lambda h: spd_msg(src="10.1.0.0").replace(exts=(
        spd_msg().src, SadbAddress(E.ADDRESS_DST, sa_in("2001:db8::"), 64), policy())),
     "EINVAL"),
    # key_spdadd
    ("spdadd no SRC", lambda h: _without(spd_msg(src="10.1.0.0"), E.ADDRESS_SRC), "EINVAL"),
    ("spdadd no POLICY", lambda h: _without(spd_msg(src="10.1.0.0"), E.X_POLICY), "EINVAL"),
    ("spdadd dir ANY", lambda h: spd_msg(src="10.1.0.0", pol=policy(dir=0)), "EINVAL"),
    ("spdadd dir 3", lambda h: spd_msg(src="10.1.0.0", pol=policy(dir=3)), "EINVAL"),
    ("spdadd ENTRUST", lambda h: spd_msg(src="10.1.0.0",
                                         pol=policy(ptype=IPSEC_POLICY.ENTRUST)), "EINVAL"),
    ("spdadd BYPASS", lambda h: spd_msg(src="10.1.0.0",
                                        pol=policy(ptype=IPSEC_POLICY.BYPASS)), "EINVAL"),
    ("spdadd type 7", lambda h: spd_msg(src="10.1.0.0", pol=policy(ptype=7)), "EINVAL"),
    ("spdadd IPSEC no requests", lambda h: spd_msg(src="10.1.0.0", pol=policy(requests=())),
     "EINVAL"),
    ("spdadd DISCARD", lambda h: spd_msg(src="10.1.0.0",
                                         pol=policy(ptype=IPSEC_POLICY.DISCARD)), "0"),
    ("spdadd NONE", lambda h: spd_msg(src="10.1.0.0", pol=policy(ptype=IPSEC_POLICY.NONE)),
     "0"),
    ("spdadd tunnel", lambda h: spd_msg(src="10.1.0.0", pol=policy(requests=(tun(),))), "0"),
    ("spdadd ipv6", lambda h: spd_msg(src="2001:db8::", dst="2001:db8:1::", prefs=64,
                                      prefd=64), "0"),
    ("spdadd ports and proto", lambda h: spd_msg(src="10.1.0.0", proto=6, dport=443), "0"),
    ("spdadd duplicate", lambda h: spd_msg(), "EEXIST"),
    ("spdsetidx duplicate", lambda h: spd_msg(SADB.X_SPDSETIDX), "EEXIST"),
    ("spdupdate existing", lambda h: spd_msg(SADB.X_SPDUPDATE), "0"),
    ("spdupdate new", lambda h: spd_msg(SADB.X_SPDUPDATE, src="10.2.0.0"), "0"),
    ("spdadd other port", lambda h: spd_msg(sport=1), "0"),
    ("spdadd other dir", lambda h: spd_msg(pol=policy(dir=IN)), "0"),
    # key_msg2sp
    ("request proto TCP", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(6, T, REQ),))), "EPROTONOSUPPORT"),
    ("request mode ANY", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(50, 0, REQ),))), "EINVAL"),
    ("request level 4", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(50, T, 4),))), "EINVAL"),
    ("five requests", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(50, T, REQ),) * 5)), "EINVAL"),
    ("four requests", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(50, T, REQ),) * 4)), "0"),
    ("tunnel without addresses", lambda h: spd_msg(src="10.1.0.0", pol=policy(
        requests=(IpsecRequest(50, U, REQ),))), "EINVAL"),
    ("request families differ", lambda h: spd_msg(src="10.1.0.0", pol=policy(requests=(
        IpsecRequest(50, U, REQ, 0, sa_in("192.0.2.1"), sa_in("2001:db8::1")),))), "EINVAL"),
    ("request len 4", lambda h: spd_msg(src="10.1.0.0", pol=SadbXPolicy(
        IPSEC_POLICY.IPSEC, OUT, trailer=raw_req(4))), "EINVAL"),
    ("request len past end", lambda h: spd_msg(src="10.1.0.0", pol=SadbXPolicy(
        IPSEC_POLICY.IPSEC, OUT, trailer=raw_req(64))), "EINVAL"),
    ("request ipcomp and ah", lambda h: spd_msg(src="10.1.0.0", pol=policy(requests=(
        IpsecRequest(108, T, IPSEC_LEVEL.USE), IpsecRequest(51, T, REQ)))), "0"),
    # key_spddelete
    ("spddelete ok", lambda h: spd_msg(SADB.X_SPDDELETE), "0"),
    ("spddelete DISCARD type", lambda h: spd_msg(
        SADB.X_SPDDELETE, pol=policy(ptype=IPSEC_POLICY.DISCARD)), "0"),
    ("spddelete no match", lambda h: spd_msg(SADB.X_SPDDELETE, src="10.9.0.0"), "EINVAL"),
    ("spddelete other dir", lambda h: spd_msg(SADB.X_SPDDELETE, pol=policy(dir=IN)),
     "EINVAL"),
    ("spddelete ENTRUST", lambda h: spd_msg(SADB.X_SPDDELETE,
                                            pol=policy(ptype=IPSEC_POLICY.ENTRUST)), "EINVAL"),
    ("spddelete no DST", lambda h: _without(spd_msg(SADB.X_SPDDELETE), E.ADDRESS_DST),
     "EINVAL"),
    # key_spddelete2 / key_spdget
    ("spddelete2 ok", lambda h: spdid_msg(SADB.X_SPDDELETE2, 1), "0"),
    ("spddelete2 unknown", lambda h: spdid_msg(SADB.X_SPDDELETE2, 77), "EINVAL"),
    ("spddelete2 no policy", lambda h: Message(SADB.X_SPDDELETE2, 0, pid=PID), "EINVAL"),
    ("spdget ok", lambda h: spdid_msg(SADB.X_SPDGET, 1), "0"),
    ("spdget unknown", lambda h: spdid_msg(SADB.X_SPDGET, 77), "ENOENT"),
    ("spdget no policy", lambda h: Message(SADB.X_SPDGET, 0, pid=PID), "EINVAL"),
    # key_spddump / key_spdflush
    ("spddump all", lambda h: Message(SADB.X_SPDDUMP, 0, pid=PID), "0"),
    ("spddump global", lambda h: Message(SADB.X_SPDDUMP, 1, pid=PID), "0"),
    ("spddump ifnet none", lambda h: Message(SADB.X_SPDDUMP, 2, pid=PID), "ENOENT"),
    ("spddump pcb never listed", lambda h: Message(SADB.X_SPDDUMP, 4, pid=PID), "ENOENT"),
    ("spddump mask 3", lambda h: Message(SADB.X_SPDDUMP, 3, pid=PID), "EINVAL"),
    ("spdflush", lambda h: Message(SADB.X_SPDFLUSH, 0, pid=PID), "0"),
    ("spdflush with extension", lambda h: Message(SADB.X_SPDFLUSH, 0, pid=PID,
                                                  exts=(policy(),)), "EINVAL"),
    ("spdflush satype AH", lambda h: Message(SADB.X_SPDFLUSH, 2, pid=PID), "EINVAL"),
]


@pytest.mark.parametrize("name,build,want", CASES, ids=[c[0] for c in CASES])
def test_spd_conformance(h: KeyHarness, name: str, build: Build, want: str) -> None:
    """key_parse + key_spdadd (key_msg2sp) / key_spddelete / key_spddelete2 /
    key_spdget / key_spddump / key_spdflush: FreeBSD's errno per request."""
    so = h.socket()
    msg = build(h)
    got = exchange(so, msg)
    assert got
    assert got[-1].errno == (0 if want == "0" else W[want]), (name, got[-1])
    h.key._check()


def test_spd_empty_dump_enoent() -> None:
    """key_spddump: nothing to list is ENOENT."""
    h = KeyHarness()
    assert reply_errno(h.socket(), Message(SADB.X_SPDDUMP, 0)) == W["ENOENT"]


def test_spdadd_reply_gather_and_id() -> None:
    """key_spdadd: reply gather(POLICY, LIFETIME_HARD, SRC, DST) to ALL with
    the new policy id patched in; ids count from 1."""
    h = KeyHarness()
    so, other = h.socket(), h.socket()
    (rep,) = exchange(so, spd_msg(seq=5, lifetime=(100, 0)))
    assert rep.errno == 0 and rep.seq == 5
    assert rep.ext_types == (E.X_POLICY, E.LIFETIME_HARD, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert rep.policy.id == 1
    assert drain(other) == [rep]
    (rep2,) = exchange(so, spd_msg(src="10.5.0.0"))
    assert rep2.ext_types == (E.X_POLICY, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert rep2.policy.id == 2


def test_unique_level_auto_reqid_written_back() -> None:
    """key_msg2sp / key_newreqid: a UNIQUE request with reqid 0 (or above
    0x3fff) gets an automatic reqid counting from 0x4001, written back into
    the request (so the reply shows it); other levels keep reqid 0."""
    h = KeyHarness()
    so = h.socket()
    reqs = (IpsecRequest(50, T, IPSEC_LEVEL.UNIQUE, 0),
            IpsecRequest(51, T, IPSEC_LEVEL.UNIQUE, 0x5000),
            IpsecRequest(108, T, IPSEC_LEVEL.UNIQUE, 42),
            IpsecRequest(50, T, IPSEC_LEVEL.REQUIRE, 42))
    (rep,) = exchange(so, spd_msg(pol=policy(requests=reqs)))
    assert [r.reqid for r in rep.policy.requests] == [0x4001, 0x4002, 42, 42]
    (got,) = exchange(so, spdid_msg(SADB.X_SPDGET, rep.policy.id))
    assert [r.reqid for r in got.policy.requests] == [0x4001, 0x4002, 42, 0]


def test_priority_and_fifo_insertion() -> None:
    """key_insertsp: before the first SP of strictly greater priority
    (FIFO among equals); SPDDUMP shows inbound then outbound, seq down."""
    h = KeyHarness()
    so = h.socket()
    for i, prio in enumerate([10, 5, 10, 0, 5]):
        exchange(so, spd_msg(src=f"10.{i}.0.0", pol=policy(priority=prio)))
    exchange(so, spd_msg(src="10.9.0.0", pol=policy(dir=IN, priority=99)))
    got = exchange(so, Message(SADB.X_SPDDUMP, 0, seq=3, pid=77))
    assert [m.policy.priority for m in got] == [99, 0, 5, 5, 10, 10]
    assert [str(m.src.addr) for m in got] == ["10.9.0.0", "10.3.0.0", "10.1.0.0", "10.4.0.0",
                                              "10.0.0.0", "10.2.0.0"]
    assert [m.seq for m in got] == [5, 4, 3, 2, 1, 0]
    assert {m.pid for m in got} == {77}
    assert all(m.policy.scope == IPSEC_POLICYSCOPE.GLOBAL for m in got)
    h.key._check()


def test_spddelete_reply_carries_found_id() -> None:
    """key_spddelete: the found policy's id is written into the reply, which
    is gather(POLICY, SRC, DST) to ALL."""
    h = KeyHarness()
    so, other = h.socket(), h.socket()
    exchange(so, spd_msg(src="10.7.0.0"))
    exchange(so, spd_msg())
    drain(other)
    (rep,) = exchange(so, spd_msg(SADB.X_SPDDELETE, pol=policy(id=0)))
    assert rep.errno == 0 and rep.policy.id == 2
    assert rep.ext_types == (E.X_POLICY, E.ADDRESS_SRC, E.ADDRESS_DST)
    assert drain(other) == [rep]
    assert reply_errno(so, spdid_msg(SADB.X_SPDGET, 2)) == W["ENOENT"]
    h.key._check()


def test_spdupdate_replaces_and_bad_update_still_unlinks() -> None:
    """key_spdadd(SPDUPDATE): replaces the SP with the same selector (new id);
    if the new policy is refused, key.c has already unlinked the old one."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, spd_msg())
    (rep,) = exchange(so, spd_msg(SADB.X_SPDUPDATE, pol=policy(ptype=IPSEC_POLICY.DISCARD)))
    assert rep.policy.id == 2 and list(h.key.sphash) == [2]
    bad = spd_msg(SADB.X_SPDUPDATE, pol=policy(requests=(IpsecRequest(6, T, REQ),)))
    assert reply_errno(so, bad) == W["EPROTONOSUPPORT"]
    assert h.key.sphash == {}
    h.key._check()


def test_spdget_format_and_lifetimes() -> None:
    """key_setdumpsp: SRC (prefs, ul_proto), DST, POLICY with scope, then
    CURRENT and HARD lifetimes only when the SP has a lifetime."""
    h = KeyHarness()
    so = h.socket()
    (a,) = exchange(so, spd_msg(proto=17, dport=53, lifetime=(300, 60),
                                pol=policy(requests=(tun(),))))
    (got,) = exchange(so, spdid_msg(SADB.X_SPDGET, a.policy.id, seq=11))
    assert got.type == SADB.X_SPDGET and got.seq == 11 and got.satype == 0
    assert got.ext_types == (E.ADDRESS_SRC, E.ADDRESS_DST, E.X_POLICY, E.LIFETIME_CURRENT,
                             E.LIFETIME_HARD)
    assert got.src.prefixlen == 24 and got.src.proto == 17 and got.dst.addr.port == 53
    assert got.policy.requests == (tun(),)
    assert got.lifetime_current.addtime == h.clock.now()
    assert (got.lifetime_hard.addtime, got.lifetime_hard.usetime) == (300, 60)
    assert got.reserved == 2
    (b,) = exchange(so, spd_msg(src="10.8.0.0", lifetime=(0, 60)))
    (got,) = exchange(so, spdid_msg(SADB.X_SPDGET, b.policy.id))
    assert not got.has(E.LIFETIME_HARD)       # only `lifetime` triggers them


def test_spdflush_keeps_ifnet_policies() -> None:
    """key_spdflush / key_register_ifnet / key_spddelete2: SPDFLUSH empties
    the global SPD only; ifnet policies are dumped with scope IFNET and
    cannot be deleted by id (EACCES)."""
    h = KeyHarness()
    so, other = h.socket(), h.socket()
    exchange(so, spd_msg())
    drain(other)
    vti = [secpolicy(spidx=SecPolicyIndex(d, sa_in("0.0.0.0"), sa_in("0.0.0.0"), 0, 0, 255),
                     policy=IPSEC_POLICY.IPSEC) for d in (IN, OUT)]
    assert h.key.key_register_ifnet(vti) == 0
    notices = drain(other)
    assert [m.type for m in notices] == [SADB.X_SPDADD, SADB.X_SPDADD]
    assert all(m.policy.scope == IPSEC_POLICYSCOPE.IFNET for m in notices)
    assert reply_errno(so, Message(SADB.X_SPDFLUSH, 0)) == 0
    got = exchange(so, Message(SADB.X_SPDDUMP, 0))
    assert [m.policy.id for m in got] == [vti[0].id, vti[1].id]
    assert reply_errno(so, Message(SADB.X_SPDDUMP, 1)) == W["ENOENT"]
    assert reply_errno(so, spdid_msg(SADB.X_SPDDELETE2, vti[0].id)) == W["EACCES"]
    assert vti[0].state == IPSEC_SPSTATE_IFNET
    h.key._check()
    drain(other)
    h.key.key_unregister_ifnet(vti)
    assert [m.type for m in drain(other)] == [SADB.X_SPDDELETE, SADB.X_SPDDELETE]
    assert h.key.sphash == {}
    h.key._check()


def test_key_allocsp_first_match_updates_lastused() -> None:
    """key_allocsp: the first global SP of the direction whose selector
    matches the packet (priority order), lastused set to now."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, spd_msg(src="10.0.0.0", prefs=8, pol=policy(priority=10)))
    exchange(so, spd_msg(src="10.0.0.0", prefs=24, pol=policy(priority=20)))
    exchange(so, spd_msg(src="10.0.0.0", prefs=16, proto=6, dport=22,
                         pol=policy(priority=5)))
    h.clock.advance(7)
    pkt = SecPolicyIndex(OUT, sa_in("10.0.0.5", 1234), sa_in("10.0.1.9", 80), 32, 32, 6)
    sp = h.key.key_allocsp(pkt, OUT)
    assert sp is not None and sp.priority == 10 and sp.lastused == h.clock.now()
    ssh = pkt._replace(dst=sa_in("10.0.1.9", 22))
    assert h.key.key_allocsp(ssh, OUT).priority == 5
    assert h.key.key_allocsp(pkt, IN) is None
    assert h.key.key_havesp(OUT) and not h.key.key_havesp(IN)
