#!/usr/bin/env python3
"""traffic: send N packets between two model hosts and say what happened to
them (issue 6 item 8).

A thin command over :class:`ipsec_accel.lab.Lab`: it builds a two-host lab
(hosts ``a`` 10.0.0.1 and ``b`` 10.0.0.2, or 2001:db8::1/::2 with ``-6``, one
NIC of the chosen profile each, joined by a wire), installs a transport or
tunnel SA pair with its policies through PF_KEY (setkey text), picks the
offload mode and tag strategy, pushes the packets, polls the NICs' counters
into the SA lifetimes and prints a summary::

    python tools/traffic.py -n 10000 -s 1400 --profile mlx5
    python tools/traffic.py -n 5000 -s 64 -p tcp --offload software --tag sndtag
    python tools/traffic.py -n 1000 -6 -m tunnel --profile ixgbe --pcap a-b.pcap \\
        --esp-sa esp_sa                # Wireshark: Protocols > ESP > ESP SAs
    python tools/traffic.py -n 2000 --noipsec-at 1000    # ifconfig mce0 -ipsec mid-flow
    python tools/traffic.py -n 2000 --ifdown-at 1000     # ifconfig down; up mid-flow

Options (``--help`` lists them all): ``-n`` packets, ``-s`` size in bytes (IP
header included), ``-p`` udp|tcp|icmp, ``--profile`` a NIC profile of
:data:`ipsec_accel.lab.PROFILES`, ``-4``/``-6``, ``-m`` transport|tunnel,
``--offload`` auto|packet|crypto|software, ``--tag`` mtag|sndtag|outdone|
phfield, ``--alg`` the SA's algorithm, ``-o KEY=VALUE``
a driver option (``-o tunnel=true``: mlx5's tunnel-mode capability, off by
default as in the driver model), ``--replay``/``--esn``, ``--flows``
source ports, ``--reverse`` (b sends to a), ``--pcap FILE`` (the wire's
capture), ``--esp-sa FILE`` (the kernels' SAs as Wireshark's ``esp_sa``
table), ``--ifdown-at K`` (after K packets the sender's NIC goes down and up
again -- a driver whose stop path calls ipsec_accel_on_ifdown deinstalls its
SAs and the rest of the flow goes through software; mlx5, like FreeBSD's
driver, keeps them and goes on offloading unless ``-o ifdown_forgets=true``;
``--stay-down`` leaves it down, so the rest fails with ENETDOWN),
``--noipsec-at K`` (after K packets ``ifconfig <nic> -ipsec`` on the sender:
output honours the cleared capability bit at once, and mlx5 calls
ipsec_accel_on_ifdown, as FreeBSD's driver does; the rest of the flow goes
through software), ``--json``
(the summary as one JSON object), ``-q`` (no progress).

The summary: packets (sent, delivered, failed), bytes (IP bytes handed to
ip_output, bytes on the sender's wire, bytes delivered), pps over the send
loop (model time, not a benchmark: see bench/report.py), the paths the
packets took on each host (packet offload, crypto offload, software, clear),
per SA the packets each path carried and the key engine's counters (``setkey
-D``'s current / sw offl / hw offl, after the counter poll), drops by reason
(``<host>.<struct>.<field>`` of netstat -s, ``<host>.<nic>.<reason>`` of the
drivers) and ip_output errors by errno.

Progress goes to stderr: a bar redrawn in place when stderr is a terminal,
otherwise a plain line every tenth of the run (nothing third-party).

Exit status: 0 when the run completed (drops are results, not failures),
2 with one ``traffic: error: ...`` line on bad arguments, 1 when the lab
could not be set up (a PF_KEY request refused ...).
"""

from __future__ import annotations

import argparse
import errno as _errno
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn, Optional, Sequence, TextIO

if __package__ in (None, ""):
    # Run as "python tools/traffic.py": make the repository importable.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ipsec_accel.accel_tag import TAG_STRATEGIES  # noqa: E402
from ipsec_accel.ipsec_state import MODES  # noqa: E402
from ipsec_accel.lab import PROFILES, Lab, LabError, TrafficResult  # noqa: E402
from ipsec_accel.packet import PacketError, make_packet  # noqa: E402

__all__ = ["main", "ALGS", "TrafficReport", "run_traffic", "format_summary", "Progress",
           "build_parser"]

PROG = "traffic"

#: ``--alg`` name -> install_transport/install_tunnel keywords (setkey's
#: algorithm names and keys of the right length: salted ciphers carry their
#: 4-byte salt at the end of the key, RFC 4106 / 7634).
ALGS: dict[str, dict[str, Any]] = {
    "aes-gcm-16": dict(enc="aes-gcm-16", key="0x" + bytes(range(0x20, 0x34)).hex()),
    "aes-gcm-16-256": dict(enc="aes-gcm-16", key="0x" + bytes(range(0x40, 0x64)).hex()),
    "chacha20-poly1305": dict(enc="chacha20-poly1305",
                              key="0x" + bytes(range(0x60, 0x84)).hex()),
    "aes-cbc-sha256": dict(enc="aes-cbc", key="0x" + bytes(range(0x10, 0x20)).hex(),
                           auth="hmac-sha2-256", auth_key="0x" + bytes(range(0x80, 0xa0)).hex()),
}

#: Inner networks and the hosts' inner addresses for ``-m tunnel``.
_TUNNEL_NETS = {4: (("192.168.1.0/24", "192.168.2.0/24"), ("192.168.1.1", "192.168.2.1"), 24),
                6: (("2001:db8:1::/64", "2001:db8:2::/64"), ("2001:db8:1::1", "2001:db8:2::1"),
                    64)}
_PATH_NAMES = (("out_packet", "packet offload"), ("out_crypto", "crypto offload"),
               ("out_sw", "software"), ("out_bypass", "clear"))
_IN_PATH_NAMES = (("in_packet", "packet offload"), ("in_crypto", "crypto offload"),
                  ("in_sw", "software"))


class _UsageError(Exception):
    """Bad command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``traffic: error: ...``), raised
    rather than printed, so main() decides where it goes and tests see it."""

    out: Optional[TextIO] = None

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def print_help(self, file: Any = None) -> None:
        super().print_help(file if file is not None else self.out)


def _int_at_least(low: int, complaint: str) -> Callable[[str], int]:
    """An argparse ``type``: an integer (any base ``int(x, 0)`` reads) of at
    least ``low``; ``complaint`` says what is wrong with a smaller one."""

    def convert(text: str) -> int:
        try:
            v = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{complaint}: {text}")
        return v
    return convert


_positive = _int_at_least(1, "must be at least 1")
_nonneg = _int_at_least(0, "must not be negative")


def _nic_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` as a topology file would spell it: true/false, an
    integer, else a string."""
    k, sep, v = text.partition("=")
    if not sep or not k.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE: {text!r}")
    val: Any = v.strip()
    if val.lower() in ("true", "yes", "on"):
        val = True
    elif val.lower() in ("false", "no", "off"):
        val = False
    else:
        try:
            val = int(val, 0)
        except ValueError:
            pass
    return k.strip(), val


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Send packets between two model hosts through "
                "the IPsec datapath and summarise what happened to them.")
    p.add_argument("-n", "--count", type=_positive, default=1000, metavar="N",
                   help="packets to send (default 1000)")
    p.add_argument("-s", "--size", type=_positive, default=512, metavar="BYTES",
                   help="packet size, IP header included (default 512)")
    p.add_argument("-p", "--proto", choices=("udp", "tcp", "icmp"), default="udp",
                   help="upper-layer protocol (icmp is ICMPv6 with -6; default udp)")
    p.add_argument("--profile", choices=PROFILES, default="mlx5",
                   help="NIC profile of both hosts (default mlx5)")
    af = p.add_mutually_exclusive_group()
    af.add_argument("-4", dest="af", action="store_const", const=4, help="IPv4 (default)")
    af.add_argument("-6", dest="af", action="store_const", const=6, help="IPv6")
    p.add_argument("-m", "--ipsec-mode", choices=("transport", "tunnel"), default="transport",
                   help="IPsec mode of the SAs and policies (default transport)")
    p.add_argument("--offload", choices=MODES, default="auto",
                   help="output offload mode (default auto: each NIC's preferred mode)")
    p.add_argument("--tag", choices=TAG_STRATEGIES, default="mtag",
                   help="tag strategy (default mtag, FreeBSD's per-packet m_tag)")
    p.add_argument("--no-fastpath", action="store_true",
                   help="net.inet.ipsec.offload.fastpath=0 on both hosts: every packet "
                        "takes the full policy / SA / offload decision")
    p.add_argument("--alg", choices=tuple(ALGS), default="aes-gcm-16",
                   help="SA algorithm (default aes-gcm-16, 128-bit key)")
    p.add_argument("-o", "--nic-option", action="append", default=[], metavar="KEY=VALUE",
                   type=_nic_option, help="driver option for both NICs, repeatable "
                   "(e.g. tunnel=true for mlx5's tunnel-mode capability)")
    p.add_argument("--replay", type=_nonneg, default=0, metavar="N",
                   help="replay window of the SAs in bytes of bitmap (setkey -r; default 0)")
    p.add_argument("--esn", action="store_true", help="extended sequence numbers")
    p.add_argument("--flows", type=_positive, default=1, metavar="N",
                   help="source ports the packets rotate over (default 1)")
    p.add_argument("--reverse", action="store_true", help="b sends to a (default a to b)")
    p.add_argument("--pcap", metavar="FILE", help="write the wire's capture to FILE")
    p.add_argument("--esp-sa", metavar="FILE",
                   help="export the kernels' SAs as Wireshark's esp_sa table to FILE")
    mid = p.add_mutually_exclusive_group()
    mid.add_argument("--ifdown-at", type=_nonneg, metavar="K",
                     help="after K packets, take the sender's NIC down (and up again, "
                     "unless --stay-down)")
    mid.add_argument("--noipsec-at", type=_nonneg, metavar="K",
                     help="after K packets, turn the sender's IPsec offload capability "
                     "off (ifconfig -ipsec)")
    p.add_argument("--stay-down", action="store_true",
                   help="with --ifdown-at: leave the NIC down")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(af=4)
    return p


# -- progress ----------------------------------------------------------------------------


class Progress:
    """Progress of a run of ``total`` packets on ``stream``: a bar redrawn
    with ``\\r`` on a terminal, else one plain line per tenth of the run
    (logs and CI stay readable).  ``update(done)`` may be called as often
    as wanted; redraws are rate-limited."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, *, tty: Optional[bool] = None,
                 label: str = PROG, clock: Callable[[], float] = time.perf_counter) -> None:
        self.total = max(1, total)
        self.stream = stream
        if tty is None:
            isatty = getattr(stream, "isatty", None)
            tty = bool(isatty()) if isatty is not None else False
        self.tty = tty
        self.label = label
        self.clock = clock
        self.t0 = clock()
        self._last_draw = -1.0
        self._next_line = 1           # next tenth to report in plain mode
        self._done = 0
        self._drawn = -1              # `done` of the bar on screen (tty)

    def update(self, done: int) -> None:
        self._done = done
        now = self.clock()
        if self.tty:
            # Redrawing every call would cost more than the packets do.
            if done < self.total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            self._drawn = done
            frac = done / self.total
            fill = int(frac * self.WIDTH)
            rate = done / (now - self.t0) if now > self.t0 else 0.0
            self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (self.WIDTH - fill)}] "
                              f"{frac:4.0%} {done}/{self.total} {rate:,.0f} pps ")
            self.stream.flush()
            return
        while self._next_line <= 10 and done * 10 >= self._next_line * self.total:
            shown = min(self.total, (self._next_line * self.total + 9) // 10)
            self.stream.write(f"{self.label}: {shown}/{self.total} packets "
                              f"({self._next_line * 10}%)\n")
            self._next_line += 1
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line between progress updates (e.g. the ifdown)."""
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.label}: {text}\n")
        self.stream.flush()
        self._last_draw = -1.0
        self._drawn = -1

    def finish(self) -> None:
        if self.tty:
            if self._drawn != self._done:
                self._last_draw = -1.0
                self.update(self._done)
            self.stream.write("\n")
            self.stream.flush()


# -- the run ------------------------------------------------------------------------------


@dataclass
class TrafficReport:
    """What one run did (JSON-friendly: :meth:`as_dict`)."""

    profile: str
    af: int
    ipsec_mode: str
    offload: str
    tag: str
    alg: str
    src: str
    dst: str
    src_addr: str
    dst_addr: str
    proto: str
    size: int
    count: int
    sent: int = 0
    delivered: int = 0
    delivered_bytes: int = 0
    wire_packets: int = 0
    wire_bytes: int = 0
    elapsed: float = 0.0
    pps: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    paths_out: dict[str, int] = field(default_factory=dict)
    paths_in: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    per_sa: list[dict[str, Any]] = field(default_factory=list)
    ifdown_at: Optional[int] = None
    stay_down: bool = False
    noipsec_at: Optional[int] = None
    pcap: Optional[str] = None
    esp_sa: Optional[str] = None
    esp_sa_count: int = 0

    @property
    def failed(self) -> int:
        return self.count - self.sent

    @property
    def bytes_sent(self) -> int:
        return self.sent * self.size

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["failed"] = self.failed
        d["bytes_sent"] = self.bytes_sent
        return d


def _errno_name(e: int) -> str:
    if e > 0:
        return f"{_errno.errorcode.get(e, str(e))} ({os.strerror(e)})"
    return str(e)


def _merge(parts: Sequence[TrafficResult]) -> dict[str, Any]:
    """Counter deltas of consecutive pushes, added up (the per-SA rows are
    absolute: the last push's)."""
    errors: dict[int, int] = {}
    paths: dict[str, int] = {}
    drops: dict[str, int] = {}
    for r in parts:
        for e, v in r.errors.items():
            errors[e] = errors.get(e, 0) + v
        for p, v in r.paths.items():
            paths[p] = paths.get(p, 0) + v
        for d, v in r.drops.items():
            drops[d] = drops.get(d, 0) + v
    return {"sent": sum(r.sent for r in parts), "delivered": sum(r.delivered for r in parts),
            "delivered_bytes": sum(r.delivered_bytes for r in parts),
            "elapsed": sum(r.elapsed for r in parts), "errors": errors, "paths": paths,
            "drops": drops}


def run_traffic(opts: argparse.Namespace, *, progress: Optional[Progress] = None,
                builder: Optional[Callable[..., Any]] = None) -> TrafficReport:
    """Build the lab ``opts`` describes, push the packets, gather the
    report.  Raises :class:`ipsec_accel.lab.LabError` when set-up fails."""
    src, dst = ("b", "a") if opts.reverse else ("a", "b")
    proto = "icmp6" if opts.proto == "icmp" and opts.af == 6 else opts.proto
    try:
        lab = Lab.build(opts.profile, af=opts.af, capture=opts.pcap, tag_strategy=opts.tag,
                        nic_options=dict(opts.nic_option) or None, builder=builder)
    except ValueError as exc:
        # drivers.topology.TopologyError (a ValueError): e.g. a driver option
        # the profile does not take.
        raise LabError(str(exc)) from None
    try:
        alg = ALGS[opts.alg]
        saddr = daddr = None
        if opts.ipsec_mode == "tunnel":
            nets, inner, plen = _TUNNEL_NETS[opts.af]
            ifn = lab.ifname["a"]
            for h, addr, peer_net in (("a", inner[0], nets[1]), ("b", inner[1], nets[0])):
                lab.hosts[h].ip.add_address(ifn, f"{addr}/{plen}")
                lab.hosts[h].ip.add_route(peer_net, ifn)
            lab.install_tunnel(inner=nets, replay=opts.replay, esn=opts.esn, **alg)
            saddr, daddr = (inner[0], inner[1]) if src == "a" else (inner[1], inner[0])
        else:
            lab.install_transport(replay=opts.replay, esn=opts.esn, **alg)
        lab.set_mode(opts.offload)
        if getattr(opts, "no_fastpath", False):
            for h in lab.hosts.values():
                h.ip.ipsec.sysctl("net.inet.ipsec.offload.fastpath", 0)
        rep = TrafficReport(
            profile=opts.profile, af=opts.af, ipsec_mode=opts.ipsec_mode, offload=opts.offload,
            tag=opts.tag, alg=opts.alg, src=src, dst=dst,
            src_addr=saddr or lab.addrs[src], dst_addr=daddr or lab.addrs[dst],
            proto=proto, size=opts.size, count=opts.count, ifdown_at=opts.ifdown_at,
            stay_down=bool(opts.stay_down), noipsec_at=opts.noipsec_at, pcap=opts.pcap,
            esp_sa=opts.esp_sa)
        nic = lab.nic(src)
        tx0 = nic.stats()
        kw: dict[str, Any] = dict(src=src, dst=dst, flows=opts.flows, saddr=saddr,
                                  daddr=daddr)
        every = max(1, min(1000, opts.count // 100))
        parts: list[TrafficResult] = []
        event_at = opts.ifdown_at if opts.ifdown_at is not None else opts.noipsec_at
        k = opts.count if event_at is None else min(event_at, opts.count)
        if k:
            parts.append(lab.push(k, opts.size, proto, progress=progress.update if progress
                                  else None, progress_every=every, **kw))
        if event_at is not None:
            # Let the drivers report what they carried before their SAs go
            # (mlx5 cancels a handle's counter work when it is deinstalled).
            lab.poll()
            reg = lab.hosts[src].ifnets
            if opts.noipsec_at is not None:
                # ifconfig -ipsec: output honours the live capability bit at
                # once; a driver like mlx5 also calls ipsec_accel_on_ifdown.
                error = reg.if_setipsec(lab.ifname[src], False)
                if error:
                    raise LabError(f"ifconfig {lab.ifname[src]} -ipsec: "
                                   f"{os.strerror(error)}")
                what = "-ipsec"
            else:
                reg.if_setupdown(lab.ifp(src), False)
                if not opts.stay_down:
                    reg.if_setupdown(lab.ifp(src), True)
                what = "down" if opts.stay_down else "down and up"
            if progress is not None:
                progress.note(f"{lab.ifname[src]} on {src} {what} after {k} packets")
            rest = opts.count - k
            if rest:
                def later(i: int) -> None:
                    if progress is not None:
                        progress.update(k + i)
                parts.append(lab.push(rest, opts.size, proto, progress=later,
                                      progress_every=every, **kw))
        if progress is not None:
            progress.finish()
        lab.poll()                      # NIC counters -> the SAs' lifetimes
        tx1 = nic.stats()
        m = _merge(parts)
        rep.sent, rep.delivered, rep.delivered_bytes = m["sent"], m["delivered"], \
            m["delivered_bytes"]
        rep.elapsed = m["elapsed"]
        rep.pps = rep.count / rep.elapsed if rep.elapsed > 0 else 0.0
        rep.wire_packets = tx1.get("tx_packets", 0) - tx0.get("tx_packets", 0)
        rep.wire_bytes = tx1.get("tx_bytes", 0) - tx0.get("tx_bytes", 0)
        rep.errors = {_errno_name(e): v for e, v in sorted(m["errors"].items())}
        rep.paths_out = {k2: m["paths"].get(k2, 0) for k2, _ in _PATH_NAMES}
        rep.paths_in = {k2: m["paths"].get(k2, 0) for k2, _ in _IN_PATH_NAMES}
        rep.drops = dict(sorted(m["drops"].items()))
        rep.per_sa = sorted(lab.sa_counters(), key=lambda r: (r["host"], r["spi"]))
        if opts.esp_sa:
            rep.esp_sa_count = lab.export_esp_sa(opts.esp_sa)
        return rep
    finally:
        lab.shutdown()


def format_summary(rep: TrafficReport) -> str:
    """The text summary (module docstring)."""
    fam = "IPv6" if rep.af == 6 else "IPv4"
    out = [f"{PROG}: {rep.profile}, {fam} {rep.ipsec_mode}, {rep.alg}, offload {rep.offload}, "
           f"tag {rep.tag}",
           f"{rep.src} ({rep.src_addr}) -> {rep.dst} ({rep.dst_addr}): {rep.count} x "
           f"{rep.size}-byte {rep.proto}"]
    if rep.ifdown_at is not None:
        out.append(f"ifdown: {rep.src}'s NIC {'down' if rep.stay_down else 'down and up'} "
                   f"after {min(rep.ifdown_at, rep.count)} packets")
    if rep.noipsec_at is not None:
        out.append(f"ipsec off: {rep.src}'s NIC -ipsec after "
                   f"{min(rep.noipsec_at, rep.count)} packets")
    out.append(f"packets: sent {rep.sent}, delivered {rep.delivered}, failed {rep.failed}, "
               f"on the wire {rep.wire_packets}")
    out.append(f"bytes:   sent {rep.bytes_sent} (IP), on the wire {rep.wire_bytes}, "
               f"delivered {rep.delivered_bytes}")
    out.append(f"rate:    {rep.pps:,.0f} pps ({rep.elapsed:.3f} s in the send loop; "
               f"model time, not a benchmark)")
    out.append(f"paths ({rep.src}, out): " + ", ".join(
        f"{name} {rep.paths_out.get(k, 0)}" for k, name in _PATH_NAMES))
    out.append(f"paths ({rep.dst}, in):  " + ", ".join(
        f"{name} {rep.paths_in.get(k, 0)}" for k, name in _IN_PATH_NAMES))
    out.append("per SA:")
    hdr = (f"  {'host':<4} {'spi':>8} {'src -> dst':<31} {'out:offl':>8} {'crypto':>7} "
           f"{'sw':>7} {'in:offl':>8} {'crypto':>7} {'sw':>7} {'current':>8} "
           f"{'sw offl':>8} {'hw offl':>8}")
    out.append(hdr)
    for r in rep.per_sa:
        flow = f"{r['src']} -> {r['dst']}"
        out.append(f"  {r['host']:<4} {r['spi']:>#8x} {flow:<31} {r.get('out_packet', 0):>8} "
                   f"{r.get('out_crypto', 0):>7} {r.get('out_sw', 0):>7} "
                   f"{r.get('in_packet', 0):>8} {r.get('in_crypto', 0):>7} "
                   f"{r.get('in_sw', 0):>7} {r['current_packets']:>8} "
                   f"{r['sw_offl_packets']:>8} {r['hw_offl_packets']:>8}")
    if rep.errors:
        out.append("errors: " + ", ".join(f"{k} {v}" for k, v in rep.errors.items()))
    if rep.drops:
        out.append("drops:")
        for k, v in rep.drops.items():
            out.append(f"  {k:<40} {v}")
    else:
        out.append("drops: none")
    if rep.pcap:
        out.append(f"pcap: {rep.pcap}")
    if rep.esp_sa:
        out.append(f"esp_sa: {rep.esp_sa} ({rep.esp_sa_count} SAs)")
    return "\n".join(out)


def _check(opts: argparse.Namespace) -> None:
    """Cross-option checks argparse cannot express."""
    if opts.stay_down and opts.ifdown_at is None:
        raise _UsageError("--stay-down needs --ifdown-at")
    if opts.ifdown_at is not None and opts.ifdown_at > opts.count:
        raise _UsageError(f"--ifdown-at {opts.ifdown_at} is beyond the {opts.count} packets")
    if opts.noipsec_at is not None and opts.noipsec_at > opts.count:
        raise _UsageError(f"--noipsec-at {opts.noipsec_at} is beyond the {opts.count} "
                          f"packets")
    if opts.size > 65535:
        raise _UsageError(f"size {opts.size} exceeds the 65535 bytes of an IP datagram")
    if opts.flows > 60000:
        raise _UsageError(f"--flows {opts.flows}: at most 60000 source ports")
    # make_packet knows the header sizes: ask it rather than repeat them.
    src = "2001:db8::1" if opts.af == 6 else "10.0.0.1"
    dst = "2001:db8::2" if opts.af == 6 else "10.0.0.2"
    proto = "icmp6" if opts.proto == "icmp" and opts.af == 6 else opts.proto
    try:
        make_packet(src, dst, opts.size, proto)
    except PacketError as exc:
        raise _UsageError(f"--size: {exc}") from None
    for path in (opts.pcap, opts.esp_sa):
        if path:
            d = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(d):
                raise _UsageError(f"{path}: no such directory {d}")


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None, tty: Optional[bool] = None,
         builder: Optional[Callable[..., Any]] = None) -> int:
    """The command; returns the exit status.  ``argv`` excludes the program
    name; ``stdout``/``stderr`` default to the process's; ``tty`` forces
    the progress style (default: ``stderr.isatty()``); ``builder`` goes to
    :meth:`ipsec_accel.lab.Lab.build`."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        parser = build_parser()
        parser.out = out  # type: ignore[attr-defined]
        opts = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        _check(opts)
    except _UsageError as exc:
        err.write(f"{PROG}: error: {exc}\n")
        return 2
    except SystemExit as exc:            # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    progress = None if opts.quiet else Progress(opts.count, err, tty=tty)
    try:
        rep = run_traffic(opts, progress=progress, builder=builder)
    except (LabError, OSError) as exc:
        err.write(f"{PROG}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        err.write("\n")
        return 130
    if opts.json:
        out.write(json.dumps(rep.as_dict(), indent=1, sort_keys=True) + "\n")
    else:
        out.write(format_summary(rep) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
