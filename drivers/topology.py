"""Model hosts with named mock interfaces, described in a small TOML file.

Models no FreeBSD file: it is ``/boot/loader.conf`` + ``rc.conf`` for the
lab -- which NICs a machine has, their names, MTUs, vlans and whether
``ifconfig X ipsec`` is on.  setkey's embedded mode and the daemon build
their machine from :data:`DEFAULT_TOPOLOGY` (or a file the user names).

Format (TOML, read with :mod:`tomllib`)::

    name = "gw1"                 # host name (default "model")
    loopback = false             # create lo0 first
    poll = "auto"                # counter poll threads: auto | thread | off
                                 # (auto: threads unless the clock is a FakeClock)

    [[interface]]
    name = "mce0"                # required, < 16 characters
    driver = "mlx5"              # mlx5 | ixgbe | ixgbevf | netdevsim | chelsio |
                                 # faulty | generic
    mtu = 1500
    ipsec = true                 # IFCAP2_IPSEC_OFFLOAD enabled at attach
    up = true
    vlans = [100, {vid = 200, name = "vlan200"}]    # 100 -> "mce0.100"
    lladdr = "02:00:00:00:01:01"
    [interface.options]          # keyword options of the driver class
    esn = true
    poll_interval = 1.0
    errno_style = "freebsd"      # or "linux"

    [[interface]]
    name = "ixv0"
    driver = "ixgbevf"
    pf = "ix0"                   # the PF (an interface defined above;
                                 # "host:if" in a multi-host file)
    vf_id = 1
    options = { trust = true }

A multi-host file puts the same keys under ``[[host]]`` tables (each with
its ``[[host.interface]]`` list) and may join interfaces with wires::

    [[host]]
    name = "a"
    [[host.interface]]
    name = "mce0"
    driver = "mlx5"

    [[wire]]
    a = "a:mce0"
    b = "b:mce0"
    capture = "a-b.pcap"         # optional pcap of the wire
    linktype = "raw"             # or "ethernet"

Errors (unknown driver, key or option, duplicate names, a VF without its PF)
raise :class:`TopologyError` naming the file and the interface.

API: :func:`build_host` (one :class:`ipsec_accel.host.Host`),
:func:`build_lab` (every host and wire of a file), :func:`nics` (the mock
NICs of a host, by name), :func:`shutdown` (stop poll threads and the host).
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, NamedTuple, Optional

from ipsec_accel.host import Host
from ipsec_accel.if_vlan import VlanParams
from pfkey.clock import Clock, FakeClock

from .base import POLL_OFF, POLL_THREAD, MockNic
from .chelsio import ChelsioNic
from .faulty import FaultyNic
from .ixgbe import IxgbePf
from .ixgbevf import IxgbeVf
from .mlx5 import Mlx5Nic
from .netdevsim import NetdevsimNic

__all__ = ["DEFAULT_TOPOLOGY", "DRIVERS", "TopologyError", "Lab", "parse_topology",
           "build_host", "build_lab", "nics", "shutdown"]

#: Driver names a topology file may use (aliases: the FreeBSD/Linux names).
DRIVERS: dict[str, type[MockNic]] = {
    "mlx5": Mlx5Nic, "mce": Mlx5Nic, "cx7": Mlx5Nic,
    "ixgbe": IxgbePf, "ix": IxgbePf,
    "ixgbevf": IxgbeVf, "ixv": IxgbeVf,
    "netdevsim": NetdevsimNic, "nsim": NetdevsimNic,
    "chelsio": ChelsioNic, "cxgbe": ChelsioNic, "t6": ChelsioNic,
    "faulty": FaultyNic,
    "generic": MockNic,
}

#: The default model host: an mlx5-like ``mce0`` and an ixgbe-like ``ix0``,
#: both up with IPsec offload enabled.  An SA with a 128-bit AES-GCM key is
#: offloaded to both; a 256-bit one to mce0 only (ix0 records it REJECTED).
DEFAULT_TOPOLOGY = """\
name = "model"

[[interface]]
name = "mce0"
driver = "mlx5"
mtu = 1500
ipsec = true

[[interface]]
name = "ix0"
driver = "ixgbe"
mtu = 1500
ipsec = true
"""

_IF_KEYS = {"name", "driver", "mtu", "ipsec", "up", "vlans", "lladdr", "options", "pf",
            "vf_id"}
_HOST_KEYS = {"name", "loopback", "poll", "interface"}


class TopologyError(ValueError):
    """A topology file that cannot be built."""


class _IfSpec(NamedTuple):
    name: str
    driver: str
    mtu: int
    ipsec: bool
    up: bool
    vlans: tuple[tuple[int, Optional[str]], ...]
    lladdr: Optional[bytes]
    options: dict[str, Any]
    pf: Optional[str]
    vf_id: int


class _HostSpec(NamedTuple):
    name: str
    loopback: bool
    poll: str
    interfaces: tuple[_IfSpec, ...]


class _WireSpec(NamedTuple):
    a: str
    b: str
    capture: Optional[str]
    linktype: str


class Lab(NamedTuple):
    """Every host and wire of a topology file."""

    hosts: dict[str, Host]
    wires: list[Any]

    def nic(self, ref: str) -> MockNic:
        """``"host:if"`` -> the NIC."""
        h, _, i = ref.partition(":")
        return nics(self.hosts[h])[i]

    def shutdown(self) -> None:
        for w in self.wires:
            w.close()
        for h in self.hosts.values():
            shutdown(h)


# --- parsing ------------------------------------------------------------------------

def _mac(text: str, where: str) -> bytes:
    try:
        b = bytes(int(x, 16) for x in text.split(":"))
    except ValueError:
        b = b""
    if len(b) != 6:
        raise TopologyError(f"{where}: bad lladdr {text!r}")
    return b


def _if_spec(d: Any, where: str) -> _IfSpec:
    if not isinstance(d, dict):
        raise TopologyError(f"{where}: an interface must be a table")
    unknown = set(d) - _IF_KEYS
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {sorted(unknown)}")
    name = d.get("name")
    if not isinstance(name, str) or not name or len(name) >= 16:
        raise TopologyError(f"{where}: an interface needs a name shorter than 16 characters")
    where = f"{where} ({name})"
    drv = d.get("driver")
    if drv not in DRIVERS:
        raise TopologyError(f"{where}: unknown driver {drv!r}; one of {sorted(DRIVERS)}")
    vlans: list[tuple[int, Optional[str]]] = []
    for v in d.get("vlans", []):
        if isinstance(v, int):
            vlans.append((v, None))
        elif isinstance(v, dict) and isinstance(v.get("vid"), int):
            vlans.append((v["vid"], v.get("name")))
        else:
            raise TopologyError(f"{where}: bad vlan {v!r}")
    opts = d.get("options", {})
    if not isinstance(opts, dict):
        raise TopologyError(f"{where}: options must be a table")
    if DRIVERS[drv] is IxgbeVf and "pf" not in d:
        raise TopologyError(f"{where}: an ixgbevf interface needs pf = \"<PF interface>\"")
    return _IfSpec(name, drv, int(d.get("mtu", 1500)), bool(d.get("ipsec", True)),
                   bool(d.get("up", True)), tuple(vlans),
                   _mac(d["lladdr"], where) if "lladdr" in d else None, dict(opts),
                   d.get("pf"), int(d.get("vf_id", 0)))


def _host_spec(d: dict[str, Any], where: str) -> _HostSpec:
    unknown = set(d) - _HOST_KEYS
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {sorted(unknown)}")
    poll = d.get("poll", "auto")
    if poll not in ("auto", POLL_THREAD, POLL_OFF):
        raise TopologyError(f"{where}: poll must be auto, thread or off")
    ifs = tuple(_if_spec(x, f"{where} interface #{i + 1}")
                for i, x in enumerate(d.get("interface", [])))
    names = [i.name for i in ifs]
    for n in names:
        if names.count(n) > 1:
            raise TopologyError(f"{where}: interface {n!r} defined twice")
    return _HostSpec(str(d.get("name", "model")), bool(d.get("loopback", False)), poll, ifs)


def parse_topology(text: str, where: str = "<topology>"
                   ) -> tuple[list[_HostSpec], list[_WireSpec]]:
    """Parse topology text into host and wire specs (raises TopologyError)."""
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{where}: {exc}") from None
    wires = []
    for i, w in enumerate(d.pop("wire", [])):
        if not isinstance(w, dict) or not isinstance(w.get("a"), str) \
                or not isinstance(w.get("b"), str):
            raise TopologyError(f"{where}: wire #{i + 1} needs a = \"host:if\" and b")
        lt = w.get("linktype", "raw")
        if lt not in ("raw", "ethernet"):
            raise TopologyError(f"{where}: wire #{i + 1}: linktype must be raw or ethernet")
        wires.append(_WireSpec(w["a"], w["b"], w.get("capture"), lt))
    if "host" in d:
        extra = set(d) - {"host"}
        if extra:
            raise TopologyError(f"{where}: with [[host]] tables, {sorted(extra)} must go "
                                "inside a host")
        hosts = [_host_spec(h, f"{where} host #{i + 1}") for i, h in enumerate(d["host"])]
    else:
        hosts = [_host_spec(d, where)]
    hn = [h.name for h in hosts]
    for n in hn:
        if hn.count(n) > 1:
            raise TopologyError(f"{where}: host {n!r} defined twice")
    return hosts, wires


def _read(path: Optional[str | os.PathLike[str]], text: Optional[str]) -> tuple[str, str]:
    if text is not None:
        return text, "<topology>"
    if path is None:
        return DEFAULT_TOPOLOGY, "<default topology>"
    with open(path, "rb") as f:
        return f.read().decode(), os.fspath(path)


# --- building -----------------------------------------------------------------------

def _make_nic(spec: _IfSpec, poll: str, built: dict[str, MockNic], host_name: str,
              where: str) -> MockNic:
    cls = DRIVERS[spec.driver]
    kw: dict[str, Any] = dict(spec.options)
    kw.setdefault("mtu", spec.mtu)
    kw.setdefault("ipsec", spec.ipsec)
    kw.setdefault("up", spec.up)
    kw.setdefault("poll", poll)
    if spec.lladdr is not None:
        kw.setdefault("lladdr", spec.lladdr)
    if cls is IxgbeVf:
        assert spec.pf is not None
        ref = spec.pf if ":" in spec.pf else f"{host_name}:{spec.pf}"
        pf = built.get(ref)
        if not isinstance(pf, IxgbePf):
            raise TopologyError(f"{where} ({spec.name}): pf {spec.pf!r} is not an ixgbe "
                                "interface defined before it")
        kw["pf"] = pf
        kw.setdefault("vf_id", spec.vf_id)
    try:
        return cls(spec.name, **kw)
    except TypeError as exc:
        raise TopologyError(f"{where} ({spec.name}): {exc}") from None
    except ValueError as exc:
        raise TopologyError(f"{where} ({spec.name}): {exc}") from None


def _populate(host: Host, hs: _HostSpec, poll: str, built: dict[str, MockNic],
              where: str) -> None:
    reg = host.ifnets
    add_hook = getattr(host, "add_stop_hook", None)
    if add_hook is not None:
        # Device detach before the IPsec module unloads: the NICs' threads
        # stop first thing in host.stop().
        add_hook(lambda: _shutdown_nics(host))
    if hs.loopback:
        reg.if_clone_create("lo0")
        lo = reg.ifunit("lo0")
        if lo is not None:
            reg.if_setupdown(lo, True)
    for spec in hs.interfaces:
        nic = _make_nic(spec, poll, built, hs.name, where)
        nic.attach(host)
        built[f"{hs.name}:{spec.name}"] = nic
        for vid, vname in spec.vlans:
            name = vname or f"{spec.name}.{vid}"
            err, created = reg.if_clone_create(name, VlanParams(vid, spec.name))
            if err:
                raise TopologyError(f"{where} ({spec.name}): vlan {vid} as {name!r}: "
                                    f"{os.strerror(err)}")
            v = reg.ifunit(created)
            if v is not None and spec.up:
                reg.if_setupdown(v, True)


def _poll_mode(requested: str, override: Optional[str], clock: Clock) -> str:
    mode = override if override is not None else requested
    if mode == "auto":
        return POLL_OFF if isinstance(clock, FakeClock) else POLL_THREAD
    return mode


def build_host(path: Optional[str | os.PathLike[str]] = None, *, clock: Optional[Clock] = None,
               text: Optional[str] = None, host: Optional[str] = None,
               poll: Optional[str] = None, **kw: Any) -> Host:
    """Build one :class:`Host` from a topology file (``path``), topology
    ``text``, or :data:`DEFAULT_TOPOLOGY`; in a multi-host file ``host``
    names which one (wires are ignored: use :func:`build_lab`).

    ``clock`` and ``**kw`` go to ``Host`` (``taskqueue_mode``, ``offload``,
    ``timer``, ``name``...); ``poll`` overrides the file's poll mode.
    Interfaces are attached in file order (V_ifnet order), brought up, their
    vlans created; ``host.stop()`` stops the NICs' threads first.  Find a
    NIC with ``nics(host)["mce0"]`` or ``host.ifnets["mce0"].if_softc``."""
    src, where = _read(path, text)
    hosts, _wires = parse_topology(src, where)
    if host is None:
        if len(hosts) != 1:
            raise TopologyError(f"{where}: {len(hosts)} hosts; say which (host=...)")
        hs = hosts[0]
    else:
        match = [h for h in hosts if h.name == host]
        if not match:
            raise TopologyError(f"{where}: no host {host!r}")
        hs = match[0]
    kw.setdefault("name", hs.name)
    h = Host(clock=clock, **kw)
    try:
        _populate(h, hs, _poll_mode(hs.poll, poll, h.clock), {}, where)
    except BaseException:
        shutdown(h)
        raise
    return h


def build_lab(path: Optional[str | os.PathLike[str]] = None, *, text: Optional[str] = None,
              clock: Optional[Clock] = None, poll: Optional[str] = None,
              **kw: Any) -> Lab:
    """Build every host of a file (sharing ``clock``) and its wires."""
    from ipsec_accel.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW
    from ipsec_accel.wire import Wire

    src, where = _read(path, text)
    specs, wspecs = parse_topology(src, where)
    hosts: dict[str, Host] = {}
    built: dict[str, MockNic] = {}
    wires: list[Any] = []
    try:
        for hs in specs:
            h = Host(clock=clock, **dict(kw, name=hs.name))
            hosts[hs.name] = h
            _populate(h, hs, _poll_mode(hs.poll, poll, h.clock), built, where)
        for i, ws in enumerate(wspecs):
            ends = []
            for ref in (ws.a, ws.b):
                if ref not in built:
                    raise TopologyError(f"{where}: wire #{i + 1}: no interface {ref!r}")
                ends.append(built[ref])
            w = Wire(f"wire{i}", capture=ws.capture,
                     linktype=LINKTYPE_ETHERNET if ws.linktype == "ethernet" else LINKTYPE_RAW,
                     clock=clock)
            ends[0].connect(w.a)
            ends[1].connect(w.b)
            wires.append(w)
    except BaseException:
        Lab(hosts, wires).shutdown()
        raise
    return Lab(hosts, wires)


def nics(host: Host) -> dict[str, MockNic]:
    """The mock NICs attached to ``host`` (vlans excluded), by name, in
    attach order."""
    out: dict[str, MockNic] = {}
    for ifp in host.ifnets:
        sc = ifp.if_softc
        if isinstance(sc, MockNic):
            out[ifp.if_xname] = sc
    return out


def _shutdown_nics(host: Host) -> None:
    for nic in nics(host).values():
        nic.shutdown()


def shutdown(host: Host, timeout: float = 5.0) -> None:
    """Stop every NIC's threads (counter polls, PF mailboxes), then the host
    (``host.stop()`` alone does the same for hosts built here)."""
    _shutdown_nics(host)
    host.stop(timeout)

