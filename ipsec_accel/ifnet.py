"""Network interfaces: ``struct ifnet`` and its KPI (``sys/net/if.c``,
``if_var.h``, ``if_private.h``, ``if.h``), and the entry point to the modules
around it.

Split by concept (each module says what it models):

* this module -- :class:`Ifnet`, the constants (IFF_*, IFCAP*, IFCOUNTER_*,
  link states, events), the ``if_var.h`` accessors, event handler lists, the
  ioctl request and :func:`if_ioctl_default`;
* :mod:`ipsec_accel.ifnet_registry` -- :class:`IfnetRegistry`, one vnet's
  ``V_ifnet`` with if.c's list operations and ``ifhwioctl``;
* :mod:`ipsec_accel.if_clone` -- :class:`IfClone` (``if_clone.c``) and the
  loopback cloner;
* :mod:`ipsec_accel.if_vlan` -- vlan(4) (``if_vlan.c``);
* :mod:`ipsec_accel.ifconfig` -- the bits of ``sbin/ifconfig`` (ifconfig.c,
  ifconfig_netlink.c, ifvlan.c) the offload model needs.

This module still exports :class:`IfClone` and :class:`IfnetRegistry` (its
``__all__`` is what it always was); they are loaded on first use, see the
end of the module for why.

Pieces and the FreeBSD rules they keep:

* :class:`Ifnet` -- ``struct ifnet``: name/unit/index, ``if_flags`` and
  ``if_drv_flags`` (IFF_RUNNING is a driver flag), ``if_capabilities[2]`` /
  ``if_capenable[2]`` with ``IFCAP2_IPSEC_OFFLOAD`` = bit 2 of the second word
  (mask 0x4, capability name "IPSEC"), ``if_hwassist``, ``if_mtu``, link
  state, refcount (``if_ref``/``if_rele``/``if_try_ref``), and
  ``if_ipsec_accel_m``, the driver's :class:`IfIpsecAccelMethods` table set by
  :func:`if_setipsec_accel_methods` (a plain store; the offload layer only
  looks at it when the capability bit is enabled and never NULL-checks it).
* :class:`IfnetRegistry` (:mod:`ipsec_accel.ifnet_registry`) -- one
  vnet's ``V_ifnet``: attach, detach, ifindex, lookup, rename, up/down, link
  state, cloners, the ioctl path and ``if_foreach_sleep``.
* Event handler lists (:class:`EventHandlerList`, EVENTHANDLER(9)):
  ``ifnet_arrival_event``, ``ifnet_departure_event``, ``ifnet_link_event``,
  ``ifnet_event`` (IFNET_EVENT_UP/DOWN), ``vlan_config``/``vlan_unconfig``
  and a model-only ``ifnet_capchange_event`` (FreeBSD has none; it lets the
  opt-in "re-offer on enable" extension hear capability toggles).
* The capability path: ``SIOCSIFCAP`` and ``SIOCSIFCAPNV`` are validated by
  the registry's ``ifhwioctl`` (:mod:`ipsec_accel.ifnet_registry`, which
  spells out the rules) and handed to the driver's ``if_ioctl``, which may
  intercept and fall back to :func:`if_ioctl_default`;
  :func:`if_capnv_to_capint` turns capability names into bits.
* vlan(4): a vlan mirrors its parent's IPSEC capability
  (``if_capabilities2 = parent's & IPSEC``, ``if_capenable2 = parent's &
  ifv_capenable2 & IPSEC`` where ``ifv_capenable2`` stays -1) and installs
  proxy accel methods that call the *parent's* methods passing the **vlan**
  ifp (ENXIO without a trunk); ``if_hwassist`` goes to the trunk with the
  trunk's ifp.  Unconfiguring a vlan (its parent departing, ``-vlandev``)
  clears RUNNING and the trunk but leaves the vlan's capabilities and proxy
  table in place, as FreeBSD does -- so offload calls then get ENXIO.  A vlan
  has no IFCAP_NV, so ``ifconfig vlanN -ipsec`` fails with EINVAL.
* :func:`ipsec_accel.ifconfig.ifconfig` -- ``ifconfig(registry, argv)``: ``create``/``destroy``,
  ``up``/``down``, ``mtu N``, ``name X``, ``ipsec``/``-ipsec`` and other
  capability keywords, ``vlan N``/``vlandev X``/``-vlandev``, ``-a``, ``-l``;
  status printed as FreeBSD 14's netlink ifconfig prints the fields it models
  (``flags=...<...> metric 0 mtu N``, ``options=...<...IPSEC>``, ``ether``,
  the vlan line).

Deliberate departures (all small, all noted in place): link-state changes
are delivered synchronously (FreeBSD defers them to a taskqueue); the vlan
proxy does not hold the vlan sx lock across the parent driver's callback;
event-handler exceptions are re-raised after every handler ran (a kernel
would panic); ifconfig error texts follow ``Perror`` but are not
byte-checked against FreeBSD.
"""

from __future__ import annotations

import enum
import errno
import threading
from typing import TYPE_CHECKING, Any, Callable

from .mbuf import Mbuf

# ==========================================================================
# Constants

IFNAMSIZ = 16
IF_MAXUNIT = 0x7FFF
IF_DUNIT_NONE = -1
IF_MINMTU = 72
IF_MAXMTU = 65535
ETHERMTU = 1500
ETHERMIN = 46
ETHER_VLAN_ENCAP_LEN = 4
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_QINQ = 0x88A8
EVL_VLID_MASK = 0x0FFF

IFT_ETHER = 0x6
IFT_LOOP = 0x18
IFT_L2VLAN = 0x87

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_DEBUG = 0x4
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_NEEDSEPOCH = 0x20
IFF_DRV_RUNNING = 0x40
IFF_RUNNING = IFF_DRV_RUNNING
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_DRV_OACTIVE = 0x400
IFF_SIMPLEX = 0x800
IFF_LINK0 = 0x1000
IFF_LINK1 = 0x2000
IFF_LINK2 = 0x4000
IFF_MULTICAST = 0x8000
IFF_CANTCONFIG = 0x10000
IFF_PPROMISC = 0x20000
IFF_MONITOR = 0x40000
IFF_STATICARP = 0x80000
IFF_STICKYARP = 0x100000
IFF_DYING = 0x200000
IFF_RENAMING = 0x400000
IFF_PALLMULTI = 0x800000
IFF_NETLINK_1 = 0x1000000
IFF_LOWER_UP = IFF_NETLINK_1     # netlink reports link-up here
IFF_CANTCHANGE = (IFF_BROADCAST | IFF_POINTOPOINT | IFF_DRV_RUNNING | IFF_DRV_OACTIVE
                  | IFF_SIMPLEX | IFF_MULTICAST | IFF_ALLMULTI | IFF_PROMISC | IFF_DYING
                  | IFF_CANTCONFIG | IFF_NEEDSEPOCH)

#: ifconfig_netlink.c IFFBITS, index = bit number.
IFF_NAMES = ("UP", "BROADCAST", "DEBUG", "LOOPBACK", "POINTOPOINT", "NEEDSEPOCH", "RUNNING",
             "NOARP", "PROMISC", "ALLMULTI", "DRV_OACTIVE", "SIMPLEX", "LINK0", "LINK1",
             "LINK2", "MULTICAST", "CANTCONFIG", "PPROMISC", "MONITOR", "STATICARP",
             "STICKYARP", "DYING", "RENAMING", "PALLMULTI", "LOWER_UP")

LINK_STATE_UNKNOWN = 0
LINK_STATE_DOWN = 1
LINK_STATE_UP = 2

IFNET_EVENT_UP = 0
IFNET_EVENT_DOWN = 1
IFNET_EVENT_PCP = 2
IFNET_EVENT_UPDATE_BAUDRATE = 3

# Capability bit indexes (IFCAP_B_*) and names (index = bit; 32.. is word 2).
IFCAP_NAMES = ("RXCSUM", "TXCSUM", "NETCONS", "VLAN_MTU", "VLAN_HWTAGGING", "JUMBO_MTU",
               "POLLING", "VLAN_HWCSUM", "TSO4", "TSO6", "LRO", "WOL_UCAST", "WOL_MCAST",
               "WOL_MAGIC", "TOE4", "TOE6", "VLAN_HWFILTER", "NV", "VLAN_HWTSO", "LINKSTATE",
               "NETMAP", "RXCSUM_IPV6", "TXCSUM_IPV6", "HWSTATS", "TXRTLMT", "HWRXTSTMP",
               "MEXTPG", "TXTLS4", "TXTLS6", "VXLAN_HWCSUM", "VXLAN_HWTSO", "TXTLS_RTLMT",
               "RXTLS4", "RXTLS6", "IPSEC")
IFCAP_B_IPSEC_OFFLOAD = 34


def IFCAP_BIT(x: int) -> int:
    return 1 << x


def IFCAP2_BIT(x: int) -> int:
    return 1 << x


IFCAP_RXCSUM = 1 << 0
IFCAP_TXCSUM = 1 << 1
IFCAP_NETCONS = 1 << 2
IFCAP_VLAN_MTU = 1 << 3
IFCAP_VLAN_HWTAGGING = 1 << 4
IFCAP_JUMBO_MTU = 1 << 5
IFCAP_POLLING = 1 << 6
IFCAP_VLAN_HWCSUM = 1 << 7
IFCAP_TSO4 = 1 << 8
IFCAP_TSO6 = 1 << 9
IFCAP_LRO = 1 << 10
IFCAP_WOL_UCAST = 1 << 11
IFCAP_WOL_MCAST = 1 << 12
IFCAP_WOL_MAGIC = 1 << 13
IFCAP_TOE4 = 1 << 14
IFCAP_TOE6 = 1 << 15
IFCAP_VLAN_HWFILTER = 1 << 16
IFCAP_NV = 1 << 17
IFCAP_VLAN_HWTSO = 1 << 18
IFCAP_LINKSTATE = 1 << 19
IFCAP_NETMAP = 1 << 20
IFCAP_RXCSUM_IPV6 = 1 << 21
IFCAP_TXCSUM_IPV6 = 1 << 22
IFCAP_HWSTATS = 1 << 23
IFCAP_TXRTLMT = 1 << 24
IFCAP_HWRXTSTMP = 1 << 25
IFCAP_MEXTPG = 1 << 26
IFCAP_TXTLS4 = 1 << 27
IFCAP_TXTLS6 = 1 << 28
IFCAP_VXLAN_HWCSUM = 1 << 29
IFCAP_VXLAN_HWTSO = 1 << 30
IFCAP_TXTLS_RTLMT = 1 << 31
IFCAP_HWCSUM = IFCAP_RXCSUM | IFCAP_TXCSUM
IFCAP_HWCSUM_IPV6 = IFCAP_RXCSUM_IPV6 | IFCAP_TXCSUM_IPV6
IFCAP_TSO = IFCAP_TSO4 | IFCAP_TSO6
IFCAP_TOE = IFCAP_TOE4 | IFCAP_TOE6
IFCAP_TXTLS = IFCAP_TXTLS4 | IFCAP_TXTLS6
IFCAP_CANTCHANGE = IFCAP_NETMAP | IFCAP_NV
# IFCAP2_* are bit numbers within the second word, not masks.
IFCAP2_RXTLS4 = 32 - 32
IFCAP2_RXTLS6 = 33 - 32
IFCAP2_IPSEC_OFFLOAD = IFCAP_B_IPSEC_OFFLOAD - 32      # == 2
IFCAP2_IPSEC_OFFLOAD_MASK = IFCAP2_BIT(IFCAP2_IPSEC_OFFLOAD)  # == 0x4

# if_counters (ift_counter)
IFCOUNTER_IPACKETS = 0
IFCOUNTER_IERRORS = 1
IFCOUNTER_OPACKETS = 2
IFCOUNTER_OERRORS = 3
IFCOUNTER_COLLISIONS = 4
IFCOUNTER_IBYTES = 5
IFCOUNTER_OBYTES = 6
IFCOUNTER_IMCASTS = 7
IFCOUNTER_OMCASTS = 8
IFCOUNTER_IQDROPS = 9
IFCOUNTER_OQDROPS = 10
IFCOUNTER_NOPROTO = 11
IFCOUNTERS = 12

EVENTHANDLER_PRI_FIRST = 0
EVENTHANDLER_PRI_ANY = 10000
EVENTHANDLER_PRI_LAST = 20000


class IfnetError(OSError):
    """A misuse of the ifnet KPI (attach twice, free while attached...)."""


# ==========================================================================
# if_ipsec_accel_methods

# The C signatures use ``void **priv`` out-parameters; in the model those
# callbacks return an ``(error, priv)`` pair instead.
SpdAddFn = Callable[["Ifnet", Any, Any], "tuple[int, Any]"]          # (ifp, sp, inp)
SpdDelFn = Callable[["Ifnet", Any, Any], int]                        # (ifp, sp, priv)
SaNewkeyFn = Callable[["Ifnet", Any, int], "tuple[int, Any]"]        # (ifp, sav, drv_spi)
SaDeinstallFn = Callable[["Ifnet", int, Any], int]                   # (ifp, drv_spi, priv)
SaCntFn = Callable[["Ifnet", Any, int, Any, Any], int]               # (ifp, sa, drv_spi, priv, lt)
HwassistFn = Callable[["Ifnet", Any, int, Any], int]                 # (ifp, sav, drv_spi, priv)


class IfIpsecAccelMethods:
    """``struct if_ipsec_accel_methods``, fields in FreeBSD's order.

    * ``if_spdadd(ifp, sp, inp) -> (error, priv)``
    * ``if_spddel(ifp, sp, priv) -> error``
    * ``if_sa_newkey(ifp, sav, drv_spi) -> (error, priv)`` -- 0 installed,
      EOPNOTSUPP refused (REJECTED handle), anything else: nothing recorded
    * ``if_sa_deinstall(ifp, drv_spi, priv) -> error`` (ignored by the caller)
    * ``if_sa_cnt(ifp, sa, drv_spi, priv, lt) -> error``; fills ``lt``
      (allocations, bytes); optional
    * ``if_hwassist(ifp, sav, drv_spi, priv) -> CSUM_* mask``

    Optional entries may be None; the offload layer decides what a None means
    (FreeBSD checks only if_sa_newkey/if_spdadd/if_sa_cnt for NULL).

    ``nonblocking`` (model, not in FreeBSD's struct): the driver promises
    that these methods never block -- no sleeps, no waits on other threads
    -- so the offload layer may call them directly on its taskqueue thread
    instead of through a guard helper thread (ipsec_offload_defs.DrvGuard,
    mode "taskqueue").  Default False: guarded.
    """

    __slots__ = ("if_spdadd", "if_spddel", "if_sa_newkey", "if_sa_deinstall", "if_sa_cnt",
                 "if_hwassist", "nonblocking")
    FIELDS = ("if_spdadd", "if_spddel", "if_sa_newkey", "if_sa_deinstall", "if_sa_cnt",
              "if_hwassist")

    def __init__(self, if_spdadd: SpdAddFn | None = None, if_spddel: SpdDelFn | None = None,
                 if_sa_newkey: SaNewkeyFn | None = None,
                 if_sa_deinstall: SaDeinstallFn | None = None,
                 if_sa_cnt: SaCntFn | None = None, if_hwassist: HwassistFn | None = None,
                 nonblocking: bool = False) -> None:
        self.nonblocking = bool(nonblocking)
        self.if_spdadd = if_spdadd
        self.if_spddel = if_spddel
        self.if_sa_newkey = if_sa_newkey
        self.if_sa_deinstall = if_sa_deinstall
        self.if_sa_cnt = if_sa_cnt
        self.if_hwassist = if_hwassist

    def __repr__(self) -> str:
        present = [f for f in self.FIELDS if getattr(self, f) is not None]
        return f"<IfIpsecAccelMethods {' '.join(present)}>"


# ==========================================================================
# EVENTHANDLER(9)

class EventHandlerList:
    """One named event (``EVENTHANDLER_DECLARE``).  Handlers run in priority
    order, equal priorities in registration order; invocation works on a
    snapshot so handlers may (de)register during an event.  If handlers raise,
    the rest still run and the first exception is re-raised at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._handlers: tuple[tuple[int, int, Callable[..., Any]], ...] = ()
        self._seq = 0

    def register(self, fn: Callable[..., Any], priority: int = EVENTHANDLER_PRI_ANY) -> int:
        """``EVENTHANDLER_REGISTER``; returns the tag for :meth:`deregister`."""
        with self._lock:
            self._seq += 1
            tag = self._seq
            hs = list(self._handlers) + [(priority, tag, fn)]
            hs.sort(key=lambda h: (h[0], h[1]))
            self._handlers = tuple(hs)
            return tag

    def deregister(self, tag: int) -> None:
        with self._lock:
            self._handlers = tuple(h for h in self._handlers if h[1] != tag)

    def invoke(self, *args: Any) -> None:
        """``EVENTHANDLER_INVOKE``."""
        first: BaseException | None = None
        for _prio, _tag, fn in self._handlers:
            try:
                fn(*args)
            except Exception as exc:
                if first is None:
                    first = exc
        if first is not None:
            raise first

    def __len__(self) -> int:
        return len(self._handlers)

    def __repr__(self) -> str:
        return f"<EventHandlerList {self.name} handlers={len(self._handlers)}>"


# ==========================================================================
# ifnet

class IfIoctl(enum.Enum):
    """The ioctls the model routes through ``ifhwioctl`` to ``if_ioctl``
    (names only; FreeBSD's numeric encodings are not modelled)."""

    SIOCSIFFLAGS = "SIOCSIFFLAGS"
    SIOCSIFMTU = "SIOCSIFMTU"
    SIOCSIFCAP = "SIOCSIFCAP"
    SIOCSIFCAPNV = "SIOCSIFCAPNV"
    SIOCSIFNAME = "SIOCSIFNAME"
    SIOCSETVLAN = "SIOCSETVLAN"
    SIOCGETVLAN = "SIOCGETVLAN"


class IfReq:
    """The parts of ``struct ifreq`` / ``siocsifcapnv_driver_data`` /
    ``struct vlanreq`` the modelled ioctls use."""

    __slots__ = ("flags", "mtu", "reqcap", "reqcap2", "nvcap", "name", "vlan_tag",
                 "vlan_parent", "vlan_proto")

    def __init__(self, *, flags: int = 0, mtu: int = 0, reqcap: int = 0, reqcap2: int = 0,
                 nvcap: dict[str, bool] | None = None, name: str = "", vlan_tag: int = 0,
                 vlan_parent: str = "", vlan_proto: int = 0) -> None:
        self.flags = flags
        self.mtu = mtu
        self.reqcap = reqcap
        self.reqcap2 = reqcap2
        self.nvcap = nvcap
        self.name = name
        self.vlan_tag = vlan_tag
        self.vlan_parent = vlan_parent
        self.vlan_proto = vlan_proto


IoctlFn = Callable[["Ifnet", IfIoctl, IfReq], int]
TransmitFn = Callable[["Ifnet", Mbuf], int]
InputFn = Callable[["Ifnet", Mbuf], Any]

# refcount(9) on ifnets; one lock is plenty (refs are taken per handle and per
# walk, not per packet).
_ifref_lock = threading.Lock()


class Ifnet:
    """``struct ifnet``.  Drivers fill the capability words, ``if_ioctl``,
    ``if_transmit``, ``if_snd_tag_alloc`` and the accel methods before
    attaching (methods first, then the capability: the offload layer reads the
    bit and then dereferences the table)."""

    __slots__ = (
        "if_xname", "if_dname", "if_dunit", "if_index", "if_type", "if_flags", "if_drv_flags",
        "if_capabilities", "if_capabilities2", "if_capenable", "if_capenable2", "if_hwassist",
        "if_mtu", "if_max_mtu", "if_metric", "if_link_state", "if_baudrate", "if_lladdr",
        "if_description", "if_pcp", "if_ipsec_accel_m", "if_softc", "if_vlantrunk",
        "if_refcount", "if_ioctl", "if_init", "if_stop", "if_transmit", "if_input",
        "if_snd_tag_alloc", "if_counters", "if_clone", "registry", "attached", "freed",
        "_lock", "__weakref__",
    )

    def __init__(self, name: str, *, type: int = IFT_ETHER, mtu: int = ETHERMTU,
                 flags: int = IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST,
                 capabilities: int = 0, capenable: int | None = None,
                 capabilities2: int = 0, capenable2: int | None = None, hwassist: int = 0,
                 lladdr: bytes | None = None, max_mtu: int = 9000, softc: Any = None) -> None:
        if not name or len(name) >= IFNAMSIZ:
            raise IfnetError(errno.EINVAL, f"bad interface name {name!r}")
        self.if_xname = name
        self.if_dname, self.if_dunit = _split_unit(name)
        self.if_index = 0
        self.if_type = type
        self.if_flags = flags
        self.if_drv_flags = 0
        self.if_capabilities = capabilities
        self.if_capenable = capabilities if capenable is None else capenable
        self.if_capabilities2 = capabilities2
        self.if_capenable2 = capabilities2 if capenable2 is None else capenable2
        self.if_hwassist = hwassist
        self.if_mtu = mtu
        self.if_max_mtu = max_mtu
        self.if_metric = 0
        self.if_link_state = LINK_STATE_UNKNOWN
        self.if_baudrate = 0
        self.if_lladdr = lladdr
        self.if_description = ""
        self.if_pcp = 0
        self.if_ipsec_accel_m: IfIpsecAccelMethods | None = None
        self.if_softc = softc
        self.if_vlantrunk: VlanTrunk | None = None
        self.if_refcount = 1          # if_alloc's reference, dropped by if_free
        self.if_ioctl: IoctlFn | None = if_ioctl_default
        self.if_init: Callable[[Ifnet], None] | None = None
        self.if_stop: Callable[[Ifnet], None] | None = None
        self.if_transmit: TransmitFn | None = None
        self.if_input: InputFn | None = None
        self.if_snd_tag_alloc: Callable[..., Any] | None = None
        self.if_counters = [0] * IFCOUNTERS
        self.if_clone: IfClone | None = None
        self.registry: IfnetRegistry | None = None
        self.attached = False
        self.freed = False
        self._lock = threading.Lock()

    # -- conveniences (Python names for the common fields) ------------------

    @property
    def name(self) -> str:
        return self.if_xname

    @property
    def index(self) -> int:
        return self.if_index

    @property
    def mtu(self) -> int:
        return self.if_mtu

    @property
    def flags(self) -> int:
        """What ifconfig shows: ``if_flags | if_drv_flags`` plus LOWER_UP
        when the link is up."""
        f = self.if_flags | self.if_drv_flags
        if self.if_link_state == LINK_STATE_UP:
            f |= IFF_LOWER_UP
        return f

    @property
    def up(self) -> bool:
        return bool(self.if_flags & IFF_UP)

    @property
    def running(self) -> bool:
        return bool(self.if_drv_flags & IFF_DRV_RUNNING)

    @property
    def ipsec_offload(self) -> bool:
        """IFCAP2_IPSEC_OFFLOAD enabled (what ipsec_offload.c tests)."""
        return bool(self.if_capenable2 & IFCAP2_IPSEC_OFFLOAD_MASK)

    # -- references ---------------------------------------------------------

    def if_ref(self) -> None:
        with _ifref_lock:
            if self.if_refcount <= 0:
                raise IfnetError(errno.EINVAL, f"if_ref on freed ifnet {self.if_xname}")
            self.if_refcount += 1

    def if_try_ref(self) -> bool:
        with _ifref_lock:
            if self.if_refcount <= 0:
                return False
            self.if_refcount += 1
            return True

    def if_rele(self) -> None:
        with _ifref_lock:
            if self.if_refcount <= 0:
                raise IfnetError(errno.EINVAL, f"if_rele underflow on {self.if_xname}")
            self.if_refcount -= 1
            if self.if_refcount == 0:
                self.freed = True      # if_free_deferred

    def if_inc_counter(self, cnt: int, inc: int) -> None:
        with self._lock:
            self.if_counters[cnt] += inc

    def __repr__(self) -> str:
        return (f"<Ifnet {self.if_xname} idx={self.if_index} flags={self.flags:#x} "
                f"cap2={self.if_capenable2:#x} refs={self.if_refcount}>")


def _split_unit(name: str) -> tuple[str, int]:
    i = len(name)
    while i > 0 and name[i - 1].isdigit():
        i -= 1
    if i == len(name) or i == 0:
        return name, IF_DUNIT_NONE
    return name[:i], int(name[i:])


# FreeBSD-named accessors (if_var.h KPI) ------------------------------------

def if_name(ifp: Ifnet) -> str:
    return ifp.if_xname


def if_ref(ifp: Ifnet) -> None:
    ifp.if_ref()


def if_rele(ifp: Ifnet) -> None:
    ifp.if_rele()


def if_try_ref(ifp: Ifnet) -> bool:
    return ifp.if_try_ref()


def if_getflags(ifp: Ifnet) -> int:
    return ifp.if_flags


def if_getdrvflags(ifp: Ifnet) -> int:
    return ifp.if_drv_flags


def if_getmtu(ifp: Ifnet) -> int:
    return ifp.if_mtu


def if_getcapenable(ifp: Ifnet) -> int:
    return ifp.if_capenable


def if_getcapenable2(ifp: Ifnet) -> int:
    return ifp.if_capenable2


def if_gethwassist(ifp: Ifnet) -> int:
    return ifp.if_hwassist


def if_sethwassist(ifp: Ifnet, v: int) -> None:
    ifp.if_hwassist = v


def if_setcapabilitiesbit(ifp: Ifnet, setbit: int, clearbit: int) -> None:
    ifp.if_capabilities = (ifp.if_capabilities | setbit) & ~clearbit


def if_setcapenablebit(ifp: Ifnet, setbit: int, clearbit: int) -> None:
    ifp.if_capenable = (ifp.if_capenable | setbit) & ~clearbit


def if_setcapabilities2bit(ifp: Ifnet, setbit: int, clearbit: int) -> None:
    ifp.if_capabilities2 = (ifp.if_capabilities2 | setbit) & ~clearbit


def if_setcapenable2bit(ifp: Ifnet, setbit: int, clearbit: int) -> None:
    ifp.if_capenable2 = (ifp.if_capenable2 | setbit) & ~clearbit


def if_setipsec_accel_methods(ifp: Ifnet, m: IfIpsecAccelMethods | None) -> None:
    """``if_setipsec_accel_methods``: a plain store, as in if.c."""
    ifp.if_ipsec_accel_m = m


def if_inc_counter(ifp: Ifnet, cnt: int, inc: int) -> None:
    ifp.if_inc_counter(cnt, inc)


def if_ioctl_default(ifp: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
    """What a plain Ethernet driver does (drivers intercept what they care
    about and call this for the rest):

    * SIOCSIFFLAGS: UP and not RUNNING -> init (``if_init`` or: RUNNING, link
      up); not UP and RUNNING -> stop (``if_stop`` or: clear RUNNING, link
      down).  Returns 0 (ifhwioctl ignores it anyway).
    * SIOCSIFMTU: accept ``IF_MINMTU <= mtu <= if_max_mtu``.
    * SIOCSIFCAP / SIOCSIFCAPNV: ``if_capenable[2] = reqcap[2]``.
    * anything else: EINVAL.
    """
    if cmd is IfIoctl.SIOCSIFFLAGS:
        if ifp.if_flags & IFF_UP:
            if not ifp.if_drv_flags & IFF_DRV_RUNNING:
                if ifp.if_init is not None:
                    ifp.if_init(ifp)
                else:
                    ifp.if_drv_flags |= IFF_DRV_RUNNING
                    if ifp.registry is not None:
                        ifp.registry.if_link_state_change(ifp, LINK_STATE_UP)
        elif ifp.if_drv_flags & IFF_DRV_RUNNING:
            if ifp.if_stop is not None:
                ifp.if_stop(ifp)
            else:
                ifp.if_drv_flags &= ~IFF_DRV_RUNNING
                if ifp.registry is not None:
                    ifp.registry.if_link_state_change(ifp, LINK_STATE_DOWN)
        return 0
    if cmd is IfIoctl.SIOCSIFMTU:
        if req.mtu < IF_MINMTU or req.mtu > ifp.if_max_mtu:
            return errno.EINVAL
        ifp.if_mtu = req.mtu
        return 0
    if cmd is IfIoctl.SIOCSIFCAP:
        ifp.if_capenable = req.reqcap
        return 0
    if cmd is IfIoctl.SIOCSIFCAPNV:
        ifp.if_capenable = req.reqcap
        ifp.if_capenable2 = req.reqcap2
        return 0
    return errno.EINVAL


def if_capnv_to_capint(nv: dict[str, bool], current: int, base: int) -> int:
    """``if_capnv_to_capint``: start from ``current`` and set/clear the named
    bits of the 32-bit capability word starting at index ``base`` (0 or 32).
    An unknown name raises KeyError (the kernel answers EINVAL)."""
    result = current
    for name, on in nv.items():
        if name not in IFCAP_NAMES:
            raise KeyError(name)
        idx = IFCAP_NAMES.index(name)
        if not base <= idx < base + 32:
            continue
        bit = 1 << (idx - base)
        result = result | bit if on else result & ~bit
    return result


_IMPORTED = {"CSUM_IP", "CSUM_SCTP", "CSUM_TCP", "CSUM_TCP_IPV6", "CSUM_TSO", "CSUM_UDP",
             "CSUM_UDP_IPV6", "CSUM_SCTP_IPV6", "M_VLANTAG", "IO", "TYPE_CHECKING"}

__all__ = [n for n in list(globals())
           if n.isupper() and not n.startswith("_") and n not in _IMPORTED] + [
    "IfnetError", "IfIpsecAccelMethods", "EventHandlerList", "IfIoctl", "IfReq", "Ifnet",
    "IfClone", "IfnetRegistry", "if_name", "if_ref", "if_rele", "if_try_ref", "if_getflags",
    "if_getdrvflags", "if_getmtu", "if_getcapenable", "if_getcapenable2", "if_gethwassist",
    "if_sethwassist", "if_setcapabilitiesbit", "if_setcapenablebit", "if_setcapabilities2bit",
    "if_setcapenable2bit", "if_setipsec_accel_methods", "if_inc_counter", "if_ioctl_default",
    "if_capnv_to_capint", "SpdAddFn", "SpdDelFn", "SaNewkeyFn",
    "SaDeinstallFn", "SaCntFn", "HwassistFn", "IoctlFn", "TransmitFn",
]


# ==========================================================================
# What moved out: cloners (if_clone.py) and the registry (ifnet_registry.py)
#
# Both modules import this one (Ifnet, the constants), so importing them
# here at load time would make "import ipsec_accel.if_clone" (or
# ifnet_registry) as a program's first import fail on a half-loaded module.
# Their names are loaded on first use instead (PEP 562, as
# ipsec_accel/__init__.py does) and then cached in globals(), so that later
# lookups are plain attribute reads and ``from .ifnet import IfnetRegistry``
# keeps working everywhere.  Type checkers see ordinary imports.
_MOVED: dict[str, str] = {
    "IfClone": "if_clone", "CloneCreateFn": "if_clone", "CloneDestroyFn": "if_clone",
    "IfnetRegistry": "ifnet_registry",
}

if TYPE_CHECKING:
    # "X as X": an explicit re-export for mypy --strict (it cannot read the
    # computed part of __all__).
    from .if_clone import IfClone as IfClone
    from .if_vlan import VlanTrunk
    from .ifnet_registry import IfnetRegistry as IfnetRegistry
else:
    from . import _lazy_exports
    __getattr__, __dir__ = _lazy_exports(globals(), _MOVED, __package__)
