"""One vnet's interface list: ``V_ifnet`` and the parts of ``sys/net/if.c``
that work on it -- ``if_attach``/``if_detach``/``if_free``, the ifindex
table, ``ifunit``/``ifnet_byindex`` (+ ``_ref``), ``if_foreach``/
``if_foreach_sleep``, ``if_up``/``if_down``, ``if_link_state_change``,
``if_rename``, ``ifhwioctl`` -- plus the cloner list (``if_clone.c``) and
vlan(4)'s trunk bookkeeping (``vlan_config``/``vlan_unconfig``/
``vlan_trunk_capabilities``/``vlan_ifdetach`` of ``if_vlan.c``).

* :class:`IfnetRegistry` -- attach in order, detach, ``ifindex`` (lowest
  free), lookup by name and index, rename (IFF_RENAMING set while
  ``ifnet_departure_event`` and ``ifnet_arrival_event`` run, so listeners can
  tell a rename from a departure), ``if_up``/``if_down``, link state changes,
  cloners, the ioctl path (``ifhwioctl``), and
  :meth:`IfnetRegistry.if_foreach_sleep` (snapshot of matching interfaces in
  V_ifnet order with references held, match evaluated at snapshot time,
  callbacks run without the list lock, walk stops at the first non-zero
  return, references dropped).
* The capability path: ``SIOCSIFCAP`` (first word) and ``SIOCSIFCAPNV``
  (nvlist of names, both words; refused with EINVAL unless the interface has
  IFCAP_NV), validated against ``if_capabilities[2]`` and handed to the
  driver's ``if_ioctl``, which may intercept (mlx5: close the port, call
  ipsec_accel_on_ifdown when IPSEC goes off, toggle, reopen) and fall back to
  :func:`~ipsec_accel.ifnet.if_ioctl_default`.  After a successful change the
  registry runs ``vlan_trunk_capabilities`` (drivers call
  ``VLAN_CAPABILITIES(ifp)``).

Why a module of its own: the registry is the list and its operations, a
different concept from ``struct ifnet`` and its KPI (:mod:`ipsec_accel.ifnet`),
and it was ~440 lines of an oversized ``ifnet.py``.  :mod:`ipsec_accel.ifnet`
still re-exports :class:`IfnetRegistry` (loaded on first use, see the end of
that module), so ``from ipsec_accel.ifnet import IfnetRegistry`` keeps
working.
"""

from __future__ import annotations

import errno
import threading
from typing import Any, Callable, Iterator

from .if_clone import IfClone, _lo_clone_create, _lo_clone_destroy
from .if_vlan import (
    VLAN_IFFLAGS, IfVlan, VlanTrunk, _vlan_clone_create, _vlan_clone_destroy,
    _vlan_clone_match, vlan_capabilities,
)
from .ifnet import (
    ETHER_VLAN_ENCAP_LEN, ETHERMIN, ETHERMTU, ETHERTYPE_VLAN, EVL_VLID_MASK, IF_MAXMTU,
    IF_MINMTU, IFCAP_NV, IFCAP_VLAN_HWTAGGING, IFCAP_VLAN_MTU, IFF_CANTCHANGE,
    IFF_DRV_RUNNING, IFF_DYING, IFF_RENAMING, IFF_SIMPLEX, IFF_UP, IFNAMSIZ, IFNET_EVENT_DOWN,
    IFNET_EVENT_UP, IFT_ETHER, IFT_L2VLAN, LINK_STATE_UNKNOWN, EventHandlerList, IfIoctl,
    Ifnet, IfnetError, IfReq, _split_unit, if_capnv_to_capint,
)
from .unr import UnrAllocator

__all__ = ["IfnetRegistry"]


class IfnetRegistry:
    """One vnet's interfaces.  ``_lock`` is IFNET_WLOCK (list, names,
    indexes); ``vlan_lock`` is vlan(4)'s global sx.  Event handlers and
    driver callbacks always run with neither held."""

    def __init__(self, name: str = "vnet0", *, vlan: bool = True,
                 loopback: bool = True) -> None:
        self.name = name
        self._lock = threading.RLock()
        self.vlan_lock = threading.RLock()
        self._ifnet: list[Ifnet] = []              # V_ifnet, attach order
        self._byname: dict[str, Ifnet] = {}
        self._byindex: dict[int, Ifnet] = {}
        self._ifindex = UnrAllocator(1, 0xFFFF)
        self.cloners: dict[str, IfClone] = {}
        self.ifnet_arrival_event = EventHandlerList("ifnet_arrival_event")
        self.ifnet_departure_event = EventHandlerList("ifnet_departure_event")
        self.ifnet_link_event = EventHandlerList("ifnet_link_event")
        self.ifnet_event = EventHandlerList("ifnet_event")
        self.ifnet_capchange_event = EventHandlerList("ifnet_capchange_event")
        self.vlan_config_event = EventHandlerList("vlan_config")
        self.vlan_unconfig_event = EventHandlerList("vlan_unconfig")
        if vlan:
            # vlan(4) loads first: its departure handler runs before handlers
            # registered later (e.g. ipsec_offload's).
            self.ifnet_departure_event.register(self._vlan_ifdetach)
            self.if_clone_attach(IfClone("vlan", _vlan_clone_create, _vlan_clone_destroy,
                                         _vlan_clone_match, maxunit=0xFFFF))
        if loopback:
            self.if_clone_attach(IfClone("lo", _lo_clone_create, _lo_clone_destroy))

    # ------------------------------------------------------------ lifecycle

    def if_attach(self, ifp: Ifnet) -> None:
        """``if_attach``: index (lowest free), link on V_ifnet's tail,
        ``ifnet_arrival_event``."""
        with self._lock:
            if ifp.attached:
                raise IfnetError(errno.EEXIST, f"{ifp.if_xname} already attached")
            if ifp.freed or ifp.if_flags & IFF_DYING:
                raise IfnetError(errno.EINVAL, f"{ifp.if_xname} is being freed")
            if ifp.if_xname in self._byname:
                raise IfnetError(errno.EEXIST, f"interface {ifp.if_xname} already exists")
            if ifp.if_index == 0:
                idx = self._ifindex.alloc_unr()
                if idx < 0:
                    raise IfnetError(errno.ENOSPC, "out of interface indexes")
                ifp.if_index = idx
            self._byindex[ifp.if_index] = ifp
            self._ifnet.append(ifp)
            self._byname[ifp.if_xname] = ifp
            ifp.registry = self
            ifp.attached = True
        self.ifnet_arrival_event.invoke(ifp)

    def ether_ifattach(self, ifp: Ifnet, lladdr: bytes | None = None) -> None:
        """``ether_ifattach``: set the link-level address and attach."""
        if lladdr is not None:
            ifp.if_lladdr = lladdr
        elif ifp.if_lladdr is None:
            ifp.if_lladdr = bytes((0x02, 0, 0, 0, 0, 0))
        self.if_attach(ifp)

    def if_detach(self, ifp: Ifnet) -> None:
        """``if_detach``: unlink from V_ifnet (walks no longer see it),
        ``if_down``, then ``ifnet_departure_event``.  The index stays taken
        until :meth:`if_free`."""
        with self._lock:
            if not ifp.attached or self._byname.get(ifp.if_xname) is not ifp:
                raise IfnetError(errno.ENXIO, f"{ifp.if_xname} is not attached")
            self._ifnet.remove(ifp)
            del self._byname[ifp.if_xname]
            ifp.attached = False
        if ifp.if_flags & IFF_UP:
            self.if_down(ifp)
        self.ifnet_departure_event.invoke(ifp)

    def if_free(self, ifp: Ifnet) -> None:
        """``if_free``: mark DYING, release the index, drop if_alloc's
        reference (the struct lives on while others hold references)."""
        with self._lock:
            if ifp.attached:
                raise IfnetError(errno.EBUSY, f"if_free of attached {ifp.if_xname}")
            if ifp.if_flags & IFF_DYING:
                raise IfnetError(errno.EINVAL, f"double if_free of {ifp.if_xname}")
            ifp.if_flags |= IFF_DYING
            if self._byindex.get(ifp.if_index) is ifp:
                del self._byindex[ifp.if_index]
                self._ifindex.free_unr(ifp.if_index)
        ifp.if_rele()

    # --------------------------------------------------------------- lookup

    def ifunit(self, name: str) -> Ifnet | None:
        with self._lock:
            return self._byname.get(name)

    def ifunit_ref(self, name: str) -> Ifnet | None:
        with self._lock:
            ifp = self._byname.get(name)
            if ifp is not None and ifp.if_try_ref():
                return ifp
            return None

    def ifnet_byindex(self, idx: int) -> Ifnet | None:
        with self._lock:
            ifp = self._byindex.get(idx)
            return ifp if ifp is not None and ifp.attached else None

    def ifnet_byindex_ref(self, idx: int) -> Ifnet | None:
        with self._lock:
            ifp = self._byindex.get(idx)
            if ifp is not None and ifp.attached and ifp.if_try_ref():
                return ifp
            return None

    def __getitem__(self, name: str) -> Ifnet:
        ifp = self.ifunit(name)
        if ifp is None:
            raise KeyError(name)
        return ifp

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._byname

    def __iter__(self) -> Iterator[Ifnet]:
        with self._lock:
            return iter(list(self._ifnet))

    def __len__(self) -> int:
        return len(self._ifnet)

    def names(self) -> list[str]:
        with self._lock:
            return [i.if_xname for i in self._ifnet]

    def if_foreach(self, cb: Callable[[Ifnet], int]) -> int:
        """``if_foreach``: walk V_ifnet (a snapshot; no references, the
        callback must not sleep); stops at the first non-zero return."""
        for ifp in list(self):
            error = cb(ifp)
            if error:
                return error
        return 0

    def if_foreach_sleep(self, match: Callable[[Ifnet], bool] | None,
                         cb: Callable[[Ifnet], int]) -> int:
        """``if_foreach_sleep``: take a reference on every interface that
        matches *now*, in V_ifnet order, then call ``cb`` on each without the
        list lock (it may sleep, take locks, call drivers).  Stops at the
        first non-zero return, which is returned.  All references are
        released before returning."""
        with self._lock:
            picked = [ifp for ifp in self._ifnet
                      if (match is None or match(ifp)) and ifp.if_try_ref()]
        error = 0
        try:
            for ifp in picked:
                error = cb(ifp)
                if error:
                    break
        finally:
            for ifp in picked:
                ifp.if_rele()
        return error

    # ---------------------------------------------------------- state changes

    def if_up(self, ifp: Ifnet) -> None:
        """``if_up``: set IFF_UP, ``ifnet_event(IFNET_EVENT_UP)``."""
        ifp.if_flags |= IFF_UP
        self.ifnet_event.invoke(ifp, IFNET_EVENT_UP)

    def if_down(self, ifp: Ifnet) -> None:
        """``if_down``: clear IFF_UP, ``ifnet_event(IFNET_EVENT_DOWN)``.  (The
        offload layer is not told: drivers call ipsec_accel_on_ifdown from
        their stop path.)"""
        ifp.if_flags &= ~IFF_UP
        self.ifnet_event.invoke(ifp, IFNET_EVENT_DOWN)

    def if_link_state_change(self, ifp: Ifnet, link_state: int) -> None:
        """``if_link_state_change`` + ``do_link_state_change`` (synchronous
        here; FreeBSD runs the second half from a taskqueue): propagate to the
        vlans on this trunk, then ``ifnet_link_event``."""
        if ifp.if_link_state == link_state:
            return
        ifp.if_link_state = link_state
        trunk = ifp.if_vlantrunk
        if trunk is not None:
            with self.vlan_lock:
                vlans = [v.ifv_ifp for v in trunk.vlans.values()]
            for v in vlans:
                v.if_baudrate = ifp.if_baudrate
                self.if_link_state_change(v, link_state)
        self.ifnet_link_event.invoke(ifp, link_state)

    def if_rename(self, ifp: Ifnet, new_name: str) -> int:
        """``if_rename``: EINVAL for an empty or too long name, 0 if
        unchanged, EEXIST if taken.  IFF_RENAMING is set while the departure
        and arrival events run."""
        if not new_name or len(new_name) >= IFNAMSIZ:
            return errno.EINVAL
        if new_name == ifp.if_xname:
            return 0
        with self._lock:
            if new_name in self._byname:
                return errno.EEXIST
            if not ifp.attached:
                return errno.ENXIO
        ifp.if_flags |= IFF_RENAMING
        try:
            self.ifnet_departure_event.invoke(ifp)
            with self._lock:
                del self._byname[ifp.if_xname]
                ifp.if_xname = new_name
                ifp.if_dname, ifp.if_dunit = _split_unit(new_name)
                self._byname[new_name] = ifp
            self.ifnet_arrival_event.invoke(ifp)
        finally:
            ifp.if_flags &= ~IFF_RENAMING
        return 0

    # ------------------------------------------------------------ ioctl path

    def ifioctl(self, ifp: Ifnet | str, cmd: IfIoctl, req: IfReq) -> int:
        """``ifhwioctl`` for the modelled commands; returns an errno."""
        if isinstance(ifp, str):
            found = self.ifunit(ifp)
            if found is None:
                return errno.ENXIO
            ifp = found
        if cmd is IfIoctl.SIOCSIFFLAGS:
            return self._ioctl_flags(ifp, req)
        if cmd is IfIoctl.SIOCSIFMTU:
            if req.mtu < IF_MINMTU or req.mtu > IF_MAXMTU:
                return errno.EINVAL
            if ifp.if_ioctl is None:
                return errno.EOPNOTSUPP
            return ifp.if_ioctl(ifp, cmd, req)
        if cmd is IfIoctl.SIOCSIFCAP:
            if ifp.if_ioctl is None:
                return errno.EOPNOTSUPP
            if req.reqcap & ~ifp.if_capabilities:
                return errno.EINVAL
            return self._cap_change(ifp, cmd, req)
        if cmd is IfIoctl.SIOCSIFCAPNV:
            if ifp.if_ioctl is None:
                return errno.EOPNOTSUPP
            if not ifp.if_capabilities & IFCAP_NV:
                return errno.EINVAL
            nv = req.nvcap or {}
            try:
                req.reqcap = if_capnv_to_capint(nv, ifp.if_capenable, 0)
                req.reqcap2 = if_capnv_to_capint(nv, ifp.if_capenable2, 32)
            except KeyError:
                return errno.EINVAL
            if req.reqcap & ~ifp.if_capabilities or req.reqcap2 & ~ifp.if_capabilities2:
                return errno.EINVAL
            return self._cap_change(ifp, cmd, req)
        if cmd is IfIoctl.SIOCSIFNAME:
            return self.if_rename(ifp, req.name)
        if ifp.if_ioctl is None:
            return errno.EOPNOTSUPP
        return ifp.if_ioctl(ifp, cmd, req)

    def _ioctl_flags(self, ifp: Ifnet, req: IfReq) -> int:
        new = req.flags
        do_ifup = False
        if ifp.if_flags & IFF_UP and not new & IFF_UP:
            self.if_down(ifp)
        elif new & IFF_UP and not ifp.if_flags & IFF_UP:
            do_ifup = True
        ifp.if_flags = (ifp.if_flags & IFF_CANTCHANGE) | (new & ~IFF_CANTCHANGE)
        if ifp.if_ioctl is not None:
            ifp.if_ioctl(ifp, IfIoctl.SIOCSIFFLAGS, req)   # return ignored, as ifhwioctl
        if do_ifup:
            self.if_up(ifp)
        return 0

    def _cap_change(self, ifp: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
        assert ifp.if_ioctl is not None
        old, old2 = ifp.if_capenable, ifp.if_capenable2
        error = ifp.if_ioctl(ifp, cmd, req)
        if error:
            return error
        self.vlan_trunk_capabilities(ifp)      # drivers' VLAN_CAPABILITIES(ifp)
        if (old, old2) != (ifp.if_capenable, ifp.if_capenable2):
            self.ifnet_capchange_event.invoke(ifp, old, old2)
        return 0

    # Friendly wrappers over ifioctl ---------------------------------------

    def if_setupdown(self, ifp: Ifnet | str, up: bool) -> int:
        """``ifconfig X up|down``."""
        target = self.ifunit(ifp) if isinstance(ifp, str) else ifp
        if target is None:
            return errno.ENXIO
        flags = target.if_flags | IFF_UP if up else target.if_flags & ~IFF_UP
        return self.ifioctl(target, IfIoctl.SIOCSIFFLAGS, IfReq(flags=flags))

    def if_setmtu(self, ifp: Ifnet | str, mtu: int) -> int:
        return self.ifioctl(ifp, IfIoctl.SIOCSIFMTU, IfReq(mtu=mtu))

    def if_setcap(self, ifp: Ifnet | str, reqcap: int) -> int:
        """SIOCSIFCAP with a full first-word mask."""
        return self.ifioctl(ifp, IfIoctl.SIOCSIFCAP, IfReq(reqcap=reqcap))

    def if_setcapnv(self, ifp: Ifnet | str, nvcap: dict[str, bool]) -> int:
        """SIOCSIFCAPNV with capability names, e.g. ``{"IPSEC": False}``."""
        return self.ifioctl(ifp, IfIoctl.SIOCSIFCAPNV, IfReq(nvcap=dict(nvcap)))

    def if_setipsec(self, ifp: Ifnet | str, enable: bool) -> int:
        """``ifconfig X ipsec|-ipsec``."""
        return self.if_setcapnv(ifp, {"IPSEC": enable})

    # ------------------------------------------------------------- cloners

    def if_clone_attach(self, ifc: IfClone) -> None:
        self.cloners[ifc.name] = ifc

    def if_clone_create(self, name: str, params: Any = None) -> tuple[int, str]:
        """``if_clone_create``: returns (errno, created name)."""
        if self.ifunit(name) is not None:
            return errno.EEXIST, name
        for ifc in self.cloners.values():
            if ifc.match(self, name):
                error, ifp = ifc.create(self, ifc, name, params)
                return error, (ifp.if_xname if ifp is not None else name)
        return errno.EINVAL, name

    def if_clone_destroy(self, name: str) -> int:
        ifp = self.ifunit(name)
        if ifp is None:
            return errno.ENXIO
        ifc = ifp.if_clone
        if ifc is None:
            return errno.EINVAL
        return ifc.destroy(self, ifc, ifp)

    # ---------------------------------------------------------------- vlan

    def vlan_config(self, ifv: IfVlan, p: Ifnet, vid: int,
                    proto: int = ETHERTYPE_VLAN) -> int:
        """``vlan_config``: attach ``ifv`` to parent ``p`` with ``vid``."""
        if (p.if_type not in (IFT_ETHER, IFT_L2VLAN)
                and not p.if_capenable & IFCAP_VLAN_HWTAGGING):
            return errno.EPROTONOSUPPORT
        if p.if_flags & VLAN_IFFLAGS != VLAN_IFFLAGS:
            return errno.EPROTONOSUPPORT
        if vid == 0 or vid == 0xFFF or vid & ~EVL_VLID_MASK:
            return errno.EINVAL
        ifp = ifv.ifv_ifp
        trunk: VlanTrunk | None
        with self.vlan_lock:
            if ifv.ifv_trunk is not None:
                trunk = ifv.ifv_trunk
                if trunk.parent is not p:
                    return errno.EBUSY
                ifv.ifv_proto = proto
                if ifv.ifv_vid != vid:
                    if vid in trunk.vlans:
                        return errno.EEXIST
                    del trunk.vlans[ifv.ifv_vid]
                    ifv.ifv_vid = vid
                    trunk.vlans[vid] = ifv
            else:
                trunk = p.if_vlantrunk
                if trunk is None:
                    trunk = VlanTrunk(p)
                    p.if_ref()
                    p.if_vlantrunk = trunk
                if vid in trunk.vlans:
                    if not trunk.vlans:
                        p.if_vlantrunk = None
                        p.if_rele()
                    return errno.EEXIST
                ifv.ifv_vid = vid
                ifv.ifv_pcp = 0
                trunk.vlans[vid] = ifv
                ifv.ifv_proto = proto
                ifv.ifv_encaplen = ETHER_VLAN_ENCAP_LEN
                ifv.ifv_mintu = ETHERMIN
                ifv.ifv_capenable = -1
                ifv.ifv_capenable2 = -1
                ifv.ifv_mtufudge = 0 if p.if_capenable & IFCAP_VLAN_MTU else ifv.ifv_encaplen
                ifv.ifv_trunk = trunk
                ifp.if_mtu = p.if_mtu - ifv.ifv_mtufudge
                ifp.if_baudrate = p.if_baudrate
                ifp.if_flags = (ifp.if_flags & ~IFF_SIMPLEX) | (p.if_flags & IFF_SIMPLEX)
                ifp.if_link_state = p.if_link_state
                vlan_capabilities(ifv)
                if p.if_lladdr is not None:
                    ifp.if_lladdr = p.if_lladdr
                ifp.if_drv_flags |= IFF_DRV_RUNNING
        self.vlan_config_event.invoke(p, vid)
        return 0

    def vlan_unconfig(self, ifp: Ifnet, departing: bool = False) -> None:
        """``vlan_unconfig_locked``: detach from the parent.  Capabilities and
        the proxy accel table stay (FreeBSD does not clear them)."""
        ifv: IfVlan = ifp.if_softc
        parent: Ifnet | None = None
        with self.vlan_lock:
            trunk = ifv.ifv_trunk
            if trunk is not None:
                parent = trunk.parent
                trunk.vlans.pop(ifv.ifv_vid, None)
                ifv.ifv_trunk = None
                if not trunk.vlans:
                    parent.if_vlantrunk = None
                    parent.if_rele()
            ifp.if_mtu = ETHERMTU
            ifp.if_link_state = LINK_STATE_UNKNOWN
            ifp.if_drv_flags &= ~IFF_DRV_RUNNING
        if parent is not None:
            self.vlan_unconfig_event.invoke(parent, ifv.ifv_vid)

    def vlan_trunk_capabilities(self, ifp: Ifnet) -> None:
        """``vlan_trunk_capabilities``: recompute every vlan on ``ifp``."""
        with self.vlan_lock:
            trunk = ifp.if_vlantrunk
            if trunk is None:
                return
            for ifv in list(trunk.vlans.values()):
                vlan_capabilities(ifv)

    def _vlan_ifdetach(self, ifp: Ifnet) -> None:
        # vlan_ifdetach: a departing trunk takes its vlans down with it; a
        # rename (IFF_RENAMING) is not a departure.
        if ifp.if_flags & IFF_RENAMING:
            return
        trunk = ifp.if_vlantrunk
        if trunk is None:
            return
        with self.vlan_lock:
            vlans = [v.ifv_ifp for v in trunk.vlans.values()]
        for v in vlans:
            self.vlan_unconfig(v, departing=True)

    def __repr__(self) -> str:
        return f"<IfnetRegistry {self.name} {self.names()}>"
