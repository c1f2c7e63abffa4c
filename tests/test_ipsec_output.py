"""IPsec output: the rules of ipsec_accel_output (freebsd_ipsec_offload.md
§8, §14, §17 items 11-17) and of ipsec_output.c around it
(ipsec4_checkpolicy, ipsec4_allocsa, ipsec4_perform_request,
ipsec_process_done), one named test per rule, on two model hosts joined by
a wire."""

from __future__ import annotations

import errno
import re

import pytest

from ipsec_accel.accel_tag import ipsec_accel_out_drv_spi
from ipsec_accel.if_vlan import VlanParams
from ipsec_accel.ipsec_output import (
    ipsec_accel_fits, ipsec_accel_output, ipsec_process_done, packet_selector,
)
from ipsec_accel.ipsec_state import TF2_IPSEC_TSO, Inpcb
from ipsec_accel.lab import Lab
from ipsec_accel.mbuf import CSUM_TSO, CSUM_UDP, Mbuf
from ipsec_accel.packet import parse, tcp_packet, udp_packet
from pfkey.key_testing import drain, hdr_msg
from pfkey.keydb import DEAD
from pfkey.pfkeyv2 import SADB, SADB_SATYPE

KEY = "0x" + bytes(range(0x20, 0x34)).hex()


def _spi(frame: bytes) -> int:
    """The SPI of the outermost ESP header of an IPv4 frame."""
    hl = (frame[0] & 15) * 4
    assert frame[9] == 50
    return int.from_bytes(frame[hl:hl + 4], "big")


def _tap(lab: Lab, host: str = "a") -> list[tuple[object, Mbuf]]:
    """Record (drv_spi, mbuf copy) of what ``host`` hands its interface."""
    seen: list[tuple[object, Mbuf]] = []
    h = lab.hosts[host]

    def xmit(ifp: object, m: Mbuf) -> int:
        seen.append((ipsec_accel_out_drv_spi(m), Mbuf(bytes(m.data),
                                                       csum_flags=m.csum_flags)))
        return ifp.if_transmit(ifp, m)  # type: ignore[attr-defined,no-any-return]
    h.ip.xmit_override = xmit
    return seen


def test_offloaded_packet_goes_out_in_clear_with_its_drv_spi(lab: Lab) -> None:
    """§8 steps 3, 5, 7: a HANDLED handle on exactly this ifnet -> the
    plaintext packet leaves ip_output with the handle's drv_spi and the NIC
    encrypts it; EJUSTRETURN makes ip_output transmit it itself."""
    seen = _tap(lab)
    r = lab.push(3, 200)
    h = lab.a.offload.ipsec_accel_sav_handle(lab.sav("a", 0x1000), lab.ifp("a"))
    assert [d for d, _ in seen] == [h.drv_spi] * 3
    assert all(bytes(m.data) == lab.packet(200) for _, m in seen), "plaintext"
    assert r.delivered == 3 and r.paths["out_packet"] == 3 and r.paths["in_packet"] == 3


def test_forwarded_traffic_is_never_offloaded() -> None:
    """§8 step 1, §17.14 (ipsec4_forward passes ifp NULL, XXXKIB): a
    forwarded packet matching an offloadable SA is protected in software
    although the NIC holds the SA; ipsec4_forward's inbound check runs first."""
    with Lab.build("generic") as lab:
        lab.a.ip.forwarding = 1
        lab.setkey("a", f"spdadd 10.9.9.0/24 10.0.0.2 any -P out ipsec esp/transport//require;\n"
                        f"add 10.9.9.9 10.0.0.2 esp 0x3000 -m transport -E aes-gcm-16 {KEY};")
        lab.setkey("b", f"add 10.9.9.9 10.0.0.2 esp 0x3000 -m transport -E aes-gcm-16 {KEY};")
        sav = lab.sav("a", 0x3000)
        assert lab.a.offload.ipsec_accel_sav_handle(sav, lab.ifp("a")) is not None
        pkt = udp_packet("10.9.9.9", "10.0.0.2", 1000, 9, b"x" * 100)
        lab.a.ip.ip_input(lab.ifp("a"), Mbuf(pkt))
        st = lab.stats("a")
        assert st["accel.out_sw"] == 1 and st["ip.ips_cantforward"] == 0
        assert st["accel.out_packet"] == 0 and sav.accel_lft_sw == [0, 0]
        assert lab.nic("a").stats()["tx_clear"] == 1, "ESP built by the host, sent as is"
        assert lab.b.ip.sink(17).packets == 1
        assert ipsec_accel_output(lab.a.ip.ipsec, None, Mbuf(pkt), None, None, sav, 1500) == -1


def test_level_use_without_sa_tags_bypass_on_any_interface() -> None:
    """§8 step 2, §17.16: a "use" request without an SA -> EJUSTRETURN and a
    BYPASS tag (drv_spi 2) whatever the interface's capability; the packet
    goes out in clear (and an ACQUIRE is still sent)."""
    with Lab.build("generic", ipsec=False) as lab:
        lab.setkey("a", "spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//use;")
        so = lab.a.socket()
        so.send(hdr_msg(SADB.REGISTER, SADB_SATYPE.ESP).encode())
        drain(so)
        seen = _tap(lab)
        r = lab.push(2, 100)
        assert [d for d, _ in seen] == [2, 2]
        assert r.delivered == 2 and r.paths["out_bypass"] == 2
        assert lab.nic("a").stats()["tx_clear"] == 2
        assert any(m.type == SADB.ACQUIRE for m in drain(so))
        inp = Inpcb(6)
        inp.t_flags2 = TF2_IPSEC_TSO
        lab.a.ip.send(tcp_packet("10.0.0.1", "10.0.0.2", 1, 2, b"x"), inp)
        assert not inp.t_flags2 & TF2_IPSEC_TSO, "no TCP TSO flag on BYPASS"


def test_handle_must_be_on_exactly_this_ifnet_vlan_not_parent() -> None:
    """§8 step 3, §17.14: the handle of the output ifnet itself -- a vlan
    uses the vlan's handle (its own drv_spi), never its parent's."""
    with Lab.build("mlx5") as lab:
        reg = lab.a.ifnets
        err, name = reg.if_clone_create("mce0.100", VlanParams(100, "mce0"))
        assert err == 0
        reg.if_setupdown(reg[name], True)
        lab.a.ip.add_address(name, "10.0.5.1/24")
        lab.b.ip.add_address("mce0", "10.0.5.2/24")
        lab.addrs.update(va="10.0.5.1", vb="10.0.5.2")
        lab.setkey("a", f"spdadd 10.0.5.1 10.0.5.2 any -P out ipsec esp/transport//require;\n"
                        f"add 10.0.5.1 10.0.5.2 esp 0x5000 -m transport -E aes-gcm-16 {KEY};")
        lab.setkey("b", f"add 10.0.5.1 10.0.5.2 esp 0x5000 -m transport -E aes-gcm-16 {KEY};")
        sav = lab.sav("a", 0x5000)
        off = lab.a.offload
        hv = off.ipsec_accel_sav_handle(sav, reg[name])
        hp = off.ipsec_accel_sav_handle(sav, reg["mce0"])
        assert hv is not None and hp is not None and hv.drv_spi != hp.drv_spi
        seen = _tap(lab)
        err = lab.a.ip.send(lab.packet(100, src="va", dst="vb"), Inpcb(17))
        assert err == 0 and [d for d, _ in seen] == [hv.drv_spi]
        assert lab.b.ip.sink(17).packets == 1


def test_capability_cleared_with_handles_present_goes_software(lab: Lab) -> None:
    """§17.11: IFCAP2_IPSEC_OFFLOAD turned off on a driver that keeps its
    handles -> output uses software IPsec; the handles are still there."""
    assert lab.a.ifnets.if_setipsec("gen0", False) == 0
    assert lab.a.offload.sav_handles(), "handles stay"
    r = lab.push(4, 100)
    assert r.paths["out_sw"] == 4 and r.paths["out_packet"] == 0 and r.delivered == 4


def test_rejected_handle_never_matches_output() -> None:
    """§17.1: a REJECTED handle (ixgbe refuses a 256-bit key) is recorded but
    never used on output: software."""
    key256 = "0x" + bytes(range(36)).hex()
    with Lab.build("ixgbe") as lab:
        lab.install_transport(key=key256)
        h = lab.a.offload.sav_handles()
        assert h and all(x.flags & 2 for x in h), "REJECTED"
        r = lab.push(3, 100)
        assert r.paths["out_sw"] == 3 and r.paths["in_sw"] == 3 and r.delivered == 3


def test_mtu_precheck_boundary(lab: Lab) -> None:
    """§8 step 4, §17.15: offload only if len + hdr_ext_size <= mtu; one
    byte more -> software IPsec (out_too_big), which then fragments."""
    sav = lab.sav("a", 0x1000)
    h = lab.a.offload.ipsec_accel_sav_handle(sav, lab.ifp("a"))
    limit = 1500 - h.hdr_ext_size
    r = lab.push(1, limit)
    assert r.paths["out_packet"] == 1
    r = lab.push(1, limit + 1)
    assert r.paths["out_packet"] == 0 and r.paths["out_sw"] == 1 and r.delivered == 1
    assert lab.stats("a")["accel.out_too_big"] == 1


@pytest.mark.parametrize("enc,key,auth,akey", [
    ("aes-gcm-16", KEY, None, None),
    ("aes-cbc", "0x" + "11" * 16, "hmac-sha2-256", "0x" + "22" * 32),
    ("aes-ctr", "0x" + "33" * 20, "hmac-sha1", "0x" + "44" * 20),
    ("chacha20-poly1305", "0x" + "55" * 36, None, None),
])
def test_exact_esp_size_check_is_freebsds(enc: str, key: str, auth: str | None,
                                          akey: str | None) -> None:
    """§8 step 4: the exact ESP size skip + hlen + rlen + padding + alen
    (blks with ctr_compatibility, alen = xform_ah_authsize) -- the fast
    per-SA check equals ipsec_offload's ipsec_accel_output_fits for every
    size around the MTU (hdr_ext_size 0 exercises the exact check alone)."""
    with Lab.build("generic") as lab:
        lab.install_transport(enc=enc, key=key, auth=auth, auth_key=akey)
        sav = lab.sav("a", 0x1000)
        off = lab.a.offload
        h = off.ipsec_accel_sav_handle(sav, lab.ifp("a"))
        for ext in (h.hdr_ext_size, 0):
            h.hdr_ext_size = ext
            for size in range(1400, 1500):
                m = Mbuf(lab.packet(size))
                assert ipsec_accel_fits(h, m, sav, False, 1500) == \
                    off.ipsec_accel_output_fits(h, m, sav, 2, 1500), (ext, size)


def test_tso_packets_skip_the_size_checks(lab: Lab) -> None:
    """§8 step 4, §14: a TSO super-frame (CSUM_TSO) is offloaded whatever
    its size; SW-offl counts it once with its whole length."""
    pkt = tcp_packet("10.0.0.1", "10.0.0.2", 1000, 80, b"t" * 4000)
    sav = lab.sav("a", 0x1000)
    err = lab.a.ip.send(pkt, Inpcb(6), csum_flags=CSUM_TSO)
    assert err == 0
    assert lab.stats("a")["accel.out_tso"] == 1 and sav.accel_lft_sw == [1, len(pkt)]
    assert lab.b.ip.sink(6).packets == 1


def test_sw_offl_accounting_leaves_lft_c_to_the_driver(lab: Lab) -> None:
    """§8 step 6, §10: ipsec_accel_sa_recordxfer adds to accel_lft_sw (the
    plain packet's length) and sets accel_firstused; lft_c moves only when
    the driver reports its counters."""
    sav = lab.sav("a", 0x1000)
    lab.push(5, 300)
    assert sav.accel_lft_sw == [5, 1500] and sav.accel_firstused != 0
    assert (sav.lft_c_allocations, sav.lft_c_bytes) == (0, 0)
    lab.poll()
    assert (sav.lft_c_allocations, sav.lft_c_bytes) == (5, 1500)
    assert (sav.accel_hw_allocs, sav.accel_hw_octets) == (5, 1500)
    # §17.20: the dump's SW-offl usetime is always 0 (printed blank).
    assert re.search(r"sw offl use: +\tsw offl allocated: 5\tsw offl: 1500\(bytes\)",
                     lab.setkey_dump("a"))


def test_tcp_tso_flag_follows_offload_and_hwassist(lab: Lab) -> None:
    """§8 step 8: on a TCP inpcb TF2_IPSEC_TSO is set iff the packet was
    offloaded and if_hwassist has TSO bits, cleared otherwise."""
    inp = Inpcb(6)
    pkt = tcp_packet("10.0.0.1", "10.0.0.2", 1000, 80, b"t" * 100)
    assert lab.a.ip.send(pkt, inp) == 0
    assert inp.t_flags2 & TF2_IPSEC_TSO
    lab.set_mode("software")
    assert lab.a.ip.send(pkt, inp) == 0
    assert not inp.t_flags2 & TF2_IPSEC_TSO


def test_delayed_checksums_only_for_what_the_nic_will_not_do(lab: Lab) -> None:
    """ipsec4_common_output: delayed checksums (CSUM_DELAY_DATA) are left to
    the NIC when its hwassist covers them (offloaded), computed before ESP
    otherwise (software)."""
    raw = bytearray(udp_packet("10.0.0.1", "10.0.0.2", 1000, 9, b"c" * 50))
    raw[26:28] = b"\0\0"
    seen = _tap(lab)
    lab.a.ip.send(bytes(raw), Inpcb(17), csum_flags=CSUM_UDP)
    _, m = seen[-1]
    assert m.csum_flags & CSUM_UDP and bytes(m.data)[26:28] == b"\0\0"
    lab.set_mode("software")
    sink = lab.b.ip.bind(17, 0, keep=1)
    lab.a.ip.send(bytes(raw), Inpcb(17), csum_flags=CSUM_UDP)
    p = parse(sink.received[-1])
    assert p.l4.checksum != 0 and p.l4_checksum_ok()  # type: ignore[union-attr]


def test_bundle_first_offloaded_sa_ends_processing() -> None:
    """§17.17: with a two-request policy the first offloaded SA ends IPsec
    processing (later transforms skipped); in software both are applied,
    the second by ipsec_process_done (ips_out_bundlesa)."""
    with Lab.build("generic") as lab:
        script = ("spdadd 10.0.0.1 10.0.0.2 any -P out ipsec "
                  "esp/tunnel/10.0.0.1-10.0.0.2/require esp/transport//require;\n"
                  f"add 10.0.0.1 10.0.0.2 esp 0x4000 -m tunnel -E aes-gcm-16 {KEY};\n"
                  f"add 10.0.0.1 10.0.0.2 esp 0x4001 -m transport -E aes-gcm-16 {KEY};\n")
        lab.setkey("a", script)
        lab.setkey("b", script.split("\n", 1)[1])
        frames = lab.record(1, 100)
        assert _spi(frames[0]) == 0x4000 and lab.stats("a")["ipsec.ips_out_bundlesa"] == 0
        lab.set_mode("software")
        frames = lab.record(1, 100)
        assert _spi(frames[0]) == 0x4001 and lab.stats("a")["ipsec.ips_out_bundlesa"] == 1
        lab.set_mode("auto")
        r = lab.push(2, 100)
        assert r.delivered == 2
        lab.set_mode("software")
        r = lab.push(2, 100)
        assert r.delivered == 2, "the receiver opens both layers"


def test_dead_sa_dropped_in_ipsec_process_done(lab: Lab) -> None:
    """§17.12: ipsec_process_done drops a packet whose SA became DEAD
    meanwhile (ESRCH) instead of sending it."""
    sav = lab.sav("a", 0x1000)
    sp = next(iter(lab.a.key.sptree[2]))
    lab.setkey("a", "delete 10.0.0.1 10.0.0.2 esp 0x1000;")
    assert sav.state == DEAD
    rc = ipsec_process_done(lab.a.ip.ipsec, Mbuf(lab.packet(100)), sp, sav)
    assert rc == errno.ESRCH and lab.stats("a")["accel.out_dead_sa"] == 1


def test_no_sa_for_require_sends_acquire_and_drops() -> None:
    """ipsec4_allocsa: no SA for a "require" request -> key_allocsa_policy
    sends SADB_ACQUIRE, ips_out_nosa, and the packet is dropped
    (ips_out_inval) -- quietly: ip_output returns 0."""
    with Lab.build("generic") as lab:
        lab.setkey("a", "spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//require;")
        so = lab.a.socket()
        so.send(hdr_msg(SADB.REGISTER, SADB_SATYPE.ESP).encode())
        drain(so)
        r = lab.push(1, 100)
        assert r.delivered == 0 and not r.errors
        st = lab.stats("a")
        assert st["ipsec.ips_out_nosa"] == 1 and st["ipsec.ips_out_inval"] == 1
        assert [m.type for m in drain(so)] == [SADB.ACQUIRE]


def test_policy_discard_bypass_and_default() -> None:
    """ipsec4_checkpolicy: DISCARD -> EACCES (ips_out_polvio); NONE and no
    matching policy (def_policy NONE) -> sent without IPsec; the receiver's
    "require" policy then refuses the clear packet (ipsec4_in_reject)."""
    with Lab.build("generic") as lab:
        lab.setkey("a", "spdadd 10.0.0.1 10.0.0.2 icmp -P out discard;\n"
                        "spdadd 10.0.0.1 10.0.0.2 tcp -P out none;")
        lab.setkey("b", "spdadd 10.0.0.1 10.0.0.2 tcp -P in ipsec esp/transport//require;")
        r = lab.push(1, 100, "icmp")
        assert r.errors == {errno.EACCES: 1} and lab.stats("a")["ipsec.ips_out_polvio"] == 1
        r = lab.push(1, 100, "tcp")
        assert r.delivered == 0 and lab.stats("b")["ipsec.ips_in_polvio"] == 1
        r = lab.push(1, 100, "udp")
        assert r.delivered == 1
        assert lab.nic("a").stats()["tx_clear"] == 2


def test_ports_only_with_a_socket() -> None:
    """ipsec4_get_ulp: ports enter the selector only when the packet comes
    from a socket (needport); a raw send matches port policies as ANY."""
    pkt = udp_packet("10.0.0.1", "10.0.0.2", 1000, 53, b"")
    assert packet_selector(pkt, True, 2)[4:] == (1000, 53)
    assert packet_selector(pkt, False, 2)[3:] == (17, 0, 0)


def test_esp_disabled_drops_with_pdrops(lab: Lab) -> None:
    """ipsec4_allocsa: net.inet.esp.esp_enable=0 -> EHOSTUNREACH, esps_pdrops."""
    lab.a.ip.ipsec.sysctl("net.inet.esp.esp_enable", 0)
    r = lab.push(1, 100)
    assert r.errors == {errno.EHOSTUNREACH: 1} and lab.stats("a")["esp.esps_pdrops"] == 1


def test_nofallback_sa_drops_instead_of_software() -> None:
    """Extension "nofallback" (seed 002): an SA that must be processed by a
    NIC is dropped when it cannot be offloaded (here: too big), never sent
    through software ESP."""
    with Lab.build("generic", extensions=("nofallback",)) as lab:
        lab.install_transport()
        sav = lab.sav("a", 0x1000)
        lab.a.offload.ipsec_accel_sa_set_nofallback(sav, True)
        assert lab.push(2, 200).paths["out_packet"] == 2
        r = lab.push(2, 1490)
        assert r.errors == {errno.EHOSTUNREACH: 2} and r.delivered == 0
        assert lab.stats("a")["accel.out_nofallback"] == 2


def test_crypto_offload_needs_aead_and_one_request() -> None:
    """Crypto offload (linux_xfrm_offload.md §1, §3.3: one offloaded
    transform per bundle): AES-GCM goes to the NIC for encryption only;
    AES-CBC + HMAC stays in software."""
    with Lab.build("generic", modes=("crypto", "packet")) as lab:
        lab.install_transport(spi_ab=0x1100, spi_ba=0x1101, enc="aes-cbc",
                              key="0x" + "11" * 16, auth="hmac-sha2-256",
                              auth_key="0x" + "22" * 32, proto="tcp", reqid=7)
        lab.install_transport(reqid=9)          # (a reqid-0 SA would join reqid 7's SAH)
        r = lab.push(3, 200)
        assert r.paths["out_crypto"] == 3 and r.paths["in_crypto"] == 3 and r.delivered == 3
        r = lab.push(3, 200, "tcp")
        assert r.paths["out_sw"] == 3 and r.delivered == 3


def test_crypto_offload_tags_come_from_their_malloc_buckets(lab: Lab) -> None:
    """m_tag_get is malloc(9), which serves each size from its own
    power-of-two bucket zone (sys/kern/kern_malloc.c, kmemzones): a crypto-
    offloaded packet takes one OUT_DONE tag (24 + struct xform_history 36 =
    60 bytes: malloc-64) and one CRYPTO_NEEDED tag (24 + 8 = 32 bytes:
    malloc-32); both are freed with the packet, and each is counted at its
    zone's own item size."""
    lab.set_mode("crypto")
    tags = lab.a.ip.ipsec.tags
    done, crypto = tags.done_zone, tags.crypto_zone
    assert done is not crypto and (done.size, crypto.size) == (60, 32)
    r = lab.push(5, 200)
    assert r.paths["out_crypto"] == 5 and r.delivered == 5
    assert done.allocs == 5 and crypto.allocs == 5
    assert done.cur == 0 and crypto.cur == 0
    assert done.stats.peak_bytes == 60 and crypto.stats.peak_bytes == 32
    # A strategy switch keeps both zones (their counters continue).
    lab.a.ip.ipsec.set_tag_strategy("phfield")
    assert lab.a.ip.ipsec.tags.crypto_zone is crypto
    assert crypto in lab.a.ip.ipsec.tags.zones()


def test_software_path_accounting(lab: Lab) -> None:
    """esp_output + ipsec_process_done: esps_output, esps_obytes (the
    payload), the algorithm histogram, an OUT_DONE tag, and
    key_sa_recordxfer with the ESP packet's length."""
    lab.set_mode("software")
    frames = lab.record(4, 300)
    sav = lab.sav("a", 0x1000)
    st = lab.stats("a")
    assert st["esp.esps_output"] == 4 and st["esp.esps_obytes"] == 4 * 280
    assert st["esp.esps_hist[20]"] == 4
    assert (sav.lft_c_allocations, sav.lft_c_bytes) == (4, 4 * len(frames[0]))
    z = lab.a.ip.ipsec.tags.done_zone
    assert z.allocs == 4 and z.cur == 0
    text = lab.netstat("a", "esp")
    assert "\t4 packets out\n" in text and "\t\taes-gcm-16: 4\n" in text
