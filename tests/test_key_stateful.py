"""Hypothesis stateful test of the key engine: random valid and invalid
PF_KEY traffic from several sockets, the timer and the datapath lookups,
with ``Key._check()`` (every keydb invariant) after each step.

Beyond the invariants it checks what must hold for any input: send() only
ever fails with a send-time ``PfkeyError`` (keysock/key_align rules), every
answer decodes, an error reply goes to its sender only and echoes the
request, and key material never reaches a socket that did not ask for it.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pfkey import IpsecRequest, Message, decode
from pfkey.message import decode_header
from pfkey.errors import Delivery, PfkeyError
from pfkey.extensions import SadbXIfHwOffl
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY
from pfkey.key_testing import (
    AH, E, ESP, IPCOMP, KeyHarness, add_msg, getspi_msg, hdr_msg, lifetimes, policy,
    sa_in, sa_req_msg, spd_msg, spdid_msg, update_msg,
)
from pfkey.keydb import secasindex
from pfkey.pfkeyv2 import SADB, SADB_EALG
from pfkey.spd import SecPolicyIndex

SPIS = st.sampled_from([0x100, 0x101, 0x1000, 0x1001, 0x2000, 255, 0xFFFF])
DSTS = st.sampled_from(["10.0.0.2", "10.0.0.3", "2001:db8::2"])
SATYPES = st.sampled_from([ESP, ESP, AH, IPCOMP, 0, 5])
PIDS = st.sampled_from([100, 101])
NETS = st.sampled_from(["10.0.0.0", "10.0.1.0", "10.1.0.0"])
KEYS = {E.KEY_AUTH, E.KEY_ENCRYPT}


def _read(raw: bytes) -> Message:
    """Decode as userland does.  An echoed malformed request is read as its
    header; the payload an X_PROMISC message broadcasts (key_promisc strips
    the header) is not a sadb_msg at all and reads as an empty promisc."""
    try:
        return decode(raw, strict=False)
    except PfkeyError:
        if len(raw) < 16:
            return Message(SADB.X_PROMISC)
        m = decode_header(raw)
        if m.errno == 0:
            return Message(SADB.X_PROMISC)
        return m


def _v6(dst: str) -> str:
    """A source address of the destination's family."""
    return "2001:db8::1" if ":" in dst else "10.0.0.1"


class KeyMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.h = KeyHarness(seed=7)
        self.socks = [self.h.socket(recvspace=1 << 16) for _ in range(3)]
        self.send(0, Message(SADB.REGISTER, ESP).encode())

    # -- plumbing ------------------------------------------------------------

    def send(self, i: int, data: bytes) -> None:
        so = self.socks[i]
        others = [s for s in self.socks if s is not so]
        try:
            so.send(data)
        except PfkeyError as exc:
            assert exc.delivery is Delivery.SEND
            assert all(s.pending() == 0 for s in self.socks)
            return
        mine = [_read(b) for b in so.recv_all()]
        failed = any(m.errno for m in mine if m.type != SADB.X_PROMISC)
        for m in mine:
            if m.errno:
                # key_senderror: the request itself, back to the sender
                assert m.type == data[1]
        for s in others:
            for raw in s.recv_all():
                m = _read(raw)
                if failed:
                    # only promiscuous mirrors of the error reply
                    assert m.type == SADB.X_PROMISC and m.inner is not None
                if m.type == SADB.X_PROMISC and m.inner is not None:
                    m = _read(m.inner) if len(m.inner) >= 16 else m
                # (an error echo carries the sender's own keys; promiscuous
                # sockets mirror it, as keysock.c does -- not a broadcast)
                if m.errno == 0 and m.type in (SADB.ADD, SADB.UPDATE, SADB.EXPIRE,
                                               SADB.ACQUIRE):
                    assert not KEYS & set(m.ext_types), "key material broadcast"

    # -- SAD traffic -------------------------------------------------------------

    @rule(i=st.integers(0, 2), spi=SPIS, satype=SATYPES, dst=DSTS, pid=PIDS,
          enc=st.sampled_from([SADB_EALG.X_AESCBC, SADB_EALG.X_AESGCM16, 3]),
          klen=st.sampled_from([16, 20, 5]), life=st.booleans(), hw=st.booleans())
    def add(self, i: int, spi: int, satype: int, dst: str, pid: int, enc: int, klen: int,
            life: bool, hw: bool) -> None:
        extra: list[Any] = list(lifetimes((0, 0, 20, 0), (0, 0, 8, 0))) if life else []
        if hw:
            extra.append(SadbXIfHwOffl("mce0"))
        ah = satype == AH
        self.send(i, add_msg(spi, satype=satype, src=_v6(dst), dst=dst, pid=pid,
                             enc=0 if ah else enc, enc_key=None if ah else bytes(klen),
                             extra=extra).encode())

    @rule(i=st.integers(0, 2), satype=SATYPES, dst=DSTS, lo=SPIS, hi=SPIS, seq=st.integers(0, 3))
    def getspi(self, i: int, satype: int, dst: str, lo: int, hi: int, seq: int) -> None:
        self.send(i, getspi_msg(satype=satype, src=_v6(dst), dst=dst, spirange=(lo, hi),
                                seq=seq).encode())

    @rule(i=st.integers(0, 2), spi=SPIS, dst=DSTS, pid=PIDS, keys=st.booleans(),
          life=st.booleans())
    def update(self, i: int, spi: int, dst: str, pid: int, keys: bool, life: bool) -> None:
        extra = lifetimes((0, 0, 30, 0), (0, 0, 5, 0)) if life else ()
        msg = update_msg(spi, src=_v6(dst), dst=dst, pid=pid, extra=extra) if keys else \
            update_msg(spi, src=_v6(dst), dst=dst, pid=pid, auth_key=None, enc_key=None,
                       extra=extra)
        self.send(i, msg.encode())

    @rule(i=st.integers(0, 2), spi=st.one_of(st.none(), SPIS), satype=SATYPES, dst=DSTS,
          what=st.sampled_from([SADB.DELETE, SADB.GET]))
    def delete_or_get(self, i: int, spi: Any, satype: int, dst: str, what: int) -> None:
        self.send(i, sa_req_msg(what, spi, satype=satype, src=_v6(dst), dst=dst).encode())

    @rule(i=st.integers(0, 2), satype=SATYPES,
          what=st.sampled_from([SADB.FLUSH, SADB.DUMP, SADB.REGISTER]))
    def header_only(self, i: int, satype: int, what: int) -> None:
        self.send(i, hdr_msg(what, satype).encode())

    # -- SPD traffic ---------------------------------------------------------------

    @rule(i=st.integers(0, 2), net=NETS, prio=st.integers(0, 3),
          what=st.sampled_from([SADB.X_SPDADD, SADB.X_SPDUPDATE, SADB.X_SPDDELETE]),
          ptype=st.sampled_from([IPSEC_POLICY.IPSEC, IPSEC_POLICY.DISCARD, 3]),
          dir=st.sampled_from([IPSEC_DIR.INBOUND, IPSEC_DIR.OUTBOUND, 0]),
          level=st.sampled_from([IPSEC_LEVEL.REQUIRE, IPSEC_LEVEL.UNIQUE, 9]),
          life=st.booleans())
    def spd(self, i: int, net: str, prio: int, what: int, ptype: int, dir: int,
            level: int, life: bool) -> None:
        reqs = (IpsecRequest(50, IPSEC_MODE.TRANSPORT, level),)
        self.send(i, spd_msg(what, src=net, pol=policy(dir, ptype, reqs, prio),
                             lifetime=(15, 0) if life else None).encode())

    @rule(i=st.integers(0, 2), spid=st.integers(0, 8),
          what=st.sampled_from([SADB.X_SPDGET, SADB.X_SPDDELETE2]))
    def spd_by_id(self, i: int, spid: int, what: int) -> None:
        self.send(i, spdid_msg(what, spid).encode())

    @rule(i=st.integers(0, 2), what=st.sampled_from([SADB.X_SPDDUMP, SADB.X_SPDFLUSH]),
          scope=st.sampled_from([0, 1, 2, 3]))
    def spd_header(self, i: int, what: int, scope: int) -> None:
        self.send(i, hdr_msg(what, scope).encode())

    # -- everything else -------------------------------------------------------------

    @rule(i=st.integers(0, 2), on=st.integers(0, 2))
    def promisc(self, i: int, on: int) -> None:
        self.send(i, hdr_msg(SADB.X_PROMISC, on).encode())

    @rule(i=st.integers(0, 2), data=st.binary(max_size=96))
    def garbage(self, i: int, data: bytes) -> None:
        self.send(i, data)

    @rule(i=st.integers(0, 2), data=st.binary(min_size=8, max_size=64))
    def garbage_with_valid_header(self, i: int, data: bytes) -> None:
        body = data[: len(data) & ~7]
        n = (16 + len(body)) >> 3
        hdr = bytes([2, data[0] % 24, 0, data[1] % 12]) + n.to_bytes(2, "little") + bytes(10)
        self.send(i, hdr + body)

    @rule(seconds=st.sampled_from([0, 1, 5, 11, 31]))
    def tick(self, seconds: int) -> None:
        self.h.tick(seconds)
        for s in self.socks:
            s.recv_all()

    @rule(dst=DSTS, proto=st.sampled_from([50, 51, 108]), spi=SPIS)
    def datapath(self, dst: str, proto: int, spi: int) -> None:
        k = self.h.key
        idx = secasindex.make(proto, IPSEC_MODE.TRANSPORT, 0, sa_in(_v6(dst)), sa_in(dst))
        sav, _ = k.key_allocsa_policy(None, idx)
        assert sav is None or sav.state in (1, 2)
        got = k.key_allocsa(sa_in(dst), proto, spi)
        assert got is None or (got.spi == spi and got.state in (1, 2))
        if got is not None:
            k.key_sa_recordxfer(got, 1500)
        pkt = SecPolicyIndex(IPSEC_DIR.OUTBOUND, sa_in("10.0.0.5"), sa_in("10.0.1.5"),
                             32, 32, 6)
        k.key_allocsp(pkt, IPSEC_DIR.OUTBOUND)
        for s in self.socks:
            s.recv_all()

    @rule(i=st.integers(0, 2))
    def reopen(self, i: int) -> None:
        self.socks[i].close()
        self.socks[i] = self.h.socket(recvspace=1 << 16)

    @invariant()
    def consistent(self) -> None:
        if hasattr(self, "h"):
            self.h.key._check()


TestKeyMachine = KeyMachine.TestCase
TestKeyMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
def test_key_machine_long() -> None:
    """The same machine, many more and longer runs (make test-slow)."""
    from hypothesis.stateful import run_state_machine_as_test
    run_state_machine_as_test(KeyMachine, settings=settings(
        max_examples=400, stateful_step_count=80, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))


# ---------------------------------------------------------------------------
# Random well-formed messages with random field values
# ---------------------------------------------------------------------------

from hypothesis import assume, given  # noqa: E402

from pfkey.errors import EncodeError  # noqa: E402
from pfkey.extensions import (  # noqa: E402
    SadbAddress, SadbComb, SadbIdent, SadbKey, SadbLifetime, SadbProp, SadbSa,
    SadbSpirange, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2, SadbXSaReplay,
    Sockaddr,
)

U8, U16, U32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
SOCKADDRS = st.one_of(
    st.builds(Sockaddr.inet, st.sampled_from(["10.0.0.1", "10.0.0.2", "0.0.0.0"]),
              st.sampled_from([0, 500])),
    st.builds(Sockaddr.inet6, st.sampled_from(["2001:db8::1", "fe80::1"]),
              st.sampled_from([0, 500]), st.sampled_from([0, 3])),
    st.builds(Sockaddr, st.sampled_from([0, 1, 99]), st.sampled_from([2, 8, 16]),
              st.sampled_from([b"", bytes(6), bytes(14)])))
REQUESTS = st.builds(IpsecRequest, st.sampled_from([50, 51, 108, 6]), st.integers(0, 3),
                     st.integers(0, 4), U16,
                     st.one_of(st.none(), SOCKADDRS), st.one_of(st.none(), SOCKADDRS))


def _addr(t: int) -> Any:
    return st.builds(SadbAddress, st.just(t), SOCKADDRS, st.integers(0, 130),
                     st.sampled_from([255, 6, 17]))


EXTS = [
    st.builds(SadbSa, st.sampled_from([0, 255, 256, 0x1000, 0x10000, 0xFFFFFFFF]), U8,
              st.integers(0, 3), st.sampled_from([0, 3, 5, 11, 251, 252, 99]),
              st.sampled_from([0, 2, 11, 12, 13, 15, 20, 23, 99]),
              st.sampled_from([0, 1, 0x10, 0x20, 0x80, 0x400, 0x1000])),
    _addr(E.ADDRESS_SRC), _addr(E.ADDRESS_DST), _addr(E.X_NAT_T_OAI),
    _addr(E.X_NEW_ADDRESS_DST),
    st.builds(SadbKey, st.just(E.KEY_AUTH), st.binary(max_size=70),
              st.one_of(st.just(-1), st.integers(0, 600))),
    st.builds(SadbKey, st.just(E.KEY_ENCRYPT), st.binary(max_size=40),
              st.one_of(st.just(-1), st.integers(0, 600))),
    st.builds(SadbLifetime, st.just(E.LIFETIME_HARD), U32, U32, U32, U32),
    st.builds(SadbLifetime, st.just(E.LIFETIME_SOFT), U32, U32, U32, U32),
    st.builds(SadbXSa2, st.integers(0, 3), U32),
    st.builds(SadbSpirange, U32, U32),
    st.builds(SadbXSaReplay, U32),
    st.builds(SadbXNatTType, st.integers(0, 3)),
    st.builds(SadbXNatTPort, st.just(E.X_NAT_T_SPORT), U16),
    st.builds(SadbXNatTPort, st.just(E.X_NAT_T_DPORT), U16),
    st.builds(SadbIdent, st.just(E.IDENTITY_SRC), st.integers(0, 4), st.binary(max_size=9)),
    st.builds(SadbProp, st.lists(st.builds(SadbComb, encrypt=U8), max_size=2)),
    st.builds(SadbXPolicy, st.integers(0, 5), st.integers(0, 4), st.integers(0, 5), U32,
              st.integers(0, 4), st.lists(REQUESTS, max_size=5).map(tuple)),
    st.builds(SadbXIfHwOffl, st.sampled_from(["mce0", "", "x" * 20])),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mtype=st.integers(0, 22), satype=st.sampled_from([0, 1, 2, 3, 9, 11, 5]),
       exts=st.lists(st.one_of(*EXTS), max_size=8,
                     unique_by=lambda e: int(e.exttype)),
       seq=st.integers(0, 3), errno_=st.integers(0, 3))
def test_random_messages_never_crash(mtype: int, satype: int, exts: list[Any], seq: int,
                                     errno_: int) -> None:
    """key_parse and every handler: any well-formed message with arbitrary
    field values is either refused by send() or answered; the kernel's
    databases stay consistent (an ADD / UPDATE echo never carries keys)."""
    h = KeyHarness(seed=3)
    so, other = h.socket(), h.socket()
    so.send(add_msg(0x1000).encode())
    so.send(spd_msg().encode())
    so.recv_all()
    other.recv_all()
    try:
        data = Message(mtype, satype, seq, 100, errno_, exts=tuple(exts)).encode()
    except EncodeError:
        assume(False)
        return
    for _ in range(2):
        try:
            so.send(data)
        except PfkeyError as exc:
            assert exc.delivery is Delivery.SEND
        h.tick(31)
        h.key._check()
    for raw in other.recv_all():
        m = _read(raw)
        if m.type in (SADB.ADD, SADB.UPDATE):
            assert not KEYS & set(m.ext_types)
