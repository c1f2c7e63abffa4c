"""Tests for ipsec_accel.ifnet: sys/net/if.c, if_var.h, if.h, if_clone.c,
if_vlan.c and sbin/ifconfig (ifconfig_netlink.c status, ifvlan.c)."""

from __future__ import annotations

import errno
import io
from typing import Any

import pytest

import ipsec_accel.if_vlan as vlan
import ipsec_accel.ifnet as ifn
from ipsec_accel.ifnet import (
    IFCAP2_IPSEC_OFFLOAD, IFCAP2_IPSEC_OFFLOAD_MASK, IFF_DRV_RUNNING, IFF_RENAMING, IFF_UP,
    IfIoctl, IfIpsecAccelMethods, Ifnet, IfnetError, IfnetRegistry, IfReq,
)
from ipsec_accel.ifconfig import ifconfig
from ipsec_accel.mbuf import CSUM_IP_TCP, CSUM_IP_TSO, M_VLANTAG, Mbuf

NIC_CAPS = (ifn.IFCAP_NV | ifn.IFCAP_HWCSUM | ifn.IFCAP_VLAN_MTU | ifn.IFCAP_VLAN_HWTAGGING
            | ifn.IFCAP_VLAN_HWCSUM | ifn.IFCAP_TSO4 | ifn.IFCAP_VLAN_HWTSO | ifn.IFCAP_LINKSTATE)


class Driver:
    """A recording driver: every accel method logs (method, ifp name, args)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.hwassist = CSUM_IP_TCP | CSUM_IP_TSO

    def methods(self) -> IfIpsecAccelMethods:
        def rec(name: str, result: Any) -> Any:
            def fn(ifp: Ifnet, *args: Any) -> Any:
                self.calls.append((name, ifp.if_xname, args))
                return result
            return fn
        return IfIpsecAccelMethods(
            if_spdadd=rec("if_spdadd", (0, "sp-priv")),
            if_spddel=rec("if_spddel", 0),
            if_sa_newkey=rec("if_sa_newkey", (0, "sa-priv")),
            if_sa_deinstall=rec("if_sa_deinstall", 0),
            if_sa_cnt=rec("if_sa_cnt", 0),
            if_hwassist=rec("if_hwassist", self.hwassist))


def make_nic(reg: IfnetRegistry, name: str = "mce0", *, ipsec: bool = True,
             caps: int = NIC_CAPS, driver: Driver | None = None, up: bool = False) -> Ifnet:
    ifp = Ifnet(name, capabilities=caps,
                capabilities2=IFCAP2_IPSEC_OFFLOAD_MASK if ipsec else 0,
                hwassist=CSUM_IP_TCP | CSUM_IP_TSO)
    if driver is not None:
        ifn.if_setipsec_accel_methods(ifp, driver.methods())   # methods first...
    reg.ether_ifattach(ifp, bytes.fromhex("02aabbccdd0" + str(len(reg) % 10)))
    if up:
        assert reg.if_setupdown(ifp, True) == 0
    return ifp


@pytest.fixture
def reg() -> IfnetRegistry:
    return IfnetRegistry()


# ------------------------------------------------------------ constants, KPI

def test_ipsec_capability_constants() -> None:
    """if.h: IFCAP_B_IPSEC_OFFLOAD 34, IFCAP2_IPSEC_OFFLOAD = 34-32 = 2,
    IFCAP2_BIT(2) = 0x4; capability name "IPSEC"."""
    assert ifn.IFCAP_B_IPSEC_OFFLOAD == 34
    assert IFCAP2_IPSEC_OFFLOAD == 2 and IFCAP2_IPSEC_OFFLOAD_MASK == 0x4
    assert ifn.IFCAP2_BIT(IFCAP2_IPSEC_OFFLOAD) == 0x4
    assert ifn.IFCAP_NAMES[34] == "IPSEC" and ifn.IFCAP_NAMES[17] == "NV"
    assert ifn.IFCAP_NV == 1 << 17
    assert (IFF_UP, IFF_DRV_RUNNING, IFF_RENAMING, ifn.IFF_DYING) == (1, 0x40, 0x400000, 0x200000)


def test_accel_methods_field_order_matches_if_var_h() -> None:
    """struct if_ipsec_accel_methods: if_spdadd, if_spddel, if_sa_newkey,
    if_sa_deinstall, if_sa_cnt, if_hwassist; optional entries may be None;
    if_setipsec_accel_methods is a plain store."""
    assert IfIpsecAccelMethods.FIELDS == ("if_spdadd", "if_spddel", "if_sa_newkey",
                                          "if_sa_deinstall", "if_sa_cnt", "if_hwassist")
    m = IfIpsecAccelMethods(if_sa_newkey=lambda ifp, sav, spi: (0, None))
    assert m.if_sa_cnt is None and m.if_spdadd is None
    ifp = Ifnet("ix0")
    ifn.if_setipsec_accel_methods(ifp, m)
    assert ifp.if_ipsec_accel_m is m


def test_capability_bit_helpers() -> None:
    """if_setcapabilities2bit / if_setcapenable2bit (driver attach) and the
    ipsec_offload test ``if_capenable2 & IFCAP2_BIT(IFCAP2_IPSEC_OFFLOAD)``."""
    ifp = Ifnet("ix0")
    assert not ifp.ipsec_offload
    ifn.if_setcapabilities2bit(ifp, IFCAP2_IPSEC_OFFLOAD_MASK, 0)
    ifn.if_setcapenable2bit(ifp, IFCAP2_IPSEC_OFFLOAD_MASK, 0)
    assert ifp.ipsec_offload and ifn.if_getcapenable2(ifp) == 0x4
    ifn.if_setcapenable2bit(ifp, 0, IFCAP2_IPSEC_OFFLOAD_MASK)
    assert not ifp.ipsec_offload
    with pytest.raises(IfnetError):
        Ifnet("a-name-that-is-too-long")


# --------------------------------------------------------- attach / lookup

def test_attach_order_index_and_lookup(reg: IfnetRegistry) -> None:
    """if_attach links on V_ifnet's tail and takes the lowest free index;
    the index is reused after if_free; names are unique."""
    a, b, c = (make_nic(reg, n) for n in ("mce0", "ix0", "ix1"))
    assert reg.names() == ["mce0", "ix0", "ix1"]
    assert [i.if_index for i in (a, b, c)] == [1, 2, 3]
    assert reg.ifunit("ix0") is b and reg.ifnet_byindex(3) is c and reg["mce0"] is a
    assert "ix1" in reg and "nope" not in reg and reg.ifunit("nope") is None
    with pytest.raises(IfnetError):
        reg.if_attach(Ifnet("ix0"))
    reg.if_detach(b)
    assert reg.ifnet_byindex(2) is None     # detached, index still reserved
    reg.if_free(b)
    d = make_nic(reg, "ix2")
    assert d.if_index == 2 and reg.names() == ["mce0", "ix1", "ix2"]
    with pytest.raises(IfnetError):
        reg.if_detach(b)


def test_refcount_if_ref_rele_try_ref(reg: IfnetRegistry) -> None:
    """if_alloc's reference is dropped by if_free; the struct lives while
    others hold references (ipsec handles do); if_try_ref then fails."""
    ifp = make_nic(reg)
    ref = reg.ifunit_ref("mce0")
    assert ref is ifp and ifp.if_refcount == 2
    reg.if_detach(ifp)
    reg.if_free(ifp)
    assert not ifp.freed and ifp.if_flags & ifn.IFF_DYING
    ifp.if_rele()
    assert ifp.freed and ifp.if_refcount == 0
    assert not ifp.if_try_ref()
    with pytest.raises(IfnetError):
        ifp.if_ref()
    with pytest.raises(IfnetError):
        reg.if_attach(ifp)


def test_if_foreach_sleep_order_refs_and_early_stop(reg: IfnetRegistry) -> None:
    """if_foreach_sleep: matching interfaces in V_ifnet order, each
    referenced while the callbacks run, walk stops at the first non-zero
    return (which is returned), references released afterwards."""
    nics = [make_nic(reg, f"ix{i}", ipsec=i != 1) for i in range(4)]
    seen: list[tuple[str, int]] = []

    def cb(ifp: Ifnet) -> int:
        seen.append((ifp.if_xname, ifp.if_refcount))
        # callbacks may take the list lock and call into the registry
        assert reg.ifunit(ifp.if_xname) is ifp
        return errno.EIO if ifp.if_xname == "ix2" else 0

    err = reg.if_foreach_sleep(lambda i: i.ipsec_offload, cb)
    assert err == errno.EIO
    assert seen == [("ix0", 2), ("ix2", 2)]       # ix1 skipped, ix3 never reached
    assert all(n.if_refcount == 1 for n in nics)
    assert reg.if_foreach_sleep(None, lambda i: 0) == 0


def test_if_foreach_sleep_snapshot_semantics(reg: IfnetRegistry) -> None:
    """The match runs at snapshot time: an interface detached during the
    walk still gets its callback (it is referenced), one attached during the
    walk is not visited."""
    a, b = make_nic(reg, "ix0"), make_nic(reg, "ix1")
    visited: list[str] = []

    def cb(ifp: Ifnet) -> int:
        visited.append(ifp.if_xname)
        if ifp is a:
            reg.if_detach(b)
            make_nic(reg, "ix9")
        return 0

    assert reg.if_foreach_sleep(None, cb) == 0
    assert visited == ["ix0", "ix1"]
    assert reg.if_foreach(lambda i: 0) == 0


def test_detach_unlinks_downs_then_departs(reg: IfnetRegistry) -> None:
    """if_detach: unlink from V_ifnet first, if_down, then
    ifnet_departure_event (the ipsec_offload handler runs here)."""
    ifp = make_nic(reg, up=True)
    events: list[str] = []
    reg.ifnet_event.register(lambda i, e: events.append(f"event{e}"))

    def departure(i: Ifnet) -> None:
        events.append("departure")
        assert reg.ifunit(i.if_xname) is None and not i.if_flags & IFF_UP
        assert not i.if_flags & IFF_RENAMING
    reg.ifnet_departure_event.register(departure)
    reg.if_detach(ifp)
    assert events == [f"event{ifn.IFNET_EVENT_DOWN}", "departure"]


def test_rename_sets_renaming_during_departure_and_arrival(reg: IfnetRegistry) -> None:
    """if_rename: EINVAL/EEXIST checks; IFF_RENAMING is set around the
    departure and arrival events (ipsec_accel_ifdetach_event and vlan_ifdetach
    skip renames), cleared afterwards; lookups follow the new name."""
    ifp = make_nic(reg)
    make_nic(reg, "ix0")
    seen: list[tuple[str, str, bool]] = []
    reg.ifnet_departure_event.register(
        lambda i: seen.append(("departure", i.if_xname, bool(i.if_flags & IFF_RENAMING))))
    reg.ifnet_arrival_event.register(
        lambda i: seen.append(("arrival", i.if_xname, bool(i.if_flags & IFF_RENAMING))))
    assert reg.if_rename(ifp, "ix0") == errno.EEXIST
    assert reg.if_rename(ifp, "") == errno.EINVAL
    assert reg.if_rename(ifp, "x" * 16) == errno.EINVAL
    assert reg.if_rename(ifp, "mce0") == 0 and seen == []
    assert reg.if_rename(ifp, "wan0") == 0
    assert seen == [("departure", "mce0", True), ("arrival", "wan0", True)]
    assert not ifp.if_flags & IFF_RENAMING
    assert reg.ifunit("wan0") is ifp and reg.ifunit("mce0") is None
    assert ifp.if_index == 1 and reg.names() == ["wan0", "ix0"]


def test_event_handlers_priority_order_and_errors() -> None:
    """EVENTHANDLER_REGISTER: lower priority value first, ties in
    registration order; deregistration; a raising handler does not stop the
    others and its exception surfaces afterwards."""
    ev = ifn.EventHandlerList("x")
    order: list[str] = []
    ev.register(lambda: order.append("any1"))
    tag = ev.register(lambda: order.append("gone"))
    ev.register(lambda: order.append("first"), ifn.EVENTHANDLER_PRI_FIRST)
    ev.register(lambda: order.append("last"), ifn.EVENTHANDLER_PRI_LAST)
    ev.register(lambda: order.append("any2"))
    ev.deregister(tag)
    ev.invoke()
    assert order == ["first", "any1", "any2", "last"]

    def bad() -> None:
        raise ValueError("boom")
    ev.register(bad, ifn.EVENTHANDLER_PRI_FIRST)
    order.clear()
    with pytest.raises(ValueError):
        ev.invoke()
    assert order == ["first", "any1", "any2", "last"]


# ------------------------------------------------------- flags, link, mtu

def test_up_down_running_link_and_events(reg: IfnetRegistry) -> None:
    """SIOCSIFFLAGS via ifhwioctl: if_up/if_down send ifnet_event; the
    driver's init sets IFF_DRV_RUNNING and the link comes up
    (ifnet_link_event); ifconfig shows LOWER_UP."""
    ifp = make_nic(reg)
    events: list[Any] = []
    reg.ifnet_event.register(lambda i, e: events.append(("ev", e)))
    reg.ifnet_link_event.register(lambda i, s: events.append(("link", s)))
    assert reg.if_setupdown("mce0", True) == 0
    assert ifp.up and ifp.running and ifp.if_link_state == ifn.LINK_STATE_UP
    assert ifp.flags & ifn.IFF_LOWER_UP
    assert events == [("link", ifn.LINK_STATE_UP), ("ev", ifn.IFNET_EVENT_UP)]
    events.clear()
    assert reg.if_setupdown(ifp, False) == 0
    assert not ifp.up and not ifp.running
    assert events == [("ev", ifn.IFNET_EVENT_DOWN), ("link", ifn.LINK_STATE_DOWN)]
    assert reg.if_setupdown("nope", True) == errno.ENXIO


def test_mtu_bounds(reg: IfnetRegistry) -> None:
    """SIOCSIFMTU: ifhwioctl rejects outside [IF_MINMTU, IF_MAXMTU], the
    driver outside its own maximum."""
    ifp = make_nic(reg)
    assert reg.if_setmtu(ifp, 71) == errno.EINVAL
    assert reg.if_setmtu(ifp, 70000) == errno.EINVAL
    assert reg.if_setmtu(ifp, 9001) == errno.EINVAL
    assert reg.if_setmtu(ifp, 9000) == 0 and ifp.mtu == 9000


# ------------------------------------------------------------ capabilities

def test_ipsec_toggle_via_siocsifcapnv_and_driver_interception(reg: IfnetRegistry) -> None:
    """ifconfig -ipsec is SIOCSIFCAPNV: the kernel builds reqcap2 from the
    nvlist and hands it to the driver's if_ioctl (mlx5 intercepts, e.g. to
    call ipsec_accel_on_ifdown); a driver error leaves the bit alone; the
    model-only capchange event reports the change."""
    ifp = make_nic(reg)
    log: list[Any] = []
    default = ifp.if_ioctl
    assert default is not None

    def drv_ioctl(i: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
        if cmd is IfIoctl.SIOCSIFCAPNV:
            log.append(("ioctl", req.reqcap2, i.if_capenable2))
            if req.reqcap2 & IFCAP2_IPSEC_OFFLOAD_MASK and log[0] == "refuse-enable":
                return errno.EBUSY
        return default(i, cmd, req)
    ifp.if_ioctl = drv_ioctl
    reg.ifnet_capchange_event.register(lambda i, old, old2: log.append(("change", old2)))
    assert reg.if_setipsec(ifp, False) == 0
    assert not ifp.ipsec_offload
    assert log == [("ioctl", 0, 0x4), ("change", 0x4)]
    log.clear()
    log.append("refuse-enable")
    assert reg.if_setipsec(ifp, True) == errno.EBUSY
    assert not ifp.ipsec_offload
    log.clear()
    assert reg.if_setipsec(ifp, True) == 0 and ifp.ipsec_offload


def test_capnv_requires_ifcap_nv_and_supported_bits(reg: IfnetRegistry) -> None:
    """ifhwioctl SIOCSIFCAPNV: EINVAL without IFCAP_NV, for a bit outside
    if_capabilities2, or an unknown name; SIOCSIFCAP: EINVAL for a bit
    outside if_capabilities."""
    no_nv = make_nic(reg, "ix0", caps=NIC_CAPS & ~ifn.IFCAP_NV)
    assert reg.if_setipsec(no_nv, False) == errno.EINVAL
    assert no_nv.ipsec_offload
    no_ipsec = make_nic(reg, "ix1", ipsec=False)
    assert reg.if_setipsec(no_ipsec, True) == errno.EINVAL
    assert reg.if_setipsec(no_ipsec, False) == 0
    assert reg.if_setcapnv(no_ipsec, {"BOGUS": True}) == errno.EINVAL
    assert reg.if_setcap(no_nv, no_nv.if_capenable | ifn.IFCAP_LRO) == errno.EINVAL
    assert reg.if_setcap(no_nv, no_nv.if_capenable & ~ifn.IFCAP_TXCSUM) == 0
    assert not no_nv.if_capenable & ifn.IFCAP_TXCSUM
    assert ifn.if_capnv_to_capint({"IPSEC": True, "TXCSUM": False}, 0, 32) == 0x4
    with pytest.raises(KeyError):
        ifn.if_capnv_to_capint({"NOPE": True}, 0, 0)


# -------------------------------------------------------------------- vlan

def test_vlan_mirrors_parent_ipsec_capability(reg: IfnetRegistry) -> None:
    """vlan_capabilities: if_capabilities2 = parent's & IPSEC, if_capenable2
    = parent's enabled & ifv_capenable2 (-1) & IPSEC, proxy accel methods
    installed; recomputed when the parent toggles (VLAN_CAPABILITIES)."""
    p = make_nic(reg, driver=Driver())
    assert reg.if_clone_create("vlan100", vlan.VlanParams(100, "mce0"))[0] == 0
    v = reg["vlan100"]
    assert v.if_capabilities2 == 0x4 and v.ipsec_offload
    assert v.if_ipsec_accel_m is vlan.VLAN_IPSEC_ACCEL_METHODS
    assert not v.if_capabilities & ifn.IFCAP_NV
    assert reg.if_setipsec(p, False) == 0
    assert v.if_capabilities2 == 0x4 and not v.ipsec_offload
    assert reg.if_setipsec(p, True) == 0 and v.ipsec_offload
    plain = make_nic(reg, "em0", ipsec=False)
    assert reg.if_clone_create("em0.5")[0] == 0
    assert reg["em0.5"].if_capabilities2 == 0 and not reg["em0.5"].ipsec_offload
    assert plain.if_vlantrunk is not None


def test_vlan_proxy_passes_vlan_ifp_and_hwassist_goes_to_trunk(reg: IfnetRegistry) -> None:
    """VLAN_IPSEC_METHOD: the parent's method is called with the *vlan* ifp
    (drivers see vlan ifps, mlx5 resolves the trunk itself);
    vlan_if_ipsec_hwassist calls the trunk's method with the trunk's ifp."""
    drv = Driver()
    p = make_nic(reg, driver=drv)
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    v = reg["vlan7"]
    m = v.if_ipsec_accel_m
    assert m is not None
    assert m.if_sa_newkey(v, "sav", 3) == (0, "sa-priv")
    assert m.if_spdadd(v, "sp", None) == (0, "sp-priv")
    assert m.if_sa_cnt(v, "sav", 3, "sa-priv", "lt") == 0
    assert m.if_sa_deinstall(v, 3, "sa-priv") == 0
    assert m.if_spddel(v, "sp", "sp-priv") == 0
    assert m.if_hwassist(v, "sav", 3, "sa-priv") == drv.hwassist
    assert [(c, n) for c, n, _ in drv.calls] == [
        ("if_sa_newkey", "vlan7"), ("if_spdadd", "vlan7"), ("if_sa_cnt", "vlan7"),
        ("if_sa_deinstall", "vlan7"), ("if_spddel", "vlan7"), ("if_hwassist", "mce0")]
    assert drv.calls[0][2] == ("sav", 3)
    assert p.if_refcount == 2       # trunk's reference only; call refs released


def test_vlan_without_trunk_returns_enxio(reg: IfnetRegistry) -> None:
    """Parent departure unconfigures the vlan (vlan_ifdetach): RUNNING and
    the trunk go, but capabilities and the proxy table stay, so offload calls
    get ENXIO and hwassist 0 -- and the vlan ifp does not depart itself."""
    drv = Driver()
    p = make_nic(reg, driver=drv, up=True)
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    v = reg["vlan7"]
    departed: list[str] = []
    reg.ifnet_departure_event.register(lambda i: departed.append(i.if_xname))
    reg.if_detach(p)
    assert departed == ["mce0"]
    assert vlan.vlan_trunkdev(v) is None and not v.running and v.ipsec_offload
    m = v.if_ipsec_accel_m
    assert m is not None
    assert m.if_sa_newkey(v, "sav", 3) == (errno.ENXIO, None)
    assert m.if_spdadd(v, "sp", None) == (errno.ENXIO, None)
    assert m.if_sa_deinstall(v, 3, None) == errno.ENXIO
    assert m.if_spddel(v, "sp", None) == errno.ENXIO
    assert m.if_sa_cnt(v, "sav", 3, None, None) == errno.ENXIO
    assert m.if_hwassist(v, "sav", 3, None) == 0
    assert drv.calls == []
    reg.if_free(p)
    assert p.freed                  # the trunk's reference was dropped


def test_parent_rename_keeps_vlans(reg: IfnetRegistry) -> None:
    """vlan_ifdetach returns early for IFF_RENAMING."""
    make_nic(reg)
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    assert reg.if_rename(reg["mce0"], "lan0") == 0
    assert vlan.vlan_trunkdev(reg["vlan7"]) is reg["lan0"]


def test_vlan_cannot_toggle_ipsec_itself(reg: IfnetRegistry) -> None:
    """A vlan has no IFCAP_NV and vlan_ioctl does not handle SIOCSIFCAPNV:
    ``ifconfig vlanN -ipsec`` fails with EINVAL."""
    make_nic(reg)
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    err = io.StringIO()
    assert ifconfig(reg, ["vlan7", "-ipsec"], io.StringIO(), err) == 1
    assert err.getvalue() == "ifconfig: -ipsec: Invalid argument\n"
    assert reg["vlan7"].ipsec_offload


def test_vlan_config_rules(reg: IfnetRegistry) -> None:
    """vlan_config: VID 0 and 0xfff and >12 bits are EINVAL; a VID in use on
    the trunk EEXIST; a parent without BROADCAST|MULTICAST EPROTONOSUPPORT;
    another parent EBUSY; MTU fudged by 4 without IFCAP_VLAN_MTU."""
    make_nic(reg)
    make_nic(reg, "ix0", caps=NIC_CAPS & ~ifn.IFCAP_VLAN_MTU)
    p2p = Ifnet("tun0", flags=ifn.IFF_POINTOPOINT | ifn.IFF_MULTICAST)
    reg.if_attach(p2p)
    for vid in (0, 0xFFF, 0x1000):
        assert reg.if_clone_create("vlan1", vlan.VlanParams(vid, "mce0"))[0] == errno.EINVAL
    assert "vlan1" not in reg
    assert reg.if_clone_create("vlan1", vlan.VlanParams(5, "mce0"))[0] == 0
    assert reg.if_clone_create("vlan2", vlan.VlanParams(5, "mce0"))[0] == errno.EEXIST
    assert reg.if_clone_create("vlan2", vlan.VlanParams(5, "tun0"))[0] == errno.EPROTONOSUPPORT
    assert reg.if_clone_create("vlan2", vlan.VlanParams(5, "nope"))[0] == errno.ENXIO
    assert reg.if_clone_create("vlan3", vlan.VlanParams(6, "ix0"))[0] == 0
    assert reg["vlan1"].mtu == 1500 and reg["vlan3"].mtu == 1496
    v1 = reg["vlan1"]
    assert reg.ifioctl(v1, IfIoctl.SIOCSETVLAN, IfReq(vlan_tag=9, vlan_parent="ix0")) == errno.EBUSY
    assert reg.ifioctl(v1, IfIoctl.SIOCSETVLAN, IfReq(vlan_tag=9, vlan_parent="mce0")) == 0
    assert vlan.vlan_tag(v1) == 9
    assert reg.if_setmtu(v1, 1501) == errno.EINVAL and reg.if_setmtu(v1, 1400) == 0
    q = IfReq()
    assert reg.ifioctl(v1, IfIoctl.SIOCGETVLAN, q) == 0
    assert (q.vlan_parent, q.vlan_tag, q.vlan_proto) == ("mce0", 9, ifn.ETHERTYPE_VLAN)


def test_vlan_link_state_and_transmit(reg: IfnetRegistry) -> None:
    """vlan_link_state follows the parent; vlan_transmit sets ether_vtag and
    M_VLANTAG and hands the mbuf to the parent's if_transmit (ENETDOWN when
    the parent is not up and running)."""
    p = make_nic(reg)
    sent: list[Mbuf] = []
    p.if_transmit = lambda ifp, m: sent.append(m) or 0
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    v = reg["vlan7"]
    m = Mbuf(b"\x45" + bytes(19))
    assert vlan.vlan_transmit(v, m) == errno.ENETDOWN
    reg.if_setupdown(p, True)
    assert v.if_link_state == ifn.LINK_STATE_UP
    assert vlan.vlan_transmit(v, m) == 0
    assert sent == [m] and m.ether_vtag == 7 and m.m_flags & M_VLANTAG
    assert v.if_counters[ifn.IFCOUNTER_OPACKETS] == 1
    reg.if_link_state_change(p, ifn.LINK_STATE_DOWN)
    assert v.if_link_state == ifn.LINK_STATE_DOWN


def test_vlan_hwassist_follows_parent(reg: IfnetRegistry) -> None:
    """vlan_capabilities: hwassist from the parent's, filtered by what the
    vlan may use (TSO needs IFCAP_VLAN_HWTSO)."""
    make_nic(reg)
    reg.if_clone_create("vlan7", vlan.VlanParams(7, "mce0"))
    v = reg["vlan7"]
    assert v.if_hwassist == CSUM_IP_TCP | CSUM_IP_TSO
    assert v.if_capenable & ifn.IFCAP_TSO4


# ------------------------------------------------------------------ cloners

def test_cloners_create_and_destroy(reg: IfnetRegistry) -> None:
    """if_clone_create/destroy: wildcard "vlan" takes the lowest free unit,
    "<parent>.<vid>" subinterfaces, "lo"; EEXIST for an existing name,
    EINVAL for a name no cloner takes or destroying a non-cloned interface;
    vlan_clone_destroy refuses (EBUSY) a vlan that is itself a trunk."""
    make_nic(reg)
    assert reg.if_clone_create("vlan", vlan.VlanParams(10, "mce0")) == (0, "vlan0")
    assert reg.if_clone_create("vlan", vlan.VlanParams(11, "mce0")) == (0, "vlan1")
    assert reg.if_clone_create("vlan0")[0] == errno.EEXIST
    assert reg.if_clone_create("mce0.20") == (0, "mce0.20")
    assert vlan.vlan_tag(reg["mce0.20"]) == 20
    assert reg.if_clone_create("lo")[1] == "lo0"
    assert reg["lo0"].if_flags & ifn.IFF_LOOPBACK and reg["lo0"].mtu == 16384
    assert reg.if_clone_create("bogus0")[0] == errno.EINVAL
    assert reg.if_clone_destroy("mce0") == errno.EINVAL
    assert reg.if_clone_destroy("nope") == errno.ENXIO
    assert reg.if_clone_create("vlan0.30") == (0, "vlan0.30")     # QinQ on vlan0
    assert reg.if_clone_destroy("vlan0") == errno.EBUSY
    assert reg.if_clone_destroy("vlan0.30") == 0
    assert reg.if_clone_destroy("vlan0") == 0
    assert reg.if_clone_create("vlan", vlan.VlanParams(12, "mce0")) == (0, "vlan0")
    assert reg.if_clone_destroy("lo0") == 0


# ------------------------------------------------------------------ ifconfig

def run(reg: IfnetRegistry, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = ifconfig(reg, list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_ifconfig_status_format(reg: IfnetRegistry) -> None:
    """ifconfig_netlink.c status_nl + print_bits: "flags=%x<...> metric %d
    mtu %d", "\\toptions=%x<...>" (hex of the first word, names of both
    words), then ether and the vlan line."""
    make_nic(reg)
    assert run(reg, "mce0", "up") == (0, "", "")
    code, out, err = run(reg, "mce0")
    assert code == 0 and err == ""
    assert out == (
        "mce0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n"
        "\toptions=e019b<RXCSUM,TXCSUM,VLAN_MTU,VLAN_HWTAGGING,VLAN_HWCSUM,TSO4,NV,"
        "VLAN_HWTSO,LINKSTATE,IPSEC>\n"
        "\tether 02:aa:bb:cc:dd:00\n")
    assert run(reg, "mce0", "-ipsec") == (0, "", "")
    assert "IPSEC" not in run(reg, "mce0")[1]
    code, out, _ = run(reg, "vlan", "create", "vlan", "100", "vlandev", "mce0")
    assert (code, out) == (0, "vlan0\n")
    out = run(reg, "vlan0")[1]
    assert out.startswith("vlan0: flags=1008842<BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> "
                          "metric 0 mtu 1500\n")
    assert out.endswith("\tvlan: 100 vlanproto: 802.1q vlanpcp: 0 parent interface: mce0\n")
    assert run(reg, "-l") == (0, "mce0 vlan0\n", "")
    assert run(reg)[1].count("flags=") == 2


def test_ifconfig_commands_and_errors(reg: IfnetRegistry) -> None:
    """ifconfig keywords: up/down, mtu, name, ipsec/-ipsec, vlan/vlandev,
    -vlandev, destroy; errors follow Perror and ifvlan.c's messages."""
    make_nic(reg)
    assert run(reg, "mce0", "mtu", "9000", "up") == (0, "", "")
    assert reg["mce0"].mtu == 9000 and reg["mce0"].up
    assert run(reg, "mce0", "mtu", "100000") == (1, "", "ifconfig: SIOCSIFMTU: Invalid argument\n")
    assert run(reg, "nope0") == (1, "", "ifconfig: interface nope0 does not exist\n")
    assert run(reg, "vlan5", "create") == (0, "", "")
    assert run(reg, "vlan5", "vlan", "5")[2] == "ifconfig: both vlan and vlandev must be specified\n"
    assert run(reg, "vlan5", "vlan", "5", "vlandev", "mce0") == (0, "", "")
    assert vlan.vlan_trunkdev(reg["vlan5"]) is reg["mce0"]
    assert run(reg, "vlan5", "-vlandev") == (0, "", "")
    assert vlan.vlan_trunkdev(reg["vlan5"]) is None
    assert run(reg, "vlan6", "create", "vlan", "6")[2] == \
        "ifconfig: must specify a parent device for vlan create\n"
    assert run(reg, "vlan5", "create")[2] == "ifconfig: SIOCIFCREATE2: File exists\n"
    assert run(reg, "mce0", "name", "wan0") == (0, "", "")
    assert run(reg, "wan0", "-ipsec", "ipsec", "-txcsum") == (0, "", "")
    assert reg["wan0"].ipsec_offload and not reg["wan0"].if_capenable & ifn.IFCAP_TXCSUM
    assert run(reg, "wan0", "frobnicate")[0] == 1
    assert run(reg, "vlan5", "destroy") == (0, "", "")
    assert run(reg, "vlan5", "destroy")[2] == "ifconfig: SIOCIFDESTROY: no such interface\n"
    assert run(reg, "wan0", "down") == (0, "", "") and not reg["wan0"].up


def test_ifconfig_capabilities_without_nv_use_siocsifcap(reg: IfnetRegistry) -> None:
    """setifcap: an interface without IFCAP_NV gets SIOCSIFCAP (masked by
    what it supports); ipsec is only reachable through SIOCSIFCAPNV."""
    make_nic(reg, "em0", caps=ifn.IFCAP_HWCSUM | ifn.IFCAP_VLAN_MTU)
    assert run(reg, "em0", "-txcsum") == (0, "", "")
    assert reg["em0"].if_capenable == ifn.IFCAP_RXCSUM | ifn.IFCAP_VLAN_MTU
    assert run(reg, "em0", "lro") == (0, "", "")          # unsupported: masked away
    assert run(reg, "em0", "-ipsec")[2] == "ifconfig: -ipsec: Invalid argument\n"
