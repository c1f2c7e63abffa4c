"""Software ESP (xform_esp.c model) against the raw AEAD call and scapy.

Run: ``.venv/bin/python -m pytest bench/bench_esp.py --benchmark-enable -q -s``

Per packet, at 64, 512 and 1400-byte IPv4 packets (transport mode, so the
ESP payload is the packet minus its 20-byte header):

* ``raw``: ``AESGCM.encrypt(nonce, payload || trailer, aad)`` with everything
  prebuilt -- the floor any AES-GCM ESP in Python can reach;
* ``out`` / ``in``: :meth:`EspState.output` / :meth:`EspState.input` for
  aes-gcm-16 (128-bit key, 32-packet replay window on input);
* ``out_pkt``: :func:`esp_transport_output` (the same plus the IPv4 header
  rewrite and checksum);
* ``cbc_out`` / ``cbc_in``: aes-cbc-128 + hmac-sha2-256;
* ``scapy``: scapy's ``SecurityAssociation.encrypt`` of the same packet
  (AES-GCM, parsed ``IP`` object in, packet object out), fewer rounds.

Each case times a batch of ``BATCH`` calls (the loop is the same for every
case, so it cancels out of the ratios); the min over rounds is used.  The
last test prints the table with ``out/raw`` (target at 1400 bytes: at most
2x, DESIGN.md §6) and ``scapy/out_pkt`` (target: at least 100x).  Ratios are
side by side in one run; absolute microseconds are for the reader only.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ipsec_accel.packet import make_packet
from ipsec_accel.xform_esp import EspState
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG

BATCH = 1000
SCAPY_BATCH = 20
SIZES = (64, 512, 1400)
SPI = 0x1000
GCM_KEY = bytes(range(16)) + b"\xca\xfe\xba\xbe"
CBC_KEY = bytes(range(16))
HMAC_KEY = bytes(range(32, 64))
_results: dict[tuple[str, int], float] = {}


def _packet(size: int) -> bytes:
    return make_packet("192.0.2.1", "198.51.100.7", size, "udp")


def _record(benchmark: Any, name: str, size: int, per_call: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        per = stats.stats.min / per_call
        _results[(name, size)] = per
        benchmark.extra_info["us_per_packet"] = round(per * 1e6, 3)


def _loop(fn: Callable[[], object], n: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(n):
            fn()
    return run


@pytest.mark.parametrize("size", SIZES)
def test_raw_aesgcm(benchmark: Any, size: int) -> None:
    """Baseline: one AESGCM.encrypt of the padded ESP payload (RFC 4106)."""
    payload = _packet(size)[20:]
    pt = payload + bytes(range(1, -(len(payload) + 2) % 4 + 1)) + bytes(
        (-(len(payload) + 2) % 4, 17))
    enc = AESGCM(GCM_KEY[:16]).encrypt
    nonce, aad = GCM_KEY[16:] + bytes(8), bytes(8)
    benchmark.group = f"esp-{size}"
    benchmark.pedantic(_loop(lambda: enc(nonce, pt, aad), BATCH), rounds=20, warmup_rounds=2)
    _record(benchmark, "raw", size, BATCH)


@pytest.mark.parametrize("size", SIZES)
def test_esp_output_gcm(benchmark: Any, size: int) -> None:
    """EspState.output, aes-gcm-16: counter IV, sequence, trailer, AEAD."""
    sa = EspState(SPI, SADB_EALG.X_AESGCM16, GCM_KEY)
    payload = _packet(size)[20:]
    out = sa.output
    benchmark.group = f"esp-{size}"
    benchmark.pedantic(_loop(lambda: out(payload, 17), BATCH), rounds=20, warmup_rounds=2)
    _record(benchmark, "out", size, BATCH)


@pytest.mark.parametrize("size", SIZES)
def test_esp_transport_output_gcm(benchmark: Any, size: int) -> None:
    """esp_transport_output: EspState.output plus the IPv4 header rewrite."""
    sa = EspState(SPI, SADB_EALG.X_AESGCM16, GCM_KEY)
    pkt = _packet(size)
    benchmark.group = f"esp-{size}"
    benchmark.pedantic(_loop(lambda: esp_transport_output(sa, pkt), BATCH), rounds=20,
                       warmup_rounds=2)
    _record(benchmark, "out_pkt", size, BATCH)


def _input_case(enc: int, ekey: bytes, auth: int, akey: bytes, size: int
                ) -> tuple[Callable[[], tuple[tuple[Callable[[], None]], dict[str, Any]]], int]:
    """A setup function giving each round a fresh receiver (its replay window
    must see every sequence number once) and the same BATCH packets."""
    tx = EspState(SPI, enc, ekey, auth, akey)
    payload = _packet(size)[20:]
    pkts = [tx.output(payload, 17) for _ in range(BATCH)]

    def setup() -> tuple[tuple[Callable[[], None]], dict[str, Any]]:
        rx = EspState(SPI, enc, ekey, auth, akey, replay=4)
        inp = rx.input

        def run() -> None:
            for p in pkts:
                inp(p)
        return (run,), {}
    return setup, BATCH


@pytest.mark.parametrize("size", SIZES)
def test_esp_input_gcm(benchmark: Any, size: int) -> None:
    """EspState.input, aes-gcm-16, 32-packet window: header, replay check,
    AEAD open, replay update, trailer."""
    setup, n = _input_case(SADB_EALG.X_AESGCM16, GCM_KEY, SADB_AALG.NONE, b"", size)
    benchmark.group = f"esp-{size}"
    benchmark.pedantic(lambda run: run(), setup=setup, rounds=20, warmup_rounds=2)
    _record(benchmark, "in", size, n)


def test_esp_output_cbc_sha256(benchmark: Any) -> None:
    """EspState.output, aes-cbc-128 + hmac-sha2-256 at 1400 bytes."""
    sa = EspState(SPI, SADB_EALG.X_AESCBC, CBC_KEY, SADB_AALG.X_SHA2_256, HMAC_KEY)
    payload = _packet(1400)[20:]
    out = sa.output
    benchmark.group = "esp-1400"
    benchmark.pedantic(_loop(lambda: out(payload, 17), BATCH), rounds=20, warmup_rounds=2)
    _record(benchmark, "cbc_out", 1400, BATCH)


def test_esp_input_cbc_sha256(benchmark: Any) -> None:
    """EspState.input, aes-cbc-128 + hmac-sha2-256 at 1400 bytes."""
    setup, n = _input_case(SADB_EALG.X_AESCBC, CBC_KEY, SADB_AALG.X_SHA2_256, HMAC_KEY, 1400)
    benchmark.group = "esp-1400"
    benchmark.pedantic(lambda run: run(), setup=setup, rounds=20, warmup_rounds=2)
    _record(benchmark, "cbc_in", 1400, n)


@pytest.mark.parametrize("size", SIZES)
def test_scapy_encrypt(benchmark: Any, size: int) -> None:
    """scapy's SecurityAssociation.encrypt, AES-GCM, same packet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scapy.layers.inet import IP
        from scapy.layers.ipsec import ESP, SecurityAssociation
    sa = SecurityAssociation(ESP, spi=SPI, crypt_algo="AES-GCM", crypt_key=GCM_KEY)
    pkt = IP(_packet(size))
    enc = sa.encrypt
    benchmark.group = f"esp-{size}"
    benchmark.pedantic(_loop(lambda: enc(pkt), SCAPY_BATCH), rounds=5, warmup_rounds=1)
    _record(benchmark, "scapy", size, SCAPY_BATCH)


def test_esp_report(capsys: Any) -> None:
    """Print the comparison table (needs --benchmark-enable)."""
    if not _results:
        pytest.skip("benchmarks disabled (run with --benchmark-enable)")
    r = lambda name, size: _results.get((name, size), float("nan"))  # noqa: E731
    lines = ["", "ESP per packet (us), IPv4 transport, aes-gcm-16 unless noted",
             f"{'size':>5} {'raw AEAD':>9} {'out':>7} {'out/raw':>8} {'out_pkt':>8} "
             f"{'in':>7} {'in/raw':>7} {'scapy':>9} {'scapy/out_pkt':>14}"]
    for size in SIZES:
        raw, out, opk, inp, sc = (r(n, size) for n in ("raw", "out", "out_pkt", "in", "scapy"))
        lines.append(f"{size:>5} {raw * 1e6:9.3f} {out * 1e6:7.3f} {out / raw:8.2f} "
                     f"{opk * 1e6:8.3f} {inp * 1e6:7.3f} {inp / raw:7.2f} {sc * 1e6:9.1f} "
                     f"{sc / opk:14.0f}")
    lines.append(f"aes-cbc-128 + hmac-sha2-256 at 1400: out {r('cbc_out', 1400) * 1e6:.3f} us "
                 f"({r('cbc_out', 1400) / r('raw', 1400):.2f}x raw GCM), "
                 f"in {r('cbc_in', 1400) * 1e6:.3f} us")
    lines.append(f"targets at 1400: out/raw <= 2 ({'met' if r('out', 1400) <= 2 * r('raw', 1400) else 'MISSED'}), "
                 f"scapy/out_pkt >= 100 ({'met' if r('scapy', 1400) >= 100 * r('out_pkt', 1400) else 'MISSED'})")
    with capsys.disabled():
        print("\n".join(lines))
