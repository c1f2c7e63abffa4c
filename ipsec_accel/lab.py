"""A lab bench of model hosts joined by wires: build one, configure it with
real PF_KEY messages (setkey text), push traffic through it, read the
counters, export the kernel's SAs for Wireshark.

Models no FreeBSD file; it is the test rig of issue 6 items 7-9 and the API
the traffic command and the benchmarks use::

    from ipsec_accel.lab import Lab
    lab = Lab.build("mlx5", capture="a-b.pcap")      # hosts a, b; wire a:mce0-b:mce0
    lab.install_transport()                          # SPs + SAs on both, via PF_KEY
    r = lab.push(1000, size=1400, proto="udp")       # a -> b
    print(r.delivered, r.paths, r.drops, r.pps)
    lab.poll(); print(lab.setkey_dump("a"))          # NIC counters -> lifetimes; setkey -D
    lab.export_esp_sa("esp_sa")                      # Wireshark's ESP SA table
    lab.set_mode("software"); lab.set_tag_strategy("sndtag")
    step = lab.host_path(size=64)                    # one packet through a's host path
    lab.shutdown()

Building: :meth:`Lab.build` writes a two-host topology for a NIC profile
(:data:`PROFILES`; ``ixgbevf`` gets its PF, trust and the PF's vf-ipsec
flag) and hands it to a *builder* -- by default ``drivers.topology.build_lab``,
looked up at run time because ``ipsec_accel`` never imports ``drivers``
statically (pass ``builder=`` to use another).  Profiles whose driver needs
the SA direction (ixgbevf: RX only; chelsio: TX only) get the offload
layer's ``sa_direction`` extension, so the lab installs policies before SAs.
:meth:`Lab.from_hosts` wraps hosts and wires built elsewhere.

Topology text, :class:`TrafficResult` and the Wireshark export live in
:mod:`ipsec_accel.lab_setup` (re-exported here).

Time: one :class:`pfkey.clock.FakeClock` for every host (pcap timestamps,
lifetimes); :meth:`Lab.tick` moves it one second at a time and runs every
host's key timer.  NIC counter polls are off; :meth:`Lab.poll` runs them.
"""

from __future__ import annotations

import errno as _errno
import os
import time
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from pfkey.clock import Clock, FakeClock
from pfkey.keydb import secasvar
from pfkey.message import decode
from pfkey.pfkey_dump import pfkey_sadump, pfkey_spdump
from pfkey.pfkeyv2 import SADB, SADB_SATYPE
from pfkey.setkey_parse import SetkeyParser

from .ip import null_transmit
from .ipsec_state import Inpcb
from .lab_setup import (
    _IFNAME, _NEED_DIRECTION, _NIC_TRAFFIC, _PROTO, DEFAULT_KEY, PROFILES, LabError,
    TrafficResult, _default_builder, esp_sa_entries, lab_topology, write_wireshark_sa,
)
from .mbuf import Mbuf
from .packet import make_packet
from .taskqueue import TqMode

__all__ = ["Lab", "TrafficResult", "PROFILES", "lab_topology", "esp_sa_entries",
           "write_wireshark_sa", "LabError", "DEFAULT_KEY"]


class Lab:
    """Hosts and wires (module docstring).  ``hosts`` by name (the first two
    are ``a`` and ``b`` in :meth:`build`), ``ifname`` the wired interface of
    each host, ``addrs`` its address."""

    def __init__(self, hosts: dict[str, Any], wires: list[Any], *, ifname: dict[str, str],
                 addrs: dict[str, str], clock: Clock, profile: str = "") -> None:
        self.hosts = hosts
        self.wires = wires
        self.ifname = ifname
        self.addrs = addrs
        self.clock = clock
        self.profile = profile
        self.names = list(hosts)
        self._pid = 4242
        self._seq = 0

    # -- building --------------------------------------------------------------------

    @classmethod
    def build(cls, profile: str = "mlx5", *, af: int = 4, capture: Optional[str] = None,
              clock: Optional[Clock] = None, mtu: int = 1500, ipsec: bool = True,
              modes: Optional[Sequence[str]] = None, mode: str = "auto",
              tag_strategy: str = "mtag", share_esp_state: bool = True,
              extensions: Iterable[str] = (), nic_options: Optional[dict[str, Any]] = None,
              taskqueue_mode: TqMode = TqMode.INLINE,
              builder: Optional[Callable[..., Any]] = None) -> "Lab":
        """A two-host lab ``a`` -- ``b`` with one ``profile`` NIC each,
        addresses 10.0.0.1/24 and .2 (``af=6``: 2001:db8::1/64 and ::2),
        IP layers with ``mode`` and ``tag_strategy``.  ``modes``: the NICs'
        offload modes, preferred first (their RX mode); ``extensions``: the
        offload layer's (``sa_direction`` added for ixgbevf and chelsio)."""
        clock = clock if clock is not None else FakeClock(1_735_689_600)
        exts = set(extensions)
        if profile in _NEED_DIRECTION:
            exts.add("sa_direction")
        text = lab_topology(profile, mtu=mtu, ipsec=ipsec, capture=capture, modes=modes,
                            options=nic_options)
        build = builder if builder is not None else _default_builder()
        raw = build(text=text, clock=clock, poll="off", taskqueue_mode=taskqueue_mode,
                    offload_options={"extensions": sorted(exts)},
                    ip_options={"mode": mode, "tag_strategy": tag_strategy,
                                "share_esp_state": share_esp_state})
        hosts = dict(raw.hosts)
        ifn = _IFNAME[profile]
        addrs = {"a": "10.0.0.1", "b": "10.0.0.2"} if af == 4 else \
            {"a": "2001:db8::1", "b": "2001:db8::2"}
        plen = 24 if af == 4 else 64
        for name, a in addrs.items():
            hosts[name].ip.add_address(ifn, f"{a}/{plen}")
        return cls(hosts, list(raw.wires), ifname={n: ifn for n in hosts}, addrs=addrs,
                   clock=clock, profile=profile)

    @classmethod
    def from_hosts(cls, hosts: dict[str, Any], wires: list[Any], *, ifname: dict[str, str],
                   addrs: dict[str, str], clock: Optional[Clock] = None) -> "Lab":
        """Wrap hosts built elsewhere (their addresses already configured)."""
        first = next(iter(hosts.values()))
        return cls(hosts, wires, ifname=ifname, addrs=addrs,
                   clock=clock if clock is not None else first.clock)

    @property
    def a(self) -> Any:
        return self.hosts[self.names[0]]

    @property
    def b(self) -> Any:
        return self.hosts[self.names[1]]

    def host(self, h: Union[str, Any]) -> Any:
        return self.hosts[h] if isinstance(h, str) else h

    def _name(self, h: Union[str, Any]) -> str:
        if isinstance(h, str):
            return h
        for n, x in self.hosts.items():
            if x is h:
                return n
        raise KeyError(h)

    def ifp(self, h: Union[str, Any]) -> Any:
        """The wired interface of host ``h``."""
        return self.host(h).ifnets[self.ifname[self._name(h)]]

    def nic(self, h: Union[str, Any]) -> Any:
        """The NIC (driver softc) behind the wired interface of ``h``."""
        return self.ifp(h).if_softc

    def nics(self) -> dict[str, Any]:
        """``host.ifname`` -> NIC, for every NIC of every host."""
        out = {}
        for n, host in self.hosts.items():
            for ifp in host.ifnets:
                sc = ifp.if_softc
                if sc is not None and hasattr(sc, "poll_now"):
                    out[f"{n}.{ifp.if_xname}"] = sc
        return out

    # -- PF_KEY ----------------------------------------------------------------------

    def setkey(self, h: Union[str, Any], script: str, *, check: bool = True) -> list[bytes]:
        """Run setkey statements on host ``h`` through a PF_KEY socket (what
        ``setkey -c`` does); returns every reply.  ``check``: raise
        :class:`LabError` on the first reply carrying an errno."""
        host = self.host(h)
        so = host.socket()
        replies: list[bytes] = []
        try:
            parser = SetkeyParser(pid=self._pid)
            for st in parser.parse(script):
                for msg in st.messages:
                    data = msg.encode()
                    host.settle_for(data)
                    so.send(data)
                    for r in so.recv_all():
                        replies.append(r)
                        if check and r[2]:
                            raise LabError(f"{self._name(h)}: line {st.lineno} "
                                           f"({st.command}): {os.strerror(r[2])} "
                                           f"(FreeBSD errno {r[2]})")
        finally:
            so.close()
        host.sync()
        return replies

    def install_transport(self, *, spi_ab: int = 0x1000, spi_ba: int = 0x1001,
                          enc: str = "aes-gcm-16", key: str = DEFAULT_KEY,
                          auth: Optional[str] = None, auth_key: Optional[str] = None,
                          replay: int = 0, esn: bool = False, level: str = "require",
                          proto: str = "any", natt: Optional[tuple[int, int]] = None,
                          extra: str = "", hwif: Optional[str] = None,
                          policies: bool = True, pair: Sequence[str] = ("a", "b"),
                          reqid: int = 0) -> None:
        """Transport-mode SPs (out/in on each side) and the two SAs a->b
        (``spi_ab``) and b->a (``spi_ba``) on both hosts, policies first.
        ``extra`` goes with each ``add``'s options (e.g. ``-lh 60 -bs 4000``);
        ``reqid`` binds policies and SAs (``unique:N`` / ``-u N``): SAs with
        the same endpoints and mode are otherwise interchangeable
        (key_allocsa_policy picks by SA index, not by policy)."""
        if reqid:
            level = f"unique:{reqid}"
        self._install("transport", spi_ab, spi_ba, enc, key, auth, auth_key, replay, esn,
                      level, proto, natt, extra, hwif, policies, pair, None, reqid)

    def install_tunnel(self, *, spi_ab: int = 0x2000, spi_ba: int = 0x2001,
                       inner: tuple[str, str] = ("192.168.1.0/24", "192.168.2.0/24"),
                       enc: str = "aes-gcm-16", key: str = DEFAULT_KEY,
                       auth: Optional[str] = None, auth_key: Optional[str] = None,
                       replay: int = 0, esn: bool = False, level: str = "require",
                       extra: str = "", pair: Sequence[str] = ("a", "b")) -> None:
        """Tunnel-mode SPs for ``inner`` networks between the hosts'
        addresses, and the two SAs (add the inner addresses to the hosts
        with :meth:`add_address` yourself)."""
        self._install("tunnel", spi_ab, spi_ba, enc, key, auth, auth_key, replay, esn, level,
                      "any", None, extra, None, True, pair, inner)

    def _install(self, mode: str, spi_ab: int, spi_ba: int, enc: str, key: str,
                 auth: Optional[str], auth_key: Optional[str], replay: int, esn: bool,
                 level: str, proto: str, natt: Optional[tuple[int, int]], extra: str,
                 hwif: Optional[str], policies: bool, pair: Sequence[str],
                 inner: Optional[tuple[str, str]], reqid: int = 0) -> None:
        na, nb = pair
        a, b = self.addrs[na], self.addrs[nb]
        alg = f"-E {enc} {key}" + (f" -A {auth} {auth_key}" if auth else "")
        opts = f"-m {mode} -r {replay}" + (" -esn" if esn else "") + \
            (f" -u {reqid}" if reqid else "") + (f" -hwif {hwif}" if hwif else "")
        if natt is not None:
            nat = (f"-natt {a}[{natt[0]}] {b}[{natt[1]}]", f"-natt {b}[{natt[1]}] {a}[{natt[0]}]")
        else:
            nat = ("", "")
        sas = (f"add {a} {b} esp {spi_ab:#x} {nat[0]} {opts} {extra} {alg};\n"
               f"add {b} {a} esp {spi_ba:#x} {nat[1]} {opts} {extra} {alg};\n")
        for me, peer, me_n in ((a, b, na), (b, a, nb)):
            sp = ""
            if policies:
                if inner is None:
                    tmpl = f"esp/transport//{level}"
                    sel_out, sel_in = f"{me} {peer} {proto}", f"{peer} {me} {proto}"
                else:
                    mine, theirs = inner if me == a else (inner[1], inner[0])
                    tmpl_out = f"esp/tunnel/{me}-{peer}/{level}"
                    tmpl_in = f"esp/tunnel/{peer}-{me}/{level}"
                    sel_out, sel_in = f"{mine} {theirs} any", f"{theirs} {mine} any"
                if inner is None:
                    sp = (f"spdadd {sel_out} -P out ipsec {tmpl};\n"
                          f"spdadd {sel_in} -P in ipsec {tmpl};\n")
                else:
                    sp = (f"spdadd {sel_out} -P out ipsec {tmpl_out};\n"
                          f"spdadd {sel_in} -P in ipsec {tmpl_in};\n")
            self.setkey(me_n, sp + sas)

    def setkey_dump(self, h: Union[str, Any], *, policies: bool = False) -> str:
        """``setkey -D`` (``-DP`` with ``policies``) text of host ``h``,
        through a PF_KEY socket (SADB_DUMP / SADB_X_SPDDUMP replies printed
        by pfkey_dump)."""
        host = self.host(h)
        mtype = SADB.X_SPDDUMP if policies else SADB.DUMP
        satype = 0 if policies else SADB_SATYPE.UNSPEC
        data = bytes((2, int(mtype), 0, int(satype), 2, 0, 0, 0)) + bytes(4) + \
            self._pid.to_bytes(4, "little")
        host.settle_for(data)
        so = host.socket()
        out: list[str] = []
        try:
            so.send(data)
            for r in so.recv_all():
                if r[2]:
                    if r[2] == _errno.ENOENT:
                        return "No SAD entries.\n" if not policies else "No SPD entries.\n"
                    raise LabError(f"dump: {os.strerror(r[2])}")
                if policies:
                    out.append(pfkey_spdump(r, if_indextoname=host.if_indextoname))
                else:
                    out.append(pfkey_sadump(r, now=host.clock.now(),
                                            if_indextoname=host.if_indextoname))
        finally:
            so.close()
        return "".join(out)

    def sadb(self, h: Union[str, Any]) -> list[Any]:
        """SADB_DUMP replies of host ``h``, decoded (``pfkey.message``)."""
        host = self.host(h)
        data = bytes((2, int(SADB.DUMP), 0, 0, 2, 0, 0, 0)) + bytes(4) + \
            self._pid.to_bytes(4, "little")
        host.settle_for(data)
        so = host.socket()
        try:
            so.send(data)
            return [decode(r) for r in so.recv_all() if not r[2]]
        finally:
            so.close()

    def sav(self, h: Union[str, Any], spi: int) -> Optional[secasvar]:
        """The key engine's SA ``spi`` on host ``h``."""
        return self.host(h).key.key_getsavbyspi(spi)  # type: ignore[no-any-return]

    # -- run-time choices ------------------------------------------------------------------

    def set_mode(self, mode: str, hosts: Optional[Iterable[str]] = None) -> None:
        """Offload mode of the hosts' output path (``auto``, ``packet``,
        ``crypto``, ``software``)."""
        for n in (hosts or self.names):
            self.hosts[n].ip.ipsec.set_offload_mode(mode)

    def set_tag_strategy(self, name: str, hosts: Optional[Iterable[str]] = None) -> None:
        """Tag strategy (``mtag``, ``sndtag``, ``outdone``, ``phfield``)."""
        for n in (hosts or self.names):
            self.hosts[n].ip.ipsec.set_tag_strategy(name)

    # -- traffic ---------------------------------------------------------------------------

    def packet(self, size: int = 64, proto: str = "udp", *, src: str = "a", dst: str = "b",
               sport: int = 4096, dport: int = 9, **kw: Any) -> bytes:
        """One datagram of exactly ``size`` bytes from ``src``'s to ``dst``'s
        address (or literal addresses)."""
        s = self.addrs.get(src, src)
        d = self.addrs.get(dst, dst)
        return make_packet(s, d, size, proto, sport=sport, dport=dport, **kw)

    def push(self, n: int, size: int = 64, proto: str = "udp", *, src: str = "a",
             dst: str = "b", sport: int = 4096, dport: int = 9, flows: int = 1,
             inp: bool = True, progress: Optional[Callable[[int], Any]] = None,
             progress_every: int = 1000, saddr: Optional[str] = None,
             daddr: Optional[str] = None) -> TrafficResult:
        """Send ``n`` packets of ``size`` bytes and ``proto`` (udp, tcp,
        icmp) from host ``src`` to host ``dst`` over ``flows`` source ports,
        from a socket (``inp``: ports in policy lookups); ``progress(i)``
        every ``progress_every`` packets.  ``saddr``/``daddr`` override the
        hosts' lab addresses (e.g. inner addresses of a tunnel).  Returns a
        :class:`TrafficResult` (counter deltas of both hosts and every NIC)."""
        S, D = self.hosts[src], self.hosts[dst]
        pnum = _PROTO[proto]
        pkts = [self.packet(size, proto, src=saddr or src, dst=daddr or dst, sport=sport + i,
                            dport=dport) for i in range(max(1, flows))]
        inps = [Inpcb(pnum, f"{src}:{sport + i}") if inp else None for i in range(len(pkts))]
        D.ip.sink(pnum, 0)

        def got() -> tuple[int, int]:
            ss = [x for (p, _), x in D.ip.sinks.items() if p == pnum]
            return sum(x.packets for x in ss), sum(x.bytes for x in ss)
        before = self._counters()
        d0p, d0b = got()
        send = S.ip.ip_output
        errors: dict[int, int] = {}
        k = len(pkts)
        t0 = time.perf_counter()
        for i in range(n):
            j = i % k
            err = send(Mbuf(pkts[j]), inps[j])
            if err:
                errors[err] = errors.get(err, 0) + 1
            if progress is not None and (i + 1) % progress_every == 0:
                progress(i + 1)
        elapsed = time.perf_counter() - t0
        if progress is not None and n % progress_every:
            progress(n)
        after = self._counters()
        delta = {k2: after[k2] - before.get(k2, 0) for k2 in after
                 if after[k2] != before.get(k2, 0)}
        paths = {}
        for f in ("out_packet", "out_crypto", "out_sw", "out_bypass"):
            paths[f] = delta.get(f"{src}.accel.{f}", 0)
        for f in ("in_packet", "in_crypto", "in_sw"):
            paths[f] = delta.get(f"{dst}.accel.{f}", 0)
        drops = {k2: v for k2, v in delta.items() if self._is_drop(k2)}
        d1p, d1b = got()
        return TrafficResult(n, size, proto, n - sum(errors.values()), errors,
                             d1p - d0p, d1b - d0b, elapsed,
                             n / elapsed if elapsed > 0 else 0.0, paths, drops,
                             self.sa_counters())

    def _counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n, h in self.hosts.items():
            out.update({f"{n}.{k}": v for k, v in h.ip.stats.all().items()})
        for name, nic in self.nics().items():
            for k, v in nic.stats().items():
                if not k.startswith("kpi."):
                    out[f"{name}.{k}"] = v
        return out

    @staticmethod
    def _is_drop(k: str) -> bool:
        from .ipsecstat import DROP_FIELDS
        parts = k.split(".")
        if len(parts) >= 3 and ".".join(parts[1:]) in DROP_FIELDS:
            return True
        # NIC counters: tx_*/rx_* drop reasons (the non-traffic keys).
        return len(parts) == 3 and parts[2] not in _NIC_TRAFFIC and \
            (parts[2].startswith("tx_") or parts[2].startswith("rx_")) and \
            parts[1] != "accel"

    def drops(self) -> dict[str, int]:
        """Every non-zero drop counter of every host and NIC."""
        return {k: v for k, v in self._counters().items() if v and self._is_drop(k)}

    def sa_counters(self) -> list[dict[str, Any]]:
        """Per-SA rows of every host (:meth:`ipsec_accel.ipsec_state.Ipsec.
        sa_counters` plus ``host``)."""
        rows = []
        for n, h in self.hosts.items():
            for r in h.ip.ipsec.sa_counters():
                rows.append({"host": n, **r})
        return rows

    def stats(self, h: Union[str, Any]) -> dict[str, int]:
        """Every datapath counter of host ``h`` (``ip.``, ``ipsec.``, ``esp.``,
        ``accel.`` prefixes)."""
        return self.host(h).ip.stats.all()  # type: ignore[no-any-return]

    def netstat(self, h: Union[str, Any], proto: str = "esp") -> str:
        return self.host(h).ip.netstat(proto)  # type: ignore[no-any-return]

    def poll(self) -> int:
        """Run every NIC's counter poll once (driver -> lifetimes)."""
        return sum(nic.poll_now() for nic in self.nics().values())

    def tick(self, seconds: int = 1) -> int:
        """Let ``seconds`` pass: the shared clock moves one second at a time
        and every host's key timer runs (lifetimes, ACQUIRE expiry)."""
        for _ in range(max(0, int(seconds))):
            if isinstance(self.clock, FakeClock):
                self.clock.advance(1)
            now = self.clock.now()
            for h in self.hosts.values():
                h._run_timehandler(now)
        return self.clock.now()

    def record(self, n: int, size: int = 64, proto: str = "udp", *, src: str = "a",
               **kw: Any) -> list[bytes]:
        """The wire frames host ``src`` transmits for ``n`` packets (they are
        not delivered): input for receive-side benchmarks and byte checks."""
        nic = self.nic(src)
        frames: list[bytes] = []
        old = nic._wire_tx
        nic.set_transmit(frames.append)
        try:
            self.push(n, size, proto, src=src, dst=self._peer(src), **kw)
        finally:
            nic.set_transmit(old)
        return frames

    def _peer(self, h: str) -> str:
        return self.names[1] if h == self.names[0] else self.names[0]

    def host_path(self, size: int = 64, proto: str = "udp", *, src: str = "a",
                  null_xmit: bool = True) -> Callable[[], int]:
        """A zero-argument callable sending one prebuilt packet through host
        ``src``'s output path (policy, SA, offload decision, tag or software
        ESP).  With ``null_xmit`` the interface's transmit is replaced by
        :func:`ipsec_accel.ip.null_transmit` (the tag is read, nothing is
        encrypted or sent) until :meth:`restore_host_path`: the host's cost
        alone, for microbenchmarks."""
        host = self.hosts[src]
        if null_xmit:
            host.ip.xmit_override = null_transmit
        pkt = self.packet(size, proto, src=src, dst=self._peer(src))
        inp = Inpcb(_PROTO[proto])
        out = host.ip.ip_output

        def step() -> int:
            return out(Mbuf(pkt), inp)  # type: ignore[no-any-return]
        return step

    def restore_host_path(self, src: str = "a") -> None:
        self.hosts[src].ip.xmit_override = None

    def rx_host_path(self, size: int = 64, proto: str = "udp", *, src: str = "a",
                     dst: str = "b") -> Callable[[], None]:
        """A zero-argument callable feeding host ``dst``'s ip_input one packet
        exactly as its NIC hands it up (decrypted + ACCEL_IN tag in packet
        offload, decrypted ESP framing + CRYPTO_DONE tag in crypto offload,
        untouched ESP for software): the receive side's host cost alone.
        The packet is recorded once (one real frame through the NIC); replay
        it only on SAs without a replay window (the default here)."""
        frame = self.record(1, size, proto, src=src)[0]
        host = self.hosts[dst]
        ifp = self.ifp(dst)
        got: list[Mbuf] = []
        old = ifp.if_input
        ifp.if_input = lambda i, m: got.append(m)
        try:
            self.nic(dst).wire_input(frame)
        finally:
            ifp.if_input = old
        if not got:
            raise LabError("the receiving NIC dropped the recorded frame")
        m0 = got[0]
        data = bytes(m0.data)
        tags = [(t.m_tag_id, t.m_tag_len, t.data) for t in (m0.tags or [])]
        csum = m0.csum_flags
        inp = host.ip.ip_input
        from .mbuf import m_tag_get, m_tag_prepend

        def step() -> None:
            m = Mbuf(data, rcvif=ifp, csum_flags=csum)
            for tid, tlen, tdata in tags:
                t = m_tag_get(tid, tlen)
                if t is not None:
                    t.data = tdata
                    m_tag_prepend(m, t)
            inp(ifp, m)
        return step

    def install_many(self, n: int, *, base_spi: int = 0x10000, sport: int = 4096,
                     dport: int = 9, enc: str = "aes-gcm-16", key: str = DEFAULT_KEY,
                     replay: int = 0) -> None:
        """``n`` active SA pairs for benchmarks: flow i (UDP source port
        ``sport + i`` to ``dport``) gets its own policy pair and SA pair,
        bound by reqid i + 1 (``unique``).  ``push(..., flows=n)`` then uses
        every SA in turn."""
        for me_n, me, peer in (("a", self.addrs["a"], self.addrs["b"]),
                               ("b", self.addrs["b"], self.addrs["a"])):
            lines = []
            for i in range(n):
                r = i + 1
                if me_n == "a":
                    so, si = f"{me}[{sport + i}] {peer}[{dport}]", f"{peer}[{dport}] {me}[{sport + i}]"
                else:
                    so, si = f"{me}[{dport}] {peer}[{sport + i}]", f"{peer}[{sport + i}] {me}[{dport}]"
                lines.append(f"spdadd {so} udp -P out ipsec esp/transport//unique:{r};")
                lines.append(f"spdadd {si} udp -P in ipsec esp/transport//unique:{r};")
            a, b = self.addrs["a"], self.addrs["b"]
            for i in range(n):
                r = i + 1
                lines.append(f"add {a} {b} esp {base_spi + 2 * i:#x} -m transport -r {replay} "
                             f"-u {r} -E {enc} {key};")
                lines.append(f"add {b} {a} esp {base_spi + 2 * i + 1:#x} -m transport "
                             f"-r {replay} -u {r} -E {enc} {key};")
            self.setkey(me_n, "\n".join(lines))

    # -- Wireshark and pcap ------------------------------------------------------------------

    def export_esp_sa(self, path: Union[str, os.PathLike[str]]) -> int:
        """Wireshark's ``esp_sa`` table for every host's SAs (see
        :func:`write_wireshark_sa`)."""
        return write_wireshark_sa(path, (h.key for h in self.hosts.values()))

    def close_captures(self) -> None:
        for w in self.wires:
            cap = getattr(w, "capture", None)
            if cap is not None:
                cap.flush()

    def shutdown(self) -> None:
        for w in self.wires:
            w.close()
        for h in self.hosts.values():
            for nic in self.nics().values():
                stop = getattr(nic, "shutdown", None)
                if stop is not None:
                    stop()
            h.stop()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"<Lab {self.profile} hosts={self.names}>"
