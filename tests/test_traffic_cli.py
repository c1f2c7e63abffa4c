"""tools/traffic.py end to end through ``main(argv)`` (issue 6 item 8): the
summary's fields for each path a packet can take (packet offload, crypto
offload, software, ifdown mid-flow, interface left down), the pcap and the
Wireshark SA table, progress on a terminal and off it, and one-line errors
with a non-zero status.  Counts only: no timings are checked."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from ipsec_accel.pcap import read_esp_sa, read_pcap
from tools import traffic

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, tty: Optional[bool] = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = traffic.main(list(args), stdout=out, stderr=err, tty=tty)
    return rc, out.getvalue(), err.getvalue()


def run_json(*args: str) -> dict[str, Any]:
    rc, out, err = run("-q", "--json", *args)
    assert rc == 0, err
    assert err == ""
    return json.loads(out)  # type: ignore[no-any-return]


def sa_row(rep: dict[str, Any], host: str, spi: int) -> dict[str, Any]:
    rows = [r for r in rep["per_sa"] if r["host"] == host and r["spi"] == spi]
    assert len(rows) == 1, rep["per_sa"]
    row: dict[str, Any] = rows[0]
    return row


def test_summary_text_packet_offload_mlx5() -> None:
    """The default lab (mlx5, IPv4 transport, AES-GCM): every packet
    offloaded on both ends; the text names packets, bytes, paths, per-SA
    rows with setkey -D's counters after the poll, and no drops."""
    rc, out, err = run("-q", "-n", "50", "-s", "300")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "traffic: mlx5, IPv4 transport, aes-gcm-16, offload auto, tag mtag"
    assert lines[1] == "a (10.0.0.1) -> b (10.0.0.2): 50 x 300-byte udp"
    assert "packets: sent 50, delivered 50, failed 0, on the wire 50" in lines
    assert any(re.fullmatch(r"bytes:   sent 15000 \(IP\), on the wire \d+, delivered 15000", x)
               for x in lines), out
    assert any(re.fullmatch(r"rate:    [\d,]+ pps .*", x) for x in lines), out
    assert "paths (a, out): packet offload 50, crypto offload 0, software 0, clear 0" in lines
    assert "paths (b, in):  packet offload 50, crypto offload 0, software 0" in lines
    # per SA: a's outbound SA carried 50 offloaded packets; poll -> hw offl 50
    row = next(x for x in lines if re.match(r"\s+a\s+0x1000 ", x))
    assert row.split()[-9:] == ["50", "0", "0", "0", "0", "0", "50", "50", "50"], row
    assert lines[-1] == "drops: none"


def test_json_summary_fields_add_up() -> None:
    """--json: the same facts as one object; paths sum to the packets, the
    wire carries ESP (longer than the IP bytes sent), per-SA rows agree."""
    rep = run_json("-n", "40", "-s", "500")
    assert (rep["count"], rep["sent"], rep["delivered"], rep["failed"]) == (40, 40, 40, 0)
    assert rep["bytes_sent"] == rep["delivered_bytes"] == 40 * 500
    assert rep["wire_packets"] == 40 and rep["wire_bytes"] > 40 * 500
    assert sum(rep["paths_out"].values()) == 40 and sum(rep["paths_in"].values()) == 40
    assert rep["errors"] == {} and rep["drops"] == {}
    a = sa_row(rep, "a", 0x1000)
    assert (a["out_packet"], a["current_packets"], a["hw_offl_packets"]) == (40, 40, 40)
    assert a["current_bytes"] == 40 * 500, "offloaded: the NIC counts plaintext bytes"
    assert sa_row(rep, "b", 0x1000)["in_packet"] == 40
    assert sa_row(rep, "a", 0x1001)["current_packets"] == 0


def test_no_fastpath_gives_the_same_summary() -> None:
    """--no-fastpath (net.inet.ipsec.offload.fastpath=0): every packet takes
    the full output path; what happened to the packets is the same.
    (``-o ifdown_forgets=true``: FreeBSD's mlx5 keeps its handles across
    ifconfig down/up, see test_ifdown_mlx5_keeps_offloading.)"""
    strip = ("rate", "elapsed", "pps")
    forget = ("-o", "ifdown_forgets=true")
    on = run_json("-n", "60", "-s", "400", "--flows", "3", "--ifdown-at", "30", *forget)
    off = run_json("-n", "60", "-s", "400", "--flows", "3", "--ifdown-at", "30",
                   "--no-fastpath", *forget)
    assert {k: v for k, v in on.items() if k not in strip} == \
        {k: v for k, v in off.items() if k not in strip}
    assert on["paths_out"]["out_packet"] == 30 and on["paths_out"]["out_sw"] == 30


@pytest.mark.parametrize("profile,out_key,in_key", [
    ("mlx5", "out_packet", "in_packet"),
    ("ixgbe", "out_crypto", "in_crypto"),
    ("netdevsim", "out_crypto", "in_crypto"),
    ("ixgbevf", "out_sw", "in_crypto"),
    ("chelsio", "out_crypto", "in_sw"),
    ("generic", "out_packet", "in_packet"),
])
def test_profiles_offloaded_vs_software(profile: str, out_key: str, in_key: str) -> None:
    """Each NIC profile's hardware does what it can; the summary says which
    path carried the packets on each side."""
    rep = run_json("-n", "12", "-s", "200", "--profile", profile)
    assert rep["delivered"] == 12 and rep["drops"] == {}
    assert rep["paths_out"][out_key] == 12 and rep["paths_in"][in_key] == 12


@pytest.mark.parametrize("mode,key", [("software", "out_sw"), ("crypto", "out_crypto"),
                                      ("packet", "out_packet")])
def test_offload_mode_selectable(mode: str, key: str) -> None:
    """--offload on a generic NIC that does both modes."""
    rep = run_json("-n", "10", "--profile", "generic", "--offload", mode)
    assert rep["paths_out"][key] == 10 and rep["delivered"] == 10
    row = sa_row(rep, "a", 0x1000)
    assert row[key] == 10


@pytest.mark.parametrize("tag", ["mtag", "sndtag", "outdone", "phfield"])
def test_tag_strategies(tag: str) -> None:
    """Every tag strategy carries the drv_spi to the driver: all offloaded."""
    rep = run_json("-n", "10", "--tag", tag)
    assert rep["tag"] == tag and rep["paths_out"]["out_packet"] == 10
    assert rep["delivered"] == 10


@pytest.mark.parametrize("proto,want", [("tcp", "tcp"), ("icmp", "icmp"), ("udp", "udp")])
def test_protocols_ipv4(proto: str, want: str) -> None:
    rep = run_json("-n", "5", "-s", "100", "-p", proto)
    assert rep["proto"] == want and rep["delivered"] == 5


def test_ipv6_icmp_is_icmpv6_and_tunnel_mode() -> None:
    """-6 -m tunnel: inner 2001:db8:1::1 -> 2001:db8:2::1 over the outer
    pair; mlx5 offloads tunnel mode only with its capability on (-o)."""
    rep = run_json("-6", "-m", "tunnel", "-p", "icmp", "-n", "8", "-s", "120")
    assert rep["proto"] == "icmp6"
    assert (rep["src_addr"], rep["dst_addr"]) == ("2001:db8:1::1", "2001:db8:2::1")
    assert rep["delivered"] == 8 and rep["paths_out"]["out_sw"] == 8
    assert sa_row(rep, "a", 0x2000)["dst"] == "2001:db8::2"
    rep = run_json("-6", "-m", "tunnel", "-n", "8", "-o", "tunnel=true")
    assert rep["paths_out"]["out_packet"] == 8 and rep["delivered"] == 8


def test_reverse_direction() -> None:
    rep = run_json("-n", "6", "--reverse")
    assert (rep["src"], rep["dst"], rep["src_addr"]) == ("b", "a", "10.0.0.2")
    assert sa_row(rep, "b", 0x1001)["out_packet"] == 6
    assert sa_row(rep, "a", 0x1001)["in_packet"] == 6


def test_software_algorithm_the_nic_refuses() -> None:
    """AES-CBC + HMAC-SHA2-256: mlx5 refuses the SA, software carries it."""
    rep = run_json("-n", "7", "--alg", "aes-cbc-sha256")
    assert rep["paths_out"]["out_sw"] == 7 and rep["paths_in"]["in_sw"] == 7
    assert rep["delivered"] == 7


@pytest.mark.parametrize("profile", ["mlx5", "ixgbe"])
def test_ifdown_mid_flow_moves_to_software_nothing_lost(profile: str) -> None:
    """--ifdown-at K: the first K packets offloaded, the rest in software
    after ipsec_accel_on_ifdown; every packet delivered, counted once.
    (mlx5 only with ``-o ifdown_forgets=true``: FreeBSD's does not call
    on_ifdown on ifconfig down.)"""
    mlx5 = ["--esn", "-o", "ifdown_forgets=true"] if profile == "mlx5" else []
    rep = run_json("-n", "30", "-s", "400", "--ifdown-at", "12", "--profile", profile,
                   "--replay", "4", *mlx5)
    hw = "out_packet" if profile == "mlx5" else "out_crypto"
    assert rep["ifdown_at"] == 12 and not rep["stay_down"]
    assert rep["paths_out"][hw] == 12 and rep["paths_out"]["out_sw"] == 18
    assert rep["delivered"] == 30 and rep["drops"] == {} and rep["errors"] == {}
    assert sa_row(rep, "a", 0x1000)["current_packets"] == 30
    assert sa_row(rep, "b", 0x1000)["current_packets"] == 30


def test_ifdown_mlx5_keeps_offloading() -> None:
    """FreeBSD sys/dev/mlx5/mlx5_en/mlx5_en_main.c, mlx5e_ioctl SIOCSIFFLAGS:
    ifconfig down only closes the port (mlx5e_close_locked), it does not
    call ipsec_accel_on_ifdown, so after down and up the SA is still
    offloaded: every packet takes the packet-offload path."""
    rep = run_json("-n", "30", "-s", "400", "--ifdown-at", "12")
    assert rep["paths_out"]["out_packet"] == 30 and rep["paths_out"].get("out_sw", 0) == 0
    assert rep["delivered"] == 30 and rep["drops"] == {} and rep["errors"] == {}


def test_noipsec_mid_flow_moves_mlx5_to_software_nothing_lost() -> None:
    """--noipsec-at K: after K packets ``ifconfig mce0 -ipsec`` on the
    sender: FreeBSD's mlx5 (mlx5e_ioctl SIOCSIFCAP/SIOCSIFCAPNV,
    sys/dev/mlx5/mlx5_en/mlx5_en_main.c) closes the port, calls
    ipsec_accel_on_ifdown and reopens it, so the rest of the flow goes
    through software with the ESP state continued: every packet delivered,
    each counted once."""
    rep = run_json("-n", "30", "-s", "400", "--noipsec-at", "12", "--replay", "4", "--esn")
    assert rep["noipsec_at"] == 12 and rep["ifdown_at"] is None
    assert rep["paths_out"]["out_packet"] == 12 and rep["paths_out"]["out_sw"] == 18
    assert rep["delivered"] == 30 and rep["drops"] == {} and rep["errors"] == {}
    assert sa_row(rep, "a", 0x1000)["current_packets"] == 30
    assert sa_row(rep, "b", 0x1000)["current_packets"] == 30
    rc, out, _ = run("-q", "-n", "4", "--noipsec-at", "2")
    assert rc == 0 and "ipsec off: a's NIC -ipsec after 2 packets" in out


def test_noipsec_and_ifdown_exclusive() -> None:
    """One mid-flow event per run: both options is a usage error (exit 2)."""
    rc, _, err = run("-q", "-n", "4", "--noipsec-at", "2", "--ifdown-at", "2")
    assert rc == 2 and "not allowed with argument --noipsec-at" in err
    assert err.count("\n") == 1


def test_ifdown_stay_down_fails_the_rest() -> None:
    """--stay-down: after K packets the interface is down: ENETDOWN for the
    rest, counted as ip_output drops and the driver's tx_down."""
    rc, out, _ = run("-q", "-n", "20", "--ifdown-at", "5", "--stay-down")
    assert rc == 0
    assert "ifdown: a's NIC down after 5 packets" in out
    assert "packets: sent 5, delivered 5, failed 15, on the wire 5" in out
    assert "errors: ENETDOWN (Network is down) 15" in out
    assert re.search(r"^  a\.mce0\.tx_down\s+15$", out, re.M)
    assert re.search(r"^  a\.ip\.ips_odropped\s+15$", out, re.M)


def test_pcap_and_wireshark_sa_table(tmp_path: Path) -> None:
    """--pcap writes the wire (one record per packet), --esp-sa the SA
    table Wireshark needs to decrypt it."""
    cap, sa = tmp_path / "a-b.pcap", tmp_path / "esp_sa"
    rc, out, _ = run("-q", "-n", "9", "-s", "150", "--pcap", str(cap), "--esp-sa", str(sa))
    assert rc == 0
    assert f"pcap: {cap}" in out and f"esp_sa: {sa} (2 SAs)" in out
    recs = read_pcap(cap).records
    assert len(recs) == 9 and all(r.data[9] == 50 for r in recs), "ESP on the wire"
    rows = read_esp_sa(sa)
    assert sorted(int(r[3], 16) for r in rows) == [0x1000, 0x1001]


def test_progress_plain_lines_when_not_a_terminal() -> None:
    rc, _, err = run("-n", "100", tty=False)
    assert rc == 0
    lines = err.splitlines()
    assert len(lines) == 10
    assert lines[0] == "traffic: 10/100 packets (10%)"
    assert lines[-1] == "traffic: 100/100 packets (100%)"


def test_progress_plain_lines_mention_the_ifdown() -> None:
    rc, _, err = run("-n", "20", "--ifdown-at", "10", tty=False)
    assert rc == 0
    lines = err.splitlines()
    assert "traffic: mce0 on a down and up after 10 packets" in lines
    assert lines[-1] == "traffic: 20/20 packets (100%)" and len(lines) == 11


def test_progress_bar_on_a_terminal() -> None:
    rc, _, err = run("-n", "50", tty=True)
    assert rc == 0
    assert err.startswith("\rtraffic [") and err.endswith("\n")
    last = err.rstrip("\n").split("\r")[-1]
    assert re.fullmatch(r"traffic \[#{30}\] 100% 50/50 [\d,]+ pps ", last), last


def test_quiet_no_progress() -> None:
    rc, _, err = run("-q", "-n", "10", tty=True)
    assert rc == 0 and err == ""


@pytest.mark.parametrize("args,msg", [
    (["-n", "0"], "argument -n/--count: must be at least 1: 0"),
    (["-n", "x"], "argument -n/--count: not an integer: 'x'"),
    (["-s", "20"], "--size: size 20 below the 28 bytes of headers"),
    (["-6", "-s", "47"], "--size: size 47 below the 48 bytes of headers"),
    (["-p", "tcp", "-s", "39"], "--size: size 39 below the 40 bytes of headers"),
    (["-s", "70000"], "size 70000 exceeds the 65535 bytes of an IP datagram"),
    (["--profile", "e1000"], "argument --profile: invalid choice: 'e1000'"),
    (["--offload", "full"], "argument --offload: invalid choice: 'full'"),
    (["--tag", "x"], "argument --tag: invalid choice: 'x'"),
    (["--stay-down"], "--stay-down needs --ifdown-at"),
    (["-n", "5", "--ifdown-at", "6"], "--ifdown-at 6 is beyond the 5 packets"),
    (["-o", "tunnel"], "argument -o/--nic-option: expected KEY=VALUE: 'tunnel'"),
    (["-4", "-6"], "argument -6: not allowed with argument -4"),
    (["--pcap", "/nonexistent-dir/x.pcap"], "/nonexistent-dir/x.pcap: no such directory"),
    (["extra"], "unrecognized arguments: extra"),
])
def test_bad_arguments_one_line_exit_2(args: list[str], msg: str) -> None:
    rc, out, err = run(*args)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("traffic: error: ") and msg in err, err


def test_setup_failure_one_line_exit_1() -> None:
    """A driver option the profile does not take: the lab cannot be built."""
    rc, out, err = run("-q", "-o", "bogus=1")
    assert rc == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("traffic: ") and "bogus" in err


def test_help_exit_0() -> None:
    rc, out, err = run("--help")
    assert rc == 0 and err == ""
    assert out.startswith("usage: traffic") and "--ifdown-at K" in out


def test_runs_as_a_script() -> None:
    """python tools/traffic.py from anywhere (the repository made importable)."""
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "traffic.py"), "-q", "-n", "3"],
                       capture_output=True, text=True, cwd="/", timeout=120)
    assert p.returncode == 0, p.stderr
    assert "packets: sent 3, delivered 3, failed 0" in p.stdout
