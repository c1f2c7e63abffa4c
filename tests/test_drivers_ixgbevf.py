"""The ixgbevf-like VF and the PF mailbox (drivers/ixgbevf.py).

Reference: linux_xfrm_offload.md §5 (VF path: IXGBE_VF_IPSEC_ADD/DEL over
the mailbox, trust + vf-ipsec or EACCES, RX only, EPERM/EINVAL/ENOENT on
delete, reset) and P3 of §10; seed 000 (shared SPI space: collisions between
VFs detected and refused, one tenant never decrypts or accounts another's
traffic); freebsd_ipsec_offload.md §17.13 (no direction on FreeBSD's KPI).
"""

from __future__ import annotations

import errno
from typing import Any, Iterator

import pytest

from drivers import IxgbePf, IxgbeVf
from drivers.hw import DIR_IN, DIR_OUT
from drivers.ixgbe import IXGBE_VF_IPSEC_DEL
from drivers.testing import gcm_sa, make_sav, sw_state
from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.mbuf import PACKET_TAG_IPSEC_IN_CRYPTO_DONE, m_tag_find
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import OffloadRig
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.ipsec import IPSEC_DIR

PKT = udp_packet("10.0.0.1", "10.0.0.2", 7, 9, b"vf" * 20)


@pytest.fixture
def pf() -> Iterator[IxgbePf]:
    p = IxgbePf("ix0", vf_ipsec=True).attach(registry=IfnetRegistry())
    yield p
    p.detach()


def _vf(pf: IxgbePf, vf_id: int, trust: bool = True, **kw: Any) -> IxgbeVf:
    return IxgbeVf(f"ixv{vf_id}", pf=pf, vf_id=vf_id, trust=trust,
                   **kw).attach(registry=IfnetRegistry())


def test_untrusted_vf_gets_eacces_through_the_mailbox(pf: IxgbePf) -> None:
    """The PF refuses an untrusted VF (or vf-ipsec off) with EACCES: a hard
    failure, not a software fallback."""
    vf = _vf(pf, 1, trust=False)
    before = pf.mailbox.messages
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_IN) == (errno.EACCES, None)
    assert pf.mailbox.messages == before + 1 and vf.mbx_requests == 1
    pf.set_vf_trust(1, True)
    pf.vf_ipsec = False
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_IN)[0] == errno.EACCES
    pf.vf_ipsec = True
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_IN)[0] == 0


def test_direction_less_install_is_rejected_after_round_trips(pf: IxgbePf) -> None:
    """FreeBSD's KPI says no direction: RX is accepted by the PF, TX is
    EOPNOTSUPP, the RX entry is deleted again: three mailbox messages and an
    EOPNOTSUPP (REJECTED: software)."""
    vf = _vf(pf, 1)
    before = pf.mailbox.messages
    assert vf.if_sa_newkey(vf.ifp, make_sav(), 3) == (errno.EOPNOTSUPP, None)
    assert pf.mailbox.messages == before + 3
    assert pf.rx_table.count == 0 and pf.rxip_table.count == 0
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_OUT)[0] == errno.EOPNOTSUPP


def test_inbound_sa_lives_in_the_pf_table_and_decrypts(pf: IxgbePf) -> None:
    vf = _vf(pf, 1)
    sav = make_sav()
    err, priv = vf.if_sa_newkey_dir(vf.ifp, sav, 3, DIR_IN)
    assert err == 0
    e = priv.entries[0]
    assert e.owner is vf and e.table is pf.rx_table and e.aux["pfsa"] == e.index
    vf.wire_input(esp_transport_output(sw_state(sav), PKT))
    m = vf.rx_queue.popleft()
    t = m_tag_find(m, PACKET_TAG_IPSEC_IN_CRYPTO_DONE)
    assert t is not None and t.data == 3 and e.crypto_packets == 1
    assert vf.if_sa_deinstall(vf.ifp, 3, priv) == 0
    assert pf.rx_table.count == 0 and vf.outstanding() == {}


def test_spi_collision_between_vfs_is_refused(pf: IxgbePf) -> None:
    """Seed 000: two tenants with the same (dst, SPI) -- the second is
    refused with EEXIST; so is a clash with the PF's own SA."""
    vf1, vf2 = _vf(pf, 1), _vf(pf, 2)
    assert vf1.if_sa_newkey_dir(vf1.ifp, make_sav(0x77), 3, DIR_IN)[0] == 0
    assert vf2.if_sa_newkey_dir(vf2.ifp, make_sav(0x77), 4, DIR_IN) == (errno.EEXIST, None)
    assert "already programmed for ixv1" in vf2.refusals[-1].reason
    assert pf.if_sa_newkey_dir(pf.ifp, make_sav(0x77), 5, DIR_IN)[0] == errno.EEXIST
    # Another destination is another key for the hardware...
    assert vf2.if_sa_newkey_dir(vf2.ifp, make_sav(0x77, dst="10.9.9.9"), 6, DIR_IN)[0] == 0


def test_spi_only_collision_mode() -> None:
    """spi_collision="spi": overlapping tenant address spaces -- the SPI
    alone decides."""
    pf = IxgbePf("ix0", vf_ipsec=True, spi_collision="spi").attach(registry=IfnetRegistry())
    try:
        vf1, vf2 = _vf(pf, 1), _vf(pf, 2)
        assert vf1.if_sa_newkey_dir(vf1.ifp, make_sav(0x77), 3, DIR_IN)[0] == 0
        assert vf2.if_sa_newkey_dir(vf2.ifp, make_sav(0x77, dst="10.9.9.9"), 4,
                                    DIR_IN)[0] == errno.EEXIST
    finally:
        pf.detach()


def test_tenant_never_decrypts_or_accounts_anothers_traffic(pf: IxgbePf) -> None:
    """VF2 receiving VF1's ESP (same dst/SPI space): passed up untouched,
    VF1's counters unchanged; VF2 cannot delete VF1's PF entry (ENOENT)."""
    vf1, vf2 = _vf(pf, 1), _vf(pf, 2)
    sav = make_sav(0x77)
    err, priv = vf1.if_sa_newkey_dir(vf1.ifp, sav, 3, DIR_IN)
    assert err == 0
    wire = esp_transport_output(sw_state(sav), PKT)
    vf2.wire_input(wire)
    m = vf2.rx_queue.popleft()
    assert bytes(m.data) == wire and m.tags is None
    assert priv.entries[0].crypto_packets == 0 and priv.counters() == (0, 0)
    assert vf2.stats()["rx_no_sa"] == 1
    pfsa = priv.entries[0].aux["pfsa"]
    assert pf.mailbox.request(vf2, {"op": IXGBE_VF_IPSEC_DEL, "pfsa": pfsa})[0] == errno.ENOENT
    assert pf.mailbox.request(vf2, {"op": IXGBE_VF_IPSEC_DEL, "pfsa": 5000})[0] == errno.EINVAL
    pf.set_vf_trust(2, False)
    assert pf.mailbox.request(vf2, {"op": IXGBE_VF_IPSEC_DEL, "pfsa": pfsa})[0] == errno.EPERM
    assert pf.rx_table.get(pfsa) is priv.entries[0]


def test_pf_reset_wipes_vf_entries_silently(pf: IxgbePf) -> None:
    """After a PF reset the VF still thinks it is installed: its packets go
    up undecrypted (software decrypts), its delete succeeds as a no-op."""
    vf = _vf(pf, 1)
    sav = make_sav()
    _, priv = vf.if_sa_newkey_dir(vf.ifp, sav, 3, DIR_IN)
    own = pf.if_sa_newkey(pf.ifp, make_sav(0x5, dst="10.5.5.5"), 9)[1]
    assert pf.reset() == 1
    assert pf.rx_table.count == 1 and own.entries[0].live
    wire = esp_transport_output(sw_state(sav), PKT)
    vf.wire_input(wire)
    assert bytes(vf.rx_queue.popleft().data) == wire
    assert vf.if_sa_deinstall(vf.ifp, 3, priv) == 0
    assert not vf.check_invariants() and vf.outstanding() == {}
    assert not any(r.op == "deinstall" for r in vf.refusals)


def test_one_vf_exhausts_the_shared_table() -> None:
    pf = IxgbePf("ix0", vf_ipsec=True, rx_sa=4).attach(registry=IfnetRegistry())
    try:
        vf1, vf2 = _vf(pf, 1), _vf(pf, 2)
        for i in range(4):
            assert vf1.if_sa_newkey_dir(vf1.ifp, make_sav(0x10 + i), 3 + i, DIR_IN)[0] == 0
        assert vf2.if_sa_newkey_dir(vf2.ifp, make_sav(0x20), 10, DIR_IN) == (errno.ENOSPC, None)
        assert pf.if_sa_newkey_dir(pf.ifp, make_sav(0x30), 11, DIR_IN)[0] == errno.ENOSPC
        vf1.detach()                      # a VF going away frees what it owned
        assert pf.rx_table.count == 0
        assert vf2.if_sa_newkey_dir(vf2.ifp, make_sav(0x20), 10, DIR_IN)[0] == 0
    finally:
        pf.detach()


def test_mailbox_timeout(pf: IxgbePf) -> None:
    """A lost mailbox message: ETIMEDOUT, nothing recorded."""
    vf = _vf(pf, 1)
    pf.mailbox.timeout = 0.05
    pf.mailbox.drop_next = 1
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_IN) == (errno.ETIMEDOUT, None)
    assert pf.mailbox.timeouts == 1
    pf.mailbox.timeout = 5.0
    assert vf.if_sa_newkey_dir(vf.ifp, make_sav(), 3, DIR_IN)[0] == 0


def test_vf_id_unique(pf: IxgbePf) -> None:
    _vf(pf, 1)
    with pytest.raises(ValueError):
        IxgbeVf("ixv9", pf=pf, vf_id=1)


# -- under the offload layer, one host per tenant --------------------------------------------

@pytest.fixture
def tenants(pf: IxgbePf) -> Iterator[tuple[OffloadRig, OffloadRig]]:
    rigs = (OffloadRig(TqMode.INLINE, extensions=("sa_direction",)),
            OffloadRig(TqMode.INLINE, extensions=("sa_direction",)))
    yield rigs
    for r in rigs:
        r.close()


def test_tenants_through_the_offload_layer(pf: IxgbePf,
                                           tenants: tuple[OffloadRig, OffloadRig]) -> None:
    """Two VMs (two key engines) on VFs of one PF, with the "sa_direction"
    extension: each tenant's inbound SA is offloaded; the second tenant's SA
    with the same (dst, SPI) is refused (EEXIST: stays software); flushes
    leave nothing behind."""
    a, b = tenants
    vfa = IxgbeVf("ixv1", pf=pf, vf_id=1, trust=True).attach(registry=a.ifnets, key=a.key)
    vfb = IxgbeVf("ixv2", pf=pf, vf_id=2, trust=True).attach(registry=b.ifnets, key=b.key)
    for r in (a, b):
        r.spdadd(dir=IPSEC_DIR.INBOUND, src="10.0.0.0", dst="10.0.0.0")
    sa_a = a.add_sa(0x1000, **gcm_sa())
    a.sync()
    assert a.off.ipsec_accel_sav_handle(sa_a, vfa.ifp) is not None
    sa_b = b.add_sa(0x1000, **gcm_sa())
    b.sync()
    assert not b.off.ipsec_accel_is_accel_sav(sa_b)
    assert vfb.refusals[-1].kind == "collision"
    wire = esp_transport_output(sw_state(sa_b), PKT)
    vfb.wire_input(wire)
    assert bytes(vfb.rx_queue.popleft().data) == wire        # tenant B's software decrypts
    for r in (a, b):
        r.flush()
        r.check(balanced=True)
    assert pf.rx_table.count == 0
    assert vfa.outstanding() == {} and not vfa.check_invariants()


def test_without_direction_extension_vf_sas_are_rejected(pf: IxgbePf) -> None:
    rig = OffloadRig(TqMode.INLINE)
    try:
        vf = IxgbeVf("ixv1", pf=pf, vf_id=1, trust=True).attach(registry=rig.ifnets,
                                                                key=rig.key)
        sav = rig.add_sa(0x1000, **gcm_sa())
        rig.sync()
        h = rig.off.ipsec_accel_is_accel_sav_ptr(sav, vf.ifp)
        assert h is not None and rig.off.ipsec_accel_sav_handle(sav, vf.ifp) is None
        rig.check()
    finally:
        rig.close()
