"""Datapath benchmarks (issue 6, "Benchmarks") under pytest-benchmark.

Run: ``.venv/bin/python -m pytest bench/bench_datapath.py --benchmark-enable -q -s``
(``make bench`` runs it with the other suites).  The same measurements,
faster and without pytest, with JSON and plots: ``bench/report.py``.

Per packet, the sending host's cost (:mod:`datapath_measure`: the whole
output path, then a null transmit that reads the tag as a driver would and
frees the mbuf):

1. tag strategies (``mtag``, ``sndtag``, ``outdone``, ``phfield``) in
   packet-offload mode at 64, 512 and 1400 bytes with 1, 100 and 10,000
   active SAs; allocations per packet from the strategy's zones go into
   ``extra_info``; plus each strategy's own work alone;
2. modes as in seed 001 -- no IPsec, software, crypto offload, packet
   offload -- at the three sizes, and from 1 and 2 worker threads at once
   (real threads; under the GIL they take turns: the table shows it);
3. baselines in the same run: the raw ``AESGCM.encrypt`` of the same
   packet, ``EspState.output``, ``esp_transport_output`` and scapy's
   ``SecurityAssociation.encrypt``.

After the last test the module prints bench/report.py's tables with the
targets:
software ESP output <= 2x the raw AEAD call at 1400 bytes, packet-offload
host path <= 1.5 us, >= 100x faster than scapy.  Ratios are side by side in
one run; absolute microseconds are for the reader.

``BENCH_DATAPATH_HEAVY=1`` adds 60,000 SAs and 4 threads and doubles the
rounds.  Without ``--benchmark-enable`` every case runs once as a smoke test
and the 10,000-SA labs are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import datapath_measure as dm  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_datapath_report", HERE / "report.py")
assert _spec is not None and _spec.loader is not None
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

HEAVY = os.environ.get(report.HEAVY_ENV, "") not in ("", "0")
SA_COUNTS = dm.SA_COUNTS + ((dm.HEAVY_SAS,) if HEAVY else ())
THREADS = (1, 2, 4) if HEAVY else (1, 2)
SIZES = dm.SIZES
BATCH = 2000
ROUNDS = 10 if HEAVY else 5
#: Seconds each worker thread sends per round (well over the 5 ms switch
#: interval; the packet count follows from a quick cost estimate).
THREAD_WINDOW = 0.04
SCAPY_BATCH = 10
#: Labs of this many SAs or more are skipped in smoke runs (no timing).
BIG = 10_000

# Raw results, in bench/report.py's layout, for the final table.
_strategy_rows: dict[tuple[str, int, int], dict[str, Any]] = {}
_tag_ops: dict[str, float] = {}
_mode_rows: dict[tuple[str, int], dict[str, Any]] = {}
_thread_rows: dict[tuple[str, int, int], dict[str, Any]] = {}
_baseline_rows: dict[int, dict[str, Any]] = {}

# Labs are expensive with many SAs: built on first use, one SA count at a
# time (the parameter lists are ordered by SA count), closed at the end.
_strategy_cases: dict[tuple[str, int], dm.StrategyCase] = {}
_allocs: dict[tuple[str, int], dict[str, float]] = {}
_mode_cases: dict[str, dm.ModeCase] = {}


def _strategy_case(strategy: str, n: int) -> dm.StrategyCase:
    c = _strategy_cases.get((strategy, n))
    if c is not None:
        return c
    for (s, k), old in list(_strategy_cases.items()):
        if k != n:
            old.close()
            del _strategy_cases[(s, k)]
    same_n = next((x for (s, k), x in _strategy_cases.items() if k == n), None)
    c = dm.StrategyCase(strategy, n, same_n.packets if same_n is not None else None)
    _allocs[(strategy, n)] = c.allocations(SIZES[0], 2000)
    c.warm()
    _strategy_cases[(strategy, n)] = c
    return c


def _mode_case(mode: str) -> dm.ModeCase:
    c = _mode_cases.get(mode)
    if c is None:
        c = _mode_cases[mode] = dm.ModeCase(mode)
    return c


@pytest.fixture(scope="module", autouse=True)
def _close_labs_and_report(request: Any) -> Iterator[None]:
    """After the module: close the labs, then print the tables through the
    terminal reporter (so they appear under ``make bench``'s
    --benchmark-only, which skips tests without the benchmark fixture, and
    without -s)."""
    yield
    for c in list(_strategy_cases.values()) + list(_mode_cases.values()):
        c.close()
    _strategy_cases.clear()
    _mode_cases.clear()
    text = tables()
    if text:
        pm = request.config.pluginmanager
        tr, capman = pm.getplugin("terminalreporter"), pm.getplugin("capturemanager")
        if tr is None or capman is None:
            print(text)
            return
        # Teardown output is captured: step outside the capture to write.
        with capman.global_and_fixture_disabled():
            tr.write_line("")
            for line in text.splitlines():
                tr.write_line(line)


def tables() -> str:
    """bench/report.py's tables of what this run measured ("" when the
    benchmarks were disabled)."""
    if not _mode_rows or not _baseline_rows:
        return ""
    res: dict[str, Any] = {
        "environment": dm.environment(),
        "params": {"sizes": list(SIZES), "sa_counts": list(SA_COUNTS), "quick": False,
                   "method": "pytest-benchmark rounds"},
        "strategies": {"rows": list(_strategy_rows.values()), "tag_ops_us": dict(_tag_ops)},
        "modes": {"rows": list(_mode_rows.values()), "threads": list(_thread_rows.values())},
        "baselines": {"rows": [r for _, r in sorted(_baseline_rows.items())
                               if "raw_aead_us" in r and "esp_output_us" in r
                               and "esp_transport_output_us" in r],
                      "same_bytes": {str(s): dm.check_same_packet(s) for s in SIZES}},
    }
    report.finish(res)
    return report.tables(res)  # type: ignore[no-any-return]


def _loop(fn: Callable[[], object], n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            fn()
    return run


def _per_packet(benchmark: Any, per_call: int) -> float | None:
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    per = float(stats.stats.min) / per_call
    benchmark.extra_info["us_per_packet"] = round(per * 1e6, 3)
    return per


def _skip_big_when_disabled(benchmark: Any, n: int) -> None:
    if getattr(benchmark, "disabled", False) and n >= BIG:
        pytest.skip(f"{n} SAs: only with --benchmark-enable")


# -- 1. tag strategies -------------------------------------------------------------------

STRATEGY_PARAMS = [(n, s, size) for n in SA_COUNTS for s in dm.STRATEGIES for size in SIZES]


@pytest.mark.parametrize("n_sas,strategy,size", STRATEGY_PARAMS,
                         ids=[f"{n}sa-{s}-{size}" for n, s, size in STRATEGY_PARAMS])
def test_tag_strategy(benchmark: Any, n_sas: int, strategy: str, size: int) -> None:
    """Host cost per packet, packet offload, ``n_sas`` active SAs (packets
    cycle over them), and the strategy's allocations per packet."""
    _skip_big_when_disabled(benchmark, n_sas)
    c = _strategy_case(strategy, n_sas)
    step = c.step(size)
    benchmark.group = f"tags-{n_sas}sa-{size}"
    benchmark.pedantic(_loop(step, BATCH), rounds=ROUNDS, warmup_rounds=1)
    a = _allocs[(strategy, n_sas)]
    benchmark.extra_info.update({k: a[k] for k in ("allocs_per_packet", "bytes_per_packet",
                                                   "first_use_allocs", "resident_bytes")})
    assert a["offloaded"] == 1.0, "every packet took the packet-offload path"
    per = _per_packet(benchmark, BATCH)
    if per is not None:
        _strategy_rows[(strategy, n_sas, size)] = {
            "strategy": strategy, "n_sas": n_sas, "size": size, "host_us": per * 1e6,
            "offloaded_sas": c.offloaded, **a}


@pytest.mark.parametrize("strategy", dm.STRATEGIES)
def test_tag_ops(benchmark: Any, strategy: str) -> None:
    """The strategy's own per-packet work: attach, driver read, m_freem."""
    op = _strategy_case(strategy, SA_COUNTS[0]).tag_ops()
    benchmark.group = "tag-ops"
    benchmark.pedantic(_loop(op, BATCH), rounds=ROUNDS, warmup_rounds=1)
    per = _per_packet(benchmark, BATCH)
    if per is not None:
        _tag_ops[strategy] = per * 1e6


# -- 2. modes -------------------------------------------------------------------------------

MODE_NAMES = ("baseline",) + dm.MODES


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODE_NAMES + (dm.PACKET_FULL,))
def test_mode(benchmark: Any, mode: str, size: int) -> None:
    """Host cost per packet: no IPsec, software, crypto offload, packet
    offload, packet offload with the output fast path off (one SA, mtag)."""
    c = _mode_case(mode)
    before = c.path_count()
    benchmark.group = f"modes-{size}"
    benchmark.pedantic(_loop(c.step(size), BATCH), rounds=ROUNDS, warmup_rounds=1)
    assert c.path_count() > before, f"{mode}: the packets took the {mode} path"
    per = _per_packet(benchmark, BATCH)
    if per is not None:
        _mode_rows[(mode, size)] = {"mode": mode, "size": size, "host_us": per * 1e6,
                                    "allocs_per_packet": c.allocations(size, 500)}


THREAD_PARAMS = [(m, s, t) for m in MODE_NAMES + ("raw_aead",) for s in SIZES for t in THREADS]


@pytest.mark.parametrize("mode,size,threads", THREAD_PARAMS,
                         ids=[f"{m}-{s}-x{t}" for m, s, t in THREAD_PARAMS])
def test_mode_threads(benchmark: Any, mode: str, size: int, threads: int) -> None:
    """``threads`` real threads sending at once (each its own step, same
    host and SA); aggregate packets per second over the workers' own
    window.  The raw AEAD call is there to show whether the C code lets
    threads overlap."""
    if mode == "raw_aead":
        make: Callable[[], Callable[[], object]] = dm.Baselines(size).raw_aead
    else:
        c = _mode_case(mode)
        make = lambda: c.step(size)  # noqa: E731
    cost = dm.interleaved({"x": (make(), 500)}, 2)["x"]
    sender = dm.ThreadedSender(make, threads, max(100, int(THREAD_WINDOW / cost)))
    windows: list[float] = []
    try:
        benchmark.group = f"threads-{mode}-{size}"
        benchmark.pedantic(lambda: windows.append(sender.round()), rounds=ROUNDS,
                           warmup_rounds=1)
    finally:
        sender.close()
    best = min(windows)
    pps = sender.packets_per_round / best if best > 0 else 0.0
    benchmark.extra_info["pps"] = round(pps)
    if getattr(benchmark, "stats", None) is not None:
        _thread_rows[(mode, size, threads)] = {"mode": mode, "size": size,
                                               "threads": threads, "pps": pps}


# -- 3. baselines ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("what", ["raw_aead", "esp_output", "esp_transport_output", "scapy"])
def test_baseline(benchmark: Any, what: str, size: int) -> None:
    """The same packet through the raw AEAD call, the ESP transform, ESP of
    the whole packet, scapy."""
    b = dm.Baselines(size)
    fn = getattr(b, what)()
    if fn is None:
        pytest.skip("scapy is not installed")
    n = SCAPY_BATCH if what == "scapy" else BATCH
    benchmark.group = f"scapy-{size}" if what == "scapy" else f"baselines-{size}"
    benchmark.pedantic(_loop(fn, n), rounds=3 if what == "scapy" else ROUNDS,
                       warmup_rounds=1)
    per = _per_packet(benchmark, n)
    if per is not None:
        row = _baseline_rows.setdefault(size, {"size": size, "scapy_us": None})
        row[f"{what}_us"] = per * 1e6
