"""Tag strategies (issue 6 item 6): how the stack hands a NIC the drv_spi of
an offloaded packet -- FreeBSD's per-packet PACKET_TAG_IPSEC_ACCEL_OUT m_tag
(ipsec_offload.c ipsec_accel_output_tag), a send tag per (ifnet, SA) handle,
the reused PACKET_TAG_IPSEC_OUT_DONE tag, a packet-header field -- read by
drivers through one accessor, with allocations counted in zones."""

from __future__ import annotations

import pytest

from ipsec_accel.accel_tag import (
    TAG_MTAG, TAG_OUTDONE, TAG_PHFIELD, TAG_SNDTAG, TAG_STRATEGIES, ipsec_accel_out_drv_spi,
    make_tag_strategy,
)
from ipsec_accel.ifnet import Ifnet
from ipsec_accel.ipsec_offload_defs import ifp_handle_sav
from ipsec_accel.lab import Lab
from ipsec_accel.mbuf import (
    CSUM_SND_TAG, PACKET_TAG_IPSEC_ACCEL_OUT, PACKET_TAG_IPSEC_OUT_DONE, Mbuf, m_freem,
)

import drivers.engine as engine

PKT = bytes(64)


def _handle(ifp: Ifnet, drv_spi: int = 7) -> ifp_handle_sav:
    return ifp_handle_sav(sav=None, ifp=ifp, drv_spi=drv_spi, flags=1)


@pytest.mark.parametrize("name", TAG_STRATEGIES)
def test_every_strategy_read_by_the_one_accessor(name: str) -> None:
    """Item 6: whatever the strategy, drivers find the drv_spi (and BYPASS,
    drv_spi 2, §8 step 2) through ipsec_accel_out_drv_spi, which is what
    drivers/engine.py uses by default."""
    ifp = Ifnet("tst0")
    st = make_tag_strategy(name, "h")
    h = _handle(ifp, 7)
    for drv_spi, handle in ((7, h), (2, None)):
        m = Mbuf(PKT)
        assert st.attach(m, ifp, drv_spi, handle)
        assert ipsec_accel_out_drv_spi(m) == drv_spi
        assert st.read(m) == drv_spi
        m_freem(m)
    assert engine.default_out_drv_spi is ipsec_accel_out_drv_spi
    assert ipsec_accel_out_drv_spi(Mbuf(PKT)) is None
    st.flush()


def test_mtag_allocates_one_tag_per_packet_freed_by_the_driver() -> None:
    """FreeBSD's strategy: m_tag_get(PACKET_TAG_IPSEC_ACCEL_OUT,
    sizeof(struct ipsec_accel_out_tag)) per packet -- 24 + 32 bytes from the
    zone -- freed with the mbuf."""
    ifp = Ifnet("tst0")
    st = make_tag_strategy(TAG_MTAG, "h")
    h = _handle(ifp)
    ms = [Mbuf(PKT) for _ in range(10)]
    for m in ms:
        assert st.attach(m, ifp, 7, h)
    z = st.zone
    assert z is not None
    assert (z.allocs, z.cur, z.bytes) == (10, 10, 10 * 56)
    assert ms[0].tags is not None and ms[0].tags[0].m_tag_id == PACKET_TAG_IPSEC_ACCEL_OUT
    for m in ms:
        m_freem(m)
    assert (z.cur, z.frees) == (0, 10)
    assert st.per_packet_allocations == 1


def test_outdone_reuses_the_out_done_tag_with_a_drv_spi() -> None:
    """The OUT_DONE strategy: one tag per packet, PACKET_TAG_IPSEC_OUT_DONE
    carrying xform_history + drv_spi (40 bytes), the history built once per
    handle."""
    ifp = Ifnet("tst0")
    st = make_tag_strategy(TAG_OUTDONE, "h")
    h = _handle(ifp, 9)
    a, b = Mbuf(PKT), Mbuf(PKT)
    assert st.attach(a, ifp, 9, h) and st.attach(b, ifp, 9, h)
    ta, tb = a.tags[0], b.tags[0]  # type: ignore[index]
    assert ta.m_tag_id == PACKET_TAG_IPSEC_OUT_DONE and ta.m_tag_len == 40
    assert ta.data is tb.data and ta.data.drv_spi == 9, "one history object per handle"
    assert st.zone is not None and st.zone.allocs == 2
    m_freem(a)
    m_freem(b)
    assert st.zone.cur == 0


def test_sndtag_allocates_once_per_handle_and_holds_an_ifnet_reference() -> None:
    """The send-tag strategy: one m_snd_tag per (ifnet, SA) handle
    (m_snd_tag_init takes an if_ref), a reference per packet
    (CSUM_SND_TAG); packets never allocate; the tag goes when the handle is
    gone (sweep) and the last packet released it."""
    ifp = Ifnet("tst0")
    refs0 = ifp.if_refcount
    st = make_tag_strategy(TAG_SNDTAG, "h")
    live = {"yes": True}
    st.live = lambda h: live["yes"]
    h = _handle(ifp, 11)
    ms = [Mbuf(PKT) for _ in range(5)]
    for m in ms:
        assert st.attach(m, ifp, 11, h)
        assert m.csum_flags & CSUM_SND_TAG
    z = st.snd_zone  # type: ignore[attr-defined]
    assert z.allocs == 1 and z.cur == 1
    tag = ms[0].snd_tag
    assert tag is not None and tag.refcount == 6 and ifp.if_refcount == refs0 + 1
    live["yes"] = False
    assert st.sweep() == 1 and st.handles == 0
    assert z.cur == 1, "in-flight packets keep the tag alive"
    for m in ms:
        m_freem(m)
    assert z.cur == 0 and ifp.if_refcount == refs0


def test_phfield_costs_no_allocation() -> None:
    """The packet-header field: nothing allocated, nothing to free."""
    ifp = Ifnet("tst0")
    st = make_tag_strategy(TAG_PHFIELD, "h")
    m = Mbuf(PKT)
    assert st.attach(m, ifp, 5, _handle(ifp, 5))
    assert m.ph_spare == 5 and m.tags is None and st.zones() == [st.done_zone, st.crypto_zone]
    assert st.per_packet_allocations == 0


def test_tag_strategy_unknown_name() -> None:
    """Only the four strategies of issue 6 item 6 exist."""
    with pytest.raises(ValueError, match="unknown tag strategy"):
        make_tag_strategy("nope")


@pytest.mark.parametrize("name", TAG_STRATEGIES)
def test_strategy_selectable_at_run_time_end_to_end(name: str) -> None:
    """Item 6: switch a running host's strategy; offloaded traffic (packet
    offload, ipsec_accel_output) still reaches the NIC's engine, which reads
    the drv_spi through the one accessor and encrypts; the allocation counts
    match the strategy (1 per packet for mtag/outdone, 0 for sndtag/phfield
    after the handle's one send tag)."""
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        lab.push(3, 100)                          # warm up with FreeBSD's mtag
        lab.set_tag_strategy(name)
        st = lab.a.ip.ipsec.tags
        assert st.name == name
        r = lab.push(50, 100)
        assert r.delivered == 50 and r.paths["out_packet"] == 50 and not r.drops
        nic = lab.nic("a")
        assert nic.stats()["tx_encrypted"] == 53
        per_packet = sum(z.allocs for z in st.zones() if z is not st.done_zone)
        if name in (TAG_MTAG, TAG_OUTDONE):
            assert per_packet == 50
        elif name == TAG_SNDTAG:
            assert per_packet == 1
        else:
            assert per_packet == 0
        assert all(z.cur == 0 for z in st.zones() if z is not st.done_zone
                   and name != TAG_SNDTAG), "the driver freed every tag"


def test_software_out_done_tag_means_send_as_is() -> None:
    """ipsec_process_done's own OUT_DONE tag (software ESP) carries no
    drv_spi: the accessor says None, the NIC sends the ESP packet as is."""
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        lab.set_mode("software")
        lab.set_tag_strategy(TAG_OUTDONE)
        seen: list[object] = []

        def xmit(ifp: object, m: Mbuf) -> int:
            seen.append(ipsec_accel_out_drv_spi(m))
            return lab.nic("a").if_transmit(ifp, m)  # type: ignore[no-any-return]
        lab.a.ip.xmit_override = xmit
        r = lab.push(4, 100)
        assert seen == [None] * 4 and r.delivered == 4 and r.paths["out_sw"] == 4
        assert lab.nic("a").stats()["tx_clear"] == 4


def test_zone_failure_falls_back_to_software() -> None:
    """ipsec_accel_output_tag is M_NOWAIT: when the tag cannot be had the
    packet goes through software IPsec instead (§8 step 5)."""
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        z = lab.a.ip.ipsec.tags.zone
        assert z is not None
        z.fail_next(2)
        r = lab.push(5, 100)
        assert r.delivered == 5
        assert r.paths["out_sw"] == 2 and r.paths["out_packet"] == 3
        assert lab.stats("a")["accel.out_tag_nomem"] == 2 and z.fails == 2


def test_ifnet_departure_releases_send_tags() -> None:
    """A detached interface's send tags go (its reference with them)."""
    with Lab.build("mlx5", tag_strategy=TAG_SNDTAG) as lab:
        lab.install_transport()
        lab.push(3, 100)
        st = lab.a.ip.ipsec.tags
        assert st.handles == 1
        lab.nic("a").detach()
        assert st.handles == 0
