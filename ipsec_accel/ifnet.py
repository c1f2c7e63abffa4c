"""Network interfaces: ``sys/net/if.c``, ``if_var.h``, ``if_private.h``,
``if.h``, ``if_clone.c``, ``if_vlan.c`` and the bits of ``sbin/ifconfig``
(ifconfig.c, ifconfig_netlink.c, ifvlan.c) the offload model needs.

Pieces and the FreeBSD rules they keep:

* :class:`Ifnet` -- ``struct ifnet``: name/unit/index, ``if_flags`` and
  ``if_drv_flags`` (IFF_RUNNING is a driver flag), ``if_capabilities[2]`` /
  ``if_capenable[2]`` with ``IFCAP2_IPSEC_OFFLOAD`` = bit 2 of the second word
  (mask 0x4, capability name "IPSEC"), ``if_hwassist``, ``if_mtu``, link
  state, refcount (``if_ref``/``if_rele``/``if_try_ref``), and
  ``if_ipsec_accel_m``, the driver's :class:`IfIpsecAccelMethods` table set by
  :func:`if_setipsec_accel_methods` (a plain store; the offload layer only
  looks at it when the capability bit is enabled and never NULL-checks it).
* :class:`IfnetRegistry` -- one vnet's ``V_ifnet``: attach in order, detach,
  ``ifindex`` (lowest free), lookup by name and index, rename (IFF_RENAMING
  set while ``ifnet_departure_event`` and ``ifnet_arrival_event`` run, so
  listeners can tell a rename from a departure), ``if_up``/``if_down``, link
  state changes, cloners, the ioctl path (``ifhwioctl``), and
  :meth:`IfnetRegistry.if_foreach_sleep` (snapshot of matching interfaces in
  V_ifnet order with references held, match evaluated at snapshot time,
  callbacks run without the list lock, walk stops at the first non-zero
  return, references dropped).
* Event handler lists (:class:`EventHandlerList`, EVENTHANDLER(9)):
  ``ifnet_arrival_event``, ``ifnet_departure_event``, ``ifnet_link_event``,
  ``ifnet_event`` (IFNET_EVENT_UP/DOWN), ``vlan_config``/``vlan_unconfig``
  and a model-only ``ifnet_capchange_event`` (FreeBSD has none; it lets the
  opt-in "re-offer on enable" extension hear capability toggles).
* The capability path: ``SIOCSIFCAP`` (first word) and ``SIOCSIFCAPNV``
  (nvlist of names, both words; refused with EINVAL unless the interface has
  IFCAP_NV), validated against ``if_capabilities[2]`` and handed to the
  driver's ``if_ioctl``, which may intercept (mlx5: close the port, call
  ipsec_accel_on_ifdown when IPSEC goes off, toggle, reopen) and fall back to
  :func:`if_ioctl_default`.  After a successful change the registry runs
  ``vlan_trunk_capabilities`` (drivers call ``VLAN_CAPABILITIES(ifp)``).
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
from typing import Any, Callable, Iterator

from .mbuf import Mbuf
from .unr import UnrAllocator

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


# ==========================================================================
# Cloners (if_clone.c)

CloneCreateFn = Callable[["IfnetRegistry", "IfClone", str, Any], "tuple[int, Ifnet | None]"]
CloneDestroyFn = Callable[["IfnetRegistry", "IfClone", Ifnet], int]


class IfClone:
    """``struct if_clone``: names ``<prefix><unit>`` (or whatever ``match``
    accepts), units from an unr allocator (``ifc_alloc_unit``)."""

    def __init__(self, name: str, create: CloneCreateFn, destroy: CloneDestroyFn,
                 match: Callable[[IfnetRegistry, str], bool] | None = None,
                 maxunit: int = IF_MAXUNIT) -> None:
        self.name = name
        self.create = create
        self.destroy = destroy
        self._match = match
        self.units = UnrAllocator(0, maxunit)

    def match(self, reg: IfnetRegistry, ifname: str) -> bool:
        if self._match is not None:
            return self._match(reg, ifname)
        return _prefix_unit_match(self.name, ifname)

    def alloc_unit(self, unit: int) -> tuple[int, int]:
        """``ifc_alloc_unit``: unit -1 = lowest free; a busy unit -> EEXIST."""
        if unit < 0:
            u = self.units.alloc_unr()
            return (errno.ENOSPC, -1) if u < 0 else (0, u)
        if unit > self.units.high:
            return errno.EINVAL, -1
        return (0, unit) if self.units.alloc_unr_specific(unit) == unit else (errno.EEXIST, -1)

    def free_unit(self, unit: int) -> None:
        if unit >= 0 and self.units.is_allocated(unit):
            self.units.free_unr(unit)



def _prefix_unit_match(prefix: str, ifname: str) -> bool:
    if not ifname.startswith(prefix):
        return False
    return ifname[len(prefix):].isdigit() or ifname == prefix


def _name2unit(ifname: str, prefix: str) -> int:
    """``ifc_name2unit``: -1 for the wildcard (no digits)."""
    rest = ifname[len(prefix):]
    return int(rest) if rest else -1


def _lo_clone_create(reg: IfnetRegistry, ifc: IfClone, name: str,
                     params: Any) -> tuple[int, Ifnet | None]:
    err, unit = ifc.alloc_unit(_name2unit(name, "lo"))
    if err:
        return err, None
    ifp = Ifnet(f"lo{unit}", type=IFT_LOOP, mtu=16384, max_mtu=16384,
                flags=IFF_LOOPBACK | IFF_MULTICAST,
                capabilities=IFCAP_HWCSUM | IFCAP_HWCSUM_IPV6 | IFCAP_LINKSTATE)
    ifp.if_clone = ifc
    reg.if_attach(ifp)
    return 0, ifp


def _lo_clone_destroy(reg: IfnetRegistry, ifc: IfClone, ifp: Ifnet) -> int:
    reg.if_detach(ifp)
    reg.if_free(ifp)
    ifc.free_unit(ifp.if_dunit)
    return 0


# ==========================================================================
# The registry (V_ifnet + ifindex + cloners + events + ioctl path)

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
             "CSUM_UDP_IPV6", "CSUM_SCTP_IPV6", "M_VLANTAG", "IO"}

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

# vlan(4) lives in if_vlan.py; the registry (vlan cloner, trunk bookkeeping)
# calls into it only at run time, so importing it last breaks the cycle.
from .if_vlan import (  # noqa: E402
    VLAN_IFFLAGS, IfVlan, VlanTrunk, _vlan_clone_create, _vlan_clone_destroy,
    _vlan_clone_match, vlan_capabilities,
)
