"""Two-host scenarios per mock NIC profile (issue 6 items 7 and 9): traffic
flows both ways; ``setkey -D`` counters (lft_c, ``sw offl``, ``hw offl``)
agree with what was sent through software and hardware; an ifdown mid-flow
moves traffic to software with no packet lost or counted twice
(ipsec_accel_on_ifdown, §6.4); no-fallback SAs drop; lifetimes expire from
traffic in both paths (key_flush_sad via key_sa_recordxfer and
ipsec_accel_drv_sa_lifetime_update, §10) with SADB_EXPIRE to registered
sockets; the wire's pcap decrypts with the exported Wireshark SA table."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

from ipsec_accel.lab import Lab
from ipsec_accel.pcap import read_esp_sa, read_pcap
from pfkey.key_testing import add_msg, drain, hdr_msg, lifetimes
from pfkey.keydb import DEAD, DYING
from pfkey.pfkeyv2 import SADB, SADB_AALG, SADB_EALG, SADB_EXT, SADB_SATYPE
from thread_helpers import run_threads

PROFILES = ("mlx5", "ixgbe", "ixgbevf", "netdevsim", "chelsio")
KEY = "0x" + bytes(range(0x20, 0x34)).hex()


def _opts(profile: str) -> dict[str, Any]:
    """Replay protection everywhere (mlx5 needs ESN for it)."""
    return dict(replay=4, esn=profile == "mlx5")


def _dump(text: str) -> dict[int, dict[str, int]]:
    """setkey -D text -> spi -> counters printed for it."""
    out: dict[int, dict[str, int]] = {}
    for block in re.split(r"\n(?=\S)", text.strip()):
        m = re.search(r"spi=(\d+)\(", block)
        if not m:
            continue
        d: dict[str, int] = {}
        if (c := re.search(r"\tcurrent: (\d+)\(bytes\)", block)):
            d["bytes"] = int(c.group(1))
        if (c := re.search(r"\tallocated: (\d+)", block)):
            d["allocated"] = int(c.group(1))
        for tag in ("sw", "hw"):
            if (c := re.search(rf"{tag} offl allocated: (\d+)\t{tag} offl: (\d+)\(bytes\)",
                               block)):
                d[f"{tag}_allocated"], d[f"{tag}_bytes"] = int(c.group(1)), int(c.group(2))
        out[int(m.group(1))] = d
    return out


def _esp_len(lab: Lab, host: str, spi: int, size: int) -> int:
    """Length of the ESP packet a ``size``-byte IPv4 datagram becomes."""
    esp = lab.hosts[host].ip.ipsec.sactx(lab.sav(host, spi)).esp
    return esp.output_size(size, 20)  # type: ignore[no-any-return]


def _check_direction(lab: Lab, r: Any, src: str, dst: str, spi: int, size: int,
                     prior: tuple[int, int] = (0, 0)) -> None:
    """The counters ``setkey -D`` prints for SA ``spi`` on both ends agree
    with the run ``r`` (after a counter poll): sender lft_c = packets
    offloaded (plain length, the NIC's count) + packets through software ESP
    or crypto offload (ESP length, key_sa_recordxfer in ipsec_process_done);
    receiver lft_c = every packet (decrypted length); sw/hw offl = the
    offloaded ones."""
    n = r.n
    p = r.paths
    assert r.delivered == n and not r.drops, r.summary()
    assert p["out_packet"] + p["out_crypto"] + p["out_sw"] == n
    assert p["in_packet"] + p["in_crypto"] + p["in_sw"] == n
    sd = _dump(lab.setkey_dump(src))[spi]
    dd = _dump(lab.setkey_dump(dst))[spi]
    esp_len = _esp_len(lab, src, spi, size)
    assert sd["allocated"] == prior[0] + n
    assert sd["bytes"] == prior[1] + p["out_packet"] * size + \
        (p["out_crypto"] + p["out_sw"]) * esp_len
    assert dd["allocated"] == n and dd["bytes"] == n * size
    if "sw_allocated" in sd:
        assert (sd["sw_allocated"], sd["sw_bytes"]) == (p["out_packet"], p["out_packet"] * size)
        assert (sd["hw_allocated"], sd["hw_bytes"]) == (p["out_packet"], p["out_packet"] * size)
    else:
        assert p["out_packet"] == 0
    if "sw_allocated" in dd:
        assert (dd["sw_allocated"], dd["hw_allocated"]) == (p["in_packet"], p["in_packet"])
        assert dd["hw_bytes"] == p["in_packet"] * size
    else:
        assert p["in_packet"] == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_two_hosts_traffic_and_setkey_counters_agree(profile: str) -> None:
    """Traffic flows both ways over each NIC profile; after the drivers'
    counter poll, ``setkey -D`` on both hosts shows exactly what was sent,
    software and hardware parts added up (ipsec_accel_drv_sa_lifetime_update
    into lft_c, ipsec_accel_sa_recordxfer into sw offl)."""
    with Lab.build(profile) as lab:
        lab.install_transport(**_opts(profile))
        r1 = lab.push(25, 300)
        r2 = lab.push(15, 700, src="b", dst="a")
        lab.poll()
        _check_direction(lab, r1, "a", "b", 0x1000, 300)
        _check_direction(lab, r2, "b", "a", 0x1001, 700)
        used = {k for r in (r1, r2) for k, v in r.paths.items() if v}
        expect = {"mlx5": {"out_packet", "in_packet"}, "ixgbe": {"out_crypto", "in_crypto"},
                  "netdevsim": {"out_crypto", "in_crypto"}, "ixgbevf": {"out_sw", "in_crypto"},
                  "chelsio": {"out_crypto", "in_sw"}}[profile]
        assert used == expect, "each profile's hardware does what it can"


def _lose_handles(lab: Lab, profile: str, host: str) -> None:
    """The event that makes host ``host``'s NIC call ipsec_accel_on_ifdown
    (§6.4): for FreeBSD's mlx5 turning the IPSEC capability off (mlx5e_ioctl
    SIOCSIFCAP/SIOCSIFCAPNV; its ``ifconfig down`` keeps the handles,
    sys/dev/mlx5/mlx5_en/mlx5_en_main.c), for the other mock NICs ``ifconfig
    down; up`` (the model's default for a stop path without a FreeBSD
    driver to follow)."""
    ifp = lab.ifp(host)
    reg = lab.hosts[host].ifnets
    if profile == "mlx5":
        assert reg.if_setipsec(ifp.if_xname, False) == 0
    else:
        reg.if_setupdown(ifp, False)
        reg.if_setupdown(ifp, True)


@pytest.mark.parametrize("profile", PROFILES)
def test_ifdown_mid_flow_moves_to_software_nothing_lost_or_double_counted(profile: str
                                                                         ) -> None:
    """§6.4 / §17.9-10: both NICs call ipsec_accel_on_ifdown mid-flow
    (:func:`_lose_handles`: mlx5 on ``-ipsec``, the others on ``ifconfig
    down; up``; handles deinstalled, never re-offered): the rest of the flow
    goes through software.  Replay windows are on; hardware and software
    share each SA's ESP state, so sequence numbers continue -- no packet
    lost, none counted twice (the drivers report before the handles go:
    mlx5 cancels a handle's counter work at deinstall)."""
    with Lab.build(profile) as lab:
        lab.install_transport(**_opts(profile))
        r1 = lab.push(20, 400)
        lab.poll()
        for h in ("a", "b"):
            _lose_handles(lab, profile, h)
        assert not lab.nic("a").handles() and not lab.nic("b").handles()
        r2 = lab.push(30, 400)
        lab.poll()
        assert r1.delivered + r2.delivered == 50 and not r2.drops
        assert r2.paths["out_sw"] == 30 and r2.paths["in_sw"] == 30
        sa, sb = lab.sav("a", 0x1000), lab.sav("b", 0x1000)
        assert sa.lft_c_allocations == 50 and sb.lft_c_allocations == 50
        esp_len = _esp_len(lab, "a", 0x1000, 400)
        p1 = r1.paths
        assert sa.lft_c_bytes == p1["out_packet"] * 400 + \
            (p1["out_crypto"] + p1["out_sw"] + 30) * esp_len
        assert sb.lft_c_bytes == 50 * 400
        # the dump shows no offload any more (no handle left), and agrees
        assert _dump(lab.setkey_dump("a"))[0x1000] == {"allocated": 50,
                                                       "bytes": sa.lft_c_bytes}


@pytest.mark.parametrize("share", [True, False])
def test_sender_only_failover_needs_the_shared_esp_state(share: bool) -> None:
    """Why the NIC and the stack share one ESP state per SA (model departure,
    see ipsec_state): when only the sender's NIC loses its handles
    (``ifconfig mce0 -ipsec``: mlx5 closes the port and calls
    ipsec_accel_on_ifdown) the stack must continue the hardware's sequence
    numbers and IV counter.  Shared: nothing lost, every AES-GCM nonce fresh.
    Not shared: the stack starts again at sequence 1 -- the receiver's
    hardware replay window refuses it -- reusing the nonces the NIC used."""
    with Lab.build("mlx5", share_esp_state=share) as lab:
        lab.install_transport(replay=4, esn=True)
        frames: list[bytes] = []
        nic = lab.nic("a")
        wire = nic._wire_tx
        nic.set_transmit(lambda f: (frames.append(bytes(f)), wire(f)))
        lab.push(10, 200)
        assert lab.a.ifnets.if_setipsec("mce0", False) == 0
        assert not nic.handles() and lab.nic("b").handles()
        r = lab.push(10, 200)
        ivs = [f[28:36] for f in frames]
        if share:
            assert r.delivered == 10 and r.paths["out_sw"] == 10
            assert len(set(ivs)) == 20
        else:
            assert r.delivered == 0 and lab.nic("b").stats().get("rx_esps_replay") == 10
            assert len(set(ivs)) == 10, "GCM nonce reuse"


def test_nofallback_sa_drops_when_the_nic_goes_away() -> None:
    """Extension "nofallback": after the handles are gone (mlx5's
    ``-ipsec`` calls on_ifdown) an SA that must not run in software drops
    its packets instead."""
    with Lab.build("mlx5", extensions=("nofallback",)) as lab:
        lab.install_transport()
        for h in "ab":
            lab.hosts[h].offload.ipsec_accel_sa_set_nofallback(lab.sav(h, 0x1000), True)
        assert lab.push(5, 200).delivered == 5
        _lose_handles(lab, "mlx5", "a")
        r = lab.push(5, 200)
        assert r.delivered == 0 and lab.stats("a")["accel.out_nofallback"] == 5


def _register(lab: Lab, host: str) -> Any:
    so = lab.hosts[host].socket()
    so.send(hdr_msg(SADB.REGISTER, SADB_SATYPE.ESP).encode())
    drain(so)
    return so


def _expires(so: Any) -> list[tuple[int, str]]:
    out = []
    for m in drain(so):
        if m.type == SADB.EXPIRE:
            kind = "hard" if m.get(SADB_EXT.LIFETIME_HARD) is not None else "soft"
            out.append((m.get(SADB_EXT.SA).spi, kind))
    return out


def _install_with_lifetimes(lab: Lab, hard: tuple[int, int, int, int],
                            soft: tuple[int, int, int, int]) -> None:
    """Policies with setkey; the SAs with SADB_ADD messages carrying
    LIFETIME_HARD / LIFETIME_SOFT (FreeBSD's setkey only sets addtime)."""
    key = bytes(range(0x20, 0x34))
    for h, me, peer in (("a", "10.0.0.1", "10.0.0.2"), ("b", "10.0.0.2", "10.0.0.1")):
        lab.setkey(h, f"spdadd {me} {peer} any -P out ipsec esp/transport//require;\n"
                      f"spdadd {peer} {me} any -P in ipsec esp/transport//require;")
    for h in "ab":
        so = lab.hosts[h].socket()
        for spi, src, dst in ((0x1000, "10.0.0.1", "10.0.0.2"),
                              (0x1001, "10.0.0.2", "10.0.0.1")):
            so.send(add_msg(spi, src=src, dst=dst, enc=SADB_EALG.X_AESGCM16, enc_key=key,
                            auth=SADB_AALG.NONE, auth_key=None, replay=0, mode=1,
                            extra=lifetimes(hard, soft)).encode())
            assert all(r[2] == 0 for r in so.recv_all())
        so.close()
        lab.hosts[h].sync()


@pytest.mark.parametrize("offloaded", [False, True])
def test_byte_lifetimes_expire_from_traffic(offloaded: bool) -> None:
    """§10: byte lifetimes expire from real packets -- software path through
    key_sa_recordxfer, offloaded path only once the driver's counter poll
    (ipsec_accel_drv_sa_lifetime_update) put the bytes into lft_c, so expiry
    lags by the poll.  key_flush_sad: soft -> DYING + SADB_EXPIRE(soft),
    hard -> DEAD + SADB_EXPIRE(hard) to registered sockets; the SA's
    handles are forgotten and later packets find no SA."""
    with Lab.build("mlx5", ipsec=offloaded) as lab:
        _install_with_lifetimes(lab, hard=(0, 4000, 0, 0), soft=(0, 2000, 0, 0))
        so = _register(lab, "a")
        sav = lab.sav("a", 0x1000)
        r = lab.push(10, 250)                       # 2500+ bytes either way
        assert r.paths["out_packet" if offloaded else "out_sw"] == 10
        lab.tick(1)
        if offloaded:
            assert _expires(so) == [] and sav.lft_c_bytes == 0
            lab.poll()
            lab.tick(1)
        assert _expires(so) == [(0x1000, "soft")] and sav.state == DYING
        assert lab.push(10, 250).delivered == 10, "a DYING SA still carries traffic"
        if offloaded:
            lab.poll()
        lab.tick(1)
        assert _expires(so) == [(0x1000, "hard")] and sav.state == DEAD
        assert all(h.sav is not sav for h in lab.nic("a").handles()), "deinstalled"
        r = lab.push(1, 250)
        assert r.delivered == 0 and lab.stats("a")["ipsec.ips_out_nosa"] == 1


@pytest.mark.parametrize("offloaded", [False, True])
def test_usetime_lifetime_counts_from_first_use(offloaded: bool) -> None:
    """§10: usetime expiry counts from firstused, which software sets at the
    first packet (key_sa_recordxfer) and offload at the first driver report
    with packets (ipsec_accel_drv_sa_lifetime_update sets firstused)."""
    with Lab.build("mlx5", ipsec=offloaded) as lab:
        _install_with_lifetimes(lab, hard=(0, 0, 0, 0), soft=(0, 0, 0, 5))
        so = _register(lab, "a")
        sav = lab.sav("a", 0x1000)
        lab.tick(10)
        assert _expires(so) == [], "never used: no usetime expiry"
        assert lab.push(3, 100).delivered == 3
        lab.tick(6)
        if offloaded:
            assert sav.firstused == 0 and _expires(so) == []
            lab.poll()
            assert sav.firstused != 0
            lab.tick(6)
        assert _expires(so) == [(0x1000, "soft")]


def test_pcap_decrypts_with_the_exported_sa_table(tmp_path: Any) -> None:
    """Item 7: every wire can write a pcap; the kernels' SAs exported as
    Wireshark's esp_sa table decrypt it (checked with scapy's ESP, an
    independent implementation), offloaded and software packets alike."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from scapy.layers.inet import IP, UDP
        from scapy.layers.ipsec import ESP, SecurityAssociation
    cap = tmp_path / "a-b.pcap"
    with Lab.build("mlx5", capture=str(cap)) as lab:
        lab.install_transport()
        lab.push(3, 200)
        lab.set_mode("software")
        lab.push(3, 200, src="b", dst="a")
        n = lab.export_esp_sa(tmp_path / "esp_sa")
    assert n == 2
    rows = read_esp_sa(tmp_path / "esp_sa")
    sas = {}
    for proto, src, dst, spi, enc, key, auth, _akey, sn, _hi in rows:
        assert (proto, enc, auth, sn) == ("IPv4", "AES-GCM with 16 octet ICV [RFC4106]",
                                         "NULL", "32-bit")
        sas[int(spi, 16)] = SecurityAssociation(ESP, spi=int(spi, 16), crypt_algo="AES-GCM",
                                                crypt_key=bytes.fromhex(key[2:]))
    recs = read_pcap(cap).records
    assert len(recs) == 6
    for rec in recs:
        pkt = IP(rec.data)
        assert pkt.proto == 50
        plain = sas[pkt[ESP].spi].decrypt(pkt)
        assert plain[UDP].dport == 9 and len(bytes(plain)) == 200


def test_many_sas_one_per_flow() -> None:
    """Benchmark rig: install_many(n) gives flow i its own policy and SA pair
    (reqid-bound, ``unique``); push(flows=n) spreads the packets over them
    and each SA carries its share (key_allocsa_policy per request)."""
    with Lab.build("mlx5") as lab:
        lab.install_many(8)
        r = lab.push(24, 100, flows=8)
        assert r.delivered == 24 and r.paths["out_packet"] == 24 and not r.drops
        used = [s for s in lab.a.key.iter_sav() if s.accel_lft_sw[0]]
        assert len(used) == 8 and all(s.accel_lft_sw[0] == 3 for s in used)


@pytest.mark.parametrize("profile,ipsec,path", [
    ("mlx5", True, "in_packet"), ("ixgbe", True, "in_crypto"), ("mlx5", False, "in_sw")])
def test_host_path_hooks_without_the_wire(profile: str, ipsec: bool, path: str) -> None:
    """Microbenchmark hooks: host_path() runs one packet through ip_output
    with a null if_transmit (the driver's tag read, nothing encrypted or
    sent); rx_host_path() feeds ip_input what the NIC hands up."""
    with Lab.build(profile, ipsec=ipsec) as lab:
        lab.install_transport()
        step = lab.host_path(64)
        for _ in range(5):
            assert step() == 0
        lab.restore_host_path()
        assert lab.nic("a").stats()["tx_packets"] == 0
        rx = lab.rx_host_path(64)
        before = lab.stats("b")[f"accel.{path}"]
        for _ in range(5):
            rx()
        assert lab.stats("b")[f"accel.{path}"] - before == 5
        assert lab.b.ip.sink(17).packets == 5, "(the recorded frame itself is not delivered)"


def test_counters_exact_with_two_sending_threads() -> None:
    """Statistics are counter(9)-like (one slot per thread, summed when
    read): two threads pushing through one host lose no count."""
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        run_threads(lab.push, [(300, 100)] * 2)
        assert lab.stats("a")["accel.out_packet"] == 600
        assert lab.stats("b")["accel.in_packet"] == 600
        assert lab.stats("a")["ip.ips_localout"] == 600
        assert lab.b.ip.sink(17).packets == 600
