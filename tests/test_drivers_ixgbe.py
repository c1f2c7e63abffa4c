"""The ixgbe-like PF (drivers/ixgbe.py).

Reference: linux_xfrm_offload.md §5 (ixgbe_ipsec.c: 1024 RX + 1024 TX + 128
RX-IP tables, AES-128-GCM ICV16 only, ENOSPC when full, TX with VFs not in
VEPA -> EOPNOTSUPP, reset) and §10 P2; freebsd_ipsec_offload.md §4 (what an
errno means to the infrastructure), §17.1 (REJECTED handles).
"""

from __future__ import annotations

import errno
from typing import Any, Iterator

import pytest

from drivers import IxgbePf, Mlx5Nic
from drivers.hw import DIR_IN, DIR_OUT
from drivers.ixgbe import (
    IXGBE_IPSEC_BASE_TX_INDEX, IXGBE_IPSEC_MAX_RX_IP_COUNT, IXGBE_IPSEC_MAX_SA_COUNT,
)
from drivers.testing import (
    GCM128_KEY, GCM256_KEY, Capture, crypto_offload_frame, gcm_sa, make_sav, sw_state, tagged,
)
from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.mbuf import PACKET_TAG_IPSEC_IN_CRYPTO_DONE, m_tag_find
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import OffloadRig
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import SADB_EALG, SADB_SAFLAGS

PKT = udp_packet("10.0.0.1", "10.0.0.2", 7, 9, b"ix" * 30)


def _pf(**kw: Any) -> IxgbePf:
    return IxgbePf("ix0", **kw).attach(registry=IfnetRegistry())


def test_table_sizes() -> None:
    pf = _pf()
    assert (pf.rx_table.capacity, pf.tx_table.capacity, pf.rxip_table.capacity) == (
        IXGBE_IPSEC_MAX_SA_COUNT, IXGBE_IPSEC_MAX_SA_COUNT, IXGBE_IPSEC_MAX_RX_IP_COUNT) == (
        1024, 1024, 128)


@pytest.mark.parametrize("kw, reason", [
    ({"key": GCM256_KEY}, "only supports keys up to 128 bits"),
    ({"enc": SADB_EALG.X_AESCBC, "key": bytes(16)}, "rfc4106(gcm(aes))"),
    ({"mode": IPSEC_MODE.TUNNEL}, "Only transport mode"),
    ({"proto": 51}, "Unsupported protocol"),
    ({"flags": int(SADB_SAFLAGS.X_SAFLAGS_ESN)}, "ESN"),
    ({"natt": (4500, 4500)}, "UDP encapsulation"),
    ({"alg_comp": 2}, "Compression"),
])
def test_refusals(kw: dict[str, Any], reason: str) -> None:
    """Linux answers EINVAL (the user's request fails); on FreeBSD's KPI the
    default style answers EOPNOTSUPP: a REJECTED handle, software fallback."""
    pf = _pf()
    assert pf.if_sa_newkey(pf.ifp, make_sav(**kw), 3) == (errno.EOPNOTSUPP, None)
    assert reason in pf.refusals[-1].reason and pf.refusals[-1].linux_errno == errno.EINVAL
    lin = IxgbePf("ix1", errno_style="linux").attach(registry=IfnetRegistry())
    assert lin.if_sa_newkey(lin.ifp, make_sav(**kw), 3)[0] == errno.EINVAL


def test_mode_any_runs_as_transport_and_mgmt_clash() -> None:
    pf = _pf(mgmt_ips=["10.0.0.9"])
    assert pf.if_sa_newkey(pf.ifp, make_sav(mode=IPSEC_MODE.ANY), 3)[0] == 0
    assert pf.if_sa_newkey(pf.ifp, make_sav(0x2, dst="10.0.0.9"), 4)[0] == errno.EOPNOTSUPP
    assert "mgmt" in pf.refusals[-1].reason
    # TX-only towards the management address is fine (the filter is RX).
    assert pf.if_sa_newkey_dir(pf.ifp, make_sav(0x3, dst="10.0.0.9"), 5, DIR_OUT)[0] == 0


def test_handles_and_shared_rx_ip_slots() -> None:
    """RX handle = RX index, TX handle = TX index + 1024; SAs towards one
    address share a ref-counted RX IP slot."""
    pf = _pf()
    _, a = pf.if_sa_newkey(pf.ifp, make_sav(0x1), 3)
    _, b = pf.if_sa_newkey(pf.ifp, make_sav(0x2), 4)
    assert [e.aux["handle"] for e in a.entries] == [0, IXGBE_IPSEC_BASE_TX_INDEX]
    assert [e.aux["handle"] for e in b.entries] == [1, IXGBE_IPSEC_BASE_TX_INDEX + 1]
    assert pf.rxip_table.count == 1 and pf.rxip_table.get(0).refs == 2
    pf.if_sa_deinstall(pf.ifp, 3, a)
    assert pf.rxip_table.get(0).refs == 1
    pf.if_sa_deinstall(pf.ifp, 4, b)
    assert pf.rxip_table.count == 0 and not pf.engine_on


def test_rx_ip_table_exhaustion_is_its_own_enospc() -> None:
    """128 distinct destinations fill the RX IP table while the RX SA table
    has room: ENOSPC "No space for SA in Rx IP SA table"; a known address
    still fits."""
    pf = _pf()
    for i in range(IXGBE_IPSEC_MAX_RX_IP_COUNT):
        err, _ = pf.if_sa_newkey_dir(pf.ifp, make_sav(0x100 + i, dst=f"10.1.{i}.1"), 3 + i,
                                     DIR_IN)
        assert err == 0
    err, _ = pf.if_sa_newkey_dir(pf.ifp, make_sav(0x9999, dst="10.2.0.1"), 999, DIR_IN)
    assert err == errno.ENOSPC and pf.refusals[-1].reason == "No space for SA in Rx IP SA table"
    assert pf.rx_table.count == 128
    assert pf.if_sa_newkey_dir(pf.ifp, make_sav(0x9998, dst="10.1.0.1"), 1000, DIR_IN)[0] == 0


def test_rx_and_tx_tables_full_enospc() -> None:
    """1024 SAs (both directions) fill both tables; the next is ENOSPC --
    an "other error" (nothing recorded), not EOPNOTSUPP."""
    pf = _pf()
    for i in range(IXGBE_IPSEC_MAX_SA_COUNT):
        assert pf.if_sa_newkey(pf.ifp, make_sav(0x1000 + i), 3 + i)[0] == 0
    assert pf.rx_table.full and pf.tx_table.full
    assert pf.if_sa_newkey(pf.ifp, make_sav(0x9999), 5000) == (errno.ENOSPC, None)
    assert pf.if_sa_newkey_dir(pf.ifp, make_sav(0x9998), 5001, DIR_OUT) == (errno.ENOSPC, None)
    assert pf.refusals[-1].reason == "No space for SA in Tx table"


def test_tx_with_vfs_not_vepa_is_eopnotsupp() -> None:
    pf = _pf(vfs_not_vepa=True)
    assert pf.if_sa_newkey(pf.ifp, make_sav(), 3) == (errno.EOPNOTSUPP, None)
    assert pf.rx_table.count == 0
    assert pf.if_sa_newkey_dir(pf.ifp, make_sav(), 3, DIR_IN)[0] == 0


def test_crypto_offload_tx_rx_bytes() -> None:
    """The card encrypts what the stack framed: equal to software ESP; RX
    decrypts in place with CRYPTO_DONE; packet-offload packets are dropped
    (a crypto-only card)."""
    pf = _pf()
    cap = Capture()
    pf.set_transmit(cap)
    sav = make_sav()
    pf.if_sa_newkey(pf.ifp, sav, 3)
    sw = sw_state(sav)
    frame = crypto_offload_frame(sw, PKT, seq=1, iv=bytes(8))
    pf.if_transmit(pf.ifp, tagged(frame, 3, crypto=True))
    wire = cap.pop()
    assert wire == esp_transport_output(sw, PKT, seq=1, iv=bytes(8))
    pf.wire_input(wire)
    m = pf.rx_queue.popleft()
    t = m_tag_find(m, PACKET_TAG_IPSEC_IN_CRYPTO_DONE)
    assert t is not None and t.data == 3
    pf.if_transmit(pf.ifp, tagged(PKT, 3))
    assert pf.stats()["tx_mode_unsupported"] == 1


def test_reset_keeps_pf_entries() -> None:
    pf = _pf()
    pf.if_sa_newkey(pf.ifp, make_sav(), 3)
    assert pf.reset() == 0
    assert pf.rx_table.count == 1 and pf.tx_table.count == 1 and pf.resets == 1


# -- under the offload layer: the default host's pair --------------------------------------

@pytest.fixture
def rig() -> Iterator[OffloadRig]:
    r = OffloadRig(TqMode.INLINE)
    yield r
    r.close()


def test_256_bit_key_handled_on_mce0_rejected_on_ix0(rig: OffloadRig) -> None:
    """The setkey scenario of issue 5: a 256-bit AES-GCM SA is installed on
    mce0 and recorded REJECTED on ix0 (dump: ``hw offl if: mce0``)."""
    mce = Mlx5Nic("mce0").attach(registry=rig.ifnets, key=rig.key)
    ix = IxgbePf("ix0").attach(registry=rig.ifnets, key=rig.key)
    sav = rig.add_sa(0x1000, **gcm_sa(key=GCM256_KEY))
    small = rig.add_sa(0x1001, **gcm_sa(key=GCM128_KEY))
    rig.sync()
    names = [e.ifname for e in rig.off.ipsec_accel_key_setaccelif(sav)]
    assert names == ["mce0"]
    assert rig.off.ipsec_accel_is_accel_sav_ptr(sav, ix.ifp) is not None
    assert sorted(e.ifname for e in rig.off.ipsec_accel_key_setaccelif(small)) == ["ix0", "mce0"]
    assert len(ix.handles()) == 1 and len(mce.handles()) == 2
    rig.flush()
    rig.check(balanced=True)
    assert ix.rx_table.count == ix.tx_table.count == ix.rxip_table.count == 0


def test_full_table_leaks_drv_spi_like_freebsd(rig: OffloadRig) -> None:
    """§17.2: ENOSPC is an "other error": no handle, the drv_spi leaks
    (FreeBSD); the SA runs in software."""
    ix = IxgbePf("ix0", rx_sa=1, tx_sa=1).attach(registry=rig.ifnets, key=rig.key)
    rig.add_sa(0x1000, **gcm_sa())
    s2 = rig.add_sa(0x1001, **gcm_sa())
    rig.sync()
    assert not rig.off.ipsec_accel_is_accel_sav(s2)
    assert rig.off.stats.errors == 1 and len(rig.off.drv_spi_leaked) == 1
    assert ix.refusal_counts["No space for SA in Rx table!"] == 1
    rig.check()
