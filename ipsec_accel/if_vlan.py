"""vlan(4): ``sys/net/if_vlan.c`` as far as IPsec offload needs it.

A vlan interface mirrors its parent's IPSEC capability (``vlan_capabilities``)
and installs proxy ``if_ipsec_accel_methods`` that call the parent's methods
passing the *vlan* ifp, so drivers see vlan ifps (freebsd_ipsec_offload.md
§4); with no trunk the proxies return ENXIO; ``if_hwassist`` goes to the
trunk.  The cloner (``ifconfig vlanN create vlan V vlandev P``), the trunk
bookkeeping and vlan_transmit/vlan_ioctl are here; the registry in
:mod:`ipsec_accel.ifnet` calls them.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from .if_clone import IfClone, _name2unit, _prefix_unit_match
from .ifnet import (
    ETHER_VLAN_ENCAP_LEN, ETHERMIN, ETHERTYPE_VLAN, IF_DUNIT_NONE, IFCAP2_IPSEC_OFFLOAD_MASK,
    IFCAP_HWCSUM, IFCAP_HWCSUM_IPV6, IFCAP_LINKSTATE, IFCAP_LRO, IFCAP_MEXTPG, IFCAP_TOE,
    IFCAP_TSO, IFCAP_TXCSUM, IFCAP_TXCSUM_IPV6, IFCAP_TXRTLMT, IFCAP_TXTLS, IFCAP_TXTLS_RTLMT,
    IFCAP_VLAN_HWCSUM, IFCAP_VLAN_HWTAGGING, IFCAP_VLAN_HWTSO, IFCOUNTER_OBYTES,
    IFCOUNTER_OERRORS, IFCOUNTER_OPACKETS, IFF_BROADCAST, IFF_DRV_RUNNING, IFF_MULTICAST,
    IFF_UP, IFT_L2VLAN, IfIoctl, IfIpsecAccelMethods, IfReq, Ifnet,
)
from .mbuf import (
    CSUM_IP, CSUM_SCTP, CSUM_SCTP_IPV6, CSUM_TCP, CSUM_TCP_IPV6, CSUM_TSO, CSUM_UDP,
    CSUM_UDP_IPV6, M_VLANTAG, Mbuf,
)

if TYPE_CHECKING:
    # Annotations only: ifnet_registry imports this module.
    from .ifnet_registry import IfnetRegistry

VLAN_IFFLAGS = IFF_BROADCAST | IFF_MULTICAST


class VlanTrunk:
    """``struct ifvlantrunk``: the vlans hanging off one parent."""

    __slots__ = ("parent", "vlans")

    def __init__(self, parent: Ifnet) -> None:
        self.parent = parent
        self.vlans: dict[int, IfVlan] = {}


class IfVlan:
    """``struct ifvlan`` (the vlan ifnet's softc)."""

    __slots__ = ("ifv_ifp", "ifv_trunk", "ifv_vid", "ifv_proto", "ifv_pcp", "ifv_capenable",
                 "ifv_capenable2", "ifv_mtufudge", "ifv_mintu", "ifv_encaplen", "unit")

    def __init__(self, ifp: Ifnet, unit: int) -> None:
        self.ifv_ifp = ifp
        self.ifv_trunk: VlanTrunk | None = None
        self.ifv_vid = 0
        self.ifv_proto = ETHERTYPE_VLAN
        self.ifv_pcp = 0
        self.ifv_capenable = -1
        self.ifv_capenable2 = -1
        self.ifv_mtufudge = 0
        self.ifv_mintu = ETHERMIN
        self.ifv_encaplen = ETHER_VLAN_ENCAP_LEN
        self.unit = unit


class VlanParams(NamedTuple):
    """``struct vlanreq`` for a clone request."""

    tag: int
    parent: str
    proto: int = ETHERTYPE_VLAN


def vlan_trunkdev(ifp: Ifnet) -> Ifnet | None:
    """``vlan_trunkdev``: the parent of a configured vlan, else None."""
    if ifp.if_type != IFT_L2VLAN:
        return None
    ifv: IfVlan | None = ifp.if_softc       # a vlan ifnet's softc (vlan_clone_create)
    if ifv is None or ifv.ifv_trunk is None:
        return None
    return ifv.ifv_trunk.parent


def vlan_tag(ifp: Ifnet) -> int | None:
    """``vlan_tag``: the VID of a vlan ifnet."""
    if ifp.if_type != IFT_L2VLAN:
        return None
    ifv: IfVlan = ifp.if_softc              # a vlan ifnet's softc (vlan_clone_create)
    return ifv.ifv_vid


def _vlan_parent_ref(ifp: Ifnet) -> Ifnet | None:
    # The VLAN_SLOCK section of VLAN_IPSEC_METHOD: find the parent and take a
    # reference.  The model drops the vlan lock before calling the driver
    # (FreeBSD holds the sx shared across the call).
    reg = ifp.registry
    lock = reg.vlan_lock if reg is not None else None
    if lock is not None:
        lock.acquire()
    try:
        p = vlan_trunkdev(ifp)
        if p is not None:
            p.if_ref()
        return p
    finally:
        if lock is not None:
            lock.release()


def _vlan_ipsec_method(name: str, enxio: Any) -> Callable[..., Any]:
    """FreeBSD's VLAN_IPSEC_METHOD macro: the vlan's entry for method
    ``name`` calls the parent driver's, with the *vlan* ifp, holding a
    reference on the parent; ``enxio`` is the answer when there is none."""
    def method(ifp: Ifnet, *args: Any) -> Any:
        p = _vlan_parent_ref(ifp)
        if p is None:
            return enxio
        try:
            return getattr(p.if_ipsec_accel_m, name)(ifp, *args)
        finally:
            p.if_rele()
    method.__name__ = method.__qualname__ = f"_vlan_{name}"
    return method


_vlan_if_spdadd = _vlan_ipsec_method("if_spdadd", (errno.ENXIO, None))
_vlan_if_spddel = _vlan_ipsec_method("if_spddel", errno.ENXIO)
_vlan_if_sa_newkey = _vlan_ipsec_method("if_sa_newkey", (errno.ENXIO, None))
_vlan_if_sa_deinstall = _vlan_ipsec_method("if_sa_deinstall", errno.ENXIO)
_vlan_if_sa_cnt = _vlan_ipsec_method("if_sa_cnt", errno.ENXIO)


def _vlan_if_hwassist(ifp: Ifnet, sav: Any, drv_spi: int, priv: Any) -> int:
    # Not VLAN_IPSEC_METHOD: the trunk's method with the *trunk's* ifp.
    trunk = vlan_trunkdev(ifp)
    if trunk is None:
        return 0
    return trunk.if_ipsec_accel_m.if_hwassist(trunk, sav, drv_spi, priv)  # type: ignore[union-attr,misc]


#: ``vlan_if_ipsec_accel_methods``: the table every configured vlan gets.
VLAN_IPSEC_ACCEL_METHODS = IfIpsecAccelMethods(
    if_spdadd=_vlan_if_spdadd, if_spddel=_vlan_if_spddel, if_sa_newkey=_vlan_if_sa_newkey,
    if_sa_deinstall=_vlan_if_sa_deinstall, if_sa_cnt=_vlan_if_sa_cnt,
    if_hwassist=_vlan_if_hwassist)


def vlan_capabilities(ifv: IfVlan) -> None:
    """``vlan_capabilities``: derive the vlan's capabilities, enabled set and
    hwassist from its parent (vlan lock held)."""
    assert ifv.ifv_trunk is not None
    p = ifv.ifv_trunk.parent
    ifp = ifv.ifv_ifp
    mena = p.if_capenable & ifv.ifv_capenable
    mena2 = p.if_capenable2 & ifv.ifv_capenable2
    cap = ena = hwa = 0
    if p.if_capabilities & IFCAP_VLAN_HWCSUM:
        cap |= p.if_capabilities & (IFCAP_HWCSUM | IFCAP_HWCSUM_IPV6)
    if p.if_capenable & IFCAP_VLAN_HWCSUM and p.if_capenable & IFCAP_VLAN_HWTAGGING:
        ena |= mena & (IFCAP_HWCSUM | IFCAP_HWCSUM_IPV6)
        if ena & IFCAP_TXCSUM:
            hwa |= p.if_hwassist & (CSUM_IP | CSUM_TCP | CSUM_UDP | CSUM_SCTP)
        if ena & IFCAP_TXCSUM_IPV6:
            hwa |= p.if_hwassist & (CSUM_TCP_IPV6 | CSUM_UDP_IPV6 | CSUM_SCTP_IPV6)
    if p.if_capabilities & IFCAP_VLAN_HWTSO:
        cap |= p.if_capabilities & IFCAP_TSO
    if p.if_capenable & IFCAP_VLAN_HWTSO:
        ena |= mena & IFCAP_TSO
        if ena & IFCAP_TSO:
            hwa |= p.if_hwassist & CSUM_TSO
    if p.if_capabilities & IFCAP_VLAN_HWCSUM:
        cap |= p.if_capabilities & IFCAP_LRO
    if p.if_capenable & IFCAP_VLAN_HWCSUM:
        ena |= mena & IFCAP_LRO
    if p.if_capabilities & IFCAP_TOE:
        cap |= p.if_capabilities & IFCAP_TOE
    if p.if_capenable & IFCAP_TOE:
        ena |= mena & IFCAP_TOE
    cap |= p.if_capabilities & IFCAP_LINKSTATE
    ena |= mena & IFCAP_LINKSTATE
    cap |= p.if_capabilities & IFCAP_TXRTLMT
    ena |= mena & IFCAP_TXRTLMT
    cap |= p.if_capabilities & IFCAP_MEXTPG
    ena |= mena & IFCAP_MEXTPG
    if p.if_capabilities & (IFCAP_TXTLS | IFCAP_TXTLS_RTLMT):
        cap |= p.if_capabilities & (IFCAP_TXTLS | IFCAP_TXTLS_RTLMT)
    if p.if_capenable & (IFCAP_TXTLS | IFCAP_TXTLS_RTLMT):
        ena |= mena & (IFCAP_TXTLS | IFCAP_TXTLS_RTLMT)
    ifp.if_capabilities = cap
    ifp.if_capenable = ena
    ifp.if_hwassist = hwa
    # IPSEC_OFFLOAD: mirror the parent's bit and install the proxy table.
    ifp.if_capabilities2 = p.if_capabilities2 & IFCAP2_IPSEC_OFFLOAD_MASK
    ifp.if_capenable2 = mena2 & IFCAP2_IPSEC_OFFLOAD_MASK
    ifp.if_ipsec_accel_m = VLAN_IPSEC_ACCEL_METHODS


def vlan_transmit(ifp: Ifnet, m: Mbuf) -> int:
    """``vlan_transmit``: hand the packet to the parent with the tag set."""
    ifv: IfVlan = ifp.if_softc
    trunk = ifv.ifv_trunk
    if trunk is None:
        ifp.if_inc_counter(IFCOUNTER_OERRORS, 1)
        return errno.ENETDOWN
    p = trunk.parent
    if not (p.if_flags & IFF_UP and p.if_drv_flags & IFF_DRV_RUNNING) or p.if_transmit is None:
        ifp.if_inc_counter(IFCOUNTER_OERRORS, 1)
        return errno.ENETDOWN
    length = m.len
    m.ether_vtag = ifv.ifv_vid | (ifv.ifv_pcp << 13)
    m.m_flags |= M_VLANTAG
    error = p.if_transmit(p, m)
    if error == 0:
        ifp.if_inc_counter(IFCOUNTER_OPACKETS, 1)
        ifp.if_inc_counter(IFCOUNTER_OBYTES, length)
    else:
        ifp.if_inc_counter(IFCOUNTER_OERRORS, 1)
    return error


def vlan_ioctl(ifp: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
    """``vlan_ioctl`` for the modelled commands."""
    reg = ifp.registry
    assert reg is not None
    ifv: IfVlan = ifp.if_softc
    if cmd is IfIoctl.SIOCSIFFLAGS:
        return 0
    if cmd is IfIoctl.SIOCSIFMTU:
        with reg.vlan_lock:
            trunk = ifv.ifv_trunk
            if trunk is None:
                return errno.EINVAL
            if (req.mtu > trunk.parent.if_mtu - ifv.ifv_mtufudge
                    or req.mtu < ifv.ifv_mintu - ifv.ifv_mtufudge):
                return errno.EINVAL
            ifp.if_mtu = req.mtu
            return 0
    if cmd is IfIoctl.SIOCSETVLAN:
        if not req.vlan_parent:
            reg.vlan_unconfig(ifp)
            return 0
        p = reg.ifunit_ref(req.vlan_parent)
        if p is None:
            return errno.ENOENT
        try:
            return reg.vlan_config(ifv, p, req.vlan_tag, req.vlan_proto or ETHERTYPE_VLAN)
        finally:
            p.if_rele()
    if cmd is IfIoctl.SIOCGETVLAN:
        with reg.vlan_lock:
            if ifv.ifv_trunk is not None:
                req.vlan_parent = ifv.ifv_trunk.parent.if_xname
                req.vlan_tag = ifv.ifv_vid
                req.vlan_proto = ifv.ifv_proto
            else:
                req.vlan_parent, req.vlan_tag, req.vlan_proto = "", 0, 0
        return 0
    if cmd is IfIoctl.SIOCSIFCAP:
        with reg.vlan_lock:
            ifv.ifv_capenable = req.reqcap
            if ifv.ifv_trunk is not None:
                vlan_capabilities(ifv)
        return 0
    return errno.EINVAL      # includes SIOCSIFCAPNV: vlan(4) does not handle it


def _vlan_clone_match(reg: IfnetRegistry, name: str) -> bool:
    if _ethervid(reg, name) is not None:
        return True
    return _prefix_unit_match("vlan", name)


def _ethervid(reg: IfnetRegistry, name: str) -> tuple[Ifnet, int] | None:
    """``vlan_clone_match_ethervid``: ``<parent>.<vid>``."""
    head, dot, tail = name.rpartition(".")
    if not dot or not tail.isdigit():
        return None
    p = reg.ifunit(head)
    if p is None:
        return None
    return p, int(tail)


def _vlan_clone_create(reg: IfnetRegistry, ifc: IfClone, name: str,
                       params: Any) -> tuple[int, Ifnet | None]:
    vid = 0
    proto = ETHERTYPE_VLAN
    p: Ifnet | None = None
    if params is not None:
        vp = params if isinstance(params, VlanParams) else VlanParams(*params)
        vid, proto = vp.tag, vp.proto or ETHERTYPE_VLAN
        p = reg.ifunit(vp.parent)
        if p is None:
            return errno.ENXIO, None
    subinterface = False
    if _prefix_unit_match("vlan", name):
        unit = _name2unit(name, "vlan")
    else:
        ev = _ethervid(reg, name)
        if ev is None:
            return errno.ENXIO, None
        if p is not None and ev[0] is not p:
            return errno.EINVAL, None
        p = ev[0]
        if params is None:
            vid = ev[1]
        subinterface = True
        unit = IF_DUNIT_NONE
    if not subinterface:
        err, unit = ifc.alloc_unit(unit)
        if err:
            return err, None
        if name == "vlan":
            name = f"vlan{unit}"
    ifp = Ifnet(name, type=IFT_L2VLAN, flags=VLAN_IFFLAGS, lladdr=bytes(6))
    ifv = IfVlan(ifp, unit)
    ifp.if_softc = ifv
    ifp.if_dname = "vlan"
    ifp.if_dunit = unit
    ifp.if_ioctl = vlan_ioctl
    ifp.if_transmit = vlan_transmit
    ifp.if_clone = ifc
    reg.if_attach(ifp)
    if p is not None:
        error = reg.vlan_config(ifv, p, vid, proto)
        if error:
            reg.if_detach(ifp)
            reg.vlan_unconfig(ifp)
            reg.if_free(ifp)
            if not subinterface:
                ifc.free_unit(unit)
            return error, None
    return 0, ifp


def _vlan_clone_destroy(reg: IfnetRegistry, ifc: IfClone, ifp: Ifnet) -> int:
    if ifp.if_vlantrunk is not None:
        return errno.EBUSY           # it is itself a trunk for other vlans
    ifv: IfVlan = ifp.if_softc
    reg.if_detach(ifp)
    reg.vlan_unconfig(ifp)
    reg.if_free(ifp)
    ifc.free_unit(ifv.unit)
    return 0


__all__ = [
    "VLAN_IFFLAGS", "VLAN_IPSEC_ACCEL_METHODS", "VlanTrunk", "IfVlan", "VlanParams",
    "vlan_trunkdev", "vlan_tag",
    "vlan_capabilities", "vlan_transmit", "vlan_ioctl",
]
