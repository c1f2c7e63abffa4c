"""FreeBSD fidelity switches of the offload layer (freebsd_ipsec_offload.md
§18 and the 6ba593bb / 002b12b5 differences of §6.1): each quirk is fixed by
default and reproduced when named; both behaviours are tested.  The §17
behaviours FreeBSD has on purpose (the drv_spi leak of an "other" driver
error) are the default, and the fix is an extension."""

from __future__ import annotations

import errno

import pytest

from ipsec_accel.ipsec_offload import IFP_HP_MARKER, IFP_HS_MARKER, QUIRKS, IpsecOffload
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.unr import UnrAllocator


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_walk_stops_on_hard_driver_error(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_sa_newkey_cb: 6ba593bb returned the driver's error to
    if_foreach_sleep, so a hard error on the first interface kept every
    later interface from being offered the SA ("walk_stops_on_error");
    002b12b5 returns 0 (default)."""
    r = make_offload_rig(TqMode.INLINE, quirks=["walk_stops_on_error"] if quirk else [])
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_sa_newkey", errno.EIO)
    sav = r.add_sa(0x1000)
    assert r.handles(sav) == ({} if quirk else {"tnic1": "HANDLED"})
    assert r.drv(b).count("if_sa_newkey") == (0 if quirk else 1)
    # EOPNOTSUPP never stopped the walk, in either version
    r.drv(a).set_default("if_sa_newkey", errno.EOPNOTSUPP)
    sav2 = r.add_sa(0x2000)
    assert r.handles(sav2) == {"tnic0": "REJECTED", "tnic1": "HANDLED"}
    r.check()


class _FlakyUnr(UnrAllocator):
    """A drv_spi allocator that reports exhaustion for its first call only."""

    __slots__ = ("fail_next",)

    def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.fail_next = 1

    def alloc_unr(self) -> int:
        if self.fail_next:
            self.fail_next -= 1
            return -1
        return super().alloc_unr()


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_walk_stops_on_drv_spi_exhaustion(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_sa_newkey_cb: 6ba593bb returned ENOMEM when alloc_unr
    failed, stopping the walk; 002b12b5 skips that interface and goes on."""
    r = make_offload_rig(TqMode.INLINE, quirks=["walk_stops_on_error"] if quirk else [])
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.off.drv_spi_unr = _FlakyUnr(3, 0xFFFF, mutex=r.off.sav_tmp)
    sav = r.add_sa(0x1000)
    assert r.off.stats.drv_spi_exhausted == 1
    assert r.handles(sav) == ({} if quirk else {"tnic1": "HANDLED"})
    assert r.drv(a).calls == []
    r.check()


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_sp_walk_stops_on_spdadd_error(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_spdadd_cb: 6ba593bb returned if_spdadd's error (the walk
    stopped after a refusing interface); 002b12b5 returns 0."""
    r = make_offload_rig(TqMode.INLINE, quirks=["walk_stops_on_error"] if quirk else [])
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_spdadd", errno.EINVAL)
    sp = r.spdadd()
    assert [h.ifp.if_xname for h in sp.accel_ifps] == (["tnic0"] if quirk
                                                        else ["tnic1", "tnic0"])


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_ifdown_sp_logs_uninitialised_error(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_on_ifdown_sp tests `error` outside the "installed" branch,
    so a REJECTED handle logs a value never assigned
    ("ifdown_sp_uninit_error"); fixed: nothing is logged for it."""
    r = make_offload_rig(TqMode.INLINE, quirks=["ifdown_sp_uninit_error"] if quirk else [])
    nic = r.nic()
    r.drv(nic).set_default("if_spdadd", errno.EINVAL)
    r.spdadd()
    r.off.log_ring.clear()
    r.off.ipsec_accel_on_ifdown(nic)
    bogus = r.off.log_lines("on_ifdown_sp")
    assert (len(bogus) == 1 and "<uninitialised>" in bogus[0]) if quirk else bogus == []


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_sp_marker_uses_sa_flag(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_on_ifdown_sp marks its marker IFP_HS_MARKER (0x10), the
    SA constant, instead of IFP_HP_MARKER (0x4) ("sp_marker_sa_flag")."""
    r = make_offload_rig(TqMode.INLINE, quirks=["sp_marker_sa_flag"] if quirk else [])
    nic = r.nic()
    r.spdadd()
    seen: list[int] = []
    r.drv(nic).script("if_spddel", lambda ifp, sp, priv: (
        seen.extend(h.flags for h in r.off.sp_handles(include_markers=True) if h.sp is None),
        0)[1])
    r.off.ipsec_accel_on_ifdown(nic)
    assert seen == [IFP_HS_MARKER if quirk else IFP_HP_MARKER]


@pytest.mark.parametrize("quirk", [False, True])
def test_quirk_sp_install_ifdown_race(make_offload_rig, quirk: bool) -> None:
    """ipsec_accel_spdadd_cb links the handle (ipsec_accel_remember_sp)
    before if_spdadd returns; an ipsec_accel_on_ifdown_sp running meanwhile
    (here: called from inside the driver) removes it and calls if_spddel
    with the ifdata not yet written, and the rule the driver then returns
    leaks ("sp_install_ifdown_race"; a use after free in C).  Fixed: the
    walk only dooms the busy handle and the add callback removes it with
    the right ifdata when the driver returns."""
    r = make_offload_rig(TqMode.INLINE, quirks=["sp_install_ifdown_race"] if quirk else [])
    nic = r.nic()
    d = r.drv(nic)
    d.script("if_spdadd", lambda ifp, sp, inp: (r.off.ipsec_accel_on_ifdown(ifp), 0)[1])
    sp = r.spdadd()
    assert not sp.accel_ifps
    assert d.count("if_spddel") == 1
    if quirk:
        assert d.bad_spdels == [("tnic0", sp.id, None)] and len(d.sps) == 1
    else:
        assert d.bad_spdels == [] and d.sps == {}
        r.check(balanced=True)


@pytest.mark.parametrize("fix", [False, True])
def test_drv_spi_leak_is_faithful_default(make_offload_rig, fix: bool) -> None:
    """§6.1 / §17.2 (XXXKIB in ipsec_accel_sa_newkey_cb): an "other" driver
    error leaks the drv_spi -- FreeBSD's behaviour, kept by default; the
    extension "free_drv_spi_on_error" frees it."""
    r = make_offload_rig(TqMode.INLINE,
                         extensions=["free_drv_spi_on_error"] if fix else [])
    nic = r.nic()
    r.drv(nic).set_default("if_sa_newkey", errno.ENOSPC)
    for spi in range(0x1000, 0x1005):
        r.add_sa(spi)
    r.flush()
    r.sync()
    assert r.off.stats.drv_spi_in_use == (0 if fix else 5)
    assert len(r.off.drv_spi_leaked) == (0 if fix else 5)
    r.check(balanced=True)


def test_quirk_names_are_documented() -> None:
    """Every quirk has a description; unknown names are refused."""
    assert set(QUIRKS) == {"walk_stops_on_error", "ifdown_sp_uninit_error",
                           "sp_marker_sa_flag", "sp_install_ifdown_race"}
    assert all(len(v) > 40 for v in QUIRKS.values())
    with pytest.raises(ValueError):
        IpsecOffload(quirks=["updateaddresses_ifname"])   # a pfkey.key quirk, not ours
