"""Tests for ipsec_accel.wire and ipsec_accel.pcap: the libpcap file format
(LINKTYPE_RAW 101 / LINKTYPE_ETHERNET 1, microsecond timestamps) and
Wireshark's esp_sa UAT (epan/dissectors/packet-ipsec.c esp_uat_flds)."""

from __future__ import annotations

import io
import struct
import threading
from pathlib import Path

import pytest

from ipsec_accel.pcap import (
    LINKTYPE_ETHERNET, LINKTYPE_RAW, EspSaEntry, PcapWriter, TickClock, UnsupportedAlgorithm,
    esp_sa_fields, esp_sa_line, ether_frame, read_esp_sa, read_pcap, write_esp_sa,
)
from ipsec_accel.wire import Wire
from thread_helpers import run_threads

IP4 = bytes.fromhex("4500001c000100004011f96a0a0000010a000002") + bytes.fromhex("0035003500080000")
IP6 = bytes.fromhex("6000000000083b40") + bytes(15) + b"\x01" + bytes(15) + b"\x02" + bytes(8)


def test_pcap_global_header_and_records_are_libpcap_format() -> None:
    """libpcap: magic a1b2c3d4 (written little-endian), version 2.4,
    thiszone 0, sigfigs 0, snaplen, network = LINKTYPE_RAW (101); records
    ts_sec, ts_usec, incl_len, orig_len, data."""
    buf = io.BytesIO()
    w = PcapWriter(buf, clock=TickClock(start=1_700_000_000.25, step=0.5))
    w.write(IP4)
    w.write(IP4, ts=1_700_000_100.000001)
    raw = buf.getvalue()
    assert raw[:24] == struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)
    assert raw[:4] == bytes.fromhex("d4c3b2a1")
    assert raw[24:40] == struct.pack("<IIII", 1_700_000_000, 250_000, len(IP4), len(IP4))
    pf = read_pcap(io.BytesIO(raw))
    assert pf.linktype == LINKTYPE_RAW and pf.version == (2, 4) and not pf.nanosecond
    assert [r.data for r in pf.records] == [IP4, IP4]
    assert [r.ts_us for r in pf.records] == [1_700_000_000_250_000, 1_700_000_100_000_001]
    assert w.packets == 2


def test_pcap_snaplen_truncation_and_file_path(tmp_path: Path) -> None:
    """incl_len <= snaplen, orig_len keeps the packet length."""
    p = tmp_path / "cap.pcap"
    with PcapWriter(p, snaplen=16, clock=TickClock()) as w:
        w.write(IP4)
    rec = read_pcap(p).records[0]
    assert rec.orig_len == len(IP4) and rec.data == IP4[:16]
    with pytest.raises(ValueError):
        w.write(IP4)


def test_read_pcap_big_endian_nanosecond_and_errors() -> None:
    """Readers must accept either byte order and the nanosecond magic
    (a1b23c4d); junk and truncation are errors."""
    hdr = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    rec = struct.pack(">IIII", 10, 500_000_000, 3, 3) + b"abc"
    pf = read_pcap(io.BytesIO(hdr + rec))
    assert pf.byteorder == "big" and pf.nanosecond and pf.linktype == LINKTYPE_ETHERNET
    assert pf.records[0].ts == 10.5 and pf.records[0].ts_us == 10_500_000
    with pytest.raises(ValueError):
        read_pcap(io.BytesIO(b"\x00" * 24))
    with pytest.raises(ValueError):
        read_pcap(io.BytesIO(hdr + rec[:-1]))


def test_scapy_reads_our_capture(tmp_path: Path) -> None:
    """Interop: scapy (test-only dependency) parses the LINKTYPE_RAW file as
    IPv4/IPv6 packets."""
    scapy_all = pytest.importorskip("scapy.all")
    p = tmp_path / "w.pcap"
    with Wire("w", capture=p, clock=TickClock()) as w:
        w.connect(None, lambda f: None)
        w.a.send(IP4)
        w.a.send(IP6)
    pkts = scapy_all.rdpcap(str(p))
    assert len(pkts) == 2
    assert pkts[0].haslayer(scapy_all.IP) and pkts[0][scapy_all.IP].dst == "10.0.0.2"
    assert pkts[1].haslayer(scapy_all.IPv6) and pkts[1][scapy_all.IPv6].dst == "::2"


def test_wire_delivers_both_ways_and_captures_both_directions() -> None:
    """A wire joins two endpoints; one pcap per wire covers both
    directions, timestamps from the injected clock."""
    buf = io.BytesIO()
    clock = TickClock(start=100.0, step=1e-6)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    w = Wire("w0", capture=PcapWriter(buf, clock=clock), clock=clock,
             receiver_a=got_a.append, receiver_b=got_b.append)
    assert w.a.send(IP4) and w.b.send(IP6)
    assert got_b == [IP4] and got_a == [IP6]
    assert w.a.peer is w.b
    st = w.stats
    assert st.packets == (1, 1) and st.delivered == (1, 1) and st.bytes == (len(IP4), len(IP6))
    recs = read_pcap(io.BytesIO(buf.getvalue())).records
    assert [r.data for r in recs] == [IP4, IP6]
    assert [r.ts_us for r in recs] == [100_000_000, 100_000_001]


def test_wire_ethernet_capture_has_synthetic_macs() -> None:
    """LINKTYPE_ETHERNET: a synthetic Ethernet II header, MACs by sending
    end, ethertype from the IP version."""
    buf = io.BytesIO()
    w = Wire("e", capture=PcapWriter(buf, LINKTYPE_ETHERNET, clock=TickClock()),
             linktype=LINKTYPE_ETHERNET, clock=TickClock())
    w.connect(lambda f: None, lambda f: None)
    w.a.send(IP4)
    w.b.send(IP6)
    w.a.send(b"\x00junk")
    recs = read_pcap(io.BytesIO(buf.getvalue())).records
    assert recs[0].data == bytes.fromhex("020000000002" "020000000001" "0800") + IP4
    assert recs[1].data[:14] == bytes.fromhex("020000000001" "020000000002" "86dd")
    assert recs[2].data[12:14] == b"\x88\xb5"
    assert ether_frame("aa:bb:cc:dd:ee:ff", b"\x01" * 6, IP4)[:6] == bytes.fromhex("aabbccddeeff")
    with pytest.raises(ValueError):
        Wire("x", capture=PcapWriter(io.BytesIO()), linktype=LINKTYPE_ETHERNET)
    with pytest.raises(ValueError):
        Wire("x", linktype=999)


def test_link_down_no_receiver_and_taps() -> None:
    """Unplugged: dropped and not captured.  No receiver: on the wire
    (captured) but counted as dropped.  Taps see what goes on the wire."""
    buf = io.BytesIO()
    w = Wire("w", capture=PcapWriter(buf, clock=TickClock()), clock=TickClock())
    tapped: list[tuple[int, bytes]] = []
    w.add_tap(lambda side, data, ts: tapped.append((side, data)))
    w.set_link(False)
    assert not w.a.send(IP4)
    w.set_link(True)
    assert w.a.send(IP4)
    st = w.stats
    assert st.dropped_link == (1, 0) and st.dropped_noreceiver == (1, 0) and st.delivered == (0, 0)
    assert len(read_pcap(io.BytesIO(buf.getvalue())).records) == 1
    assert tapped == [(0, IP4)]


def test_reentrant_sends_are_trampolined_not_recursed() -> None:
    """A receiver answering from inside its RX path queues the frame; a long
    ping-pong runs as a loop in send order, not a deep recursion."""
    w = Wire("pp")
    depth = [0, 0]
    order: list[str] = []

    def rx_b(f: bytes) -> None:
        depth[0] += 1
        depth[1] = max(depth[1], depth[0])
        order.append("b")
        w.b.send(f)
        depth[0] -= 1

    def rx_a(f: bytes) -> None:
        order.append("a")
        if len(order) < 6000:
            w.a.send(f)

    w.connect(rx_a, rx_b)
    w.a.send(IP4)
    assert len(order) == 6000 and order[:4] == ["b", "a", "b", "a"]
    assert depth[1] == 1
    assert w.stats.packets == (3000, 3000)


def test_receiver_exception_propagates_and_drops_the_queue() -> None:
    """A receiver's exception reaches the outermost send; frames queued
    behind it on that thread are counted as dropped_error."""
    w = Wire("err")

    def rx_b(f: bytes) -> None:
        w.b.send(f)        # queued (we are inside a receiver)
        w.b.send(f)
        raise RuntimeError("driver bug")

    w.connect(lambda f: None, rx_b)
    with pytest.raises(RuntimeError):
        w.a.send(IP4)
    assert w.stats.dropped_error == (0, 2)
    w.connect(lambda f: None, lambda f: None)
    assert w.a.send(IP4)              # the thread's delivery state was reset


def test_wire_counts_are_exact_with_concurrent_senders() -> None:
    """Two threads sending on the same wire: nothing lost or double counted."""
    got: list[bytes] = []
    lock = threading.Lock()

    def rx(f: bytes) -> None:
        with lock:
            got.append(f)

    buf = io.BytesIO()
    w = Wire("mt", capture=PcapWriter(buf), receiver_a=rx, receiver_b=rx)

    def sender(port: object) -> None:
        for _ in range(1000):
            port.send(IP4)          # type: ignore[attr-defined]

    run_threads(sender, [(w.a,), (w.b,)], 10)
    assert len(got) == 2000 and w.stats.packets == (1000, 1000)
    assert len(read_pcap(io.BytesIO(buf.getvalue())).records) == 2000


# ------------------------------------------------------------- esp_sa UAT

KEY20 = bytes(range(20))


def test_esp_sa_line_aes_gcm_modern_layout() -> None:
    """esp_uat_flds (Wireshark 3.x/4.x): Protocol, Src IP, Dest IP, SPI,
    Encryption, Encryption Key, Authentication, Authentication Key, SN, ESN
    High Bits -- each double-quoted; GCM keys carry the 4-byte salt and the
    authentication must be NULL."""
    line = esp_sa_line(("10.0.0.1", "10.0.0.2", 0x1000, "aes-gcm-16", KEY20,
                        "hmac-sha2-256", b"x" * 32))
    assert line == ('"IPv4","10.0.0.1","10.0.0.2","0x00001000",'
                    '"AES-GCM with 16 octet ICV [RFC4106]",'
                    '"0x000102030405060708090a0b0c0d0e0f10111213","NULL","","32-bit","0"')


def test_esp_sa_fields_cbc_hmac_ipv6_esn_and_old_layout() -> None:
    """AES-CBC + HMAC-SHA-256-128 (RFC 4868) over IPv6, ESN; the 8-column
    layout of older Wireshark; SADB_*ALG ids accepted."""
    e = EspSaEntry("2001:db8::1", "2001:db8::2", 0xDEADBEEF, "rijndael-cbc", bytes(16),
                   "hmac-sha2-256", bytes(32), esn=True, esn_high=0x1F)
    f = esp_sa_fields(e)
    assert f[0] == "IPv6" and f[3] == "0xdeadbeef"
    assert f[4] == "AES-CBC [RFC3602]" and f[6] == "HMAC-SHA-256-128 [RFC4868]"
    assert f[8:] == ["64-bit", "1f"]
    assert len(esp_sa_fields(e, columns=8)) == 8
    ids = esp_sa_fields(("10.0.0.1", "10.0.0.2", 1, 12, bytes(16), 3, bytes(20)))
    assert ids[4] == "AES-CBC [RFC3602]" and ids[6] == "HMAC-SHA-1-96 [RFC2404]"
    assert esp_sa_fields(("*", "*", 1, "null", b"", "hmac-sha2-512", b"k"))[0] == "Any"
    assert esp_sa_fields(("10.0.0.1", "10.0.0.2", 1, "chacha20-poly1305", bytes(36)))[4] == \
        "ChaCha20 with Poly1305 [RFC7634]"
    assert esp_sa_fields(("10.0.0.1", "10.0.0.2", 1, "AES-CTR [RFC3686]", bytes(20)))[4] == \
        "AES-CTR [RFC3686]"
    with pytest.raises(ValueError):
        esp_sa_fields(e, columns=9)
    with pytest.raises(ValueError):
        esp_sa_fields(("10.0.0.1", "::1", 1, "null", b""))


def test_esp_sa_unsupported_algorithms() -> None:
    """Wireshark has no AES-GMAC (RFC 4543) or Camellia decryption: raise,
    or skip with skip_unsupported."""
    gmac = ("10.0.0.1", "10.0.0.2", 1, "aes-gmac", bytes(20))
    with pytest.raises(UnsupportedAlgorithm):
        esp_sa_line(gmac)
    with pytest.raises(UnsupportedAlgorithm):
        esp_sa_line(("10.0.0.1", "10.0.0.2", 1, 22, bytes(16)))
    buf = io.StringIO()
    n = write_esp_sa(buf, [gmac, ("10.0.0.1", "10.0.0.2", 2, "aes-gcm-16", KEY20)],
                     skip_unsupported=True)
    assert n == 1 and buf.getvalue().count("\n") == 2


def test_write_and_read_esp_sa_file(tmp_path: Path) -> None:
    """The file Wireshark loads from its profile: a comment header then one
    quoted, comma-separated record per SA; our reader round-trips it
    (including uat escaping)."""
    p = tmp_path / "esp_sa"
    entries = [("10.0.0.1", "10.0.0.2", 0x1000, "aes-gcm-16", KEY20),
               ("10.0.0.2", "10.0.0.1", 0x1001, "aes-gcm-16", KEY20)]
    assert write_esp_sa(p, entries) == 2
    text = p.read_text()
    assert text.startswith("# This file is automatically generated, DO NOT MODIFY.\n")
    rows = read_esp_sa(p)
    assert [r[3] for r in rows] == ["0x00001000", "0x00001001"]
    assert all(len(r) == 10 for r in rows)
    from ipsec_accel.pcap import _uat_quote, _uat_split
    assert _uat_split(_uat_quote('a"b\\c\x01') + "," + _uat_quote("")) == ['a"b\\c\x01', ""]
