"""key_timehandler on a FakeClock: larval expiry, soft/hard SA expiry with
SADB_EXPIRE, SP expiry with SADB_X_SPDEXPIRE (reference
pfkey_setkey_reference.md §B.3, §B.5)."""

from __future__ import annotations

from pfkey import Message
from pfkey.key_testing import (
    E, ESP, KeyHarness, acquire_msg, add_msg, drain, exchange, getspi_msg, lifetimes,
    reply_errno, sa_req_msg, spd_msg, spdid_msg,
)
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.extensions import SadbXNatTPort, SadbXNatTType
from pfkey.keydb import DEAD, DYING, LARVAL, MATURE
from pfkey.pfkeyv2 import SADB, SADB_SAFLAGS


def setup(**kw):
    h = KeyHarness()
    reg, plain = h.socket(), h.socket()
    exchange(reg, Message(SADB.REGISTER, ESP))
    return h, reg, plain


def test_larval_expiry_is_silent() -> None:
    """key_flush_sad: a LARVAL SA dies larval_lifetime (30 s) after created,
    with no message to anyone."""
    h, reg, plain = setup()
    exchange(plain, getspi_msg(spirange=(0x1000, 0x1000)))
    drain(reg)
    sav = h.key.savhash[0x1000]
    h.tick(29)
    assert sav.state == LARVAL
    h.tick(1)
    assert sav.state == DEAD and 0x1000 not in h.key.savhash
    assert drain(reg) == [] and drain(plain) == []
    h.key._check()


def test_soft_expiry_dying_and_expire_to_registered_only() -> None:
    """key_flush_sad + key_expire(soft): MATURE -> DYING and SADB_EXPIRE with
    SA, SA2, CURRENT, SOFT, SRC, DST to registered sockets; seq is the SA's,
    pid 0; no keys, no NAT-T."""
    h, reg, plain = setup()
    natt = (SadbXNatTType(2), SadbXNatTPort(E.X_NAT_T_SPORT, 4500),
            SadbXNatTPort(E.X_NAT_T_DPORT, 4500))
    exchange(plain, add_msg(0x1000, seq=42, extra=lifetimes((0, 0, 100, 0), (0, 0, 10, 0))
                            + natt))
    drain(reg)
    created = h.clock.now()
    h.tick(10)
    assert h.key.savhash[0x1000].state == MATURE          # strictly greater than 10
    h.tick(1)
    assert h.key.savhash[0x1000].state == DYING
    assert drain(plain) == []
    (exp,) = drain(reg)
    assert exp.type == SADB.EXPIRE and exp.satype == ESP and exp.seq == 42 and exp.pid == 0
    assert exp.ext_types == (E.SA, E.X_SA2, E.LIFETIME_CURRENT, E.LIFETIME_SOFT,
                             E.ADDRESS_SRC, E.ADDRESS_DST)
    assert exp.sa.state == DYING and exp.reserved == 2
    assert exp.lifetime_current.addtime == created
    assert exp.lifetime_soft.addtime == 10
    h.tick(5)
    assert drain(reg) == []                                # soft only once (MATURE only)


def test_hard_expiry_dead_and_unlinked() -> None:
    """key_flush_sad + key_expire(hard): DEAD, unlinked, EXPIRE with the HARD
    lifetime; the emptied SAH goes at the next tick."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1000, extra=lifetimes((0, 0, 20, 0), (0, 0, 10, 0))))
    h.tick(11)
    drain(reg)
    h.tick(10)
    (exp,) = drain(reg)
    assert exp.ext_types[3] == E.LIFETIME_HARD and exp.sa.state == DEAD
    assert 0x1000 not in h.key.savhash
    assert len(h.key.sahtree) == 1
    h.tick(1)
    assert len(h.key.sahtree) == 0
    h.key._check()


def test_hard_wins_over_soft() -> None:
    """key_flush_sad: when HARD and SOFT expire together only HARD is sent."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1000, extra=lifetimes((0, 0, 10, 0), (0, 0, 10, 0))))
    drain(reg)
    h.tick(11)
    (exp,) = drain(reg)
    assert exp.has(E.LIFETIME_HARD) and not exp.has(E.LIFETIME_SOFT)


def test_byte_and_use_lifetimes_allocations_never() -> None:
    """key_flush_sad: bytes compare with the CURRENT counter, usetime counts
    from first use only, the allocations limit is never enforced."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1001, extra=lifetimes((0, 1000, 0, 0), (0, 500, 0, 0))))
    exchange(plain, add_msg(0x1002, extra=lifetimes((0, 0, 0, 30), (0, 0, 0, 10))))
    exchange(plain, add_msg(0x1003, extra=lifetimes((1, 0, 0, 0), (1, 0, 0, 0))))
    drain(reg)
    k = h.key
    for spi in (0x1001, 0x1003):
        for _ in range(3):
            k.key_sa_recordxfer(k.savhash[spi], 200)
    h.tick(100)
    assert k.savhash[0x1001].state == DYING                # 600 > 500
    assert k.savhash[0x1002].state == MATURE               # never used
    assert k.savhash[0x1003].state == MATURE               # allocations ignored
    k.key_sa_recordxfer(k.savhash[0x1002], 1)
    h.tick(11)
    assert k.savhash[0x1002].state == DYING
    k.key_sa_recordxfer(k.savhash[0x1001], 500)
    h.tick(1)
    assert 0x1001 not in k.savhash
    k._check()


def test_replay_counter_80_percent_is_soft_expiry() -> None:
    """key_flush_sad: without ESN, a replay counter above 0xcccccccc makes
    the SA DYING; with ESN it does not."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1001, extra=lifetimes((0, 0, 1000, 0), (0, 0, 900, 0))))
    exchange(plain, add_msg(0x1002, flags=SADB_SAFLAGS.X_SAFLAGS_ESN,
                            extra=lifetimes((0, 0, 1000, 0), (0, 0, 900, 0))))
    for spi in (0x1001, 0x1002):
        h.key.savhash[spi].replay.count = 0xCCCCCCCD
    h.tick(1)
    assert h.key.savhash[0x1001].state == DYING
    assert h.key.savhash[0x1002].state == MATURE


def test_expire_order_follows_key_c_drain_lists() -> None:
    """key_flush_sad builds its drain list with LIST_INSERT_HEAD: SAs found
    later in the scan are announced first."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1001, extra=lifetimes((0, 0, 5, 0), (0, 0, 1, 0))))
    exchange(plain, add_msg(0x1002, extra=lifetimes((0, 0, 5, 0), (0, 0, 1, 0))))
    drain(reg)
    h.tick(6)
    # scan order is head first (0x1002 then 0x1001), messages reversed
    assert [m.sa.spi for m in drain(reg)] == [0x1001, 0x1002]


def test_deleted_sa_leaves_sah_until_next_tick() -> None:
    """key_delete leaves the empty SAH linked (key_acquire2 still sees it:
    EEXIST); key_flush_sad unlinks it on the next tick."""
    h, reg, plain = setup()
    exchange(plain, add_msg(0x1000))
    exchange(plain, sa_req_msg(SADB.DELETE, 0x1000))
    assert reply_errno(plain, acquire_msg()) == W["EEXIST"]
    h.tick(1)
    assert exchange(plain, acquire_msg()) == []
    h.key._check()


def test_spd_expiry_lifetime_and_validtime() -> None:
    """key_flush_spd + key_spdexpire: an SP past its lifetime (since created)
    or validtime (since last used) is removed and SADB_X_SPDEXPIRE (CURRENT,
    HARD, SRC, DST, POLICY; pid 0, seq 0) goes to registered sockets."""
    h, reg, plain = setup()
    exchange(plain, spd_msg(src="10.1.0.0", lifetime=(30, 0)))
    exchange(plain, spd_msg(src="10.2.0.0", lifetime=(0, 10)))
    exchange(plain, spd_msg(src="10.3.0.0"))
    drain(reg)
    created = h.clock.now()
    h.tick(11)
    (exp,) = drain(reg)
    assert exp.type == SADB.X_SPDEXPIRE and exp.pid == 0 and exp.seq == 0
    assert exp.ext_types == (E.LIFETIME_CURRENT, E.LIFETIME_HARD, E.ADDRESS_SRC,
                             E.ADDRESS_DST, E.X_POLICY)
    assert str(exp.src.addr) == "10.2.0.0" and exp.policy.id == 2
    assert exp.lifetime_current.addtime == created
    assert (exp.lifetime_hard.addtime, exp.lifetime_hard.usetime) == (0, 10)
    assert drain(plain) == []
    h.tick(20)
    (exp,) = drain(reg)
    assert exp.policy.id == 1
    assert reply_errno(plain, spdid_msg(SADB.X_SPDGET, 1)) == W["ENOENT"]
    assert list(h.key.sphash) == [3]
    h.key._check()


def test_recordxfer_counts_every_packet_from_several_threads() -> None:
    """key_sa_recordxfer adds to counter(9) per-CPU counters in FreeBSD, so no
    packet is lost when several CPUs send on one SA; the model's totals must
    be exact too (SW + HW counters add up to the traffic sent)."""
    import threading

    from pfkey.clock import FakeClock
    from pfkey.key import Key
    from pfkey.keydb import secasvar

    key = Key(FakeClock())
    sav = secasvar.__new__(secasvar)
    sav.lft_c_bytes = sav.lft_c_allocations = sav.firstused = 0
    n, threads = 20_000, 4

    def send() -> None:
        for _ in range(n):
            key.key_sa_recordxfer(sav, 100)

    ts = [threading.Thread(target=send) for _ in range(threads)]
    old = __import__("sys").getswitchinterval()
    __import__("sys").setswitchinterval(1e-6)   # force thread switches mid-update
    try:
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        __import__("sys").setswitchinterval(old)
    assert sav.lft_c_allocations == n * threads
    assert sav.lft_c_bytes == 100 * n * threads
