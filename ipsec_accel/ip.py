"""A minimal IPv4/IPv6 layer per host: the parts of ``sys/netinet/ip_input.c``,
``ip_output.c``, ``ip_fastfwd.c``/``ip_forward``, ``ip_reass.c``,
``netinet6/ip6_input.c``/``ip6_output.c`` and ``net/route`` that IPsec sits
in, so that real packets flow between model hosts.

* **Addresses and routes**: :meth:`IpLayer.add_address` (``ifconfig mce0
  inet 10.0.0.1/24``: a local address and its connected route),
  :meth:`IpLayer.add_route` (``route add``), longest-prefix match with a
  per-destination cache.  Wires carry IP datagrams (no ARP/ND): the route
  only chooses the interface.
* **Output** (:meth:`IpLayer.ip_output`): route lookup (ips_noroute), then
  ``IPSEC_OUTPUT(ifp, m, inp, mtu)`` -- :func:`ipsec_accel.ipsec_output.
  ipsec_output`, which offloads, tags BYPASS, consumes (software ESP, sent
  through ip_output again with IP_RAWOUTPUT) or drops -- then IPv4
  fragmentation when the packet exceeds the MTU (unless DF or TSO:
  ips_cantfrag; IPv6 packets are not fragmented at the source here) and
  ``ifp->if_transmit``.  The NIC frees the mbuf.
* **Input** (:meth:`IpLayer.ip_input`, installed as ``if_input`` on every
  interface of the host): header checks (ips_badvers, ips_badhlen,
  ips_badsum, ips_tooshort, ips_badlen), trailing bytes trimmed; for this
  host: reassembly (:mod:`ipsec_accel.ip_frag`), ``IPSEC_INPUT`` (:func:`ipsec_accel.ipsec_input.
  ipsec_input`: ACCEL_IN tags, ESP, ESP-in-UDP on NAT-T ports), the inbound
  policy check ``ipsec4_in_reject`` and delivery to a :class:`Sink`
  (counters per protocol and port); otherwise forwarding when
  net.inet.ip.forwarding is on (``ipsec4_forward``: the inbound check, then
  IPsec output with **no ifp** -- forwarded traffic is never offloaded), else
  ips_cantforward.  IPsec-decrypted packets come back through
  :meth:`IpLayer.netisr_input` (FreeBSD's netisr requeue).
* **Hooks for benchmarks**: :attr:`IpLayer.xmit_override` replaces
  ``if_transmit`` (e.g. :func:`null_transmit`, which reads the tag with the
  drivers' accessor and frees the mbuf), so the host path can be timed
  without a NIC or a wire; :meth:`IpLayer.ip_input` can be fed prebuilt
  mbufs.

Threads: any number of threads may send and receive; counters are
per-thread slots (:mod:`ipsec_accel.ipsecstat`); the route and flow caches
are read lock-free and rebuilt under ``_lock``.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import itertools
import threading
from typing import Any, Callable, Final, Optional, Union

from .accel_tag import TAG_MTAG, ipsec_accel_out_drv_spi
from .ifnet import Ifnet
from .ip_frag import ip_fragment, ip_reass
from .ipsec_input import ipsec4_in_reject, ipsec_forward, ipsec_input, udp_ipsec_input
from .ipsec_output import IP_RAWOUTPUT, ipsec_output
from .ipsec_state import MODE_AUTO, Inpcb, Ipsec
from .mbuf import CSUM_L3_CALC, CSUM_TSO, Mbuf, m_freem
from .packet import (
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, PacketError, ipv6_upper_layer,
    ones_sum,
)

__all__ = ["IpLayer", "Route", "Sink", "null_transmit", "ip_attach", "IP_FORWARDING",
           "IP_RAWOUTPUT"]

#: sysctl net.inet.ip.forwarding default (a host, not a router).
IP_FORWARDING: Final = 0
_EINPROGRESS: Final = _errno.EINPROGRESS

AddrLike = Union[str, bytes, ipaddress.IPv4Address, ipaddress.IPv6Address]


class Route:
    """One route: destination prefix -> interface (``mtu`` 0: the
    interface's)."""

    __slots__ = ("net", "plen", "ifp", "mtu", "_mask", "_width")

    def __init__(self, net: bytes, plen: int, ifp: Ifnet, mtu: int = 0) -> None:
        self.net = net
        self.plen = plen
        self.ifp = ifp
        self.mtu = mtu
        self._width = 8 * len(net)
        self._mask = ((1 << plen) - 1) << (self._width - plen) if plen else 0

    def matches(self, dst: bytes) -> bool:
        if len(dst) != len(self.net):
            return False
        m = self._mask
        return (int.from_bytes(dst, "big") & m) == (int.from_bytes(self.net, "big") & m)

    def __repr__(self) -> str:
        return (f"<Route {ipaddress.ip_address(self.net)}/{self.plen} -> "
                f"{self.ifp.if_xname}{f' mtu {self.mtu}' if self.mtu else ''}>")


class Sink:
    """What a socket bound to (``proto``, ``port``) receives (port 0: every
    packet of the protocol no other sink took).  ``inp`` is its inpcb (the
    inbound policy check sees ports).  ``keep`` > 0 keeps that many last
    packets (bytes) in ``received``; ``callback(m)`` runs per packet."""

    __slots__ = ("proto", "port", "packets", "bytes", "keep", "received", "inp", "callback",
                 "_lock")

    def __init__(self, proto: int, port: int = 0, *, keep: int = 0,
                 callback: Optional[Callable[[Mbuf], Any]] = None) -> None:
        self.proto = proto
        self.port = port
        self.packets = 0
        self.bytes = 0
        self.keep = keep
        self.received: list[bytes] = []
        self.inp = Inpcb(proto, f"sink:{proto}/{port}")
        self.callback = callback
        self._lock = threading.Lock()

    def deliver(self, m: Mbuf) -> None:
        with self._lock:            # sockbuf lock: exact counts across threads
            self.packets += 1
            self.bytes += m.len
            if self.keep:
                self.received.append(bytes(m.data))
                if len(self.received) > self.keep:
                    del self.received[0]
        cb = self.callback
        if cb is not None:
            cb(m)

    def reset(self) -> None:
        with self._lock:
            self.packets = self.bytes = 0
            self.received.clear()

    def __repr__(self) -> str:
        return f"<Sink {self.proto}/{self.port} packets={self.packets} bytes={self.bytes}>"


def null_transmit(ifp: Any, m: Mbuf) -> int:
    """An ``if_transmit`` for benchmarks: read the tag as a driver would
    (the one accessor), free the mbuf, send nothing."""
    ipsec_accel_out_drv_spi(m)
    m_freem(m)
    return 0


class IpLayer:
    """A host's IP layer (module docstring).  ``host``: the
    :class:`ipsec_accel.host.Host`; ``tag_strategy``, ``mode``,
    ``share_esp_state`` go to :class:`ipsec_accel.ipsec_state.Ipsec`."""

    def __init__(self, host: Any, *, tag_strategy: str = TAG_MTAG, mode: str = MODE_AUTO,
                 share_esp_state: bool = True) -> None:
        self.host = host
        self.ipsec = Ipsec(host, tag_strategy=tag_strategy, mode=mode,
                           share_esp_state=share_esp_state)
        self.ipsec.ip = self
        self.stats = self.ipsec.stats
        self.forwarding = IP_FORWARDING
        self._lock = threading.Lock()
        self._addrs: dict[bytes, Ifnet] = {}
        self._ifaddrs: dict[Ifnet, list[tuple[bytes, int]]] = {}
        self._routes: list[Route] = []
        self._rtcache: dict[bytes, Optional[tuple[Ifnet, int]]] = {}
        self._ident = itertools.count(1)
        # ip_reass's queues: (src, dst, id, proto) -> (offset, more fragments,
        # payload, mbuf) per fragment.
        self._reass: dict[tuple[bytes, bytes, bytes, int],
                          list[tuple[int, bool, bytes, Mbuf]]] = {}
        self.sinks: dict[tuple[int, int], Sink] = {}
        #: Replaces if_transmit when set (benchmarks; see null_transmit).
        self.xmit_override: Optional[Callable[[Any, Mbuf], int]] = None
        #: Answer ICMP/ICMPv6 echo requests (off: traffic stays one-way).
        self.echo_reply = False
        self._tags: list[tuple[Any, int]] = []
        reg = host.ifnets
        for ev, fn in ((reg.ifnet_arrival_event, self._ifattach),
                       (reg.ifnet_departure_event, self._ifdetach),
                       (reg.ifnet_event, self._ifevent)):
            self._tags.append((ev, ev.register(fn)))
        for ifp in reg:
            self._ifattach(ifp)

    # -- interfaces ------------------------------------------------------------------

    def _ifattach(self, ifp: Ifnet) -> None:
        if ifp.if_input is None:
            ifp.if_input = self.ip_input
        sc = ifp.if_softc
        if sc is not None and hasattr(sc, "esp_state_factory") and sc.esp_state_factory is None:
            sc.esp_state_factory = self.ipsec.esp_state_factory
        self.ipsec.invalidate_ifmodes()

    def _ifdetach(self, ifp: Ifnet) -> None:
        from .ifnet import IFF_RENAMING
        if ifp.if_flags & IFF_RENAMING:
            return
        with self._lock:
            for a, _ in self._ifaddrs.pop(ifp, []):
                if self._addrs.get(a) is ifp:
                    del self._addrs[a]
            self._routes = [r for r in self._routes if r.ifp is not ifp]
            self._rtcache = {}
        self.ipsec.tags.forget_ifp(ifp)
        self.ipsec.invalidate_ifmodes()

    def _ifevent(self, ifp: Ifnet, event: int) -> None:
        # An interface went up or down: handles may be gone (on_ifdown).
        self.ipsec.tags.sweep()
        self.ipsec.invalidate_ifmodes()

    def detach(self) -> None:
        """Unhook from the host (host stop)."""
        for ev, tag in self._tags:
            ev.deregister(tag)
        self._tags.clear()
        self.ipsec.flush()

    def _ifp(self, ifp: Union[str, Ifnet]) -> Ifnet:
        if isinstance(ifp, str):
            return self.host.ifnets[ifp]  # type: ignore[no-any-return]
        return ifp

    def add_address(self, ifp: Union[str, Ifnet], cidr: str) -> bytes:
        """``ifconfig IF inet[6] ADDR/PLEN [alias]``: a local address and its
        connected route.  Returns the address bytes."""
        itf = ipaddress.ip_interface(cidr)
        ifn = self._ifp(ifp)
        a = itf.ip.packed
        with self._lock:
            self._addrs[a] = ifn
            self._ifaddrs.setdefault(ifn, []).append((a, itf.network.prefixlen))
        self.add_route(str(itf.network), ifn)
        return a

    def del_address(self, cidr: str) -> None:
        itf = ipaddress.ip_interface(cidr)
        a = itf.ip.packed
        with self._lock:
            ifn = self._addrs.pop(a, None)
            if ifn is not None:
                self._ifaddrs[ifn] = [x for x in self._ifaddrs.get(ifn, []) if x[0] != a]
            self._routes = [r for r in self._routes
                            if not (r.ifp is ifn and r.net == itf.network.network_address.packed
                                    and r.plen == itf.network.prefixlen)]
            self._rtcache = {}

    def addresses(self) -> dict[str, str]:
        """Local address -> interface name."""
        return {str(ipaddress.ip_address(a)): i.if_xname for a, i in self._addrs.items()}

    def is_local(self, addr: bytes) -> bool:
        return addr in self._addrs

    def add_route(self, prefix: str, ifp: Union[str, Ifnet], *, mtu: int = 0) -> Route:
        """``route add PREFIX -interface IF [-mtu N]`` ("default" works)."""
        if prefix == "default":
            prefix = "0.0.0.0/0"
        elif prefix == "default6":
            prefix = "::/0"
        net = ipaddress.ip_network(prefix, strict=False)
        r = Route(net.network_address.packed, net.prefixlen, self._ifp(ifp), mtu)
        with self._lock:
            self._routes = sorted(self._routes + [r], key=lambda x: -x.plen)
            self._rtcache = {}
        return r

    def del_route(self, prefix: str) -> int:
        net = ipaddress.ip_network(prefix, strict=False)
        a, p = net.network_address.packed, net.prefixlen
        with self._lock:
            before = len(self._routes)
            self._routes = [r for r in self._routes if not (r.net == a and r.plen == p)]
            self._rtcache = {}
            return before - len(self._routes)

    def routes(self) -> list[Route]:
        return list(self._routes)

    def rtlookup(self, dst: bytes) -> Optional[tuple[Ifnet, int]]:
        """fib4_lookup / fib6_lookup: (ifp, mtu) of the longest matching
        route, or None."""
        c = self._rtcache
        rt = c.get(dst, 0)
        if rt != 0:
            return rt  # type: ignore[return-value]  # not the 0 default: a cached route
        res = None
        for r in self._routes:
            if r.matches(dst):
                res = (r.ifp, r.mtu or r.ifp.if_mtu)
                break
        if len(c) >= 65536:
            c.clear()
        c[dst] = res
        return res

    def next_ident(self) -> int:
        """ip_fillid: the next IPv4 identification."""
        return next(self._ident) & 0xFFFF

    # -- sinks -----------------------------------------------------------------------

    def bind(self, proto: int, port: int = 0, **kw: Any) -> Sink:
        """A socket receiving ``proto`` packets (to ``port``; 0 = any)."""
        s = Sink(proto, port, **kw)
        self.sinks[(proto, port)] = s
        return s

    def sink(self, proto: int, port: int = 0) -> Sink:
        """The sink for (proto, port), created on first use."""
        s = self.sinks.get((proto, port))
        if s is None:
            s = self.bind(proto, port)
        return s

    def delivered(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(proto, port) -> (packets, bytes) delivered to sockets."""
        return {k: (s.packets, s.bytes) for k, s in self.sinks.items()}

    # -- output ----------------------------------------------------------------------

    def send(self, data: bytes | bytearray, inp: Optional[Inpcb] = None,
             csum_flags: int = 0) -> int:
        """Send one datagram from a socket (``inp``; None: a raw send
        without ports in the policy lookup).  Returns ip_output's errno."""
        m = Mbuf(bytes(data), csum_flags=csum_flags)
        return self.ip_output(m, inp)

    def ip_output(self, m: Mbuf, inp: Optional[Inpcb] = None, flags: int = 0) -> int:
        """ip_output / ip6_output (module docstring).  Consumes ``m``."""
        data = m.data
        try:
            s = self.stats.tls.s.ip
        except AttributeError:
            s = self.stats.pcpu().ip
        if flags & IP_RAWOUTPUT:
            s.ips_rawout += 1
        else:
            s.ips_localout += 1
        v = data[0] >> 4 if data else 0
        # The route cache key: the packet is bytes (or a read-only memoryview,
        # which hashes and compares as bytes) -- a narrowing mypy cannot see
        # on Mbuf.data; no cast on the per-packet path.
        dst: bytes = data[16:20] if v == 4 else data[24:40]  # type: ignore[assignment]
        rt = self._rtcache.get(dst, 0)
        if rt == 0:
            rt = self.rtlookup(dst)
        if rt is None:
            s.ips_noroute += 1
            m_freem(m)
            return _errno.EHOSTUNREACH
        ifp, mtu = rt  # type: ignore[misc]  # rt != 0 here; mypy does not narrow on ==
        error = ipsec_output(self.ipsec, ifp, m, inp, mtu)
        if error:
            return 0 if error == _EINPROGRESS else error
        # _transmit and if_output, inlined (the per-packet path).
        if m.len > mtu and not m.csum_flags & CSUM_TSO:
            return self._fragment(ifp, m, mtu, s)
        xmit = self.xmit_override or ifp.if_transmit
        if xmit is None:
            s.ips_odropped += 1
            m_freem(m)
            return _errno.ENXIO
        error = xmit(ifp, m)
        if error:
            s.ips_odropped += 1
        return error

    def _transmit(self, ifp: Ifnet, m: Mbuf, mtu: int, s: Any) -> int:
        if m.len > mtu and not m.csum_flags & CSUM_TSO:
            return self._fragment(ifp, m, mtu, s)
        return self.if_output(ifp, m)

    def if_output(self, ifp: Any, m: Mbuf) -> int:
        """Hand ``m`` to the interface (if_transmit, or the override)."""
        xmit = self.xmit_override or ifp.if_transmit
        if xmit is None:
            self.stats.pcpu().ip.ips_odropped += 1
            m_freem(m)
            return _errno.ENXIO
        error = xmit(ifp, m)
        if error:
            self.stats.pcpu().ip.ips_odropped += 1
        return error

    def _fragment(self, ifp: Ifnet, m: Mbuf, mtu: int, s: Any) -> int:
        return ip_fragment(self, ifp, m, mtu, s)

    # -- input -----------------------------------------------------------------------

    def ip_input(self, ifp: Any, m: Mbuf) -> None:
        """ip_input / ip6_input: the ``if_input`` of every interface."""
        s = self.stats.pcpu().ip
        s.ips_total += 1
        data = m.data
        if data.__class__ is not bytes:
            data = bytes(data)
            m.set_data(data)
        n = len(data)
        if n < 1:
            s.ips_tooshort += 1
            m_freem(m)
            return
        v = data[0] >> 4
        if v == 4:
            if n < 20:
                s.ips_toosmall += 1
                m_freem(m)
                return
            hl = (data[0] & 0x0F) << 2
            if hl < 20 or hl > n:
                s.ips_badhlen += 1
                m_freem(m)
                return
            if not m.csum_flags & CSUM_L3_CALC and ones_sum(data[:hl]) != 0xFFFF:
                s.ips_badsum += 1
                m_freem(m)
                return
            tlen = (data[2] << 8) | data[3]
            if tlen < hl:
                s.ips_badlen += 1
                m_freem(m)
                return
            if tlen > n:
                s.ips_tooshort += 1
                m_freem(m)
                return
            if n > tlen:
                data = data[:tlen]
                m.set_data(data)
            dst = data[16:20]
            if dst not in self._addrs:
                self._not_ours(m, ifp, s)
                return
            if (data[6] & 0x3F) or data[7]:
                m = ip_reass(self, m, s)  # type: ignore[assignment]  # None checked next
                if m is None:
                    return
                data = m.data
            self._deliver(m, hl, data[9], s)
            return
        if v == 6:
            if n < 40:
                s.ips_toosmall += 1
                m_freem(m)
                return
            tlen = 40 + ((data[4] << 8) | data[5])
            if tlen > n:
                s.ips_tooshort += 1
                m_freem(m)
                return
            if n > tlen:
                data = data[:tlen]
                m.set_data(data)
            if data[24:40] not in self._addrs:
                self._not_ours(m, ifp, s)
                return
            try:
                proto, off, _ = ipv6_upper_layer(data, data[6])
            except (PacketError, IndexError):
                s.ips_badlen += 1
                m_freem(m)
                return
            self._deliver(m, off, proto, s)
            return
        s.ips_badvers += 1
        m_freem(m)

    def netisr_input(self, m: Mbuf) -> None:
        """netisr_queue(NETISR_IP/IPV6): a decapsulated packet re-enters
        ip_input (with its tags and M_DECRYPTED)."""
        self.ip_input(m.rcvif, m)

    def _deliver(self, m: Mbuf, off: int, proto: int, s: Any) -> None:
        ipsec = self.ipsec
        error = ipsec_input(ipsec, m, off, proto)
        if error:
            return
        data = m.data
        port = 0
        if proto == IPPROTO_UDP or proto == IPPROTO_TCP:
            if off + 4 <= len(data):
                port = (data[off + 2] << 8) | data[off + 3]
            if proto == IPPROTO_UDP and port in ipsec.natt_ports and \
                    udp_ipsec_input(ipsec, m, off):
                return
        sink = self.sinks.get((proto, port)) or self.sinks.get((proto, 0))
        inp = sink.inp if sink is not None and proto in (IPPROTO_TCP, IPPROTO_UDP) else None
        if ipsec4_in_reject(ipsec, m, inp):
            m_freem(m)
            return
        s.ips_delivered += 1
        if sink is None:
            sink = self.sink(proto, 0)
        sink.deliver(m)
        if self.echo_reply and proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            self._echo(m, off, proto)
        m_freem(m)

    def _echo(self, m: Mbuf, off: int, proto: int) -> None:
        from .packet import icmp_echo
        data = bytes(m.data)
        want = 8 if proto == IPPROTO_ICMP else 128
        if off + 8 > len(data) or data[off] != want:
            return
        v6 = data[0] >> 4 == 6
        src, dst = (data[8:24], data[24:40]) if v6 else (data[12:16], data[16:20])
        ident = int.from_bytes(data[off + 4:off + 6], "big")
        seq = int.from_bytes(data[off + 6:off + 8], "big")
        self.send(icmp_echo(dst, src, ident, seq, data[off + 8:], reply=True))

    def _not_ours(self, m: Mbuf, ifp: Any, s: Any) -> None:
        if not self.forwarding:
            s.ips_cantforward += 1
            m_freem(m)
            return
        self.ip_forward(m)

    def ip_forward(self, m: Mbuf) -> int:
        """ip_forward / ip6_forward: TTL, route, ipsec4_forward (module
        docstring), transmit.  Consumes ``m``."""
        s = self.stats.pcpu().ip
        data = bytearray(m.data)
        v6 = data[0] >> 4 == 6
        if v6:
            if data[7] <= 1:
                s.ips_cantforward += 1
                m_freem(m)
                return _errno.EHOSTUNREACH
            data[7] -= 1
            dst = bytes(data[24:40])
        else:
            if data[8] <= 1:
                s.ips_cantforward += 1
                m_freem(m)
                return _errno.EHOSTUNREACH
            data[8] -= 1
            hl = (data[0] & 0x0F) << 2
            data[10:12] = b"\0\0"
            cs = ~ones_sum(bytes(data[:hl])) & 0xFFFF
            data[10:12] = cs.to_bytes(2, "big")
            dst = bytes(data[16:20])
        m.set_data(bytes(data))
        rt = self.rtlookup(dst)
        if rt is None:
            s.ips_noroute += 1
            s.ips_cantforward += 1
            m_freem(m)
            return _errno.EHOSTUNREACH
        error = ipsec_forward(self.ipsec, m)
        if error:
            # Consumed by IPsec (sent protected, or dropped).
            if error != _EINPROGRESS:
                s.ips_cantforward += 1
                return error
            return 0
        s.ips_forward += 1
        ifp, mtu = rt
        return self._transmit(ifp, m, mtu, s)

    # -- introspection -------------------------------------------------------------------

    def netstat(self, proto: str = "ip") -> str:
        """``netstat -s -p ip|ipsec|esp|accel``."""
        from . import ipsecstat as S
        st = self.stats
        if proto == "ip":
            return S.netstat_ip(st.ip())
        if proto == "ipsec":
            return S.netstat_ipsec(st.ipsec())
        if proto == "esp":
            return S.netstat_esp(st.esp())
        if proto == "accel":
            return S.netstat_accel(st.accel())
        raise ValueError(f"unknown protocol {proto!r}")

    def __repr__(self) -> str:
        return (f"<IpLayer {self.host.name} addrs={len(self._addrs)} "
                f"routes={len(self._routes)}>")


def ip_attach(host: Any, **kw: Any) -> IpLayer:
    """Attach an IP layer (and its IPsec state) to ``host``."""
    return IpLayer(host, **kw)

