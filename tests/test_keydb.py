"""keydb: the SA and SP state tables, address comparison helpers and the
invariant checker (sys/netipsec/keydb.h, key.c key_cmpsaidx /
key_sockaddrcmp / key_checksockaddrs)."""

from __future__ import annotations

import errno
import itertools
from typing import Any, Callable, Iterable, Mapping

import pytest

from pfkey import Sockaddr
from pfkey.key_testing import KeyHarness, add_msg, exchange, getspi_msg, spd_msg
from pfkey.keydb import (
    CMP_EXACTLY, CMP_HEAD, CMP_MODE_REQID, DEAD, DYING, IPSEC_SPSTATE_ALIVE,
    IPSEC_SPSTATE_DEAD, IPSEC_SPSTATE_IFNET, IPSEC_SPSTATE_LARVAL, LARVAL, MATURE,
    SA_STATE_TABLE, SP_STATE_TABLE, SAEvent, SPEvent, StateTransitionError,
    key_checksockaddrs, key_cmpsaidx, sa_key, sa_next_state, secasindex, sp_next_state,
)

SA_STATES = (LARVAL, MATURE, DYING, DEAD)
SP_STATES = (IPSEC_SPSTATE_DEAD, IPSEC_SPSTATE_LARVAL, IPSEC_SPSTATE_ALIVE, 3,
             IPSEC_SPSTATE_IFNET)


def _check_table_is_the_only_way(states: Iterable[int], events: Iterable[Any],
                                 table: Mapping[tuple[int, Any], int],
                                 next_state: Callable[[int, Any], int]) -> None:
    """Every (state, event) pair either has a row in ``table``, which
    ``next_state`` returns, or ``next_state`` raises StateTransitionError."""
    for state, event in itertools.product(states, events):
        want = table.get((state, event))
        if want is None:
            with pytest.raises(StateTransitionError):
                next_state(state, event)
        else:
            assert next_state(state, event) == want


def test_sa_table_is_the_only_way() -> None:
    """keydb SA state machine: every (state, event) pair either has a row in
    SA_STATE_TABLE or raises StateTransitionError; DEAD is final."""
    _check_table_is_the_only_way(SA_STATES, SAEvent, SA_STATE_TABLE, sa_next_state)
    assert not [k for k in SA_STATE_TABLE if k[0] == DEAD]


def test_sa_table_lifecycle_rows() -> None:
    """The life cycle of §B.3: LARVAL -> MATURE (UPDATE), MATURE -> DYING
    (soft), DYING -> MATURE (UPDATE), MATURE/DYING -> DEAD (hard); soft
    expiry only from MATURE; LARVAL expiry only from LARVAL."""
    assert sa_next_state(LARVAL, SAEvent.UPDATE) == MATURE
    assert sa_next_state(MATURE, SAEvent.SOFT_EXPIRE) == DYING
    assert sa_next_state(DYING, SAEvent.UPDATE) == MATURE
    assert sa_next_state(DYING, SAEvent.HARD_EXPIRE) == DEAD
    for bad in ((DYING, SAEvent.SOFT_EXPIRE), (LARVAL, SAEvent.HARD_EXPIRE),
                (MATURE, SAEvent.LARVAL_EXPIRE), (LARVAL, SAEvent.DELETE_ALL)):
        with pytest.raises(StateTransitionError):
            sa_next_state(*bad)


def test_sp_table() -> None:
    """keydb SP state machine: LARVAL -> ALIVE / IFNET, ALIVE -> DEAD,
    IFNET -> DEAD only by unregistering; nothing else."""
    _check_table_is_the_only_way(SP_STATES, SPEvent, SP_STATE_TABLE, sp_next_state)
    with pytest.raises(StateTransitionError):
        sp_next_state(IPSEC_SPSTATE_IFNET, SPEvent.DETACH)


def test_sa_key_follows_key_sockaddrcmp() -> None:
    """key_sockaddrcmp(port=0): ports, sin_zero and flowinfo never count;
    the IPv6 scope does."""
    a = Sockaddr.inet("10.0.0.1", 500)
    b = Sockaddr(a.family, 16, b"\x00\x00" + a.data[2:6] + b"\xff" * 8)
    assert sa_key(a) == sa_key(b)
    assert sa_key(Sockaddr.inet6("fe80::1", scope_id=1)) != \
        sa_key(Sockaddr.inet6("fe80::1", scope_id=2))
    assert sa_key(Sockaddr.inet6("2001:db8::1", flowinfo=7)) == \
        sa_key(Sockaddr.inet6("2001:db8::1"))


def test_key_checksockaddrs() -> None:
    """key_checksockaddrs: families and lengths must agree and be INET(6)."""
    v4, v6 = Sockaddr.inet("10.0.0.1"), Sockaddr.inet6("::1")
    assert key_checksockaddrs(v4, v4) == 0
    assert key_checksockaddrs(v4, v6) == errno.EINVAL
    assert key_checksockaddrs(v4._replace(sa_len=15), v4._replace(sa_len=15)) == errno.EINVAL
    odd = Sockaddr(99, 16, bytes(14))
    assert key_checksockaddrs(odd, odd) == errno.EAFNOSUPPORT


def test_key_cmpsaidx_modes() -> None:
    """key_cmpsaidx: CMP_HEAD ignores mode/reqid; CMP_MODE_REQID lets an SAD
    entry of mode ANY match any mode and a zero reqid in the object match
    any reqid (not symmetric); CMP_EXACTLY compares everything; KEY_SETSECASIDX
    zeroes ports."""
    src, dst = Sockaddr.inet("10.0.0.1", 1), Sockaddr.inet("10.0.0.2", 2)
    anyidx = secasindex.make(50, 0, 0, src, dst)
    assert anyidx.src.port == 0 and anyidx.dst.port == 0
    tun = secasindex.make(50, 2, 7, src, dst)
    assert key_cmpsaidx(anyidx, tun, CMP_HEAD)
    assert key_cmpsaidx(anyidx, tun._replace(reqid=0), CMP_MODE_REQID)
    assert not key_cmpsaidx(anyidx, tun, CMP_MODE_REQID)          # reqid 7 != 0
    assert key_cmpsaidx(tun, anyidx._replace(mode=2), CMP_MODE_REQID)
    assert not key_cmpsaidx(tun, anyidx._replace(mode=1), CMP_MODE_REQID)
    assert not key_cmpsaidx(anyidx, tun, CMP_EXACTLY)
    assert key_cmpsaidx(tun, tun, CMP_EXACTLY)
    assert not key_cmpsaidx(tun, tun._replace(proto=51), CMP_HEAD)


def populated() -> KeyHarness:
    h = KeyHarness()
    so = h.socket()
    for i in range(3):
        exchange(so, add_msg(0x1000 + i, dst=f"10.0.0.{2 + i}"))
    exchange(so, getspi_msg(spirange=(0x2000, 0x2000)))
    exchange(so, spd_msg())
    exchange(so, spd_msg(src="10.3.0.0"))
    h.key._check()
    return h


def test_check_catches_a_stale_spi_hash() -> None:
    """_check: every linked SA is in the SPI hash and nothing else is."""
    h = populated()
    del h.key.savhash[0x1001]
    with pytest.raises(AssertionError, match="SPI hash"):
        h.key._check()


def test_check_catches_a_reachable_dead_sa() -> None:
    """_check: no DEAD SA is reachable."""
    h = populated()
    h.key.savhash[0x1002].state = DEAD
    with pytest.raises(AssertionError):
        h.key._check()


def test_check_catches_sah_index_drift() -> None:
    """_check: SAH address hash and SAH list agree."""
    h = populated()
    h.key.sahaddrhash.clear()
    with pytest.raises(AssertionError, match="address hash"):
        h.key._check()


def test_check_catches_policy_id_and_order_damage() -> None:
    """_check: policy ids unique and hashed; priority order kept."""
    h = populated()
    sp = h.key.sphash.pop(1)
    with pytest.raises(AssertionError):
        h.key._check()
    h.key.sphash[1] = sp
    h.key._check()
    sp.priority = 1 << 20        # now out of order relative to its successor
    with pytest.raises(AssertionError):
        h.key._check()


def test_check_catches_wrong_list_state() -> None:
    """_check: LARVAL SAs live in savtree_larval, MATURE/DYING in alive."""
    h = populated()
    h.key.savhash[0x2000].state = MATURE
    with pytest.raises(AssertionError, match="wrong list"):
        h.key._check()
