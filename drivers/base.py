"""The base mock NIC: an ifnet with ``IFCAP2_IPSEC_OFFLOAD``, a hardware SA
table, the inline ESP engine (:mod:`drivers.engine`), hardware counters and a
counter poll, behind FreeBSD's driver KPI ``struct if_ipsec_accel_methods``
(freebsd_ipsec_offload.md §4; the KPI methods live in :mod:`drivers.kpi`).

What a driver does, and what this class does for every profile:

* **Attach** (``mlx5e_ipsec_init`` + ``ether_ifattach``): methods first, then
  the capability (the offload layer reads the bit, then dereferences the
  table).  ``ipsec=False`` leaves IPSEC in ``if_capabilities2`` but not in
  ``if_capenable2``: ``ifconfig X ipsec`` turns it on later.
* ``if_sa_newkey(ifp, sav, drv_spi) -> (error, priv)``: read the SA
  (:class:`drivers.hw.SaParams`), let the profile validate it
  (:meth:`MockNic.sa_check`), choose directions (FreeBSD never says which:
  :meth:`MockNic.sa_directions`, mlx5 installs inbound *and* outbound), build
  one key context per direction and place it in the profile's tables
  (:meth:`MockNic.hw_alloc`); a failure half-way undoes what was placed
  (mlx5: "failure of outbound tears down inbound").  ``priv`` is a
  :class:`drivers.hw.NicSa`.  ``if_sa_newkey_dir`` (the offload layer's opt-in
  "sa_direction" extension) is the same with the direction given.
* ``if_sa_deinstall``: remove both directions, cancel the counter work for the
  handle (mlx5's ``cancel_delayed_work_sync``: no lifetime update for a
  handle after its deinstall returned).
* ``if_sa_cnt``: the handle's cumulative bytes and packets over both
  directions, allocations truncated to 32 bits (mlx5's cast).
* ``if_hwassist``: the trunk's ``if_hwassist`` masked to TSO/TCP/UDP/IP
  (mlx5e_if_ipsec_hwassist; vlans ask their trunk).
* vlans: vlan(4) calls the parent's methods with the *vlan* ifp; drivers
  resolve the trunk (GET_TRUNK_IF) and remember the vlan ifp as ``ifpo``,
  reporting counters against it and delivering its decrypted packets to it.
* **Counter poll**: a real thread per NIC (``poll="thread"``), or none
  (``poll="off"``, tests call :meth:`MockNic.poll_now`); each run reports
  every live handle's CUMULATIVE (octets, packets) through key.c's
  ``ipsec_accel_drv_sa_lifetime_update`` forwarder (the offload layer turns
  them into unsigned deltas).
* **Interface down**: with ``ifdown_forgets`` (the generic default; mlx5's
  is off, as in FreeBSD) the stop path calls ``ipsec_accel_on_ifdown`` (the
  handles of this ifnet go; FreeBSD never re-offers them).  A link-state
  change alone never does (no FreeBSD driver or stack path calls it there);
  detach does, through ``ifnet_departure_event``.  With
  ``cap_toggle_ifdown`` (mlx5) a change of the IPSEC
  capability closes the port, calls ``ipsec_accel_on_ifdown`` if it was on,
  toggles, reopens (§6.4); without it the bit just flips and installed
  handles stay (§17.11: output then goes software).
* **Wire**: :meth:`MockNic.connect` a :class:`ipsec_accel.wire.WirePort` (or
  :meth:`MockNic.set_transmit` any callable taking bytes); received frames
  enter at :meth:`MockNic.wire_input` and go up through ``ifp.if_input`` (or
  ``nic.rx_queue`` when the stack set none).

Errnos: see :class:`drivers.hw.ErrnoPolicy`; every refusal is kept in
``nic.refusals`` with its reason and the Linux errno.  Common to all
profiles: device gone -> EOPNOTSUPP (mlx5: ``priv->gone``); a key the card
cannot load (EspState refuses it) -> unsupported (EINVAL on Linux); a
drv_spi this NIC already holds -> EEXIST (and a recorded invariant
violation: the offload layer must never do that).

Threads and locks: the offload taskqueue thread (installs, deinstalls),
ioctl callers (on_ifdown), the poll thread and any number of datapath
threads call a NIC concurrently.  ``_lock`` (the softc lock) guards the
handle map and the TX/RX lookup maps; tables have their own lock (shared by
a PF and its VFs); ``_cnt_lock`` guards per-packet counters (a lost update
would break "SW + HW counters add up"); ``_poll_lock`` serialises a
handle's lifetime report with its deinstall.  No lock is held across a call
out of the driver (lifetime helper, on_ifdown, wire, if_input): the offload
layer calls back into the driver from those paths.  The datapath reads the
lookup maps without a lock (a dict read is atomic under the GIL; a
deinstalled entry found just before its removal is harmless: it still holds
its key context).
"""

from __future__ import annotations

import collections
import errno as _errno
import itertools
import logging
import threading
from typing import Any, Callable, ClassVar, Iterable, Optional

from ipsec_accel.ifnet import (

    IFCAP2_IPSEC_OFFLOAD_MASK, IFCAP_HWCSUM, IFCAP_HWCSUM_IPV6, IFCAP_LINKSTATE, IFCAP_NV,

    IFCAP_TSO, IFCAP_VLAN_HWCSUM, IFCAP_VLAN_HWTAGGING, IFCAP_VLAN_HWTSO, IFCAP_VLAN_MTU,

    IFF_DRV_RUNNING, IFF_UP, IFT_L2VLAN, LINK_STATE_DOWN, LINK_STATE_UP, IfIoctl,

    IfIpsecAccelMethods, Ifnet, IfnetRegistry, IfReq, if_ioctl_default,

    if_setipsec_accel_methods,

)

from ipsec_accel.if_vlan import vlan_trunkdev
from ipsec_accel.mbuf import Mbuf, Zone
from ipsec_accel.xform_esp import EspState

from .engine import InlineEngine
from .hw import (
    ERRNO_FREEBSD, KIND_UNSUPPORTED, MODE_CRYPTO, MODE_PACKET, ErrnoPolicy, HwSa, HwTable,
    NicSa, Refusal, SaParams,
)
from .kpi import HWASSIST_MASK, DriverKpi

try:        # the offload layer's KPI extension; plain FreeBSD table without it
    from ipsec_accel.ipsec_offload_defs import IfIpsecAccelMethodsExt as _MethodsExt
except ImportError:  # pragma: no cover - the offload layer is not there yet
    _MethodsExt = None  # type: ignore[assignment,misc]

__all__ = ["MockNic", "POLL_OFF", "POLL_THREAD", "EspStateFactory", "HWASSIST_MASK", "nic_of"]

log = logging.getLogger("drivers")

POLL_OFF = "off"
POLL_THREAD = "thread"

#: ``f(sav, params, direction) -> EspState | None``: the key context of a
#: new hardware SA (None: the NIC builds its own).  A host's IP layer
#: (ipsec_accel.ip) installs one that returns its own per-SA state, so the
#: card and the stack continue one sequence/IV/replay space across an ifdown.
EspStateFactory = Callable[[Any, SaParams, int], Optional[EspState]]

_BASE_CAPS = (IFCAP_HWCSUM | IFCAP_HWCSUM_IPV6 | IFCAP_TSO | IFCAP_VLAN_MTU
              | IFCAP_VLAN_HWTAGGING | IFCAP_VLAN_HWCSUM | IFCAP_VLAN_HWTSO | IFCAP_LINKSTATE
              | IFCAP_NV)

_COUNTER_KEYS = ("tx_packets", "tx_bytes", "tx_clear", "tx_encrypted", "tx_crypto",
                 "rx_packets", "rx_bytes", "rx_decrypted", "rx_crypto", "rx_passed", "drops")

_unit = itertools.count()


def nic_of(ifp: Ifnet) -> Optional["MockNic"]:
    """The mock NIC behind an ifnet (its trunk's, for a vlan), or None."""
    if ifp.if_type == IFT_L2VLAN:
        t = vlan_trunkdev(ifp)
        if t is None:
            return None
        ifp = t
    sc = ifp.if_softc
    return sc if isinstance(sc, MockNic) else None


class MockNic(DriverKpi, InlineEngine):
    """A NIC with inline IPsec (module docstring).  Profiles subclass it and
    override :meth:`sa_check`, :meth:`sa_directions`, :meth:`hw_alloc` /
    :meth:`hw_free` and, for policy offload, :meth:`sp_check`.

    Options (all keyword-only, all settable from a topology file):
    ``mtu``; ``ipsec`` (capability enabled at attach); ``up``;
    ``errno_style`` ("freebsd"/"linux"); ``modes`` (offload modes, preferred
    first; the first is the RX mode of new SAs); ``capacity`` (hardware SA
    entries, None = unbounded); ``poll`` ("off"/"thread") and
    ``poll_interval`` (seconds); ``ifdown_forgets``; ``cap_toggle_ifdown``;
    ``direction_ext`` (offer ``if_sa_newkey_dir``); ``rx_queue_len``;
    ``tag_zone`` (zone for RX tags; default the mbuf_tag zone).
    """

    profile: ClassVar[str] = "generic"
    dname: ClassVar[str] = "mock"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_PACKET, MODE_CRYPTO)
    default_capacity: ClassVar[Optional[int]] = None
    default_poll_interval: ClassVar[float] = 1.0
    default_cap_toggle_ifdown: ClassVar[bool] = False
    #: Whether the stop path (``ifconfig down``) calls ipsec_accel_on_ifdown
    #: unless the ``ifdown_forgets`` option says otherwise.
    default_ifdown_forgets: ClassVar[bool] = True
    has_spd_ops: ClassVar[bool] = False
    #: The method table's ``nonblocking`` promise (ifnet.IfIpsecAccelMethods):
    #: a model NIC's methods only touch its own tables under short locks, so
    #: the offload layer calls them directly.  Drivers that wait on another
    #: thread (ixgbevf's PF mailbox) or that inject hangs (faulty) say False.
    nonblocking_methods: ClassVar[bool] = True

    def __init__(self, name: Optional[str] = None, *, mtu: int = 1500, ipsec: bool = True,
                 up: bool = True, lladdr: Optional[bytes] = None,
                 errno_style: str = ERRNO_FREEBSD, modes: Optional[Iterable[str]] = None,
                 capacity: Optional[int] | str = "default", poll: str = POLL_OFF,
                 poll_interval: Optional[float] = None, ifdown_forgets: Optional[bool] = None,
                 cap_toggle_ifdown: Optional[bool] = None, direction_ext: bool = True,
                 rx_queue_len: int = 4096, tag_zone: Optional[Zone] = None,
                 esp_state_factory: Optional[EspStateFactory] = None) -> None:
        unit = next(_unit)
        if name is None:
            name = f"{self.dname}{unit}"
        self.offload_modes: tuple[str, ...] = tuple(modes) if modes is not None \
            else self.default_modes
        for md in self.offload_modes:
            if md not in (MODE_PACKET, MODE_CRYPTO):
                raise ValueError(f"unknown offload mode {md!r}")
        if poll not in (POLL_OFF, POLL_THREAD):
            raise ValueError(f"poll must be {POLL_OFF!r} or {POLL_THREAD!r}")
        self.errno_policy = ErrnoPolicy(errno_style)
        self.want_up = up
        self.ifdown_forgets = self.default_ifdown_forgets if ifdown_forgets is None \
            else ifdown_forgets
        self.cap_toggle_ifdown = self.default_cap_toggle_ifdown if cap_toggle_ifdown is None \
            else cap_toggle_ifdown
        self.poll_mode = poll
        self.poll_interval = float(poll_interval if poll_interval is not None
                                   else self.default_poll_interval)
        self.tag_zone = tag_zone
        self.esp_state_factory = esp_state_factory
        self.out_drv_spi: Optional[Callable[[Mbuf], Optional[int]]] = None
        self.key: Any = None
        self.registry: Optional[IfnetRegistry] = None
        self.gone = False
        cap = self.default_capacity if capacity == "default" else capacity
        self.sa_table = HwTable(f"{name}.sa", cap)   # type: ignore[arg-type]
        # Softc state (see the module docstring for the locks).
        self._lock = threading.Lock()
        self._cnt_lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._handles: dict[int, NicSa] = {}
        # Call ledger: drv_spi -> a successful newkey not yet matched by a
        # deinstall *call* (what the offload layer promises, whatever the
        # driver then does with the call).
        self._ledger: dict[int, Any] = {}
        self._tx: dict[int, HwSa] = {}
        self._rx: dict[tuple[bytes, int], list[HwSa]] = {}
        self._policies: dict[int, Any] = {}
        # UDP ports RX treats as ESP-in-UDP: 4500 plus the local port of
        # every installed inbound NAT-T SA (replaced copy-on-write).
        self._natt_ports: frozenset[int] = frozenset((4500,))
        self._natt_refs: collections.Counter[int] = collections.Counter()
        self._pol_ids = itertools.count(1)
        self.counters: dict[str, int] = dict.fromkeys(_COUNTER_KEYS, 0)
        self.kpi: collections.Counter[str] = collections.Counter()
        self.refusals: collections.deque[Refusal] = collections.deque(maxlen=1024)
        self.refusal_counts: collections.Counter[str] = collections.Counter()
        self.violations: list[str] = []
        self.rx_queue: collections.deque[Mbuf] = collections.deque(maxlen=rx_queue_len)
        self._wire_tx: Optional[Callable[[bytes], Any]] = None
        self.polls = 0
        self._poll_thread: Optional[threading.Thread] = None
        self._poll_stop = threading.Event()
        self.poll_event = threading.Event()     # set after every poll run (tests wait on it)
        self.lifetime_update: Optional[Callable[[Any, Any, int, int, int], None]] = None
        if lladdr is None:
            lladdr = _lladdr(unit, name)
        self.ifp = Ifnet(name, mtu=mtu, capabilities=_BASE_CAPS,
                         capabilities2=IFCAP2_IPSEC_OFFLOAD_MASK,
                         capenable2=IFCAP2_IPSEC_OFFLOAD_MASK if ipsec else 0,
                         hwassist=HWASSIST_MASK, lladdr=lladdr, softc=self)
        # Methods first, then the capability (it is already in the words):
        # the offload layer reads the bit, then the table, without a NULL check.
        if_setipsec_accel_methods(self.ifp, self._methods(direction_ext))
        self.ifp.if_ioctl = self._ioctl
        self.ifp.if_init = self._if_init
        self.ifp.if_stop = self._if_stop
        self.ifp.if_transmit = self.if_transmit

    # -- the method table ----------------------------------------------------------------

    def _methods(self, direction_ext: bool) -> IfIpsecAccelMethods:
        kw: dict[str, Any] = dict(
            if_sa_newkey=self.if_sa_newkey, if_sa_deinstall=self.if_sa_deinstall,
            if_sa_cnt=self.if_sa_cnt, if_hwassist=self.if_hwassist)
        if self.has_spd_ops:
            kw.update(if_spdadd=self.if_spdadd, if_spddel=self.if_spddel)
        kw["nonblocking"] = self.nonblocking_methods
        if direction_ext and _MethodsExt is not None:
            return _MethodsExt(if_sa_newkey_dir=self.if_sa_newkey_dir, **kw)
        return IfIpsecAccelMethods(**kw)

    # -- attach / detach ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.ifp.if_xname

    @property
    def running(self) -> bool:
        f = self.ifp
        return bool(f.if_drv_flags & IFF_DRV_RUNNING) and bool(f.if_flags & IFF_UP)

    def attach(self, host: Any = None, *, registry: Optional[IfnetRegistry] = None,
               key: Any = None) -> "MockNic":
        """``ether_ifattach`` into ``host.ifnets`` (or ``registry``); the key
        engine (``host.key`` or ``key``) provides key.c's forwarders
        (``ipsec_accel_drv_sa_lifetime_update``, ``ipsec_accel_on_ifdown``).
        Brings the interface up when ``up`` was asked and starts the poll
        thread when ``poll="thread"``."""
        reg = registry if registry is not None else host.ifnets
        self.key = key if key is not None else getattr(host, "key", None)
        self.registry = reg
        reg.ether_ifattach(self.ifp)
        if self.want_up:
            reg.if_setupdown(self.ifp, True)
        if self.poll_mode == POLL_THREAD:
            self.start_poll()
        return self

    def detach(self) -> None:
        """Driver detach: stop the poll, ``if_detach`` (departure: the
        offload layer forgets this ifnet's handles), ``if_free``."""
        self.stop_poll()
        reg = self.registry
        self.gone = True
        if reg is not None and self.ifp.attached:
            reg.if_detach(self.ifp)
            reg.if_free(self.ifp)

    # -- if_init / if_stop / ioctl -------------------------------------------------------

    def _if_init(self, ifp: Ifnet) -> None:
        ifp.if_drv_flags |= IFF_DRV_RUNNING
        if self.registry is not None:
            self.registry.if_link_state_change(ifp, LINK_STATE_UP)

    def _if_stop(self, ifp: Ifnet) -> None:
        # ipsec_accel_on_ifdown exists for "an interface went down", and the
        # generic mock NIC calls it here so scenarios can drop handles with
        # ifconfig down.  FreeBSD's mlx5 does not (mlx5e_ioctl SIOCSIFFLAGS
        # only closes the port; it calls on_ifdown from the capability toggle
        # and mlx5e_destroy_ifp), so Mlx5Nic defaults to
        # ``ifdown_forgets=False``: handles survive down/up (output then
        # fails at the link, not at IPsec).
        ifp.if_drv_flags &= ~IFF_DRV_RUNNING
        if self.registry is not None:
            self.registry.if_link_state_change(ifp, LINK_STATE_DOWN)
        if self.ifdown_forgets:
            self._on_ifdown()

    def _on_ifdown(self) -> None:
        """key.c's ``ipsec_accel_on_ifdown`` forwarder (no driver lock held:
        the offload layer calls our deinstall from inside it)."""
        if self.key is not None:
            self.key.ipsec_accel_on_ifdown(self.ifp)

    def _ioctl(self, ifp: Ifnet, cmd: IfIoctl, req: IfReq) -> int:
        if cmd is IfIoctl.SIOCSIFCAPNV and self.cap_toggle_ifdown:
            old2 = ifp.if_capenable2
            if (old2 ^ req.reqcap2) & IFCAP2_IPSEC_OFFLOAD_MASK:
                # mlx5e_ioctl (sys/dev/mlx5/mlx5_en/mlx5_en_main.c): close the
                # port, forget what was offloaded if IPSEC was on, toggle,
                # reopen; enabling replays nothing.  mlx5e_close_locked
                # reports LINK_STATE_DOWN; the reopen's mlx5e_update_carrier
                # reports the carrier, here the link state the close found
                # (no separate carrier in the model: a pulled cable stays
                # DOWN).  On a down interface the port is already closed:
                # close returns at once, and what the reopened port reports
                # is the firmware's vport state, so nothing is reported.
                # FreeBSD's close/open leave IFF_UP/IFF_DRV_RUNNING alone; the
                # model's open port is IFF_DRV_RUNNING, cleared meanwhile so
                # that concurrent transmits find the port closed.
                was_open = bool(ifp.if_drv_flags & IFF_DRV_RUNNING)
                carrier = ifp.if_link_state
                reg = self.registry
                if was_open:
                    ifp.if_drv_flags &= ~IFF_DRV_RUNNING
                    if reg is not None:
                        reg.if_link_state_change(ifp, LINK_STATE_DOWN)
                if old2 & IFCAP2_IPSEC_OFFLOAD_MASK:
                    self._on_ifdown()
                error = if_ioctl_default(ifp, cmd, req)
                if was_open:
                    ifp.if_drv_flags |= IFF_DRV_RUNNING
                    if reg is not None:
                        reg.if_link_state_change(ifp, carrier)
                return error
        return if_ioctl_default(ifp, cmd, req)

    # -- wire ------------------------------------------------------------------------------

    def connect(self, port: Any) -> "MockNic":
        """Plug into a :class:`ipsec_accel.wire.WirePort`: frames we transmit
        go out of it, frames arriving on it enter :meth:`wire_input`."""
        port.attach(self.wire_input)
        self._wire_tx = port.send
        return self

    def set_transmit(self, fn: Optional[Callable[[bytes], Any]]) -> None:
        """Send transmitted frames to ``fn(bytes)`` (None: unplugged)."""
        self._wire_tx = fn

    def _wire_send(self, data: bytes) -> None:
        fn = self._wire_tx
        if fn is None:
            self._count_drop("tx_no_carrier")
            return
        fn(data)

    # -- refusals and invariants -----------------------------------------------------------

    def refuse(self, op: str, reason: str, kind: str = KIND_UNSUPPORTED,
               linux_errno: int = _errno.EINVAL, spi: int = 0) -> int:
        """Record a refusal and return the errno for it (ErrnoPolicy)."""
        err = self.errno_policy.errno_for(kind, linux_errno)
        with self._cnt_lock:
            self.refusals.append(Refusal(op, reason, kind, err, linux_errno, spi))
            self.refusal_counts[reason] += 1
        log.debug("%s: %s refused spi %#x: %s (errno %d)", self.name, op, spi, reason, err)
        return err

    def _violation(self, text: str) -> None:
        with self._cnt_lock:
            self.violations.append(text)
        log.error("%s: invariant violated: %s", self.name, text)

    def check_invariants(self) -> list[str]:
        """Violations seen so far, plus a live hardware SA whose kernel SA is
        DEAD (meaningful once the offload taskqueue is drained)."""
        out = list(self.violations)
        with self._lock:
            handles = list(self._handles.values())
        for h in handles:
            if getattr(h.sav, "state", 0) == 3:
                out.append(f"drv_spi {h.drv_spi} still installed for DEAD SA {h.sav!r}")
        return out

    # -- counters poll -------------------------------------------------------------------

    def poll_now(self) -> int:
        """One run of the counter work: report each live handle's cumulative
        (octets, packets) to the lifetime helper.  Returns how many.

        Only handles whose counters moved since their last report are
        reported: the helper works on deltas of cumulative values, so an
        unchanged report changes nothing (firstused was set by the first
        report with traffic), and skipping it keeps a poll over thousands of
        idle SAs from costing a helper call each per second."""
        with self._lock:
            handles = list(self._handles.values())
        n = 0
        for h in handles:
            with self._poll_lock:
                if not h.live:
                    continue
                with self._cnt_lock:
                    octets, packets = h.counters()
                if h.reported == (octets, packets):
                    continue
                h.reported = (octets, packets)
                self._report(h, octets, packets)
                n += 1
        self.polls += 1
        self.poll_event.set()
        return n

    def _report(self, h: NicSa, octets: int, packets: int) -> None:
        fn = self.lifetime_update
        if fn is None and self.key is not None:
            fn = self.key.ipsec_accel_drv_sa_lifetime_update
        if fn is not None:
            fn(h.sav, h.ifpo, h.drv_spi, octets, packets)

    def start_poll(self, interval: Optional[float] = None) -> None:
        """Start the counter thread (mlx5: every 1000 ms); idempotent."""
        if interval is not None:
            self.poll_interval = float(interval)
        if self._poll_thread is not None and self._poll_thread.is_alive():
            return
        self._poll_stop.clear()
        self._poll_thread = threading.Thread(target=self._poll_loop,
                                             name=f"{self.name}.ipsec_cnt", daemon=True)
        self._poll_thread.start()

    def stop_poll(self, timeout: float = 5.0) -> None:
        t = self._poll_thread
        self._poll_stop.set()
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._poll_thread = None

    def _poll_loop(self) -> None:
        while not self._poll_stop.wait(self.poll_interval):
            try:
                self.poll_now()
            except Exception:     # noqa: BLE001 - a work item never kills the queue
                log.exception("%s: counter poll failed", self.name)

    def shutdown(self) -> None:
        """Stop the NIC's threads (the counter poll; the PF's mailbox).  The
        interface stays attached.  Idempotent; registered as a host stop
        hook by :func:`drivers.topology.build_host`."""
        self.stop_poll()

    @property
    def polling(self) -> bool:
        t = self._poll_thread
        return t is not None and t.is_alive()

    # -- introspection -------------------------------------------------------------------

    def handles(self) -> list[NicSa]:
        with self._lock:
            return list(self._handles.values())

    def handle(self, drv_spi: int) -> Optional[NicSa]:
        return self._handles.get(drv_spi)

    def tx_sa(self, drv_spi: int) -> Optional[HwSa]:
        return self._tx.get(drv_spi)

    def rx_sa(self, dst: bytes, spi: int) -> Optional[HwSa]:
        return self._rx_lookup(dst, spi)

    def policies(self) -> list[Any]:
        with self._lock:
            return list(self._policies.values())

    def stats(self) -> dict[str, int]:
        """Per-NIC counters (packets, bytes, drops by reason) and KPI calls."""
        with self._cnt_lock:
            out = dict(self.counters)
            out.update({f"kpi.{k}": v for k, v in self.kpi.items()})
        return out

    def hw_dump(self) -> list[dict[str, Any]]:
        """Every hardware SA, structured (JSON-friendly)."""
        rows = []
        for h in self.handles():
            for e in h.entries:
                p = e.params
                rows.append({
                    "if": e.ifpo.if_xname, "drv_spi": e.drv_spi, "dir": e.dir_name,
                    "table": e.table.name if e.table is not None else None,
                    "index": e.index, "spi": p.spi, "dst": p.dst.hex(), "mode": p.mode,
                    "rx_mode": e.rx_mode, "packets": e.packets, "bytes": e.octets,
                    "crypto_packets": e.crypto_packets, "crypto_bytes": e.crypto_octets,
                    "drops": e.drops})
        return rows

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name} profile={self.profile} "
                f"handles={len(self._handles)} {self.sa_table!r}>")


def _lladdr(unit: int, name: str) -> bytes:
    # A locally administered MAC from the name and a process-wide unit.
    h = sum(name.encode()) & 0xFF
    return bytes((0x02, 0x00, h, (unit >> 16) & 0xFF, (unit >> 8) & 0xFF, unit & 0xFF))
