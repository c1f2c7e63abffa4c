"""Offload modes (issue 6 item 5; linux_xfrm_offload.md §1): software ESP,
crypto offload (the stack frames ESP, the NIC encrypts) and packet offload
(FreeBSD inline: the stack hands plaintext, the NIC does ESP) put identical
bytes on the wire for the same SA, IV and sequence number
(ipsec_accel_output vs esp_output + ipsec_process_done)."""

from __future__ import annotations

from typing import Any

import pytest

from ipsec_accel.esp_encap import esp_transport_output, udp_encap
from ipsec_accel.ipsec_state import build_esp_state
from ipsec_accel.lab import Lab

GCM128 = "0x" + bytes(range(0x20, 0x34)).hex()
GCM256 = "0x" + bytes(range(0x40, 0x64)).hex()
CHACHA = "0x" + bytes(range(0x60, 0x84)).hex()

# name: install_transport keyword arguments
SUITES: dict[str, dict[str, Any]] = {
    "gcm128": dict(key=GCM128),
    "gcm256": dict(key=GCM256),
    "chacha20": dict(enc="chacha20-poly1305", key=CHACHA),
    "gcm128-esn-replay": dict(key=GCM128, esn=True, replay=4),
    "gcm128-natt": dict(key=GCM128, natt=(4500, 4500)),
}
MODES = ("software", "crypto", "packet")


def _frames(mode: str, suite: dict[str, Any], *, af: int = 4, n: int = 3,
            sizes: tuple[int, ...] = (64, 333, 1400), start: tuple[int, int] | None = None
            ) -> tuple[list[bytes], list[bytes]]:
    """Wire frames a -> b for ``n`` packets of each size in ``mode``, and what
    b delivered."""
    modes = ("crypto", "packet") if mode == "crypto" else ("packet", "crypto")
    with Lab.build("generic", af=af, modes=modes) as lab:
        lab.install_transport(**suite)
        lab.set_mode("software" if mode == "software" else "auto")
        if start is not None:
            esp = lab.a.ip.ipsec.sactx(lab.sav("a", 0x1000)).esp
            esp.count, esp.cntr = start
        sink = lab.b.ip.bind(17, 0, keep=1000)
        frames: list[bytes] = []
        nic = lab.nic("a")
        wire = nic._wire_tx
        nic.set_transmit(lambda b: (frames.append(bytes(b)), wire(b)))
        for size in sizes:
            r = lab.push(n, size)
            assert r.delivered == n, (mode, r.summary())
            key = {"software": "out_sw", "crypto": "out_crypto", "packet": "out_packet"}[mode]
            assert r.paths[key] == n, (mode, r.paths)
        return frames, list(sink.received)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_three_modes_identical_wire_bytes(suite: str) -> None:
    """Software, crypto offload and packet offload: byte-identical frames
    and identical plaintext at the receiver."""
    out = {m: _frames(m, SUITES[suite]) for m in MODES}
    assert out["software"][0] == out["crypto"][0] == out["packet"][0]
    assert out["software"][1] == out["crypto"][1] == out["packet"][1]
    assert len(set(out["software"][0])) == len(out["software"][0]), "fresh IV and seq each"


def test_identical_bytes_ipv6() -> None:
    """The same over IPv6 (ESP after the fixed header)."""
    out = {m: _frames(m, SUITES["gcm128"], af=6, sizes=(80, 1200))[0] for m in MODES}
    assert out["software"] == out["crypto"] == out["packet"]


def test_given_iv_and_sequence_number_the_bytes_are_the_rfcs() -> None:
    """Starting every mode at sequence 1000 and counter IV 77 gives the
    frames an independent EspState produces with explicit seq and IV
    (esp_output with the SA's sav->cntr and replay->count)."""
    with Lab.build("generic") as lab:
        lab.install_transport()
        sav = lab.sav("a", 0x1000)
        pkt = lab.packet(200)
    for mode in MODES:
        frames, _ = _frames(mode, SUITES["gcm128"], n=3, sizes=(200,), start=(1000, 77))
        ref = build_esp_state(sav)
        want = [esp_transport_output(ref, pkt, seq=1001 + i, iv=(77 + i).to_bytes(8, "big"))
                for i in range(3)]
        assert frames == want, mode


def test_natt_frames_are_udp_encapsulated_the_same() -> None:
    """RFC 3948: the NIC (packet offload) adds the same UDP header
    ipsec_process_done's udp_ipsec_output adds."""
    frames, _ = _frames("packet", SUITES["gcm128-natt"], n=1, sizes=(100,))
    with Lab.build("generic") as lab:
        lab.install_transport()
        ref = build_esp_state(lab.sav("a", 0x1000))
        want = udp_encap(esp_transport_output(ref, lab.packet(100)), 4500, 4500)
    assert frames == [want]


def test_tunnel_mode_same_esp_and_outer_header_by_who_builds_it() -> None:
    """Tunnel mode: software and crypto offload build the outer header in the
    stack (ipsec_encap: ip_fillid, net.inet.ipsec.dfbit) -- identical frames;
    a packet-offload NIC builds its own outer header (identification 0), so
    from the ESP header on the frames are identical."""
    def run(mode: str) -> list[bytes]:
        modes = ("crypto", "packet") if mode == "crypto" else ("packet", "crypto")
        with Lab.build("generic", modes=modes) as lab:
            lab.a.ip.add_address("gen0", "192.168.1.1/24")
            lab.b.ip.add_address("gen0", "192.168.2.1/24")
            lab.a.ip.add_route("192.168.2.0/24", "gen0")
            lab.install_tunnel()
            lab.set_mode("software" if mode == "software" else "auto")
            frames: list[bytes] = []
            nic = lab.nic("a")
            wire = nic._wire_tx
            nic.set_transmit(lambda b: (frames.append(bytes(b)), wire(b)))
            for size in (64, 700):
                r = lab.push(2, size, saddr="192.168.1.1", daddr="192.168.2.1")
                assert r.delivered == 2
            return frames
    sw, cr, pk = run("software"), run("crypto"), run("packet")
    assert sw == cr
    assert [f[20:] for f in sw] == [f[20:] for f in pk]


def test_profiles_agree_mlx5_ixgbe_software() -> None:
    """An mlx5 (packet offload), an ixgbe (crypto offload) and a host without
    IPSEC capability (software) send the same frames for one SA."""
    def run(profile: str, ipsec: bool) -> list[bytes]:
        with Lab.build(profile, ipsec=ipsec) as lab:
            lab.install_transport()
            return lab.record(4, 500)
    assert run("mlx5", True) == run("ixgbe", True) == run("mlx5", False)
