"""Interface events (freebsd_ipsec_offload.md §6.4): ipsec_accel_on_ifdown's
marker walks, the departure handler, renames, vlans, and the capability
toggle as mlx5 implements it."""

from __future__ import annotations

import io

from ipsec_accel.if_vlan import VlanParams

from ipsec_accel.ifconfig import ifconfig
from ipsec_accel.ipsec_offload import IFP_HS_MARKER
from ipsec_accel.testing import (
    OffloadRig)
from pfkey.keydb import SADB_KEY_ACCEL_INST


def test_flow_on_ifdown_sp_then_sa_of_that_ifp_only(offload_rig: OffloadRig) -> None:
    """ipsec_accel_on_ifdown_impl = ipsec_accel_on_ifdown_sp then
    ipsec_accel_on_ifdown_sav, each removing only ``ifp``'s handles (driver
    calls made in the caller's thread, synchronously)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    savs = [r.add_sa(0x1000 + i) for i in range(3)]
    sp = r.spdadd()
    r.key.ipsec_accel_on_ifdown(a)            # key.c's exported wrapper
    assert [c.method for c in r.drv(a).calls if "del" in c.method or "deinst" in c.method] == \
        ["if_spddel"] + ["if_sa_deinstall"] * 3
    assert all(r.handles(s) == {"tnic1": "HANDLED"} for s in savs)
    assert [h.ifp.if_xname for h in sp.accel_ifps] == ["tnic1"]
    assert all(s.accel_flags == SADB_KEY_ACCEL_INST for s in savs)   # not reset
    assert r.off.stats.drv_spi_in_use == 3
    r.check()


def test_flow_on_ifdown_marker_walk_survives_removals(offload_rig: OffloadRig) -> None:
    """ipsec_accel_on_ifdown_sav: the marker keeps the walk's place while the
    mutex is dropped -- here the first deinstall runs a nested ifdown of
    another interface (its own marker) that removes interleaved handles,
    and the outer walk still finds every handle of its interface."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    for i in range(5):
        r.add_sa(0x1000 + i)
    markers_seen: list[int] = []

    def nested(ifp, drv_spi, priv):  # type: ignore[no-untyped-def]
        markers_seen.append(sum(1 for h in r.off.all_sav_handles if h.flags & IFP_HS_MARKER))
        r.off.ipsec_accel_on_ifdown(b)
        return 0

    r.drv(a).script("if_sa_deinstall", nested)
    r.off.ipsec_accel_on_ifdown(a)
    assert markers_seen == [1]
    assert r.off.sav_handles() == [] and r.off.all_sav_handles.count == 0
    assert r.drv(a).count("if_sa_deinstall") == 5 and r.drv(b).count("if_sa_deinstall") == 5
    r.check()


def test_flow_departure_removes_handles(offload_rig: OffloadRig) -> None:
    """ipsec_accel_ifdetach_event (ifnet_departure_event): if_detach removes
    the departing interface's handles and drops their ifnet references."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    refs = a.if_refcount
    r.ifnets.if_detach(a)
    assert r.handles(sav) == {"tnic1": "HANDLED"}
    assert [h.ifp.if_xname for h in sp.accel_ifps] == ["tnic1"]
    assert a.if_refcount == refs - 2
    r.ifnets.if_free(a)
    assert a.freed
    r.check()


def test_flow_rename_is_not_a_departure(offload_rig: OffloadRig) -> None:
    """ipsec_accel_ifdetach_event: skipped while IFF_RENAMING is set."""
    r = offload_rig
    a = r.nic("tnic0")
    sav = r.add_sa(0x1000)
    assert ifconfig(r.ifnets, ["tnic0", "name", "ipsec0"], out=io.StringIO()) == 0
    assert r.handles(sav) == {"ipsec0": "HANDLED"} and a.if_xname == "ipsec0"
    assert r.drv(a).count("if_sa_deinstall") == 0


def test_flow_trunk_departure_keeps_vlan_handles(offload_rig: OffloadRig) -> None:
    """Departure of a vlan's parent: vlan_ifdetach unconfigures the vlan,
    then ipsec_accel_ifdetach_event removes the parent's handles only; the
    vlan's stay until the SA goes, and their deinstall then gets ENXIO from
    the trunk-less proxy (ignored, as if_sa_deinstall's result is)."""
    r = offload_rig
    parent = r.nic("tnic0")
    assert r.ifnets.if_clone_create("vlan5", VlanParams(5, "tnic0"))[0] == 0
    sav = r.add_sa(0x1000)
    assert set(r.handles(sav)) == {"tnic0", "vlan5"}
    r.ifnets.if_detach(parent)
    assert r.handles(sav) == {"vlan5": "HANDLED"}
    r.delete_sa(0x1000)
    assert not sav.accel_ifps and r.off.stats.drv_spi_in_use == 0
    r.check()


def test_flow_capability_toggle_mlx5(offload_rig: OffloadRig) -> None:
    """mlx5e SIOCSIFCAPNV: turning IPSEC off calls ipsec_accel_on_ifdown
    (handles go); turning it on replays nothing; SAs added afterwards are
    installed again (ifconfig tnic0 -ipsec / ipsec)."""
    r = offload_rig
    nic = r.nic()
    old = r.add_sa(0x1000)
    out, err = io.StringIO(), io.StringIO()
    assert ifconfig(r.ifnets, ["tnic0", "-ipsec"], out=out, err=err) == 0
    assert not old.accel_ifps and not nic.ipsec_offload
    new_while_off = r.add_sa(0x2000)
    assert not new_while_off.accel_ifps
    assert ifconfig(r.ifnets, ["tnic0", "ipsec"], out=out, err=err) == 0
    assert not old.accel_ifps and not new_while_off.accel_ifps
    fresh = r.add_sa(0x3000)
    assert r.handles(fresh) == {"tnic0": "HANDLED"}
    r.check()
