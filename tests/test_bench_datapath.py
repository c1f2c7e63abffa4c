"""The datapath benchmark machinery (bench/datapath_measure.py,
bench/report.py) measures what it says it measures: every packet of a
strategy case is offloaded, the allocation counts per strategy are the
model's (mtag / outdone: one tag per packet; sndtag: one send tag per SA and
none per packet; phfield: none), each mode case takes its own path, worker
threads send exactly their share, the baselines encrypt the very packet the
lab's SA would, and the tables and targets are derived correctly from raw
figures.  Counts and arithmetic only -- no timing is asserted."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import datapath_measure as dm  # noqa: E402


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report_under_test",
                                                  BENCH / "report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


report = _report()


@pytest.mark.parametrize("strategy,per_packet,per_sa,resident", [
    ("mtag", 1.0, 0, 0), ("outdone", 1.0, 0, 0), ("sndtag", 0.0, 1, 24), ("phfield", 0.0, 0, 0),
])
def test_strategy_case_allocations(strategy: str, per_packet: float, per_sa: int,
                                   resident: int) -> None:
    """Three SAs, all offloaded; tag-zone allocations per packet in steady
    state, per SA on first use, and what stays allocated."""
    c = dm.StrategyCase(strategy, 3)
    try:
        assert c.offloaded == 3
        a = c.allocations(64, 30)
        assert a["offloaded"] == 1.0 and a["packets"] == 33
        assert a["allocs_per_packet"] == per_packet
        assert a["first_use_allocs"] == 3 * per_sa
        assert a["resident_bytes"] == 3 * resident
        # the host path and the strategy's own work both run
        st = c.step(512)
        assert all(st() == 0 for _ in range(6))
        c.tag_ops()()
    finally:
        c.close()


@pytest.mark.parametrize("mode,counter", [("software", "accel.out_sw"),
                                          ("crypto", "accel.out_crypto"),
                                          ("packet", "accel.out_packet"),
                                          ("baseline", "ip.ips_localout")])
def test_mode_case_takes_its_path(mode: str, counter: str) -> None:
    c = dm.ModeCase(mode)
    try:
        before = c.lab.stats("a")[counter]
        step = c.step(200)
        for _ in range(7):
            step()
        assert c.lab.stats("a")[counter] - before == 7
        assert c.path_count() >= 7
    finally:
        c.close()


def test_threaded_sender_sends_exactly_its_share() -> None:
    calls: list[int] = []

    def make() -> Any:
        return lambda: calls.append(1)
    ts = dm.ThreadedSender(make, 2, 50)
    try:
        assert ts.round() >= 0.0 and ts.round() >= 0.0
    finally:
        ts.close()
    assert len(calls) == 200 and ts.packets_per_round == 100


@pytest.mark.parametrize("size", [64, 1400])
def test_baselines_encrypt_the_lab_packet(size: int) -> None:
    assert dm.check_same_packet(size)
    b = dm.Baselines(size)
    ct = b.raw_aead()()
    assert isinstance(ct, bytes) and len(ct) == len(b.plaintext) + 16
    esp = b.esp_transport_output()()
    assert isinstance(esp, (bytes, bytearray)) and len(esp) == 20 + 8 + 8 + len(b.plaintext) + 16


def _raw_result() -> dict[str, Any]:
    """Synthetic raw figures in report.py's layout."""
    rows = []
    for n, scale in ((1, 1.0), (100, 2.0)):
        for s, us in (("mtag", 4.0), ("sndtag", 5.0), ("outdone", 4.4), ("phfield", 2.0)):
            rows.append({"strategy": s, "n_sas": n, "size": 64, "host_us": us * scale,
                         "allocs_per_packet": 1.0, "bytes_per_packet": 56.0,
                         "first_use_allocs": 0, "resident_bytes": 0})
    modes = [{"mode": m, "size": 64, "host_us": us, "allocs_per_packet": 1.0}
             for m, us in (("baseline", 1.0), ("software", 8.0), ("crypto", 4.0),
                           ("packet", 1.25))]
    threads = [{"mode": "software", "size": 64, "threads": t, "pps": pps}
               for t, pps in ((1, 100.0), (2, 150.0))]
    return {
        "environment": {"python": "3.x", "gil": True, "cpus": 2, "cryptography": "x",
                        "scapy": "x"},
        "params": {"sizes": [64], "sa_counts": [1, 100], "quick": True},
        "strategies": {"rows": rows, "tag_ops_us": {"mtag": 1.0, "phfield": 0.25}},
        "modes": {"rows": modes, "threads": threads},
        "baselines": {"rows": [{"size": 64, "raw_aead_us": 0.5, "esp_output_us": 0.9,
                                "esp_transport_output_us": 1.0, "scapy_us": 300.0}],
                      "same_bytes": {"64": True}},
    }


def test_finish_derives_ratios_and_targets() -> None:
    res = report.finish(_raw_result())
    st = {(r["strategy"], r["n_sas"]): r for r in res["strategies"]["rows"]}
    assert st[("sndtag", 1)]["vs_mtag"] == pytest.approx(1.25)
    assert st[("phfield", 100)]["vs_1sa"] == pytest.approx(2.0)
    md = {r["mode"]: r for r in res["modes"]["rows"]}
    assert md["packet"]["vs_software_pps"] == pytest.approx(6.4)
    assert md["software"]["vs_baseline_cost"] == pytest.approx(8.0)
    th = {r["threads"]: r for r in res["modes"]["threads"]}
    assert th[2]["scaling"] == pytest.approx(1.5)
    b = res["baselines"]["rows"][0]
    assert b["esp_output_vs_raw"] == pytest.approx(1.8)
    assert b["software_host_vs_raw"] == pytest.approx(16.0)
    assert b["scapy_vs_esp_transport_output"] == pytest.approx(300.0)
    verdict = {t["name"]: (t["met"], t["informative"]) for t in res["targets"]}
    assert verdict["software ESP output (EspState.output) at 64 B vs raw AEAD"] == (True, False)
    assert verdict["packet-offload host path at 64 B (mtag, 1 SA)"] == (True, False)
    assert verdict["scapy / esp_transport_output at 64 B"] == (True, False)
    assert verdict["scapy / whole software host path at 64 B"] == (False, True)
    assert res["all_targets_met"] is True


def test_tables_and_from_json(tmp_path: Path) -> None:
    """--from-json prints the tables of a saved run without measuring; a
    missed target says MISSED."""
    raw = _raw_result()
    raw["modes"]["rows"][3]["host_us"] = 4.5          # packet offload over 1.5 us
    res = report.finish(raw)
    assert res["all_targets_met"] is False
    f = tmp_path / "datapath.json"
    f.write_text(json.dumps(res))
    out, err = io.StringIO(), io.StringIO()
    assert report.main(["--from-json", str(f), "--no-plots"], stdout=out, stderr=err) == 0
    text = out.getvalue()
    for head in ("1. Tag strategies", "2. Modes (seed 001)", "3. Baselines", "Targets"):
        assert head in text
    assert "MISSED  packet-offload host path at 64 B (mtag, 1 SA): 4.50us (<= 1.5us)" in text
    assert "(info)  scapy / whole software host path at 64 B" in text


def test_plots_skipped_without_matplotlib(tmp_path: Path, monkeypatch: Any) -> None:
    """The plot extra is optional: without matplotlib, one message, exit 0."""
    f = tmp_path / "datapath.json"
    f.write_text(json.dumps(report.finish(_raw_result())))
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import fails
    out, err = io.StringIO(), io.StringIO()
    assert report.main(["--from-json", str(f), "--out", str(tmp_path)], stdout=out,
                       stderr=err) == 0
    assert "matplotlib is not installed: plots skipped" in err.getvalue()
    assert not list(tmp_path.glob("*.png"))


def test_plots_written_with_matplotlib(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    paths = report.plots(report.finish(_raw_result()), tmp_path)
    assert sorted(p.name for p in paths) == ["baselines.png", "modes.png", "tag_strategies.png",
                                             "threads.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
