"""The offload hook seam (ipsec_accel_*_p): called where key.c calls them,
SADB_X_EXT_IF_HW_OFFL stored as accel_ifname, offload extensions in dumps,
and the two FreeBSD quirks behind switches (freebsd_ipsec_offload.md §5, §6,
§11, §17, §18)."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from pfkey import Message, SadbAddress, SadbXIfHwOffl
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.hooks import AccelHooks, IF_SA_CNT_WHICH
from pfkey.key_testing import (
    E, ESP, KeyHarness, add_msg, exchange, getspi_msg, lifetimes, reply_errno,
    sa_in, sa_req_msg, spd_msg, spdid_msg, update_msg,
)
from pfkey.keydb import DEAD, MATURE
from pfkey.pfkeyv2 import SADB


class Recorder(AccelHooks):
    """Logs every hook call with the object's state at call time."""

    attached = True

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.accel: set[int] = set()
        self.lifetime_error = 0

    def ipsec_accel_sa_newkey(self, sav):  # type: ignore[no-untyped-def]
        self.calls.append(("newkey", sav.spi, sav.state))

    def ipsec_accel_forget_sav(self, sav):  # type: ignore[no-untyped-def]
        self.calls.append(("forget", sav.spi, sav.state))

    def ipsec_accel_spdadd(self, sp, inp=None):  # type: ignore[no-untyped-def]
        self.calls.append(("spdadd", sp.id, inp))

    def ipsec_accel_spddel(self, sp):  # type: ignore[no-untyped-def]
        self.calls.append(("spddel", sp.id, sp.state))

    def ipsec_accel_sync(self) -> None:
        self.calls.append(("sync",))

    def ipsec_accel_is_accel_sav(self, sav):  # type: ignore[no-untyped-def]
        return sav.spi in self.accel

    def ipsec_accel_sa_lifetime_op(self, sav, lft_c, ifp, op, tracker=None):  # type: ignore[no-untyped-def]
        assert op == IF_SA_CNT_WHICH.TOTAL_SW_VAL
        if self.lifetime_error:
            return self.lifetime_error
        lft_c.allocations, lft_c.bytes = sav.accel_lft_sw
        lft_c.usetime = 0
        return 0

    def ipsec_accel_key_setaccelif(self, sav):  # type: ignore[no-untyped-def]
        return [SadbXIfHwOffl(sav.accel_ifname or "mce0")]

    def names(self) -> list[str]:
        out = [c[0] for c in self.calls]
        self.calls.clear()
        return out


@pytest.fixture
def rig() -> tuple[KeyHarness, Recorder]:
    rec = Recorder()
    h = KeyHarness(hooks=rec)
    return h, rec


def test_no_hooks_by_default() -> None:
    """Without an offload layer every hook is the NULL-pointer no-op and
    dumps carry no offload extension."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, add_msg(0x1000))
    (rep,) = exchange(so, sa_req_msg(SADB.GET, 0x1000))
    assert not {E.X_LFT_CUR_SW_OFFL, E.X_LFT_CUR_HW_OFFL, E.X_IF_HW_OFFL} & set(rep.ext_types)
    assert AccelHooks().ipsec_accel_drv_sa_lifetime_fetch(None, None, 3)[0] == errno.EOPNOTSUPP


def test_add_calls_newkey_twice(rig) -> None:
    """key_newsav and key_add each call ipsec_accel_sa_newkey (MATURE)."""
    h, rec = rig
    exchange(h.socket(), add_msg(0x1000))
    assert rec.calls == [("newkey", 0x1000, MATURE)] * 2


def test_getspi_update_newkey_once_and_on_mature_update(rig) -> None:
    """key_getspi offers nothing; key_update offers the SA at its end
    (LARVAL->MATURE, and again for a MATURE/DYING update)."""
    h, rec = rig
    so = h.socket()
    exchange(so, getspi_msg(spirange=(0x1000, 0x1000)))
    assert rec.calls == []
    exchange(so, update_msg(0x1000))
    assert rec.calls == [("newkey", 0x1000, MATURE)]
    rec.calls.clear()
    exchange(so, update_msg(0x1000, auth_key=None, enc_key=None, extra=lifetimes()))
    assert rec.calls == [("newkey", 0x1000, MATURE)]


@pytest.mark.parametrize("how", ["delete", "delete-all", "flush", "flush-esp", "hard",
                                 "larval"])
def test_every_dead_transition_calls_forget_after_dead(rig, how: str) -> None:
    """key_unlinksav / key_delete_all / key_flush / key_flush_sad: forget is
    called right after the state became DEAD."""
    h, rec = rig
    so = h.socket()
    if how == "larval":
        exchange(so, getspi_msg(spirange=(0x1000, 0x1000)))
    else:
        exchange(so, add_msg(0x1000, extra=lifetimes((0, 0, 5, 0), (0, 0, 3, 0))))
    rec.calls.clear()
    if how == "delete":
        exchange(so, sa_req_msg(SADB.DELETE, 0x1000))
    elif how == "delete-all":
        exchange(so, sa_req_msg(SADB.DELETE, None))
    elif how == "flush":
        exchange(so, Message(SADB.FLUSH, 0))
    elif how == "flush-esp":
        exchange(so, Message(SADB.FLUSH, ESP))
    elif how == "hard":
        h.tick(6)
    else:
        h.tick(30)
    assert rec.calls == [("forget", 0x1000, DEAD)]


def test_updateaddresses_forgets_old_and_does_not_offer_clone(rig) -> None:
    """key_updateaddresses: the old SA is forgotten; the clone is not offered
    to newkey (freebsd_ipsec_offload.md §17.21)."""
    h, rec = rig
    so = h.socket()
    exchange(so, add_msg(0x1000))
    rec.calls.clear()
    nd = SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.7"))
    exchange(so, update_msg(0x1000, auth_key=None, enc_key=None, extra=(nd,)))
    assert rec.calls == [("forget", 0x1000, DEAD)]


def test_spd_hooks_and_sync_points(rig) -> None:
    """key_insertsp -> spdadd; key_spddelete -> spddel twice + sync;
    SPDUPDATE of an existing SP -> spddel(old), spdadd(new), sync;
    SPDDELETE2 -> spddel + sync; SPDFLUSH -> spddel, no sync."""
    h, rec = rig
    so = h.socket()
    exchange(so, spd_msg())
    assert rec.calls == [("spdadd", 1, None)]
    rec.calls.clear()
    exchange(so, spd_msg(SADB.X_SPDUPDATE))
    assert rec.names() == ["spddel", "spdadd", "sync"]
    exchange(so, spd_msg(SADB.X_SPDDELETE))
    assert rec.names() == ["spddel", "spddel", "sync"]
    exchange(so, spd_msg())
    exchange(so, spd_msg(src="10.9.0.0"))
    rec.calls.clear()
    exchange(so, spdid_msg(SADB.X_SPDDELETE2, 3))
    assert rec.names() == ["spddel", "sync"]
    exchange(so, Message(SADB.X_SPDFLUSH, 0))
    assert rec.names() == ["spddel"]


def test_if_hw_offl_stored_where_key_c_stores_it(rig) -> None:
    """key_newsav (GETSPI, ADD) and key_spdadd store SADB_X_EXT_IF_HW_OFFL as
    accel_ifname; key_update ignores it."""
    h, rec = rig
    so = h.socket()
    exchange(so, getspi_msg(spirange=(0x1000, 0x1000), extra=(SadbXIfHwOffl("mce0"),)))
    exchange(so, update_msg(0x1000, extra=(SadbXIfHwOffl("mce1"),)))
    assert h.key.savhash[0x1000].accel_ifname == "mce0"
    exchange(so, add_msg(0x2000, extra=(SadbXIfHwOffl("ix0"),)))
    assert h.key.savhash[0x2000].accel_ifname == "ix0"
    exchange(so, add_msg(0x3000))
    assert h.key.savhash[0x3000].accel_ifname is None
    exchange(so, spd_msg(extra=(SadbXIfHwOffl("mce0"),)))
    assert h.key.sphash[1].accel_ifname == "mce0"


def test_dump_offload_extensions(rig) -> None:
    """key_setdumpsa: for an offloaded SA, after NAT-T: LFT_CUR_SW_OFFL
    (lifetime_op TOTAL_SW_VAL), LFT_CUR_HW_OFFL (accel_hw_*), IF_HW_OFFL
    (key_setaccelif); a failing lifetime_op makes GET fail ENOBUFS."""
    h, rec = rig
    so = h.socket()
    exchange(so, add_msg(0x1000))
    sav = h.key.savhash[0x1000]
    rec.accel.add(0x1000)
    sav.accel_lft_sw[:] = [3, 300]
    sav.accel_hw_allocs, sav.accel_hw_octets = 5, 500
    (rep,) = exchange(so, sa_req_msg(SADB.GET, 0x1000))
    assert rep.ext_types[-3:] == (E.X_LFT_CUR_SW_OFFL, E.X_LFT_CUR_HW_OFFL, E.X_IF_HW_OFFL)
    sw, hw, ifx = rep.exts[-3:]
    assert (sw.allocations, sw.bytes) == (3, 300) and (hw.allocations, hw.bytes) == (5, 500)
    assert ifx.ifname == "mce0"
    rec.lifetime_error = errno.ENOTSUP
    assert reply_errno(so, sa_req_msg(SADB.GET, 0x1000)) == W["ENOBUFS"]


def test_sp_messages_append_if_hw_offl(rig) -> None:
    """key_sp2msg: an SP with accel_ifname gets one IF_HW_OFFL, placed right
    after its policy extension (FreeBSD overlaps it; see the quirk test)."""
    h, rec = rig
    so = h.socket()
    exchange(so, spd_msg(lifetime=(50, 0), extra=(SadbXIfHwOffl("mce0"),)))
    (got,) = exchange(so, spdid_msg(SADB.X_SPDGET, 1))
    assert got.ext_types == (E.ADDRESS_SRC, E.ADDRESS_DST, E.X_POLICY, E.X_IF_HW_OFFL,
                             E.LIFETIME_CURRENT, E.LIFETIME_HARD)
    assert got.get(E.X_IF_HW_OFFL).ifname == "mce0"
    assert len(got.policy.requests) == 1


def test_quirk_sp2msg_overlap_reproduces_freebsd() -> None:
    """Quirk "sp2msg_ifhwoffl_overlap" (§18): the IF_HW_OFFL bytes overwrite
    the first request inside the policy extension, 40 zero bytes follow."""
    h = KeyHarness(quirks={"sp2msg_ifhwoffl_overlap"})
    so = h.socket()
    exchange(so, spd_msg(extra=(SadbXIfHwOffl("mce0"),)))
    so.send(spdid_msg(SADB.X_SPDGET, 1).encode())
    (raw,) = so.recv_all()
    pol_off = 16 + 24 + 24
    assert raw[pol_off:pol_off + 2] == (3).to_bytes(2, "little")   # 16 + one 8-byte request
    assert raw[pol_off + 16:pol_off + 20] == (5).to_bytes(2, "little") + (31).to_bytes(2, "little")
    assert raw[pol_off + 20 + 4:pol_off + 28] == b"mce0"
    assert len(raw) == pol_off + 24 + 40
    with pytest.raises(ValueError):
        KeyHarness(quirks={"no-such-quirk"})


def test_quirk_updateaddresses_ifname() -> None:
    """key_updateaddresses copies accel_ifname (correct model) or loses it
    (quirk "updateaddresses_ifname", FreeBSD's reversed strncpy)."""
    for quirks, want in ((set(), "mce0"), ({"updateaddresses_ifname"}, "")):
        h = KeyHarness(quirks=quirks)
        so = h.socket()
        exchange(so, add_msg(0x1000, extra=(SadbXIfHwOffl("mce0"),)))
        nd = SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.7"))
        exchange(so, update_msg(0x1000, auth_key=None, enc_key=None, extra=(nd,)))
        assert h.key.savhash[0x1000].accel_ifname == want


def test_set_accel_hooks_attach_detach() -> None:
    """Key.set_accel_hooks models SYSINIT filling / SYSUNINIT clearing the
    ipsec_accel_*_p pointers."""
    h = KeyHarness()
    rec = Recorder()
    h.key.set_accel_hooks(rec)
    exchange(h.socket(), add_msg(0x1000))
    assert rec.names() == ["newkey", "newkey"]
    h.key.set_accel_hooks(None)
    exchange(h.socket(), add_msg(0x1001))
    assert rec.calls == []
