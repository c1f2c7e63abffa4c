"""The 23 edge cases of freebsd_ipsec_offload.md §17, one named test each.

Each docstring names the FreeBSD function(s) the case lives in.  Cases 12
and 14-18 are per-packet behaviour of ipsec_accel_output / ipsec_accel_input
(the datapath issue); here they test the primitives the offload layer gives
that datapath (handle lookup, size checks, tags, drv_spi validity,
accounting)."""

from __future__ import annotations

import errno
import threading

from ipsec_accel.if_vlan import VlanParams
from ipsec_accel.ipsec_offload import (
    IFP_HS_HANDLED, IFP_HS_REJECTED, IPSEC_ACCEL_DRV_SPI_BYPASS, IPSEC_ACCEL_DRV_SPI_MAX,
    IPSEC_ACCEL_DRV_SPI_MIN, esp_hdrsiz_sav,
)
from ipsec_accel.mbuf import CSUM_TSO, PACKET_TAG_IPSEC_ACCEL_IN, Mbuf, m_tag_find, m_tag_get, \
    m_tag_prepend
from ipsec_accel.packet import IPV4_HDRLEN
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    Hang, OffloadRig)
from pfkey.extensions import IpsecRequest, SadbAddress
from pfkey.hooks import IF_SA_CNT_UPD, IF_SA_CNT_WHICH
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE
from pfkey.key_testing import E, lifetimes, policy, sa_in
from pfkey.keydb import DEAD, DYING, MATURE, SADB_KEY_ACCEL_DEINST, SADB_KEY_ACCEL_INST, \
    seclifetime
from pfkey.pfkeyv2 import AF_INET

EOPNOTSUPP = errno.EOPNOTSUPP


def test_edge01_rejected_handles(offload_rig: OffloadRig) -> None:
    """§17.1 ipsec_accel_sa_newkey_cb / ipsec_accel_handle_sav /
    ipsec_accel_forget_handle_sav: REJECTED handles (driver EOPNOTSUPP, or an
    accel_ifname mismatch without calling the driver) consume a drv_spi, make
    is_accel_sav true (the dump shows zeroed sw/hw offl lines), never match
    on output, are never deinstalled, and are freed on forget."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_sa_newkey", EOPNOTSUPP)
    sav = r.add_sa(0x1000, ifname="tnic9")          # matches neither interface
    assert r.handles(sav) == {"tnic0": "REJECTED", "tnic1": "REJECTED"}
    assert r.drv(a).count("if_sa_newkey") == 0 and r.drv(b).count("if_sa_newkey") == 0
    sav2 = r.add_sa(0x2000)
    assert r.handles(sav2) == {"tnic0": "REJECTED", "tnic1": "HANDLED"}
    assert r.off.stats.drv_spi_in_use == 4 and r.off.stats.rejects == 3
    assert r.off.ipsec_accel_is_accel_sav(sav)
    rep = r.get_sa(0x1000)
    sw, hw, ifx = rep.get(E.X_LFT_CUR_SW_OFFL), rep.get(E.X_LFT_CUR_HW_OFFL), \
        rep.get(E.X_IF_HW_OFFL)
    assert (sw.allocations, sw.bytes, hw.allocations, hw.bytes) == (0, 0, 0, 0)
    assert ifx.ifname == "tnic9"
    assert r.off.ipsec_accel_sav_handle(sav, a) is None
    assert r.off.ipsec_accel_sav_handle(sav2, a) is None
    assert r.off.ipsec_accel_sav_handle(sav2, b) is not None
    r.delete_sa(0x1000)
    r.delete_sa(0x2000)
    r.sync()
    assert r.drv(a).count("if_sa_deinstall") == 0
    assert r.drv(b).count("if_sa_deinstall") == 1
    assert r.off.stats.drv_spi_in_use == 0
    r.check(balanced=True)


def test_edge02_other_error_leaks_drv_spi(offload_rig: OffloadRig) -> None:
    """§17.2 ipsec_accel_sa_newkey_cb: a driver error other than EOPNOTSUPP
    records nothing and leaks the drv_spi (XXXKIB); 002b12b5 continues the
    walk (6ba593bb stopped it: see the quirk test)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_sa_newkey", errno.ENOSPC)
    sav = r.add_sa(0x1000)
    assert r.handles(sav) == {"tnic1": "HANDLED"}
    assert r.off.stats.errors == 1 and r.off.stats.drv_spi_leaked == 1
    leaked = r.off.drv_spi_leaked
    assert len(leaked) == 1 and r.off.ipsec_accel_drvspi_lookup(next(iter(leaked))) is None
    r.flush()
    r.sync()
    assert r.off.stats.drv_spi_in_use == 1          # only the leaked one
    r.check(balanced=True)


def test_edge03_sp_rejection_kept_and_name_mismatch(offload_rig: OffloadRig) -> None:
    """§17.3 ipsec_accel_spdadd_cb / ipsec_accel_spdadd_match: a refused SP
    keeps its handle as HANDLED|REJECTED (never retried, never passed to
    if_spddel); an interface-name mismatch creates no SP handle at all."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_spdadd", errno.EINVAL)
    sp = r.spdadd()
    flags = {h.ifp.if_xname: h.flags for h in sp.accel_ifps}
    assert flags == {"tnic0": IFP_HS_HANDLED | IFP_HS_REJECTED, "tnic1": IFP_HS_HANDLED}
    r.off.ipsec_accel_spdadd(sp)          # one-shot: no retry
    r.off._sp_install_walk(r.off._vnets[0], sp, None)   # even a walk finds a handle there
    assert r.drv(a).count("if_spdadd") == 1
    sp2 = r.spdadd(src="10.9.0.0", ifname="tnic1")
    assert [h.ifp.if_xname for h in sp2.accel_ifps] == ["tnic1"]
    r.spddelete()
    assert r.drv(a).count("if_spddel") == 0 and r.drv(b).count("if_spddel") == 1
    r.check()


def test_edge04_newkey_idempotent_key_add_calls_twice(offload_rig_manual: OffloadRig) -> None:
    """§17.4 key_add / key_newsav / ipsec_accel_sa_newkey_impl: SADB_ADD
    offers the SA twice; both tasks may be queued (INST is set only when a
    task runs) and the second one finds INST and does nothing."""
    r = offload_rig_manual
    nic = r.nic()
    r.add_sa(0x1000)
    assert r.tq.depth == 2
    r.sync()
    assert r.drv(nic).count("if_sa_newkey") == 1
    assert r.off.stats.newkey_tasks == 2 and r.off.stats.newkey_skipped == 1
    sav = r.key.savhash[0x1000]
    assert sav.accel_flags == SADB_KEY_ACCEL_INST
    r.off.ipsec_accel_sa_newkey(sav)      # INST set: not even queued
    assert r.tq.depth == 0
    r.check()


def test_edge05_install_task_skips_non_mature(offload_rig_manual: OffloadRig) -> None:
    """§17.5 ipsec_accel_sa_newkey_act: a task finding the SA not MATURE (here
    DYING after soft expiry) does nothing and leaves INST clear, so a later
    SADB_UPDATE (key_update -> newkey) can install it."""
    r = offload_rig_manual
    nic = r.nic()
    r.add_sa(0x1000, extra=lifetimes((0, 0, 100, 0), (0, 0, 5, 0)))
    sav = r.key.savhash[0x1000]
    r.tick(6)
    assert sav.state == DYING
    r.sync()
    assert sav.accel_flags == 0 and not sav.accel_ifps
    assert r.drv(nic).count("if_sa_newkey") == 0
    r.update_sa(0x1000, auth_key=None, enc_key=None, extra=lifetimes((0, 0, 100, 0)))
    assert sav.state == MATURE
    r.sync()
    assert r.handles(sav) == {"tnic0": "HANDLED"}
    r.getspi(0x2000)                        # LARVAL: never offered
    assert r.tq.depth == 0
    r.check()


def test_edge06_delete_before_install_task(offload_rig_manual: OffloadRig) -> None:
    """§17.6 ipsec_accel_forget_sav_impl / ipsec_accel_sa_newkey_act: a
    delete before the install task ran sets DEINST and returns (no forget
    carrier yet); the install task then skips entirely."""
    r = offload_rig_manual
    nic = r.nic()
    sav = r.add_sa(0x1000)
    r.delete_sa(0x1000)
    assert sav.state == DEAD and sav.accel_flags == SADB_KEY_ACCEL_DEINST
    assert r.tq.depth == 2                    # the two install tasks, no forget task
    r.sync()
    assert r.drv(nic).calls == []
    assert r.off.stats.forget_tasks == 0 and r.off.stats.newkey_skipped == 2
    r.check(balanced=True)


def test_edge07_delete_while_install_iterates(offload_rig_manual: OffloadRig) -> None:
    """§17.7 ipsec_accel_sa_newkey_act: a delete while the task walks the
    interfaces (here: from inside the first driver call) sets DEINST; the
    walk goes on, and at its end the task deinstalls everything inline."""
    r = offload_rig_manual
    a, b = r.nic("tnic0"), r.nic("tnic1")

    def delete_now(ifp, sav, drv_spi):  # type: ignore[no-untyped-def]
        r.delete_sa(0x1000)
        return 0

    r.drv(a).script("if_sa_newkey", delete_now)
    r.add_sa(0x1000)
    r.sync()
    assert r.drv(b).count("if_sa_newkey", 0) == 1   # the walk continued
    assert r.off.stats.inline_forgets == 1 and r.off.stats.forget_tasks == 0
    assert r.drv(a).count("if_sa_deinstall") == 1 and r.drv(b).count("if_sa_deinstall") == 1
    r.check(balanced=True)


def test_edge08_one_shot_forget_spddel_spdadd(offload_rig_manual: OffloadRig) -> None:
    """§17.8 ipsec_accel_forget_sav_impl / ipsec_accel_spddel_impl /
    ipsec_accel_spdadd_impl: the carrier / adddel_scheduled cmpsets make
    repeated calls no-ops (key_spddelete itself calls spddel twice)."""
    r = offload_rig_manual
    nic = r.nic()
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    r.sync()
    r.delete_sa(0x1000)
    r.off.ipsec_accel_forget_sav(sav)
    r.off.ipsec_accel_forget_sav(sav)
    r.off.ipsec_accel_spdadd(sp)
    assert r.tq.depth == 1                    # one forget task, no second spdadd
    r.spddelete()                             # spddel twice + sync
    r.off.ipsec_accel_spddel(sp)
    r.sync()
    d = r.drv(nic)
    assert (d.count("if_sa_deinstall"), d.count("if_spdadd"), d.count("if_spddel")) == (1, 1, 1)
    r.check(balanced=True)


def test_edge09_installed_at_most_once_no_replay(offload_rig: OffloadRig) -> None:
    """§17.9 ipsec_accel_on_ifdown_impl leaves INST / adddel_scheduled set:
    nothing is offered again after a capability re-enable or an ifdown, and
    an interface attaching later gets neither SAs nor SPs."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    assert r.ifnets.if_setipsec(nic, False) == 0    # mlx5-like: on_ifdown
    assert not sav.accel_ifps and not sp.accel_ifps
    assert r.ifnets.if_setipsec(nic, True) == 0
    late = r.nic("tnic1")
    r.off.ipsec_accel_on_ifdown(late)
    r.sync()
    assert not sav.accel_ifps and not sp.accel_ifps
    assert r.drv(nic).count("if_sa_newkey") == 1 and r.drv(late).calls == []
    assert sav.accel_flags & SADB_KEY_ACCEL_INST and sp.accel_add_tq.adddel_scheduled == 1
    r.check(balanced=True)


def test_edge10_ifdown_one_ifp_rename_keeps(offload_rig: OffloadRig) -> None:
    """§17.10 ipsec_accel_on_ifdown_impl / ipsec_accel_ifdetach_event /
    ipsec_accel_key_setaccelif_impl: ifdown removes only that interface's
    handles; a rename (IFF_RENAMING) keeps them and the dump then shows the
    new name -- unless accel_ifname was given, which is shown verbatim."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sav = r.add_sa(0x1000)
    pinned = r.add_sa(0x2000, ifname="tnic1")
    r.off.ipsec_accel_on_ifdown(a)
    assert r.handles(sav) == {"tnic1": "HANDLED"}
    assert r.ifnets.if_rename(b, "renamed1") == 0
    assert r.handles(sav) == {"renamed1": "HANDLED"}
    assert r.get_sa(0x1000).get(E.X_IF_HW_OFFL).ifname == "renamed1"
    assert r.get_sa(0x2000).get(E.X_IF_HW_OFFL).ifname == "tnic1"
    assert r.handles(pinned) == {"renamed1": "HANDLED"}     # tnic0 REJECTED one went with ifdown
    r.check()


def test_edge11_capability_cleared_handles_stay_output_sw(offload_rig: OffloadRig) -> None:
    """§17.11 ipsec_accel_is_accel_sav_ptr: with the IPSEC bit cleared by a
    driver that does not call on_ifdown, handles stay but output finds none
    (software IPsec) until the bit is set again."""
    r = offload_rig
    nic = r.nic(mlx5_ioctl=False)
    sav = r.add_sa(0x1000)
    assert r.ifnets.if_setipsec(nic, False) == 0
    assert r.handles(sav) == {"tnic0": "HANDLED"}
    assert r.off.ipsec_accel_sav_handle(sav, nic) is None
    assert r.off.ipsec_accel_is_accel_sav_ptr(sav, nic) is None
    assert r.ifnets.if_setipsec(nic, True) == 0
    assert r.off.ipsec_accel_sav_handle(sav, nic) is sav.accel_ifps[0]
    r.check()


def test_edge12_dead_sa(offload_rig_manual: OffloadRig) -> None:
    """§17.12 key.c sets DEAD before ipsec_accel_forget_sav; a driver (mlx5)
    refuses a DEAD SA at install; if_hwassist may be called with an SA the
    caller no longer references -- here: a DEAD one, which must not fail.
    (ipsec_process_done's ESRCH drop is the datapath's.)"""
    r = offload_rig_manual
    nic = r.nic()
    d = r.drv(nic)
    d.accept = lambda ifp, sav: EOPNOTSUPP if sav.state == DEAD else 0
    seen: list[int] = []
    d.script("if_sa_newkey", lambda ifp, sav, s: (r.delete_sa(sav.spi), 0)[1])
    d.script("if_sa_deinstall", lambda ifp, s, priv: (seen.append(priv.sav.state), 0)[1])
    sav = r.add_sa(0x1000)
    r.sync()
    assert sav.state == DEAD and r.drv(nic).count("if_sa_newkey", EOPNOTSUPP) == 1
    sav2 = r.add_sa(0x2000)
    r.sync()
    i = r.off.ipsec_accel_sav_handle(sav2, nic)
    assert i is not None
    d.hwassist = CSUM_TSO
    r.delete_sa(0x2000)
    assert sav2.state == DEAD
    assert r.off.ipsec_accel_hwassist(i, sav2) == CSUM_TSO
    r.sync()
    assert seen == [DEAD]
    r.check(balanced=True)


def test_edge13_direction_unknown_counters_sum_both(offload_rig: OffloadRig) -> None:
    """§17.13 ipsec_accel_sa_newkey_cb passes no direction, so a driver
    installs both (mlx5) and reports the SUM of both directions' counters
    to ipsec_accel_drv_sa_lifetime_update."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000)
    ev = r.drv(nic).calls[0]
    assert ev.method == "if_sa_newkey" and len(ev) == 5       # (ifp, sav, drv_spi) only
    hw = r.drv(nic).find(0x1000)
    r.drv(nic).traffic(hw, 1000, 10)     # "inbound" flow counter
    r.drv(nic).traffic(hw, 500, 5)       # "outbound" flow counter
    r.drv(nic).poll()
    assert (sav.lft_c_bytes, sav.lft_c_allocations) == (1500, 15)
    assert (sav.accel_hw_octets, sav.accel_hw_allocs) == (1500, 15)
    r.check()


def test_edge14_forwarding_never_vlan_uses_own_handle(offload_rig: OffloadRig) -> None:
    """§17.14 ipsec_accel_output: a forwarded packet (ifp NULL) is never
    offloaded; a vlan is an interface of its own (its own handle and
    drv_spi, the driver sees the vlan ifp), and output on the vlan finds the
    vlan's handle, not the parent's."""
    r = offload_rig
    parent = r.nic("tnic0")
    assert r.ifnets.if_clone_create("vlan7", VlanParams(7, "tnic0"))[0] == 0
    vlan = r.ifnets["vlan7"]
    sav = r.add_sa(0x1000)
    assert r.handles(sav) == {"tnic0": "HANDLED", "vlan7": "HANDLED"}
    hp = r.off.ipsec_accel_sav_handle(sav, parent)
    hv = r.off.ipsec_accel_sav_handle(sav, vlan)
    assert hp is not None and hv is not None and hp is not hv and hp.drv_spi != hv.drv_spi
    assert {c.ifname for c in r.drv(parent).calls} == {"tnic0", "vlan7"}
    assert r.off.ipsec_accel_sav_handle(sav, None) is None
    r.check()


def test_edge15_mtu_checks_and_tso(offload_rig: OffloadRig) -> None:
    """§17.15 ipsec_accel_output / ipsec_accel_output_pad: a non-TSO packet
    is offloaded only if len + hdr_ext_size <= mtu and the exact ESP size
    fits; TSO packets skip both checks."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000)                   # AES-CBC-128 + HMAC-SHA1
    i = r.off.ipsec_accel_sav_handle(sav, nic)
    assert i is not None and i.hdr_ext_size == esp_hdrsiz_sav(sav) == 8 + 16 + 9 + 24

    def pkt(n: int, tso: bool = False) -> Mbuf:
        return Mbuf(bytes([0x45]) + bytes(n - 1), csum_flags=CSUM_TSO if tso else 0)

    # 1400 + 57 <= 1500 and the exact size 20+24+1380+pad 12+ICV 12 = 1448 fits
    assert r.off.ipsec_accel_output_fits(i, pkt(1400), sav, AF_INET, 1500)
    assert not r.off.ipsec_accel_output_fits(i, pkt(1444), sav, AF_INET, 1500)   # pre-check
    assert r.off.ipsec_accel_output_fits(i, pkt(9000, tso=True), sav, AF_INET, 1500)
    # exact size alone: 1458 bytes -> 20 + 24 + 1438 + pad 2 + 12 = 1496;
    # 1459 bytes -> 20 + 24 + 1439 + pad 17 + 12 = 1512
    assert r.off.ipsec_accel_output_pad(pkt(1458), sav, IPV4_HDRLEN, 1500)
    assert not r.off.ipsec_accel_output_pad(pkt(1459), sav, IPV4_HDRLEN, 1500)
    r.check()


def test_edge16_bypass_tag_without_sa(offload_rig: OffloadRig) -> None:
    """§17.16 ipsec_accel_output / ipsec_accel_output_tag: with no SA (level
    'use') the packet gets an OUT tag with drv_spi 2 (BYPASS), whatever the
    interface; 2 is not a valid input drv_spi."""
    m = Mbuf(b"\x45" + bytes(59))
    assert offload_rig.off.ipsec_accel_output_tag(m, IPSEC_ACCEL_DRV_SPI_BYPASS)
    t = m_tag_find(m, 32)
    assert t is not None and t.data == 2
    assert not offload_rig.off.ipsec_accel_drvspi_valid(IPSEC_ACCEL_DRV_SPI_BYPASS)


def test_edge17_bundle_sas_offloaded_independently(offload_rig: OffloadRig) -> None:
    """§17.17 ipsec_accel_output: each SA of a bundle has its own handles, so
    the datapath can stop at the first offloaded one (the remaining
    transforms are then skipped -- the datapath issue's behaviour)."""
    r = offload_rig
    nic = r.nic()
    reqs = (IpsecRequest(51, IPSEC_MODE.TRANSPORT, IPSEC_LEVEL.REQUIRE),
            IpsecRequest(50, IPSEC_MODE.TRANSPORT, IPSEC_LEVEL.REQUIRE))
    sp = r.spdadd(pol=policy(IPSEC_DIR.OUTBOUND, requests=reqs))
    ah = r.add_sa(0x1000, satype=2, enc=0, enc_key=None)
    esp = r.add_sa(0x2000)
    assert len(sp.accel_ifps) == 1
    assert r.off.ipsec_accel_sav_handle(ah, nic) is not None
    assert r.off.ipsec_accel_sav_handle(esp, nic) is not None
    assert r.off.ipsec_accel_sav_handle(ah, nic).hdr_ext_size == 0    # not ESP: see esp_hdrsiz_sav
    r.check()


def test_edge18_input_tag_rules(offload_rig: OffloadRig) -> None:
    """§17.18 ipsec_accel_input / ipsec_accel_input_tag_lookup /
    ipsec_accel_drvspi_to_sa: no tag -> software; drv_spi 0-2 -> drop;
    valid but unknown -> accepted without accounting; known -> SW-offl
    accounting on its SA."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000)
    off = r.off
    assert off.ipsec_accel_input_tag_lookup(Mbuf(b"x")) is None
    for bad in (0, 1, 2, IPSEC_ACCEL_DRV_SPI_MAX + 1):
        assert not off.ipsec_accel_drvspi_valid(bad)
    unknown = IPSEC_ACCEL_DRV_SPI_MAX
    assert off.ipsec_accel_drvspi_valid(unknown) and off.ipsec_accel_drvspi_to_sa(unknown) is None
    i = off.ipsec_accel_sav_handle(sav, nic)
    m = Mbuf(bytes(100), rcvif=nic)
    t = m_tag_get(PACKET_TAG_IPSEC_ACCEL_IN, 8)
    t.data = i.drv_spi
    m_tag_prepend(m, t)
    tag = off.ipsec_accel_input_tag_lookup(m)
    assert tag is not None and off.ipsec_accel_drvspi_to_sa(tag.data) is sav
    off.ipsec_accel_sa_recordxfer(sav, m)
    assert sav.accel_lft_sw == [1, 100] and sav.lft_c_bytes == 0
    assert off.ipsec_accel_fill_xh(nic, i.drv_spi).spi == sav.spi
    assert off.ipsec_accel_fill_xh(nic, IPSEC_ACCEL_DRV_SPI_MIN - 1) is None


def test_edge19_unsigned_deltas_firstused_without_handle(offload_rig: OffloadRig) -> None:
    """§17.19 ipsec_accel_drv_sa_lifetime_update_impl: deltas are u64, so a
    driver counter reset adds a huge delta (and byte lifetimes expire);
    an update for an unknown handle still sets firstused when allocs != 0."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000, extra=lifetimes((0, 1 << 40, 0, 0), (0, 1 << 39, 0, 0)))
    i = sav.accel_ifps[0]
    r.clock.advance(7)
    off = r.off
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi + 1000, 0, 0)
    assert sav.firstused == 0
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi + 1000, 10, 1)
    assert sav.firstused == r.clock.now() and sav.lft_c_bytes == 0
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi, 5000, 5)
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi, 100, 1)     # counter reset
    assert sav.lft_c_bytes == (5000 + (100 - 5000)) % (1 << 64) == 100
    assert sav.accel_hw_octets == 100
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi, 0, 0)
    assert sav.lft_c_bytes == 0 and sav.accel_hw_octets == 0      # wrapped back
    off.ipsec_accel_drv_sa_lifetime_update(sav, nic, i.drv_spi, (1 << 40) + 1, 9)
    r.tick()
    assert sav.state == DEAD                        # hard byte lifetime
    r.check(balanced=True)


def test_edge20_sw_usetime_zero_allocations_u32(offload_rig: OffloadRig) -> None:
    """§17.20 ipsec_accel_sa_lifetime_op_impl(TOTAL_SW_VAL) /
    ipsec_accel_sa_lifetime_update: usetime of a fresh result is always 0
    (u_int min with the zeroed lft_c); allocations are truncated to u32."""
    r = offload_rig
    r.nic()
    sav = r.add_sa(0x1000)
    sav.accel_lft_sw[:] = [(1 << 32) + 5, 1 << 40]
    sav.accel_firstused = 12345
    lft = seclifetime(usetime=999)
    assert r.off.ipsec_accel_sa_lifetime_op(sav, lft, None, IF_SA_CNT_WHICH.TOTAL_SW_VAL) == 0
    assert (lft.allocations, lft.bytes, lft.usetime) == (5, 1 << 40, 0)
    upd = seclifetime(allocations=1, bytes=1, usetime=20000)
    r.off.ipsec_accel_sa_lifetime_op(sav, upd, None, IF_SA_CNT_WHICH.TOTAL_SW_VAL | IF_SA_CNT_UPD)
    assert (upd.allocations, upd.bytes, upd.usetime) == (6, (1 << 40) + 1, 12345)
    sw = r.get_sa(0x1000).get(E.X_LFT_CUR_SW_OFFL)
    assert (sw.allocations, sw.usetime) == (5, 0)


def test_edge21_updateaddresses_loses_offload(offload_rig: OffloadRig) -> None:
    """§17.21 key_updateaddresses: the old SA is forgotten (deinstalled) and
    its clone is never offered to newkey -- offload lost after MOBIKE."""
    r = offload_rig
    nic = r.nic()
    old = r.add_sa(0x1000)
    nd = SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.7"))
    r.update_sa(0x1000, auth_key=None, enc_key=None, extra=(nd,))
    new = r.key.savhash[0x1000]
    assert new is not old and old.state == DEAD and not old.accel_ifps
    assert not new.accel_ifps and new.accel_flags == 0
    assert r.drv(nic).count("if_sa_newkey") == 1 and r.drv(nic).count("if_sa_deinstall") == 1
    r.check(balanced=True)


def test_edge22_drv_spi_exhaustion_skips_interfaces(offload_rig: OffloadRig) -> None:
    """§17.22 ipsec_accel_sa_newkey_cb: with the 65533 drv_spi taken, an
    interface is silently skipped (no handle, no driver call)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    unr = r.off.drv_spi_unr
    taken = [unr.alloc_unr() for _ in range(unr.capacity - 1)]
    assert unr.capacity == IPSEC_ACCEL_DRV_SPI_MAX - 2 and unr.in_use == unr.capacity - 1
    sav = r.add_sa(0x1000)
    assert r.handles(sav) == {"tnic0": "HANDLED"}
    assert r.drv(b).calls == [] and r.off.stats.drv_spi_exhausted == 1
    for u in taken:
        unr.free_unr(u)
    r.flush()
    r.check(balanced=True)


def test_edge23_spd_delete_syncs_sa_delete_and_spdflush_do_not(make_offload_rig) -> None:
    """§17.23 key_unlink / key_spdadd (SPDUPDATE) call ipsec_accel_sync: an
    SPD delete returns after the driver removed the policy; SADB_DELETE and
    SPDFLUSH return while the driver call is still pending."""
    r = make_offload_rig(TqMode.THREAD)
    nic = r.nic()
    d = r.drv(nic)
    r.add_sa(0x1000)
    r.spdadd()
    r.sync()
    gate = threading.Event()
    d.script("if_sa_deinstall", Hang(30, gate))
    r.delete_sa(0x1000)
    assert d.count("if_sa_deinstall") == 0       # logged when it returns: not yet
    gate.set()
    r.sync()
    assert d.count("if_sa_deinstall") == 1
    d.set_default("if_spddel", Hang(0.05))
    r.spddelete()
    assert d.count("if_spddel") == 1             # synchronous: already done
    r.spdadd(src="10.9.0.0")
    r.sync()
    gate2 = threading.Event()
    d.set_default("if_spddel", Hang(30, gate2))
    r.spdflush()
    assert d.count("if_spddel") == 1
    gate2.set()
    r.sync()
    assert d.count("if_spddel") == 2
    r.check(balanced=True)

