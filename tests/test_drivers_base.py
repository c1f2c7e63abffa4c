"""The base mock NIC and its inline ESP engine (drivers/base.py, engine.py, hw.py).

Reference: freebsd_ipsec_offload.md §4 (driver KPI), §8 (TX: OUT tag, drv_spi
2 bypass, mlx5 steering), §9 (RX: IN tag with drv_spi), §10 (cumulative
counters into ipsec_accel_drv_sa_lifetime_update); linux_xfrm_offload.md §1
(packet vs crypto offload).
"""

from __future__ import annotations

import errno
import time

import pytest

from drivers import MockNic
from drivers.engine import locate_esp, set_out_drv_spi_accessor
from drivers.hw import DIR_IN, DIR_OUT, HwTable, NicSa, SaParams
from drivers.testing import (
    GCM128_KEY, GCM256_KEY, Capture, crypto_offload_frame, make_sav, sw_state, tagged,
)
from ipsec_accel.ifnet import IFT_L2VLAN, IfnetRegistry
from ipsec_accel.if_vlan import VlanParams
from ipsec_accel.mbuf import (
    CSUM_IP, CSUM_L4_VALID, CSUM_TSO, IF_SND_TAG_TYPE_IPSEC_ACCEL, PACKET_TAG_IPSEC_ACCEL_IN,
    PACKET_TAG_IPSEC_IN_CRYPTO_DONE, IfSndTagSw, Mbuf, MTag, Zone, m_set_snd_tag, m_snd_tag_alloc,
    m_tag_find, m_tag_get, m_tag_prepend,
)
from ipsec_accel.packet import udp_packet
from ipsec_accel.wire import Wire
from ipsec_accel.esp_encap import (
    esp_input_packet, esp_transport_output, esp_tunnel_output, udp_encap,
)
from pfkey.ipsec import IPSEC_MODE
from pfkey.keydb import DEAD, seclifetime
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG, SADB_SAFLAGS
from thread_helpers import run_threads

PKT = udp_packet("10.0.0.1", "10.0.0.2", 1000, 2000, b"payload bytes " * 5)


class _Key:
    """key.c's forwarders, recorded."""

    def __init__(self) -> None:
        self.updates: list[tuple[object, object, int, int, int]] = []
        self.ifdowns: list[object] = []

    def ipsec_accel_drv_sa_lifetime_update(self, sav: object, ifp: object, drv_spi: int,
                                           octets: int, allocs: int) -> None:
        self.updates.append((sav, ifp, drv_spi, octets, allocs))

    def ipsec_accel_on_ifdown(self, ifp: object) -> None:
        self.ifdowns.append(ifp)


def _nic(cls: type[MockNic] = MockNic, name: str = "gen0", **kw: object) -> tuple[MockNic, _Key,
                                                                                  Capture]:
    reg = IfnetRegistry()
    key = _Key()
    nic = cls(name, **kw).attach(registry=reg, key=key)  # type: ignore[arg-type]
    cap = Capture()
    nic.set_transmit(cap)
    return nic, key, cap


def _install(nic: MockNic, sav: object, drv_spi: int = 3) -> NicSa:
    err, priv = nic.if_sa_newkey(nic.ifp, sav, drv_spi)
    assert err == 0, list(nic.refusals)
    assert isinstance(priv, NicSa)
    return priv


# -- TX ---------------------------------------------------------------------------------

@pytest.mark.parametrize("enc, key", [
    (SADB_EALG.X_AESGCM16, GCM128_KEY), (SADB_EALG.X_AESGCM16, GCM256_KEY),
    (SADB_EALG.X_CHACHA20POLY1305, bytes(range(36))),
], ids=["gcm128", "gcm256", "chacha20"])
def test_tx_packet_offload_equals_software_esp(enc: int, key: bytes) -> None:
    """§8: plaintext + OUT tag(drv_spi) -> the NIC's ESP bytes equal software
    EspState output for the same SA, IV and sequence number."""
    nic, _, cap = _nic()
    sav = make_sav(enc=enc, key=key)
    assert SaParams.from_sav(sav).key_bits == 8 * (len(key) - 4)
    _install(nic, sav)
    sw = sw_state(sav)
    for i in range(3):
        pkt = udp_packet("10.0.0.1", "10.0.0.2", 1000, 2000, bytes([i]) * (10 + i))
        assert nic.if_transmit(nic.ifp, tagged(pkt, 3)) == 0
        assert cap.pop() == esp_transport_output(sw, pkt)
    assert nic.stats()["tx_encrypted"] == 3


def test_tx_cbc_hmac_with_explicit_seq_matches() -> None:
    """Any transform EspState runs: AES-CBC + HMAC-SHA2-256 on the generic
    NIC (random IV, so compare by decrypting with the software state)."""
    nic, _, cap = _nic()
    sav = make_sav(enc=SADB_EALG.X_AESCBC, key=bytes(16), auth=SADB_AALG.X_SHA2_256,
                   auth_key=bytes(range(32)), replay=4)
    _install(nic, sav)
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    out, _nxt, seq = esp_input_packet(sw_state(sav), cap.pop())
    assert (out, seq) == (PKT, 1)


def test_tx_ipv6_tunnel_and_natt_equal_software() -> None:
    """Tunnel mode uses the SA's endpoints; NAT-T SAs get ESP-in-UDP."""
    nic, _, cap = _nic()
    tun = make_sav(0x2000, src="2001:db8::1", dst="2001:db8::2", mode=IPSEC_MODE.TUNNEL)
    natt = make_sav(0x3000, natt=(4500, 4501))
    _install(nic, tun, 3)
    _install(nic, natt, 4)
    inner = udp_packet("2001:db8:1::1", "2001:db8:2::1", 5, 6, b"x" * 33)
    nic.if_transmit(nic.ifp, tagged(inner, 3))
    s = sw_state(tun)
    assert cap.pop() == esp_tunnel_output(s, inner, bytes.fromhex("20010db8" + "0" * 23 + "1"),
                                          bytes.fromhex("20010db8" + "0" * 23 + "2"))
    nic.if_transmit(nic.ifp, tagged(PKT, 4))
    assert cap.pop() == udp_encap(esp_transport_output(sw_state(natt), PKT), 4500, 4501)


def test_tx_bypass_untagged_and_steering_miss() -> None:
    """§8 mlx5 KSPI table: untagged and drv_spi 2 go out clear; a tag with a
    drv_spi the NIC does not hold is dropped by the miss rule (return 0)."""
    zone = Zone("test_tags", 0, factory=MTag)
    nic, _, cap = _nic()
    assert nic.if_transmit(nic.ifp, Mbuf(PKT)) == 0
    assert cap.pop() == PKT
    assert nic.if_transmit(nic.ifp, tagged(PKT, 2)) == 0
    assert cap.pop() == PKT
    m = Mbuf(PKT)
    t = m_tag_get(32, 2, zone=zone)
    assert t is not None
    t.data = 77
    m_tag_prepend(m, t)
    assert nic.if_transmit(nic.ifp, m) == 0
    assert len(cap) == 0
    st = nic.stats()
    assert (st["tx_clear"], st["tx_steering_miss"], st["drops"]) == (2, 1, 1)
    assert zone.cur == 0, "the NIC freed the mbuf and its tag"


def test_tx_send_tag_and_custom_accessor() -> None:
    """The drv_spi may come from an IPsec send tag, or any accessor the
    datapath installs (tag strategies, issue 6 item 6)."""
    nic, _, cap = _nic()
    sav = make_sav()
    _install(nic, sav, 9)
    sw = sw_state(sav)
    m = Mbuf(PKT)
    st = m_snd_tag_alloc(nic.ifp, IfSndTagSw(IF_SND_TAG_TYPE_IPSEC_ACCEL), softc=9)
    assert st is not None
    m_set_snd_tag(m, st)
    nic.if_transmit(nic.ifp, m)
    assert cap.pop() == esp_transport_output(sw, PKT)
    set_out_drv_spi_accessor(lambda mb: mb.ph_spare)
    try:
        m = Mbuf(PKT)
        m.ph_spare = 9
        nic.if_transmit(nic.ifp, m)
        assert cap.pop() == esp_transport_output(sw, PKT)
    finally:
        set_out_drv_spi_accessor(None)


def test_tx_down_and_no_carrier() -> None:
    nic, _, cap = _nic()
    nic.set_transmit(None)
    nic.if_transmit(nic.ifp, Mbuf(PKT))
    assert nic.stats()["tx_no_carrier"] == 1
    nic.registry.if_setupdown(nic.ifp, False)           # type: ignore[union-attr]
    assert nic.if_transmit(nic.ifp, Mbuf(PKT)) == errno.ENETDOWN
    assert nic.stats()["tx_down"] == 1


@pytest.mark.parametrize("esn", [False, True])
def test_tx_crypto_offload_equals_software(esn: bool) -> None:
    """Crypto offload (linux §1): the stack frames ESP and leaves the ICV;
    the NIC encrypts in place.  With ESN the tag carries seq_hi."""
    nic, _, cap = _nic()
    flags = int(SADB_SAFLAGS.X_SAFLAGS_ESN) if esn else 0
    sav = make_sav(flags=flags, replay=4 if esn else 0)
    _install(nic, sav, 5)
    sw = sw_state(sav)
    seq = (7 << 32 | 42) if esn else 42
    iv = bytes(range(8))
    frame = crypto_offload_frame(sw, PKT, seq=seq, iv=iv)
    nic.if_transmit(nic.ifp, tagged(frame, 5, crypto=True, seq_hi=seq >> 32))
    assert cap.pop() == esp_transport_output(sw, PKT, seq=seq, iv=iv)
    assert nic.stats()["tx_crypto"] == 1
    h = nic.handle(5)
    assert h is not None and h.counters() == (0, 0), "crypto traffic is not reported"


def test_tx_mode_unsupported_dropped() -> None:
    """A crypto-only card cannot frame ESP: packet-offload packets are dropped
    (and counted) instead of leaking plaintext."""
    nic, _, cap = _nic(modes=("crypto",))
    _install(nic, make_sav())
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    assert len(cap) == 0 and nic.stats()["tx_mode_unsupported"] == 1


# -- RX ---------------------------------------------------------------------------------

def test_rx_decrypt_tag_replay_and_passthrough() -> None:
    """§9: the NIC finds its SA by (dst, SPI), decrypts, checks replay and
    delivers plaintext with an IN tag holding drv_spi; a replay is dropped;
    a bad ICV, an unknown SPI and non-ESP traffic go up untouched."""
    nic, _, _ = _nic()
    flags = int(SADB_SAFLAGS.X_SAFLAGS_ESN)
    sav = make_sav(replay=4, flags=flags)
    _install(nic, sav, 11)
    peer = sw_state(sav)
    esp1 = esp_transport_output(peer, PKT)
    nic.wire_input(esp1)
    m = nic.rx_queue.popleft()
    assert bytes(m.data) == PKT and m.rcvif is nic.ifp
    t = m_tag_find(m, PACKET_TAG_IPSEC_ACCEL_IN)
    assert t is not None and t.data == 11
    nic.wire_input(esp1)                                  # replayed
    assert not nic.rx_queue and nic.stats()["rx_esps_replay"] == 1
    bad = bytearray(esp_transport_output(peer, PKT))
    bad[-1] ^= 1
    nic.wire_input(bytes(bad))
    m = nic.rx_queue.popleft()
    assert bytes(m.data) == bytes(bad) and m.tags is None
    other = esp_transport_output(sw_state(make_sav(0x9999)), PKT)
    nic.wire_input(other)
    assert bytes(nic.rx_queue.popleft().data) == other
    nic.wire_input(PKT)
    assert bytes(nic.rx_queue.popleft().data) == PKT
    st = nic.stats()
    assert (st["rx_decrypted"], st["rx_auth_passed"], st["rx_no_sa"], st["rx_not_esp"]) == \
        (1, 1, 1, 1)
    h = nic.handle(11)
    assert h is not None and h.entry_in is not None and h.entry_in.drops == 1


def test_rx_natt_and_tunnel() -> None:
    nic, _, _ = _nic()
    natt = make_sav(0x3000, natt=(4500, 4500))
    tun = make_sav(0x4000, src="192.0.2.1", dst="192.0.2.2", mode=IPSEC_MODE.TUNNEL)
    _install(nic, natt, 3)
    _install(nic, tun, 4)
    nic.wire_input(udp_encap(esp_transport_output(sw_state(natt), PKT), 4500, 4500))
    m = nic.rx_queue.popleft()
    assert bytes(m.data) == PKT and m.csum_flags & CSUM_L4_VALID
    nic.wire_input(esp_tunnel_output(sw_state(tun), PKT, "192.0.2.1", "192.0.2.2"))
    assert bytes(nic.rx_queue.popleft().data) == PKT
    # An IKE packet on 4500 (non-ESP marker) is not ESP.
    ike = udp_packet("10.0.0.1", "10.0.0.2", 4500, 4500, bytes(4) + b"ike")
    assert locate_esp(ike) is None


def test_rx_crypto_mode_keeps_framing() -> None:
    """Crypto-offload RX: decrypted payload and trailer inside the original
    framing, PACKET_TAG_IPSEC_IN_CRYPTO_DONE with the drv_spi."""
    nic, _, _ = _nic(modes=("crypto",))
    sav = make_sav()
    _install(nic, sav, 6)
    peer = sw_state(sav)
    wire = esp_transport_output(peer, PKT, seq=5, iv=bytes(8))
    nic.wire_input(wire)
    m = nic.rx_queue.popleft()
    frame = crypto_offload_frame(sw_state(sav), PKT, seq=5, iv=bytes(8))
    data = bytes(m.data)
    assert data[:-16] == frame[:-16] and data[-16:] == wire[-16:]
    t = m_tag_find(m, PACKET_TAG_IPSEC_IN_CRYPTO_DONE)
    assert t is not None and t.data == 6


def test_two_nics_on_a_wire_round_trip() -> None:
    """Host A's NIC encrypts, host B's NIC decrypts (the same SA on both)."""
    a, _, _ = _nic(name="gen1")
    b, _, _ = _nic(name="gen2")
    w = Wire("w")
    a.connect(w.a)
    b.connect(w.b)
    sav = make_sav()
    _install(a, sav, 3)
    _install(b, sav, 3)
    got: list[Mbuf] = []
    b.ifp.if_input = lambda ifp, m: got.append(m)
    for _ in range(5):
        a.if_transmit(a.ifp, tagged(PKT, 3))
    assert [bytes(m.data) for m in got] == [PKT] * 5
    assert w.stats.packets == (5, 0)


# -- counters and the poll ---------------------------------------------------------------

def test_counters_cumulative_to_lifetime_update_and_sa_cnt() -> None:
    """§10: the poll reports CUMULATIVE (octets, packets) summed over both
    directions; if_sa_cnt returns the same, allocations cast to u32."""
    nic, key, _ = _nic()
    sav = make_sav()
    priv = _install(nic, sav, 3)
    peer = sw_state(sav)
    for _ in range(2):
        nic.if_transmit(nic.ifp, tagged(PKT, 3))
    nic.wire_input(esp_transport_output(peer, PKT))
    assert nic.poll_now() == 1
    assert key.updates[-1] == (sav, nic.ifp, 3, 3 * len(PKT), 3)
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    nic.poll_now()
    assert key.updates[-1][3:] == (4 * len(PKT), 4)
    lt = seclifetime()
    assert nic.if_sa_cnt(nic.ifp, sav, 3, priv, lt) == 0
    assert (lt.bytes, lt.allocations) == (4 * len(PKT), 4)
    assert priv.entry_out is not None
    priv.entry_out.packets = (1 << 32) + 5
    nic.if_sa_cnt(nic.ifp, sav, 3, priv, lt)
    assert lt.allocations == 5 + 1


def test_poll_skips_unchanged_counters() -> None:
    """ipsec_accel_drv_sa_lifetime_update turns cumulative values into deltas
    (§10), so re-reporting unchanged counters is a no-op: the poll reports a
    handle only when its counters moved, which keeps a poll over thousands of
    idle SAs cheap.  The first traffic is still reported (firstused)."""
    nic, key, _ = _nic()
    sav = make_sav()
    _install(nic, sav, 3)
    assert nic.poll_now() == 0 and not key.updates          # no traffic yet
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    assert nic.poll_now() == 1 and key.updates[-1][3:] == (len(PKT), 1)
    assert nic.poll_now() == 0 and len(key.updates) == 1    # unchanged: skipped
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    assert nic.poll_now() == 1 and key.updates[-1][3:] == (2 * len(PKT), 2)


def test_deinstall_cancels_counter_work() -> None:
    """mlx5 cancel_delayed_work_sync: no report for a handle after its
    deinstall returned."""
    nic, key, _ = _nic()
    sav = make_sav()
    priv = _install(nic, sav, 3)
    assert nic.if_sa_deinstall(nic.ifp, 3, priv) == 0
    assert nic.poll_now() == 0 and not key.updates
    assert nic.sa_table.count == 0 and nic.tx_sa(3) is None


def test_poll_thread_runs_and_stops() -> None:
    nic, key, _ = _nic(poll="thread", poll_interval=0.01)
    _install(nic, make_sav(), 3)
    nic.if_transmit(nic.ifp, tagged(PKT, 3))      # the poll reports moved counters
    assert nic.polling
    assert nic.poll_event.wait(10)
    deadline = time.monotonic() + 10
    while not key.updates and time.monotonic() < deadline:
        time.sleep(0.01)
    nic.stop_poll()
    assert not nic.polling
    assert key.updates and key.updates[-1][2] == 3


def test_lifetime_update_override() -> None:
    nic, _, _ = _nic()
    got: list[tuple[object, ...]] = []
    nic.lifetime_update = lambda *a: got.append(a)
    _install(nic, make_sav(), 3)
    nic.if_transmit(nic.ifp, tagged(PKT, 3))
    nic.poll_now()
    assert got and got[0][2:] == (3, len(PKT), 1)


# -- the KPI -----------------------------------------------------------------------------

def test_direction_less_install_takes_two_entries() -> None:
    """§17.13: without a direction the NIC installs inbound and outbound."""
    nic, _, _ = _nic()
    priv = _install(nic, make_sav())
    assert [e.direction for e in priv.entries] == [DIR_IN, DIR_OUT]
    assert nic.sa_table.count == 2
    err, priv2 = nic.if_sa_newkey_dir(nic.ifp, make_sav(0x1001), 4, DIR_OUT)
    assert err == 0 and [e.direction for e in priv2.entries] == [DIR_OUT]


def test_capacity_enospc_rolls_back_half_installed() -> None:
    """A full table: ENOSPC (an "other error"); the inbound half placed
    before the outbound one failed is removed again."""
    nic, _, _ = _nic(capacity=3)
    _install(nic, make_sav(0x1), 3)
    err, priv = nic.if_sa_newkey(nic.ifp, make_sav(0x2), 4)
    assert (err, priv) == (errno.ENOSPC, None)
    assert nic.sa_table.count == 2
    assert nic.refusals[-1].kind == "resource"


def test_refusals_by_errno_style() -> None:
    """freebsd style: unsupported -> EOPNOTSUPP (REJECTED); linux style: the
    Linux errno (EINVAL fails the request)."""
    nic, _, _ = _nic()
    ah = make_sav(proto=51)
    assert nic.if_sa_newkey(nic.ifp, ah, 3) == (errno.EOPNOTSUPP, None)
    nic2, _, _ = _nic(name="gen9", errno_style="linux")
    assert nic2.if_sa_newkey(nic2.ifp, ah, 3) == (errno.EINVAL, None)
    assert nic2.refusals[-1].linux_errno == errno.EINVAL
    with pytest.raises(ValueError):
        MockNic("x0", errno_style="solaris")


def test_gone_device_refuses() -> None:
    """mlx5: priv->gone -> EOPNOTSUPP."""
    nic, _, _ = _nic()
    nic.detach()
    assert nic.if_sa_newkey(nic.ifp, make_sav(), 3)[0] == errno.EOPNOTSUPP


def test_ledger_flags_kernel_misuse() -> None:
    """The same drv_spi twice, a deinstall without install, a foreign priv."""
    nic, _, _ = _nic()
    priv = _install(nic, make_sav(), 3)
    assert nic.if_sa_newkey(nic.ifp, make_sav(0x55), 3) == (errno.EEXIST, None)
    assert nic.if_sa_deinstall(nic.ifp, 99, None) == errno.ENOENT
    assert len(nic.check_invariants()) == 2
    assert nic.outstanding() == {3: priv}
    nic.if_sa_deinstall(nic.ifp, 3, priv)
    assert nic.outstanding() == {}


def test_invariant_dead_sa_still_installed() -> None:
    nic, _, _ = _nic()
    sav = make_sav()
    _install(nic, sav)
    sav.state = DEAD
    assert any("DEAD" in v for v in nic.check_invariants())


def test_ifdown_calls_on_ifdown_and_vlan_handles() -> None:
    """The stop path calls key.c's ipsec_accel_on_ifdown; SAs installed via a
    vlan are delivered to the vlan and hwassist asks the trunk."""
    nic, key, _ = _nic()
    reg = nic.registry
    assert reg is not None
    err, name = reg.if_clone_create("gen0.100", VlanParams(100, "gen0"))
    assert err == 0
    vlan = reg[name]
    assert vlan.if_type == IFT_L2VLAN and vlan.ipsec_offload
    sav = make_sav()
    err, priv = vlan.if_ipsec_accel_m.if_sa_newkey(vlan, sav, 7)   # type: ignore[union-attr]
    assert err == 0 and priv.ifpo is vlan and priv.entries[0].vid == 100
    nic.wire_input(esp_transport_output(sw_state(sav), PKT))
    assert nic.rx_queue.popleft().rcvif is vlan
    nic.ifp.if_hwassist = CSUM_TSO | CSUM_IP | 0x00800000
    assert vlan.if_ipsec_accel_m.if_hwassist(vlan, sav, 7, priv) == CSUM_TSO | CSUM_IP
    reg.if_setupdown(nic.ifp, False)
    assert key.ifdowns == [nic.ifp]


def test_concurrent_tx_counters_add_up() -> None:
    """Datapath threads share the NIC: no counter update is lost."""
    nic, key, cap = _nic()
    sav = make_sav()
    _install(nic, sav, 3)
    n, threads = 300, 4

    def run() -> None:
        for _ in range(n):
            nic.if_transmit(nic.ifp, tagged(PKT, 3))

    run_threads(run, [()] * threads)
    nic.poll_now()
    assert key.updates[-1][3:] == (n * threads * len(PKT), n * threads)
    assert len(cap) == n * threads
    seqs = sorted(int.from_bytes(f[24:28], "big") for f in cap.frames)
    assert seqs == list(range(1, n * threads + 1)), "each sequence number used once"


def test_hw_table_lowest_free_index() -> None:
    t = HwTable("t", 4)
    assert [t.alloc(x) for x in "abcd"] == [0, 1, 2, 3]
    assert t.alloc("e") == -1 and t.full
    t.free(2)
    t.free(0)
    assert t.alloc("f") == 0 and t.alloc("g") == 2
    assert t.free(9) is None and t.peak == 4
    assert HwTable("u", None).alloc("x") == 0


def test_tx_all_tag_strategies_found_by_default() -> None:
    """Issue 6 item 6: the default accessor reads the per-packet m_tag, a
    send tag, a reused IPSEC_OUT_DONE tag and the packet-header field."""
    from ipsec_accel.mbuf import PACKET_TAG_IPSEC_OUT_DONE
    nic, _, cap = _nic()
    sav = make_sav()
    _install(nic, sav, 12)
    sw = sw_state(sav)

    class _Done:
        drv_spi = 12

    m = Mbuf(PKT)
    t = m_tag_get(PACKET_TAG_IPSEC_OUT_DONE, 16)
    assert t is not None
    t.data = _Done()
    m_tag_prepend(m, t)
    nic.if_transmit(nic.ifp, m)
    m2 = Mbuf(PKT)
    m2.ph_spare = 12
    nic.if_transmit(nic.ifp, m2)
    assert cap.frames == [esp_transport_output(sw, PKT), esp_transport_output(sw, PKT)]


def test_key_the_card_cannot_load_is_refused() -> None:
    """The install loads the key (esp_init_algorithms): an AES key of 15
    bytes is refused as unsupported (EINVAL on Linux), nothing placed."""
    nic, _, _ = _nic()
    assert nic.if_sa_newkey(nic.ifp, make_sav(enc=SADB_EALG.X_AESCBC, key=bytes(15)), 3) == \
        (errno.EOPNOTSUPP, None)
    assert nic.refusals[-1].reason.startswith("key context") and nic.sa_table.count == 0
