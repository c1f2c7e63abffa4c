#!/usr/bin/env python3
"""The datapath benchmark tables in one command (issue 6, "Benchmarks")::

    .venv/bin/python bench/report.py            # full run, a few minutes
    .venv/bin/python bench/report.py --quick    # smoke run, well under a minute

Runs the measurements of :mod:`datapath_measure` directly (perf_counter
loops, cases interleaved round by round -- no pytest), prints the tables
with ratios side by side, writes ``bench/results/datapath.json`` and, when
matplotlib is importable (``pip install .[plot]``), PNG plots
``bench/results/{tag_strategies,modes,threads,baselines}.png``; without it
the plots are skipped with a message.

Tables:

1. Tag strategies (seed 003's question): the sending host's cost per packet
   in packet-offload mode for ``mtag`` (FreeBSD's per-packet m_tag),
   ``sndtag`` (a send tag per ifnet and SA), ``outdone`` (the OUT_DONE tag
   reused), ``phfield`` (a packet-header field), at 64/512/1400 bytes with
   1, 100 and 10,000 active SAs (packets cycle over all of them); ratio to
   ``mtag``; tag-zone allocations and bytes per packet, what stays resident,
   and the strategy's own work alone (attach + driver read + free).
2. Modes (seed 001's table): no IPsec, software, crypto offload, packet
   offload, and packet offload with the output fast path off (every packet
   through the full policy / SA / offload decision) -- host cost per packet,
   packets per second, throughput relative to software; then 1 and 2 worker threads sending at once (each worker
   sends for about 40 ms per round; the window is the workers' own, first
   start to last end), and the raw AEAD call likewise: does any C code let
   threads overlap under the GIL?
3. Baselines: the raw ``AESGCM.encrypt`` of the same packet, the ESP
   transform (``EspState.output``), ESP of the whole packet
   (``esp_transport_output``), the software and packet-offload host paths and
   scapy's ``SecurityAssociation.encrypt`` -- with the targets: software ESP
   output at 1400 bytes <= 2x the raw AEAD call, packet-offload host path
   <= 1.5 us per packet, >= 100x faster than scapy.
4. Where the packet-offload host path's time goes (cProfile), when its
   target is missed (``--profile`` always, ``--no-profile`` never).

Environment: ``BENCH_DATAPATH_HEAVY=1`` adds 60,000 SAs (below the 65,533
handles the drv_spi space allows; measured lab by lab, ~10 minutes) and 4
threads.
Absolute microseconds depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TextIO

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))          # the repository (ipsec_accel, ...)
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))                 # datapath_measure

import datapath_measure as dm  # noqa: E402

RESULTS = HERE / "results"
HEAVY_ENV = "BENCH_DATAPATH_HEAVY"
PACKET_TARGET_US = 1.5
AEAD_RATIO_TARGET = 2.0
SCAPY_TARGET = 100.0


class Params:
    """Run sizes for --quick, the default and the heavy run."""

    def __init__(self, quick: bool, heavy: bool) -> None:
        self.quick = quick
        self.heavy = heavy
        self.sizes = dm.SIZES
        self.sa_counts: tuple[int, ...] = (1, 100) if quick else dm.SA_COUNTS
        if heavy:
            self.sa_counts = self.sa_counts + (dm.HEAVY_SAS,)
        self.threads: tuple[int, ...] = (1, 2, 4) if heavy else (1, 2)
        self.rounds = 3 if quick else 7
        self.batch = 500 if quick else 3000
        #: Seconds each worker sends per round: well over the interpreter's
        #: 5 ms switch interval, so a GIL hand-over more or less does not
        #: swing the figure (the packet count follows from the cost).
        self.thread_window = 0.01 if quick else 0.04
        self.thread_rounds = 2 if quick else 7
        self.scapy_batch = 5 if quick else 20
        self.scapy_rounds = 1 if quick else 3

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "method": "interleaved rounds (perf_counter loops)"}


def _log(err: TextIO, msg: str) -> None:
    err.write(f"report: {msg}\n")
    err.flush()


# -- measuring ------------------------------------------------------------------------------


#: From this many SAs on, the strategies' labs are built and timed one at a
#: time (about 8 KB of model state per SA and lab), not side by side.
SEQUENTIAL_SAS = 50_000


def measure_strategies(p: Params, err: TextIO) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    tag_ops: dict[str, float] = {}
    for n in p.sa_counts:
        pkts = dm.many_packets(n, p.sizes)
        groups = [list(dm.STRATEGIES)] if n < SEQUENTIAL_SAS else \
            [[s] for s in dm.STRATEGIES]
        for group in groups:
            _log(err, f"tag strategies: installing {n} SA(s) x {len(group)} lab(s)")
            cases = {s: dm.StrategyCase(s, n, pkts) for s in group}
            try:
                rows += _time_strategies(p, n, cases, tag_ops, err)
            finally:
                for c in cases.values():
                    c.close()
    return {"rows": rows, "tag_ops_us": tag_ops}


def _time_strategies(p: Params, n: int, cases: dict[str, dm.StrategyCase],
                     tag_ops: dict[str, float], err: TextIO) -> list[dict[str, Any]]:
    """Allocation counts, then every (strategy, size) case interleaved."""
    alloc = {s: c.allocations(p.sizes[0], 2000) for s, c in cases.items()}
    for c in cases.values():
        c.warm()
    timed: dict[str, tuple[Any, int]] = {}
    for s, c in cases.items():
        for size in p.sizes:
            timed[f"{s}/{size}"] = (c.step(size), p.batch)
        if n == p.sa_counts[0]:
            timed[f"{s}/ops"] = (c.tag_ops(), p.batch * 2)
    _log(err, f"tag strategies: timing {len(timed)} cases, {p.rounds} rounds")
    best = dm.interleaved(timed, p.rounds)
    rows = []
    for s, c in cases.items():
        if f"{s}/ops" in best:
            tag_ops[s] = best[f"{s}/ops"] * 1e6
        a = alloc[s]
        for size in p.sizes:
            rows.append({"strategy": s, "n_sas": n, "size": size, "offloaded_sas": c.offloaded,
                         "host_us": best[f"{s}/{size}"] * 1e6,
                         "allocs_per_packet": a["allocs_per_packet"],
                         "bytes_per_packet": a["bytes_per_packet"],
                         "first_use_allocs": a["first_use_allocs"],
                         "resident_bytes": a["resident_bytes"], "per_handle": a["per_handle"],
                         "offloaded_fraction": a["offloaded"]})
    return rows


def _stepper(case: dm.ModeCase, size: int) -> Callable[[], Callable[[], object]]:
    """A factory of ``case``'s steps (one per worker thread)."""
    def make() -> Callable[[], object]:
        return case.step(size)
    return make


def measure_modes(p: Params, err: TextIO) -> dict[str, Any]:
    names = ("baseline",) + dm.MODES + (dm.PACKET_FULL,)
    _log(err, "modes: building labs")
    cases = {m: dm.ModeCase(m) for m in names}
    try:
        before = {m: c.path_count() for m, c in cases.items()}
        timed = {f"{m}/{s}": (c.step(s), p.batch) for m, c in cases.items() for s in p.sizes}
        _log(err, f"modes: timing {len(timed)} cases, {p.rounds} rounds")
        best = dm.interleaved(timed, p.rounds)
        took = {m: c.path_count() - before[m] for m, c in cases.items()}
        allocs = {m: c.allocations(p.sizes[0], 1000) for m, c in cases.items()}
        rows = []
        for m in names:
            for s in p.sizes:
                us = best[f"{m}/{s}"] * 1e6
                rows.append({"mode": m, "size": s, "host_us": us, "allocs_per_packet": allocs[m]})
        # Threads: the same steps from 1, 2 (, 4) threads, plus the raw AEAD
        # call -- does the C code release the GIL?
        threads = []
        for m in ("baseline",) + dm.MODES + ("raw_aead",):
            for s in p.sizes:
                mk: Callable[[], Callable[[], object]]
                if m == "raw_aead":
                    mk = dm.Baselines(s).raw_aead
                    cost = dm.interleaved({"x": (mk(), 2000)}, 3)["x"]
                else:
                    mk = _stepper(cases[m], s)
                    cost = best[f"{m}/{s}"]
                per = max(100, int(p.thread_window / cost))
                _log(err, f"threads: {m} {s} B x {', '.join(map(str, p.threads))}")
                rates = dm.threaded_rates(mk, p.threads, per, p.thread_rounds)
                for t in p.threads:
                    threads.append({"mode": m, "size": s, "threads": t, "pps": rates[t]})
        return {"rows": rows, "threads": threads, "path_check": took}
    finally:
        for c in cases.values():
            c.close()


def measure_baselines(p: Params, err: TextIO) -> dict[str, Any]:
    """The raw AEAD call, EspState.output and esp_transport_output of every
    size, interleaved together (a slow spell of the machine hits all of
    them alike, and the ratios stay put); scapy apart, with few calls (it is
    ~500x slower)."""
    _log(err, "baselines: raw AEAD, EspState.output, esp_transport_output, scapy")
    bs = {s: dm.Baselines(s) for s in p.sizes}
    cases: dict[str, tuple[Any, int]] = {}
    for s, b in bs.items():
        cases[f"raw_aead/{s}"] = (b.raw_aead(), p.batch * 4)
        cases[f"esp_output/{s}"] = (b.esp_output(), p.batch * 2)
        cases[f"esp_transport_output/{s}"] = (b.esp_transport_output(), p.batch * 2)
    best = dm.interleaved(cases, 2 * p.rounds)
    rows = []
    for s, b in bs.items():
        sc = b.scapy()
        scapy_us = None
        if sc is not None:
            scapy_us = dm.interleaved({"scapy": (sc, p.scapy_batch)}, p.scapy_rounds,
                                      warmup=1)["scapy"] * 1e6
        rows.append({"size": s, "raw_aead_us": best[f"raw_aead/{s}"] * 1e6,
                     "esp_output_us": best[f"esp_output/{s}"] * 1e6,
                     "esp_transport_output_us": best[f"esp_transport_output/{s}"] * 1e6,
                     "scapy_us": scapy_us})
    return {"rows": rows, "same_bytes": {str(s): dm.check_same_packet(s) for s in p.sizes}}


def finish(res: dict[str, Any]) -> dict[str, Any]:
    """Derived figures from the raw measurements in ``res`` (also used by
    bench_datapath.py): ratios to mtag / 1 SA / no IPsec / software / 1
    thread / the raw AEAD call / scapy, the host paths beside the baselines,
    and the targets with their verdicts."""
    st = res["strategies"]["rows"]
    first_n = min(r["n_sas"] for r in st) if st else 1
    by = {(r["strategy"], r["n_sas"], r["size"]): r for r in st}
    for r in st:
        m = by.get(("mtag", r["n_sas"], r["size"]))
        r["vs_mtag"] = r["host_us"] / m["host_us"] if m else None
        one = by.get((r["strategy"], first_n, r["size"]))
        r["vs_1sa"] = r["host_us"] / one["host_us"] if one else None
    md = res["modes"]["rows"]
    bym = {(r["mode"], r["size"]): r for r in md}
    for r in md:
        r["pps"] = 1e6 / r["host_us"]
        b = bym.get(("baseline", r["size"]))
        r["vs_baseline_cost"] = r["host_us"] / b["host_us"] if b else None
        sw = bym.get(("software", r["size"]))
        r["vs_software_pps"] = r["pps"] / (1e6 / sw["host_us"]) if sw else None
    byt = {(r["mode"], r["size"], r["threads"]): r for r in res["modes"]["threads"]}
    for r in res["modes"]["threads"]:
        one = byt.get((r["mode"], r["size"], 1))
        r["scaling"] = r["pps"] / one["pps"] if one else None
    for r in res["baselines"]["rows"]:
        s, raw = r["size"], r["raw_aead_us"]
        for mode in ("software", "crypto", "packet", "baseline"):
            x = bym.get((mode, s))
            r[f"{mode}_host_us"] = x["host_us"] if x else None
        r["esp_output_vs_raw"] = r["esp_output_us"] / raw
        r["esp_transport_output_vs_raw"] = r["esp_transport_output_us"] / raw
        r["software_host_vs_raw"] = r["software_host_us"] / raw \
            if r["software_host_us"] else None
        if r["scapy_us"] is not None:
            r["scapy_vs_esp_transport_output"] = r["scapy_us"] / r["esp_transport_output_us"]
            r["scapy_vs_software_host"] = r["scapy_us"] / r["software_host_us"] \
                if r["software_host_us"] else None
    ts = targets(res)
    res["targets"] = [t.as_dict() for t in ts]
    res["all_targets_met"] = all(t.met for t in ts if not t.informative)
    return res


def targets(res: dict[str, Any]) -> list[dm.Target]:
    rows = {r["size"]: r for r in res["baselines"]["rows"]}
    big = max(rows)
    b = rows[big]
    out = [dm.Target(f"software ESP output (EspState.output) at {big} B vs raw AEAD",
                     b["esp_output_vs_raw"], AEAD_RATIO_TARGET, "x")]
    if b.get("software_host_vs_raw") is not None:
        out.append(dm.Target(f"whole software host path at {big} B vs raw AEAD",
                             b["software_host_vs_raw"], AEAD_RATIO_TARGET, "x",
                             informative=True))
    for s in sorted(rows):
        if rows[s].get("packet_host_us") is not None:
            out.append(dm.Target(f"packet-offload host path at {s} B (mtag, 1 SA)",
                                 rows[s]["packet_host_us"], PACKET_TARGET_US, "us"))
    # The other tag strategies at the smallest SA count (table 1): what the
    # host path costs without FreeBSD's per-packet m_tag allocation.
    st = res["strategies"]["rows"]
    if st:
        n0 = min(r["n_sas"] for r in st)
        for r in sorted(st, key=lambda r: (r["strategy"], r["size"])):
            if r["n_sas"] == n0 and r["strategy"] != "mtag":
                out.append(dm.Target(f"packet-offload host path at {r['size']} B "
                                     f"({r['strategy']}, {n0} SA)", r["host_us"],
                                     PACKET_TARGET_US, "us", informative=True))
    for s in sorted(rows):
        r = rows[s]
        if r.get("scapy_vs_esp_transport_output") is not None:
            out.append(dm.Target(f"scapy / esp_transport_output at {s} B",
                                 r["scapy_vs_esp_transport_output"], SCAPY_TARGET, "x",
                                 higher_is_better=True))
        if r.get("scapy_vs_software_host") is not None:
            out.append(dm.Target(f"scapy / whole software host path at {s} B",
                                 r["scapy_vs_software_host"], SCAPY_TARGET, "x",
                                 higher_is_better=True, informative=True))
    return out


def measure_profile(p: Params, err: TextIO) -> dict[str, Any]:
    _log(err, "profile: packet-offload host path under cProfile")
    n = 5000 if p.quick else 20000
    size = p.sizes[0]
    st = dm.profile_host_path("packet", size, n)
    prof = dm.stage_breakdown(st, n)
    prof["functions"] = prof["functions"][:18]
    prof["mode"], prof["size"], prof["packets"] = "packet", size, n
    prof["floor_us"] = {k: v * 1e6 for k, v in dm.call_floor().items()}
    return prof


def budget(res: dict[str, Any]) -> Optional[dict[str, float]]:
    """What a packet-offload host path could cost if IPsec added nothing but
    one flow-cache lookup and the tag to plain ip_output, from this run's
    figures: no-IPsec host path + (strategy's own work - Mbuf()+m_freem) +
    one dict lookup.  A floor for the datapath owner, not a measurement."""
    prof = res.get("profile")
    ops = (res.get("strategies") or {}).get("tag_ops_us") or {}
    base = [r for r in (res.get("modes") or {}).get("rows", []) if r["mode"] == "baseline"]
    if not prof or not ops or not base:
        return None
    fl = prof["floor_us"]
    b = min(r["host_us"] for r in base)
    return {s: b + max(0.0, ops[s] - fl["mbuf_alloc_free"]) + fl["dict_get"] for s in ops}


def run(p: Params, err: TextIO, profile: Optional[bool]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "schema": 1,
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": dm.environment(), "params": p.as_dict()}
    res["strategies"] = measure_strategies(p, err)
    res["modes"] = measure_modes(p, err)
    res["baselines"] = measure_baselines(p, err)
    finish(res)
    missed_packet = any(not t["met"] for t in res["targets"]
                        if t["name"].startswith("packet-offload"))
    if profile or (profile is None and missed_packet):
        res["profile"] = measure_profile(p, err)
        res["profile"]["fast_path_floor_us"] = budget(res)
    return res


# -- printing -------------------------------------------------------------------------------


def _f(x: Optional[float], spec: str, width: int = 0) -> str:
    """``format(x, spec)``, or "-" for a figure that was not measured."""
    text = "-" if x is None else format(x, spec)
    return f"{text:>{width}}" if width else text


_LABEL = {"baseline": "no IPsec", "software": "software", "crypto": "crypto offload",
          "packet": "packet offload", "packet_full": "pkt offl, no fast",
          "raw_aead": "raw AEAD call"}


def tables(res: dict[str, Any]) -> str:
    """The text tables of a result (module docstring); figures that were not
    measured print as "-"."""
    env = res["environment"]
    p = res["params"]
    sizes = list(p["sizes"])
    L: list[str] = []
    L.append(f"Datapath benchmarks -- Python {env['python']} "
             f"({'GIL' if env['gil'] else 'free-threaded'}), {env['cpus']} CPUs, "
             f"cryptography {env['cryptography']}, scapy {env['scapy']}"
             f"{', QUICK run' if p.get('quick') else ''}")
    L.append("Per packet, sending host only (NIC transmit replaced by a tag read + m_freem); "
             f"min over {p.get('method', 'interleaved rounds')}.")

    st = res.get("strategies")
    if st and st["rows"]:
        L.append("")
        L.append("1. Tag strategies, packet offload, generic NIC: host us/packet "
                 "(ratio to mtag); allocations from the tag zones: per packet in steady "
                 "state,")
        L.append("   once per SA on first use (all SAs), and what stays allocated")
        L.append(f"{'strategy':<9}{'SAs':>7}" + "".join(f"{str(s) + ' B':>16}" for s in sizes)
                 + f"{'vs 1 SA':>9}{'allocs/pkt':>11}{'B/pkt':>7}{'per-SA allocs':>14}"
                 f"{'resident B':>11}")
        by = {(r["strategy"], r["n_sas"], r["size"]): r for r in st["rows"]}
        for n in sorted({r["n_sas"] for r in st["rows"]}):
            for s in dm.STRATEGIES:
                if not any((s, n, size) in by for size in sizes):
                    continue
                cells = ""
                for size in sizes:
                    r = by.get((s, n, size))
                    cells += f"{_f(r and r['host_us'], '.2f', 8)} " \
                             f"({_f(r and r['vs_mtag'], '.2f')}x)" if r else f"{'-':>16}"
                r0 = next(by[(s, n, size)] for size in sizes if (s, n, size) in by)
                L.append(f"{s:<9}{n:>7}{cells}{_f(r0['vs_1sa'], '.2f', 8)}x"
                         f"{_f(r0.get('allocs_per_packet'), '.3f', 11)}"
                         f"{_f(r0.get('bytes_per_packet'), '.1f', 7)}"
                         f"{_f(r0.get('first_use_allocs'), 'd', 14)}"
                         f"{_f(r0.get('resident_bytes'), 'd', 11)}")
        for n in sorted({r["n_sas"] for r in st["rows"]}):
            part = [r for r in st["rows"] if r["n_sas"] == n
                    and r.get("offloaded_fraction", 1.0) < 1.0]
            if part:
                r = part[0]
                L.append(f"   NOTE {n} SAs: only {r.get('offloaded_sas')} offloaded (drv_spi "
                         f"space 3..0xffff); {1 - r['offloaded_fraction']:.0%} of the packets "
                         "took software")
        ops = st.get("tag_ops_us") or {}
        if "mtag" in ops:
            L.append("   the strategy's own work alone (attach + driver read + m_freem of an "
                     "empty mbuf), us: " + ", ".join(
                         f"{s} {ops[s]:.2f} ({ops[s] / ops['mtag']:.2f}x)"
                         for s in dm.STRATEGIES if s in ops))

    md = res.get("modes")
    if md and md["rows"]:
        L.append("")
        L.append("2. Modes (seed 001): host us/packet | kpps | throughput vs software; "
                 "1 SA, mtag")
        L.append(f"{'mode':<17}" + "".join(f"{str(s) + ' B':>26}" for s in sizes) +
                 f"{'allocs/pkt':>11}")
        byr = {(r["mode"], r["size"]): r for r in md["rows"]}
        for m in ("baseline",) + dm.MODES + (dm.PACKET_FULL,):
            if not any((m, s) in byr for s in sizes):
                continue
            cells = ""
            for size in sizes:
                r = byr.get((m, size))
                if r is None:
                    cells += f"{'-':>26}"
                    continue
                cells += f"{r['host_us']:>8.2f} |{r['pps'] / 1e3:>6.0f} |" \
                         f"{_f(r.get('vs_software_pps'), '.2f', 6)}x"
            r0 = next(byr[(m, s)] for s in sizes if (m, s) in byr)
            L.append(f"{_LABEL[m]:<17}{cells}{_f(r0.get('allocs_per_packet'), '.1f', 11)}")
        if md.get("threads"):
            thr = sorted({r["threads"] for r in md["threads"]})
            L.append("   worker threads sending at once: aggregate kpps (scaling vs 1 thread)")
            L.append(f"{'mode':<17}" + "".join(
                "".join(f"{f'{s} B x{t}':>17}" for t in thr) for s in sizes))
            byt = {(r["mode"], r["size"], r["threads"]): r for r in md["threads"]}
            for m in ("baseline",) + dm.MODES + ("raw_aead",):
                if not any(k[0] == m for k in byt):
                    continue
                cells = ""
                for size in sizes:
                    for t in thr:
                        r = byt.get((m, size, t))
                        cells += f"{r['pps'] / 1e3:>9.0f} ({_f(r.get('scaling'), '.2f')})" \
                            if r else f"{'-':>17}"
                L.append(f"{_LABEL[m]:<17}{cells}")

    bl = res.get("baselines")
    if bl and bl["rows"]:
        L.append("")
        L.append("3. Baselines, same packet (IPv4 UDP, AES-GCM-128): us/packet "
                 "(ratio to raw AEAD)")
        L.append(f"{'size':>5}{'raw AEAD':>10}{'EspState.output':>19}{'esp_transport_out':>21}"
                 f"{'sw host path':>18}{'pkt-offl host':>15}{'scapy':>9}{'scapy/esp_tr':>13}"
                 f"{'scapy/sw host':>14}")
        for r in bl["rows"]:
            L.append(f"{r['size']:>5}{r['raw_aead_us']:>10.2f}"
                     f"{r['esp_output_us']:>11.2f} ({r['esp_output_vs_raw']:.2f}x)"
                     f"{r['esp_transport_output_us']:>13.2f} "
                     f"({r['esp_transport_output_vs_raw']:.2f}x)"
                     f"{_f(r.get('software_host_us'), '.2f', 9)} "
                     f"({_f(r.get('software_host_vs_raw'), '5.2f')}x)"
                     f"{_f(r.get('packet_host_us'), '.2f', 15)}"
                     f"{_f(r.get('scapy_us'), '.0f', 9)}"
                     f"{_f(r.get('scapy_vs_esp_transport_output'), '.0f', 12)}x"
                     f"{_f(r.get('scapy_vs_software_host'), '.0f', 13)}x")
        same = bl.get("same_bytes") or {}
        if same:
            L.append("   baseline ESP bytes == the lab SA's software ESP bytes: " +
                     ", ".join(f"{s} B {'yes' if v else 'NO'}" for s, v in same.items()))

    if res.get("targets"):
        L.append("")
        L.append("Targets (like for like: the ESP transform against the AEAD call, ESP of a "
                 "packet against scapy's;")
        L.append("         '(info)': the whole host path against the same baselines, "
                 "not judged)")
        for t in res["targets"]:
            if t.get("informative"):
                L.append(f"  {'(info)':<8}{t['name']}: {t['measured']:.2f}{t['unit']}")
                continue
            rel = ">=" if t["higher_is_better"] else "<="
            L.append(f"  {'met' if t['met'] else 'MISSED':<8}{t['name']}: "
                     f"{t['measured']:.2f}{t['unit']} ({rel} {t['limit']:g}{t['unit']})")

    prof = res.get("profile")
    if prof:
        L.append("")
        fl = prof["floor_us"]
        L.append(f"4. Where the packet-offload host path goes ({prof['size']} B, cProfile, "
                 f"{prof['packets']} packets): {prof['calls_per_packet']:.1f} calls "
                 f"per packet (Python functions and builtins)")
        L.append(f"   floor here: empty call {fl['empty_call']:.3f} us, Mbuf()+m_freem "
                 f"{fl['mbuf_alloc_free']:.3f} us, dict.get {fl['dict_get']:.3f} us")
        fp = prof.get("fast_path_floor_us")
        if fp:
            L.append("   floor of a one-lookup fast path (no-IPsec path + the strategy's own "
                     "work + one dict lookup), us: " + ", ".join(
                         f"{s} {fp[s]:.2f}" for s in dm.STRATEGIES if s in fp))
        L.append(f"   {'own %':>6} {'cum %':>6} {'calls/pkt':>9}  function")
        for f in prof["functions"]:
            L.append(f"   {100 * f['own_share']:>6.1f} {100 * f['cum_share']:>6.1f} "
                     f"{f['calls_per_packet']:>9.2f}  {f['function']}")
    return "\n".join(L)


# -- plots ----------------------------------------------------------------------------------


def _pick(rows: list[dict[str, Any]], field: str, **match: Any) -> float:
    """``field`` of the row matching ``match`` (0 when not measured: a
    missing bar rather than a failed plot)."""
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return float(r.get(field) or 0.0)
    return 0.0


def plots(res: dict[str, Any], outdir: Path) -> list[Path]:
    """Draw the PNG plots into ``outdir``; returns their paths.  Needs
    matplotlib (main() checks first and says so when it is missing)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = res["params"]["sizes"]
    written = []

    def save(fig: Any, name: str) -> None:
        path = outdir / name
        fig.tight_layout()
        # bbox "tight": the legends sit below the axes, outside the figure box.
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    # tag strategies: one panel per SA count
    st = res["strategies"]["rows"]
    ns = res["params"]["sa_counts"]
    fig, axes = plt.subplots(1, len(ns), figsize=(4.2 * len(ns), 3.6), sharey=True,
                             squeeze=False)
    w = 0.8 / len(dm.STRATEGIES)
    for ax, n in zip(axes[0], ns, strict=True):
        for i, s in enumerate(dm.STRATEGIES):
            ys = [_pick(st, "host_us", strategy=s, n_sas=n, size=size) for size in sizes]
            ax.bar([j + i * w for j in range(len(sizes))], ys, w, label=s)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(sizes))], [f"{x} B" for x in sizes])
        ax.set_title(f"{n} SA{'s' if n > 1 else ''}")
        ax.axhline(PACKET_TARGET_US, color="red", lw=0.8, ls="--")
    axes[0][0].set_ylabel("host us / packet (packet offload)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(dm.STRATEGIES), fontsize=8,
               bbox_to_anchor=(0.5, -0.06))
    save(fig, "tag_strategies.png")

    # modes
    md = res["modes"]["rows"]
    names = ("baseline",) + dm.MODES
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    w = 0.8 / len(names)
    for i, m in enumerate(names):
        ys = [_pick(md, "host_us", mode=m, size=size) for size in sizes]
        ax.bar([j + i * w for j in range(len(sizes))], ys, w, label=_LABEL[m])
    ax.axhline(PACKET_TARGET_US, color="red", lw=0.8, ls="--", label="1.5 us target")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(sizes))], [f"{x} B" for x in sizes])
    ax.set_ylabel("host us / packet")
    ax.set_title("Offload modes (sending host)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5)
    save(fig, "modes.png")

    # threads
    th = res["modes"]["threads"]
    tcounts = sorted({r["threads"] for r in th})
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    modes_t = names + ("raw_aead",)
    w = 0.8 / len(tcounts)
    for i, t in enumerate(tcounts):
        ys = [_pick(th, "scaling", mode=m, size=sizes[-1], threads=t) for m in modes_t]
        ax.bar([j + i * w for j in range(len(modes_t))], ys, w, label=f"{t} thread(s)")
    labels = [_LABEL[m] for m in modes_t]
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(modes_t))], labels, fontsize=8)
    ax.set_ylabel(f"throughput vs 1 thread ({sizes[-1]} B)")
    ax.set_title("Worker threads (GIL)" if res["environment"]["gil"] else "Worker threads")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(tcounts))
    save(fig, "threads.png")

    # baselines (log scale)
    br = res["baselines"]["rows"]
    keys = [("raw_aead_us", "raw AEAD"), ("esp_output_us", "EspState.output"),
            ("esp_transport_output_us", "esp_transport_output"),
            ("packet_host_us", "packet-offload host"), ("software_host_us", "software host"),
            ("scapy_us", "scapy")]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    w = 0.8 / len(keys)
    for i, (k, lab) in enumerate(keys):
        ys = [r[k] or 0 for r in br]
        ax.bar([j + i * w for j in range(len(br))], ys, w, label=lab)
    ax.set_yscale("log")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(br))], [f"{r['size']} B" for r in br])
    ax.set_ylabel("us / packet (log)")
    ax.set_title("Baselines, same packet")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    save(fig, "baselines.png")
    return written


# -- main -----------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None, *, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    ap = argparse.ArgumentParser(prog="bench/report.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (fewer rounds, "
                    "1 and 100 SAs)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results directory "
                    "(default bench/results)")
    ap.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--profile", dest="profile", action="store_true", default=None,
                   help="always profile the packet-offload host path")
    g.add_argument("--no-profile", dest="profile", action="store_false",
                   help="never profile")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="print the tables (and plots) of an earlier run, measure nothing")
    a = ap.parse_args(argv)
    if a.from_json:
        res = json.loads(a.from_json.read_text())
    else:
        heavy = os.environ.get(HEAVY_ENV, "") not in ("", "0")
        res = run(Params(a.quick, heavy), err, a.profile)
        a.out.mkdir(parents=True, exist_ok=True)
        path = a.out / "datapath.json"
        path.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        _log(err, f"wrote {path}")
    out.write(tables(res) + "\n")
    out.flush()
    if not a.no_plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _log(err, "matplotlib is not installed: plots skipped "
                      "(pip install '.[plot]' to draw them)")
        else:
            a.out.mkdir(parents=True, exist_ok=True)
            for pth in plots(res, a.out):
                _log(err, f"wrote {pth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
