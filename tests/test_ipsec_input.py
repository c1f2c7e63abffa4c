"""IPsec input: ipsec_accel_input (freebsd_ipsec_offload.md §9, §17.18),
ipsec_common_input / esp_input / ipsec4_common_input_cb (ipsec_input.c,
xform_esp.c), udp_ipsec_input (udpencap.c), ipsec4_in_reject /
ipsec_check_history (ipsec.c) -- one named test per rule."""

from __future__ import annotations

import pytest

from ipsec_accel.ipsec_state import Inpcb
from ipsec_accel.lab import Lab
from ipsec_accel.mbuf import PACKET_TAG_IPSEC_ACCEL_IN, Mbuf, m_tag_get, m_tag_prepend
from ipsec_accel.packet import make_packet, parse, udp_packet

KEY = "0x" + bytes(range(0x20, 0x34)).hex()


def _tagged(pkt: bytes, drv_spi: int) -> Mbuf:
    """A plaintext packet as a NIC hands it up after decrypting it."""
    m = Mbuf(pkt)
    t = m_tag_get(PACKET_TAG_IPSEC_ACCEL_IN, 2)
    assert t is not None
    t.data = drv_spi
    m_tag_prepend(m, t)
    return m


@pytest.fixture
def swlab() -> Lab:
    """Both NICs without IPSEC: everything in software, frames pass up untouched."""
    lb = Lab.build("generic", ipsec=False)
    lb.install_transport(replay=4)
    yield lb
    lb.shutdown()


def test_untagged_esp_goes_to_software(swlab: Lab) -> None:
    """§9: no IN tag -> ENXIO -> ipsec_common_input: SAD lookup, replay,
    decrypt, IN_DONE, key_sa_recordxfer with the decrypted length."""
    r = swlab.push(5, 300)
    assert r.paths["in_sw"] == 5 and r.delivered == 5 and not r.drops
    sav = swlab.sav("b", 0x1000)
    assert (sav.lft_c_allocations, sav.lft_c_bytes) == (5, 1500)
    st = swlab.stats("b")
    assert st["esp.esps_input"] == 5 and st["esp.esps_ibytes"] == 1500


@pytest.mark.parametrize("drv_spi", [0, 1, 2, 0x10000])
def test_drv_spi_out_of_range_is_dropped(lab: Lab, drv_spi: int) -> None:
    """§9, §17.18: a tag with drv_spi < 3 (2, BYPASS, included) or > 0xffff
    -> the packet is freed (EINPROGRESS), never delivered."""
    lab.b.ip.ip_input(lab.ifp("b"), _tagged(lab.packet(100), drv_spi))
    assert lab.b.ip.sink(17).packets == 0
    assert lab.stats("b")["accel.in_bad_drv_spi"] == 1


def test_unknown_valid_drv_spi_is_accepted_without_accounting(lab: Lab) -> None:
    """§17.18: a drv_spi in range that no handle owns -> permitted (return
    0), no SA accounted."""
    lab.b.ip.ip_input(lab.ifp("b"), _tagged(lab.packet(100), 0x1234))
    assert lab.b.ip.sink(17).packets == 1
    assert lab.stats("b")["accel.in_unknown_drv_spi"] == 1
    assert all(s.accel_lft_sw == [0, 0] for s in lab.b.key.iter_sav())


def test_known_drv_spi_gets_sw_offl_accounting_whatever_the_interface(lab: Lab) -> None:
    """§9: the handle is found by drv_spi alone (no ifp check) and its SA
    gets SW-offl accounting (accel_lft_sw, accel_firstused), not lft_c."""
    sav = lab.sav("b", 0x1000)
    h = lab.b.offload.ipsec_accel_sav_handle(sav, lab.ifp("b"))
    lab.b.ip.ip_input(None, _tagged(lab.packet(120), h.drv_spi))
    assert sav.accel_lft_sw == [1, 120] and sav.accel_firstused != 0
    assert sav.lft_c_allocations == 0


def test_tagged_packets_bypass_the_inbound_policy(lab: Lab) -> None:
    """§9 / §17.18 (ipsec4_in_reject, 2024 snapshot): a packet with an IN tag
    is accepted without checking the inbound "require" policy; the same
    packet untagged is refused (ips_in_polvio)."""
    pkt = lab.packet(100)
    lab.b.ip.ip_input(lab.ifp("b"), _tagged(pkt, 0x4321))
    lab.b.ip.ip_input(lab.ifp("b"), Mbuf(pkt))
    assert lab.b.ip.sink(17).packets == 1
    assert lab.stats("b")["ipsec.ips_in_polvio"] == 1


def test_offloaded_input_end_to_end(lab: Lab) -> None:
    """The driver's duty (§9): find its SA by (dst, SPI), decrypt, check
    replay, deliver plaintext with the drv_spi tag; the stack counts SW-offl
    and the NIC's counters reach lft_c at the poll."""
    r = lab.push(4, 250)
    assert r.paths["in_packet"] == 4 and r.delivered == 4
    sav = lab.sav("b", 0x1000)
    assert sav.accel_lft_sw == [4, 1000]
    lab.poll()
    assert (sav.lft_c_allocations, sav.lft_c_bytes) == (4, 1000)


def test_software_drop_reasons_in_freebsds_order(swlab: Lab) -> None:
    """ipsec_common_input / esp_input: unknown SPI -> esps_notdb; shorter
    than SPI + sequence -> esps_hdrops; ICV mismatch -> esps_badauth; a
    duplicate -> esps_replay (checked before the ICV, window updated
    after); each counted once, nothing delivered."""
    frames = swlab.record(2, 200)
    nic = swlab.nic("b")
    good = frames[0]
    nic.wire_input(good)
    nic.wire_input(good)                                   # replay
    bad = bytearray(frames[1])
    bad[-1] ^= 1
    nic.wire_input(bytes(bad))                             # badauth
    other = bytearray(frames[1])
    other[20:24] = (0xDEAD).to_bytes(4, "big")
    nic.wire_input(bytes(other))                           # notdb
    short = bytearray(good[:26])
    short[2:4] = (26).to_bytes(2, "big")
    short[10:12] = b"\0\0"
    from ipsec_accel.packet import in_cksum
    short[10:12] = in_cksum(bytes(short[:20])).to_bytes(2, "big")
    nic.wire_input(bytes(short))                           # hdrops
    st = swlab.stats("b")
    assert st["esp.esps_replay"] == 1 and st["esp.esps_badauth"] == 1
    assert st["esp.esps_notdb"] == 1 and st["esp.esps_hdrops"] == 1
    assert swlab.b.ip.sink(17).packets == 1
    assert st["esp.esps_input"] == 5


def test_esp_disabled_drops_input(swlab: Lab) -> None:
    """ipsec_common_input: net.inet.esp.esp_enable=0 -> esps_pdrops."""
    swlab.b.ip.ipsec.sysctl("net.inet.esp.esp_enable", 0)
    r = swlab.push(2, 100)
    assert r.delivered == 0 and swlab.stats("b")["esp.esps_pdrops"] == 2


def test_next_header_59_is_dropped_silently(swlab: Lab) -> None:
    """RFC 4303 §2.6 (esp_input_cb): a dummy packet (next header 59) is
    dropped without a drop counter."""
    sav = swlab.sav("a", 0x1000)
    esp = swlab.a.ip.ipsec.sactx(sav).esp
    body = esp.output(b"\0" * 16, 59)
    pkt = bytearray(udp_packet("10.0.0.1", "10.0.0.2", 1, 2)[:20])
    pkt[9] = 50
    from ipsec_accel.packet import ipv4_header_with
    frame = ipv4_header_with(bytes(pkt), total_len=20 + len(body)) + body
    swlab.nic("b").wire_input(frame)
    assert not swlab.drops() and swlab.b.ip.sink(17).packets == 0
    assert swlab.stats("b")["esp.esps_input"] == 1


def test_crypto_done_input_replay_is_the_stacks() -> None:
    """Crypto offload input (linux_xfrm_offload.md §3.4): the NIC decrypts
    and tags PACKET_TAG_IPSEC_IN_CRYPTO_DONE; replay, trailer and accounting
    are the stack's -- a duplicate the NIC decrypts again is refused by the
    stack's window."""
    with Lab.build("ixgbe") as lab:
        lab.install_transport(replay=4)
        frames = lab.record(1, 200)
        nic = lab.nic("b")
        nic.wire_input(frames[0])
        nic.wire_input(frames[0])
        assert nic.stats()["rx_crypto"] == 2
        st = lab.stats("b")
        assert st["accel.in_crypto"] == 1 and st["esp.esps_replay"] == 1
        assert lab.b.ip.sink(17).packets == 1
        sav = lab.sav("b", 0x1000)
        assert (sav.lft_c_allocations, sav.lft_c_bytes) == (1, 200)


def test_policy_history_check(swlab: Lab) -> None:
    """ipsec_check_history (net.inet.ipsec.check_policy_history=1): the
    IN_DONE record must match the request (proto, mode, destination); with
    the sysctl off, M_DECRYPTED is enough (ipsec_in_reject)."""
    swlab.setkey("b", "spdadd 10.0.0.1 10.0.0.2 tcp -P in ipsec "
                      "esp/tunnel/10.0.0.1-10.0.0.2/require;")
    swlab.setkey("a", "spdadd 10.0.0.1 10.0.0.2 tcp -P out ipsec esp/transport//require;")
    # (b's any-protocol inbound policy was added first, so move tcp ahead:)
    swlab.setkey("b", "spddelete 10.0.0.1 10.0.0.2 any -P in;\n"
                      "spdadd 10.0.0.1 10.0.0.2 any -P in ipsec esp/transport//require;")
    assert swlab.push(1, 100, "tcp").delivered == 1
    swlab.b.ip.ipsec.sysctl("net.inet.ipsec.check_policy_history", 1)
    assert swlab.push(1, 100, "tcp").delivered == 0
    assert swlab.stats("b")["ipsec.ips_in_polvio"] == 1
    assert swlab.push(1, 100, "udp").delivered == 1, "transport record matches transport"


@pytest.mark.parametrize("ipsec", [True, False])
def test_esp_in_udp(ipsec: bool) -> None:
    """RFC 3948 (udpencap.c): ESP in UDP to port 4500 -- decrypted by the NIC
    (packet offload) or stripped by udp_ipsec_input and decrypted in
    software; transport-mode checksums fixed."""
    with Lab.build("generic", ipsec=ipsec) as lab:
        lab.install_transport(natt=(4500, 4500))
        frames = lab.record(1, 200)
        assert frames[0][9] == 17 and frames[0][22:24] == (4500).to_bytes(2, "big")
        sink = lab.b.ip.bind(17, 9, keep=1)
        r = lab.push(3, 200)
        assert r.delivered == 3 and sink.packets == 3
        assert parse(sink.received[0]).l4_checksum_ok()
        key = "in_packet" if ipsec else "in_sw"
        assert r.paths[key] == 3
        if not ipsec:
            assert lab.stats("b")["accel.in_natt"] == 3


@pytest.mark.parametrize("ipsec", [True, False])
def test_tunnel_mode_decapsulated(ipsec: bool) -> None:
    """ipsec4_common_input_cb: tunnel mode -> the inner packet (ECN egress)
    requeued to ip_input and delivered to the inner destination."""
    with Lab.build("generic", ipsec=ipsec) as lab:
        lab.a.ip.add_address("gen0", "192.168.1.1/24")
        lab.b.ip.add_address("gen0", "192.168.2.1/24")
        lab.a.ip.add_route("192.168.2.0/24", "gen0")
        lab.install_tunnel()
        inner = make_packet("192.168.1.1", "192.168.2.1", 300, "udp")
        frames = []
        nic = lab.nic("a")
        old = nic._wire_tx
        nic.set_transmit(lambda b: (frames.append(b), old(b)))
        assert lab.a.ip.send(inner, Inpcb(17)) == 0
        assert frames[0][12:20] == bytes([10, 0, 0, 1, 10, 0, 0, 2]), "outer header"
        assert lab.b.ip.sink(17).packets == 1


@pytest.mark.parametrize("mode", ["auto", "software"])
def test_ipv6_transport(mode: str) -> None:
    """IPv6 (ipsec6_input / ipsec6_common_input_cb): ESP after the fixed
    header, offloaded or in software, delivered."""
    with Lab.build("generic", af=6) as lab:
        lab.install_transport()
        lab.set_mode(mode)
        r = lab.push(3, 300)
        assert r.delivered == 3 and not r.drops


def test_nofallback_sa_not_decrypted_in_software() -> None:
    """Extension "nofallback": an SA marked so is never decrypted in
    software (accel.in_nofallback)."""
    with Lab.build("generic", ipsec=False, extensions=("nofallback",)) as lab:
        lab.install_transport()
        lab.b.offload.ipsec_accel_sa_set_nofallback(lab.sav("b", 0x1000), True)
        r = lab.push(2, 100)
        assert r.delivered == 0 and lab.stats("b")["accel.in_nofallback"] == 2
