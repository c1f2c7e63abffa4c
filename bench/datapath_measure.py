"""Measurements of the IPsec datapath's host cost, shared by the
pytest-benchmark suite (``bench/bench_datapath.py``) and the table printer
(``bench/report.py``).  Issue 6, "Benchmarks".

Everything here builds on :class:`ipsec_accel.lab.Lab` and the IP layer's
``xmit_override`` hook: the sending host's whole output path runs (socket
``ip_output``, SPD lookup, SA selection, ``ipsec_accel_output`` with the
tag strategy, or crypto-offload framing, or software ESP), then
:func:`ipsec_accel.ip.null_transmit` reads the tag with the drivers' one
accessor and frees the mbuf.  No NIC encrypts and no wire carries anything:
the figure is what the *host CPU* pays per packet -- what seed 001's table
compares for software, crypto offload and packet offload, and what the
FreeBSD reviewer asked about per-packet m_tags (seed 003).

What is measured (all per packet, min over interleaved rounds):

* :class:`StrategyCase`: one lab per (tag strategy, number of SAs) with the
  host in packet-offload mode; ``n_sas`` transport SAs to ``n_sas`` peers
  (10.1.x.y) are installed on host ``a`` through PF_KEY and every one is
  offloaded; packets cycle over the peers so every SA (and every send tag)
  is active.  Allocations per packet come from the strategy's zones.
* :class:`ModeCase`: one lab per offload mode (``software``, ``crypto``,
  ``packet``) plus a lab without policies (``baseline``: plain ip_output, the
  first row of seed 001) and packet offload with the output fast path off
  (``packet_full``), one SA; :meth:`ModeCase.step` through
  :meth:`ipsec_accel.lab.Lab.host_path`.
* :func:`threaded_rates`: the same steps from 1 or 2 (or more) real
  threads at once, the thread counts' rounds interleaved; aggregate packets
  per second over the workers' own window.
* Baselines on the very packet the host path sends (:class:`Baselines`): the
  raw ``AESGCM.encrypt`` call of its ESP payload (RFC 4106 nonce and AAD),
  :meth:`EspState.output` (the ESP transform alone),
  :func:`esp_transport_output` (ESP of the whole packet), scapy's
  ``SecurityAssociation.encrypt``.

:func:`interleaved` is the timer: each round runs every case once, so slow
phases of the machine hit all cases alike and the *ratios* are stable
(DESIGN.md §6: ratios side by side in one run, never a lone absolute time).
"""

from __future__ import annotations

import cProfile
import gc
import itertools
import pstats
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ipsec_accel.accel_tag import TAG_STRATEGIES, ipsec_accel_out_drv_spi
from ipsec_accel.esp_encap import esp_transport_output
from ipsec_accel.ip import null_transmit
from ipsec_accel.ipsec_state import Inpcb, build_esp_state
from ipsec_accel.lab import DEFAULT_KEY, Lab
from ipsec_accel.mbuf import Mbuf, m_freem
from ipsec_accel.packet import make_packet
from ipsec_accel.xform_esp import EspState
from pfkey.pfkeyv2 import SADB_EALG

__all__ = [
    "SIZES", "SA_COUNTS", "HEAVY_SAS", "STRATEGIES", "MODES", "MODE_PATHS", "PACKET_FULL",
    "GCM_KEY",
    "interleaved", "per_call", "StrategyCase", "ModeCase", "Baselines", "ThreadedSender",
    "threaded_rate", "threaded_rates", "zone_allocs", "profile_host_path", "stage_breakdown",
    "call_floor", "environment", "check_same_packet", "install_many", "many_packets", "Target",
]

SIZES: tuple[int, ...] = (64, 512, 1400)
SA_COUNTS: tuple[int, ...] = (1, 100, 10_000)
#: The heavy run's extra point: as many SAs as one host can offload stays
#: below the drv_spi space (3..0xffff: 65,533 handles, FreeBSD's
#: IPSEC_ACCEL_DRV_SPI_MAX), so every SA is offloaded there too.
HEAVY_SAS = 60_000
STRATEGIES: tuple[str, ...] = tuple(TAG_STRATEGIES)
#: Seed 001's rows, cheapest host path last.
MODES: tuple[str, ...] = ("software", "crypto", "packet")
#: The accel counter that proves a mode's packets took its path.
MODE_PATHS = {"software": "accel.out_sw", "crypto": "accel.out_crypto",
              "packet": "accel.out_packet", "packet_full": "accel.out_packet"}
#: Extra row of the modes table: packet offload with the output fast path
#: off (net.inet.ipsec.offload.fastpath=0) -- every packet runs
#: ipsec4_checkpolicy, ipsec4_allocsa and ipsec_accel_output in full.
PACKET_FULL = "packet_full"
#: The lab's SA key (AES-GCM-128 + 4-byte salt), as raw bytes.
GCM_KEY = bytes.fromhex(DEFAULT_KEY[2:])
SPI = 0x1000


# -- timing -------------------------------------------------------------------------------


def per_call(fn: Callable[[], object], n: int) -> float:
    """Seconds per call of ``fn`` over ``n`` back-to-back calls (one batch;
    the loop is the same for every case, so it cancels in ratios)."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def interleaved(cases: Mapping[str, tuple[Callable[[], object], int]], rounds: int,
                warmup: int = 1, gc_off: bool = True) -> dict[str, float]:
    """Min seconds per call of every case: ``cases`` maps a name to (fn,
    calls per batch); each of ``rounds`` rounds runs one batch of every case
    in turn.  The garbage collector is off while timing (its pauses land on
    whichever case happens to trigger them)."""
    best = {k: float("inf") for k in cases}
    was = gc.isenabled()
    if gc_off:
        gc.collect()
        gc.disable()
    try:
        for _ in range(warmup):
            for fn, n in cases.values():
                per_call(fn, max(1, n // 4))
        for _ in range(rounds):
            for k, (fn, n) in cases.items():
                t = per_call(fn, n)
                if t < best[k]:
                    best[k] = t
    finally:
        if was:
            gc.enable()
    return best


# -- zones ---------------------------------------------------------------------------------


def zone_allocs(lab: Lab, host: str = "a") -> tuple[int, int]:
    """(allocations, bytes allocated) so far from host ``host``'s tag zones
    (the strategy's and the OUT_DONE / IN_DONE zone)."""
    n = b = 0
    for z in lab.hosts[host].ip.ipsec.tags.zones():
        n += z.allocs
        b += z.allocs * z.size if z.size else 0
    return n, b


# -- tag strategies ----------------------------------------------------------------------


def _peer(i: int) -> str:
    return f"10.1.{i >> 8 & 0xFF}.{i & 0xFF}" if i < 65536 else \
        f"10.{2 + (i >> 16)}.{i >> 8 & 0xFF}.{i & 0xFF}"


def install_many(lab: Lab, n_sas: int, *, chunk: int = 2000) -> None:
    """``n_sas`` transport SAs a -> 10.1.x.y with their outbound policies on
    host ``a`` only (the receiver plays no part in host-path timing), routed
    through a's NIC.  Through PF_KEY, in setkey scripts of ``chunk``
    statements."""
    ifn = lab.ifname["a"]
    lab.a.ip.add_route("10.0.0.0/8", ifn)
    me = lab.addrs["a"]
    for start in range(0, n_sas, chunk):
        lines = []
        for i in range(start, min(n_sas, start + chunk)):
            peer = _peer(i)
            lines.append(f"spdadd {me} {peer} any -P out ipsec esp/transport//require;")
            lines.append(f"add {me} {peer} esp {0x10000 + i:#x} -m transport "
                         f"-E aes-gcm-16 {DEFAULT_KEY};")
        lab.setkey("a", "\n".join(lines))


def many_packets(n_sas: int, sizes: Iterable[int] = SIZES) -> dict[int, list[bytes]]:
    """One prebuilt UDP packet per peer and size (shared by every lab)."""
    return {s: [make_packet("10.0.0.1", _peer(i), s, "udp") for i in range(n_sas)]
            for s in sizes}


class StrategyCase:
    """A generic-NIC lab in packet-offload mode with ``n_sas`` offloaded SAs
    and tag strategy ``strategy`` on host ``a``; :meth:`step` sends the next
    packet of ``size`` (cycling over the SAs) through a's host path."""

    def __init__(self, strategy: str, n_sas: int,
                 packets: Optional[dict[int, list[bytes]]] = None) -> None:
        self.strategy = strategy
        self.n_sas = n_sas
        self.lab = Lab.build("generic", modes=("packet", "crypto"), tag_strategy=strategy)
        install_many(self.lab, n_sas)
        self.lab.set_mode("packet")
        ip = self.lab.a.ip
        ip.xmit_override = null_transmit
        self.packets = packets if packets is not None else many_packets(n_sas)
        self._inp = Inpcb(17)
        self.offloaded = len(self.lab.nic("a").handles())

    def step(self, size: int) -> Callable[[], int]:
        out = self.lab.a.ip.ip_output
        nxt = itertools.cycle(self.packets[size]).__next__
        inp = self._inp

        def step() -> int:
            return out(Mbuf(nxt()), inp)  # type: ignore[no-any-return]
        return step

    def warm(self) -> None:
        """One packet per SA and size: every per-handle object exists."""
        for s in self.packets:
            st = self.step(s)
            for _ in range(self.n_sas):
                st()

    def allocations(self, size: int, n: int) -> dict[str, float]:
        """Tag-zone allocations of a fresh strategy (no per-handle state):
        a first pass of one packet per SA (``first_use_allocs``: what the
        strategy allocates when an SA is first used -- a send tag per
        (ifnet, SA) for ``sndtag`` -- plus the pass's per-packet ones), then
        ``n`` packets of ``size`` in steady state (``allocs_per_packet``,
        ``bytes_per_packet``); what stays allocated (``resident_bytes``)."""
        ipsec = self.lab.a.ip.ipsec
        ipsec.set_tag_strategy(self.strategy)        # fresh zones, no per-handle state
        c0 = self.lab.stats("a")["accel.out_packet"]
        a0, _ = zone_allocs(self.lab)
        st = self.step(size)
        for _ in range(self.n_sas):
            st()
        a1, b1 = zone_allocs(self.lab)
        for _ in range(n):
            st()
        a2, b2 = zone_allocs(self.lab)
        sent = self.lab.stats("a")["accel.out_packet"] - c0
        resident = sum(z.bytes for z in ipsec.tags.zones())
        steady = (a2 - a1) / max(1, n)
        return {"packets": sent, "allocs_per_packet": steady,
                "bytes_per_packet": (b2 - b1) / max(1, n),
                "first_use_allocs": (a1 - a0) - round(steady * self.n_sas),
                "resident_bytes": resident, "per_handle": ipsec.tags.handles,
                "offloaded": sent / max(1, n + self.n_sas)}

    def tag_ops(self) -> Callable[[], object]:
        """The strategy's per-packet work alone: attach the tag to a fresh
        mbuf, read it with the drivers' accessor, free the mbuf."""
        ipsec = self.lab.a.ip.ipsec
        # The offload layer's installed handle of a's first SA on its NIC
        # (what ipsec_accel_output asks for before tagging).
        sav = self.lab.sav("a", 0x10000)
        ifp = self.lab.ifp("a")
        handle = self.lab.a.offload.ipsec_accel_sav_handle(sav, ifp) if sav else None
        if handle is None:
            raise RuntimeError("the first SA is not offloaded: nothing to tag")
        drv_spi = int(handle.drv_spi)
        attach = ipsec.tags.attach
        read = ipsec_accel_out_drv_spi

        def op() -> object:
            m = Mbuf(b"")
            attach(m, ifp, drv_spi, handle)
            read(m)
            m_freem(m)
            return None
        return op

    def close(self) -> None:
        self.lab.restore_host_path()
        self.lab.shutdown()


# -- modes ----------------------------------------------------------------------------------


class ModeCase:
    """One SA a -> b on a generic NIC doing packet and crypto offload, the
    host in ``mode`` (``software``, ``crypto``, ``packet``), or a lab without
    any policy (``baseline``); the tag strategy is ``tag``."""

    def __init__(self, mode: str, tag: str = "mtag") -> None:
        self.mode = mode
        self.lab = Lab.build("generic", modes=("packet", "crypto"), tag_strategy=tag)
        if mode != "baseline":
            self.lab.install_transport()
            self.lab.set_mode("packet" if mode == PACKET_FULL else mode)
        if mode == PACKET_FULL:
            self.lab.hosts["a"].ip.ipsec.sysctl("net.inet.ipsec.offload.fastpath", 0)

    def step(self, size: int) -> Callable[[], int]:
        return self.lab.host_path(size=size)

    def path_count(self) -> int:
        """Packets that took this mode's path so far (checks the mode is
        really what runs)."""
        st = self.lab.stats("a")
        if self.mode == "baseline":
            return int(st["ip.ips_localout"])
        return int(st[MODE_PATHS[self.mode]])

    def allocations(self, size: int, n: int = 2000) -> float:
        """Tag-zone allocations per packet in this mode (software: the
        OUT_DONE tag; crypto: OUT_DONE and CRYPTO_NEEDED; packet: the
        strategy's)."""
        a0, _ = zone_allocs(self.lab)
        st = self.step(size)
        for _ in range(n):
            st()
        a1, _ = zone_allocs(self.lab)
        return (a1 - a0) / n

    def close(self) -> None:
        self.lab.restore_host_path()
        self.lab.shutdown()


class ThreadedSender:
    """``threads`` real threads, each calling its own ``make_step()``
    ``per_thread`` times per round, released together by a barrier.
    :meth:`round` returns the round's window as measured by the workers
    themselves (earliest start to latest end): under the GIL the main thread
    may get the interpreter back only a switch interval after the workers
    start, so a clock read there would miss part of the work."""

    def __init__(self, make_step: Callable[[], Callable[[], object]], threads: int,
                 per_thread: int) -> None:
        self.threads = threads
        self.per_thread = per_thread
        self._start = threading.Barrier(threads + 1)
        self._done = threading.Barrier(threads + 1)
        self._stop = False
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._ts = [threading.Thread(target=self._worker, args=(make_step(),), daemon=True,
                                     name=f"sender-{i}") for i in range(threads)]
        for t in self._ts:
            t.start()

    def _worker(self, step: Callable[[], object]) -> None:
        clock = time.perf_counter
        n = self.per_thread
        while True:
            self._start.wait()
            if self._stop:
                return
            t0 = clock()
            for _ in range(n):
                step()
            t1 = clock()
            self._starts.append(t0)        # list.append: atomic under the GIL
            self._ends.append(t1)
            self._done.wait()

    def round(self) -> float:
        """Run one round; seconds from the first worker's start to the last
        worker's end."""
        self._starts.clear()
        self._ends.clear()
        self._start.wait()
        self._done.wait()
        return max(self._ends) - min(self._starts)

    @property
    def packets_per_round(self) -> int:
        return self.threads * self.per_thread

    def close(self) -> None:
        self._stop = True
        self._start.wait()
        for t in self._ts:
            t.join()


def threaded_rates(make_step: Callable[[], Callable[[], object]],
                   thread_counts: Sequence[int], per_thread: int,
                   rounds: int) -> dict[int, float]:
    """Aggregate calls per second for each number of threads in
    ``thread_counts`` (a :class:`ThreadedSender` each, all alive at once,
    their rounds interleaved so a slow spell of the machine hits every
    count alike); best of ``rounds``, garbage collector off.  Under the GIL
    only one thread runs Python at a time; C code that releases it (none of
    ours, it turns out) could overlap."""
    best = {t: 0.0 for t in thread_counts}
    senders = {t: ThreadedSender(make_step, t, per_thread) for t in thread_counts}
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for ts in senders.values():
            ts.round()                      # warm-up
        for _ in range(rounds):
            for t, ts in senders.items():
                dt = ts.round()
                if dt > 0:
                    best[t] = max(best[t], ts.packets_per_round / dt)
    finally:
        for ts in senders.values():
            ts.close()
        if was:
            gc.enable()
    return best


def threaded_rate(make_step: Callable[[], Callable[[], object]], threads: int,
                  per_thread: int, rounds: int) -> float:
    """:func:`threaded_rates` for one number of threads."""
    return threaded_rates(make_step, (threads,), per_thread, rounds)[threads]


# -- baselines ------------------------------------------------------------------------------


class Baselines:
    """The same packet the host path sends (10.0.0.1 -> 10.0.0.2 UDP,
    ``size`` bytes), encrypted by: the raw AEAD call, EspState.output,
    esp_transport_output, scapy.  The SA is the lab's (AES-GCM-128)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.packet = make_packet("10.0.0.1", "10.0.0.2", size, "udp")
        payload = self.packet[20:]
        # RFC 4303 trailer: padding to 4 bytes (GCM's block for ESP), pad
        # length, next header -- exactly what EspState.output encrypts.
        padlen = -(len(payload) + 2) % 4
        self.plaintext = payload + bytes(range(1, padlen + 1)) + bytes((padlen, 17))
        self.payload = payload

    def raw_aead(self) -> Callable[[], object]:
        enc = AESGCM(GCM_KEY[:16]).encrypt
        nonce, aad, pt = GCM_KEY[16:] + bytes(8), SPI.to_bytes(4, "big") + bytes(4), \
            self.plaintext
        return lambda: enc(nonce, pt, aad)

    def esp_output(self) -> Callable[[], object]:
        sa = EspState(SPI, int(SADB_EALG.X_AESGCM16), GCM_KEY)
        out, payload = sa.output, self.payload
        return lambda: out(payload, 17)

    def esp_transport_output(self) -> Callable[[], object]:
        sa = EspState(SPI, int(SADB_EALG.X_AESGCM16), GCM_KEY)
        pkt = self.packet
        return lambda: esp_transport_output(sa, pkt)

    def scapy(self) -> Optional[Callable[[], object]]:
        """scapy's SecurityAssociation.encrypt of the parsed packet (None
        when scapy is not installed: it is a test-only dependency)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from scapy.layers.inet import IP
                from scapy.layers.ipsec import ESP, SecurityAssociation
        except ImportError:
            return None
        make_sa: Callable[..., Any] = SecurityAssociation     # untyped in scapy
        sa = make_sa(ESP, spi=SPI, crypt_algo="AES-GCM", crypt_key=GCM_KEY)
        pkt = IP(self.packet)
        enc: Callable[[Any], object] = sa.encrypt
        return lambda: enc(pkt)


def check_same_packet(size: int) -> bool:
    """The baselines' ESP equals what the lab's software path would send for
    the same sequence number and IV (so the comparison is like for like)."""
    lab = Lab.build("generic", modes=("packet", "crypto"))
    try:
        lab.install_transport()
        sav = lab.sav("a", SPI)
        assert sav is not None
        ref = build_esp_state(sav)
        b = Baselines(size)
        mine = esp_transport_output(EspState(SPI, int(SADB_EALG.X_AESGCM16), GCM_KEY), b.packet)
        return bytes(mine) == bytes(esp_transport_output(ref, lab.packet(size)))
    finally:
        lab.shutdown()


# -- where the time goes ------------------------------------------------------------------


def profile_host_path(mode: str = "packet", size: int = 64, n: int = 20000,
                      tag: str = "mtag") -> pstats.Stats:
    """cProfile of ``n`` packets through the host path in ``mode``."""
    case = ModeCase(mode, tag)
    try:
        step = case.step(size)
        for _ in range(2000):
            step()
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(n):
            step()
        pr.disable()
        return pstats.Stats(pr)
    finally:
        case.close()


def stage_breakdown(stats: pstats.Stats, n: int) -> dict[str, Any]:
    """Python calls per packet, and the functions by own time (share of the
    total, calls per packet), from :func:`profile_host_path`'s stats.  The
    profiler inflates call overhead, so shares are indicative; the call
    count is exact."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    calls = sum(v[1] for v in raw.values())
    rows = []
    for (fname, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        short = fname.rsplit("/", 1)[-1] if "/" in fname else fname
        rows.append({"function": f"{short}:{line}({func})" if line else func,
                     "calls_per_packet": nc / n, "own_share": tt / total,
                     "cum_share": ct / total})
    rows.sort(key=lambda r: -r["own_share"])
    return {"calls_per_packet": calls / n, "functions": rows}


def call_floor(n: int = 200000) -> dict[str, float]:
    """What Python costs here, to size the 1.5 us budget: an empty function
    call, an Mbuf built and freed (every host path does it once), a dict
    lookup."""
    def f() -> None:
        return None
    d = {b"k": 1}
    pkt = make_packet("10.0.0.1", "10.0.0.2", 64, "udp")

    def mb() -> None:
        m_freem(Mbuf(pkt))
    res = interleaved({"empty_call": (f, n), "mbuf_alloc_free": (mb, n // 4),
                       "dict_get": (lambda: d.get(b"k"), n)}, rounds=5)
    return res


def environment() -> dict[str, Any]:
    """Where the numbers come from (goes into the JSON)."""
    import os
    import platform
    import sys

    import cryptography
    info: dict[str, Any] = {
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "gil": bool(getattr(sys, "_is_gil_enabled", lambda: True)()),
        "cryptography": cryptography.__version__, "platform": platform.platform(),
    }
    try:
        import scapy
        info["scapy"] = scapy.VERSION
    except ImportError:
        info["scapy"] = None
    return info


@dataclass
class Target:
    """One target of the issue, with its verdict."""

    name: str
    measured: float
    limit: float
    unit: str
    higher_is_better: bool = False
    #: Reported next to a target for context, not judged (e.g. the whole
    #: host path against a baseline that does only the ESP part).
    informative: bool = False

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else \
            self.measured <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "limit": self.limit,
                "unit": self.unit, "higher_is_better": self.higher_is_better,
                "met": self.met, "informative": self.informative}
