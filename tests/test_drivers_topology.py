"""Topology files and the default model host (drivers/topology.py).

Issue 5 item 7: a default model host used by setkey's embedded mode and the
daemon -- named mock interfaces (an mlx5-like one with offload enabled and an
ixgbe-like one), loadable from a small file users can write.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import drivers
from drivers import (
    DEFAULT_TOPOLOGY, IxgbePf, IxgbeVf, Mlx5Nic, NetdevsimNic, TopologyError, build_host,
    build_lab, nics, shutdown,
)
from drivers.testing import GCM256_KEY, gcm_sa, tagged
from ipsec_accel.ifnet import IFT_L2VLAN
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from pfkey.clock import FakeClock
from pfkey.key_testing import add_msg, exchange

LAB = """
[[host]]
name = "a"
[[host.interface]]
name = "mce0"
driver = "mlx5"
[[host.interface]]
name = "ix0"
driver = "ixgbe"
options = { vf_ipsec = true }

[[host]]
name = "vm1"
[[host.interface]]
name = "ixv0"
driver = "ixgbevf"
pf = "a:ix0"
vf_id = 1
options = { trust = true }

[[host]]
name = "b"
[[host.interface]]
name = "mce0"
driver = "mlx5"

[[wire]]
a = "a:mce0"
b = "b:mce0"
"""


def test_default_host() -> None:
    """DEFAULT_TOPOLOGY: mce0 (mlx5) and ix0 (ixgbe), up, IPsec on, the
    offload layer attached; a 256-bit SA is HANDLED on mce0 and REJECTED on
    ix0."""
    h = build_host(clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    try:
        n = nics(h)
        assert list(n) == ["mce0", "ix0"]
        assert isinstance(n["mce0"], Mlx5Nic) and isinstance(n["ix0"], IxgbePf)
        assert all(x.running and x.ifp.ipsec_offload and not x.polling for x in n.values())
        assert h.ifnets["mce0"].if_softc is n["mce0"]
        assert h.offload is not None
        so = h.socket()
        assert exchange(so, add_msg(0x1000, **gcm_sa(key=GCM256_KEY)))[-1].errno == 0
        h.sync()
        sav = h.key.savhash[0x1000]
        assert [e.ifname for e in h.offload.ipsec_accel_key_setaccelif(sav)] == ["mce0"]
        assert h.offload.ipsec_accel_is_accel_sav_ptr(sav, n["ix0"].ifp) is not None
    finally:
        shutdown(h)


def test_default_host_with_a_real_clock_polls() -> None:
    """poll = "auto": counter threads with a wall clock, none with a FakeClock."""
    h = build_host()
    try:
        assert all(x.polling for x in nics(h).values())
    finally:
        h.stop()                       # the NICs' stop hook ran
    assert not any(x.polling for x in nics(h).values())
    h2 = build_host(poll="off")
    try:
        assert not any(x.polling for x in nics(h2).values())
    finally:
        shutdown(h2)


def test_file_with_vlans_options_and_vf(tmp_path: Path) -> None:
    p = tmp_path / "gw.toml"
    p.write_text("""
name = "gw"
loopback = true
poll = "off"

[[interface]]
name = "mce0"
driver = "mlx5"
mtu = 9000
vlans = [100, {vid = 200, name = "vlan200"}]
lladdr = "02:00:00:00:01:01"
[interface.options]
esn = false
capacity = 64

[[interface]]
name = "ix0"
driver = "ixgbe"
ipsec = false
options = { vf_ipsec = true, rx_sa = 8 }

[[interface]]
name = "ixv1"
driver = "ixgbevf"
pf = "ix0"
vf_id = 1
options = { trust = true }

[[interface]]
name = "nsim0"
driver = "netdevsim"
up = false
""")
    h = build_host(p, clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    try:
        assert h.name == "gw"
        assert h.ifnets.names() == ["lo0", "mce0", "mce0.100", "vlan200", "ix0", "ixv1",
                                    "nsim0"]
        n = nics(h)
        mce = n["mce0"]
        assert mce.ifp.if_mtu == 9000 and mce.sa_table.capacity == 64
        assert mce.ifp.if_lladdr == bytes.fromhex("020000000101")
        assert not mce.caps & drivers.mlx5.MLX5_IPSEC_CAP_ESN
        v = h.ifnets["vlan200"]
        assert v.if_type == IFT_L2VLAN and v.ipsec_offload and v.running
        assert not n["ix0"].ifp.ipsec_offload and n["ix0"].rx_table.capacity == 8
        vf = n["ixv1"]
        assert isinstance(vf, IxgbeVf) and vf.pf is n["ix0"] and n["ix0"].vf_trust == {1: True}
        assert isinstance(n["nsim0"], NetdevsimNic) and not n["nsim0"].running
        assert h.ifnets.if_setipsec("ix0", True) == 0
    finally:
        shutdown(h)


def test_multi_host_lab_with_a_wire() -> None:
    """Hosts, a VF in a VM on another host's PF, and a wire joining two
    mlx5 NICs: A's NIC encrypts, B's decrypts."""
    lab = build_lab(text=LAB, clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    try:
        assert sorted(lab.hosts) == ["a", "b", "vm1"]
        vf = lab.nic("vm1:ixv0")
        assert isinstance(vf, IxgbeVf) and vf.pf is lab.nic("a:ix0")
        a, b = lab.nic("a:mce0"), lab.nic("b:mce0")
        for h in (lab.hosts["a"], lab.hosts["b"]):
            assert exchange(h.socket(), add_msg(0x2000, **gcm_sa()))[-1].errno == 0
            h.sync()
        ha = lab.hosts["a"].offload.ipsec_accel_sav_handle(lab.hosts["a"].key.savhash[0x2000],
                                                           a.ifp)
        got: list[object] = []
        b.ifp.if_input = lambda ifp, m: got.append(bytes(m.data))
        pkt = udp_packet("10.0.0.1", "10.0.0.2", 1, 2, b"hi")
        a.if_transmit(a.ifp, tagged(pkt, ha.drv_spi))
        assert got == [pkt]
        assert lab.wires[0].stats.packets == (1, 0)
    finally:
        lab.shutdown()


@pytest.mark.parametrize("text, msg", [
    ("[[interface]]\nname = 'x0'\ndriver = 'e1000'\n", "unknown driver 'e1000'"),
    ("[[interface]]\ndriver = 'mlx5'\n", "needs a name"),
    ("[[interface]]\nname = 'x0'\ndriver = 'mlx5'\ncolour = 'red'\n", "unknown key"),
    ("[[interface]]\nname = 'x0'\ndriver = 'mlx5'\n[[interface]]\nname = 'x0'\n"
     "driver = 'mlx5'\n", "defined twice"),
    ("[[interface]]\nname = 'v0'\ndriver = 'ixgbevf'\n", "needs pf"),
    ("[[interface]]\nname = 'v0'\ndriver = 'ixgbevf'\npf = 'ix9'\n", "not an ixgbe"),
    ("[[interface]]\nname = 'x0'\ndriver = 'mlx5'\noptions = { warp = 9 }\n", "warp"),
    ("[[interface]]\nname = 'x0'\ndriver = 'mlx5'\nlladdr = 'zz'\n", "bad lladdr"),
    ("[[interface]]\nname = 'x0'\ndriver = 'mlx5'\nvlans = ['a']\n", "bad vlan"),
    ("poll = 'sometimes'\n", "poll must be"),
    ("name = [\n", "<topology>"),
    ("[[host]]\nname = 'a'\n[[host]]\nname = 'a'\n", "host 'a' defined twice"),
])
def test_errors_name_the_problem(text: str, msg: str) -> None:
    with pytest.raises(TopologyError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        build_host(text=text, clock=FakeClock(), taskqueue_mode=TqMode.INLINE)


def test_vlan_error_and_multi_host_selection() -> None:
    with pytest.raises(TopologyError, match="vlan 0"):
        build_host(text="[[interface]]\nname = 'x0'\ndriver = 'mlx5'\nvlans = [0]\n",
                   clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    with pytest.raises(TopologyError, match="3 hosts"):
        build_host(text=LAB, clock=FakeClock())
    h = build_host(text=LAB, host="b", clock=FakeClock(), taskqueue_mode=TqMode.INLINE)
    try:
        assert h.name == "b" and list(nics(h)) == ["mce0"]
    finally:
        shutdown(h)


def test_default_topology_text_is_the_documented_one() -> None:
    assert 'name = "mce0"' in DEFAULT_TOPOLOGY and 'driver = "ixgbe"' in DEFAULT_TOPOLOGY
    assert drivers.DRIVERS["mlx5"] is Mlx5Nic


def test_public_api_is_honest() -> None:
    import importlib
    import pkgutil
    for m in ["drivers", *sorted(x.name for x in pkgutil.walk_packages(drivers.__path__,
                                                                       "drivers."))]:
        mod = importlib.import_module(m)
        assert hasattr(mod, "__all__"), m
        assert not [n for n in mod.__all__ if not hasattr(mod, n)], m
        assert len(set(mod.__all__)) == len(mod.__all__), m
