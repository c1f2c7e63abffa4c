"""SA flows of ipsec_offload.c (freebsd_ipsec_offload.md §6.1 install, §6.2
forget, §10 lifetimes, §11 dump extensions), one named test per flow, each
citing the FreeBSD function it models."""

from __future__ import annotations

import errno
import logging
import threading

import pytest

from ipsec_accel.ipsec_offload import (
    IFP_HS_REJECTED, IpsecOffload, OffloadHooks, esp_hdrsiz_sav,
    xform_history,
)
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    OffloadRig, wait_for)
from pfkey.hooks import IF_SA_CNT_WHICH
from pfkey.key_testing import E, ESP, lifetimes
from pfkey.keydb import DEAD, SADB_KEY_ACCEL_DEINST, SADB_KEY_ACCEL_INST, seclifetime
from pfkey.message import Message
from pfkey.pfkeyv2 import SADB, SADB_AALG, SADB_EALG

EOPNOTSUPP = errno.EOPNOTSUPP
GCM_KEY = bytes(range(20))        # AES-128 + 4-byte salt


# -- §6.1 install --------------------------------------------------------------------

def test_flow_newkey_installs_on_every_capable_interface(offload_rig: OffloadRig) -> None:
    """ipsec_accel_sa_newkey_impl -> ipsec_accel_sa_newkey_act ->
    if_foreach_sleep(ipsec_accel_sa_install_match, ipsec_accel_sa_newkey_cb):
    every interface with IPSEC enabled and if_sa_newkey is offered the SA, in
    V_ifnet order, each with its own drv_spi (lowest free first); others
    are not."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    off_nic = r.nic("tnic2", enabled=False)
    sav = r.add_sa(0x1000)
    assert [(c.ifname, c.drv_spi) for c in r.drv(a).calls + r.drv(b).calls] == \
        [("tnic0", 3), ("tnic1", 4)]
    assert r.drv(off_nic).calls == []
    assert sav.accel_flags == SADB_KEY_ACCEL_INST and sav.accel_forget_tq is not None
    # CK_LIST_INSERT_HEAD: newest handle first, on the SA and globally
    assert [h.ifp.if_xname for h in sav.accel_ifps] == ["tnic1", "tnic0"]
    assert [h.ifp.if_xname for h in r.off.sav_handles()] == ["tnic1", "tnic0"]
    assert r.off.stats.installs == 2
    r.check()


@pytest.mark.parametrize("rc,kind", [(0, "HANDLED"), (EOPNOTSUPP, "REJECTED"),
                                     (errno.ENOMEM, None), (errno.EINVAL, None)])
def test_flow_newkey_driver_return_codes(offload_rig: OffloadRig, rc: int, kind) -> None:
    """ipsec_accel_sa_newkey_cb: 0 -> HANDLED handle; EOPNOTSUPP -> REJECTED
    handle; any other errno -> nothing recorded (drv_spi leaked)."""
    r = offload_rig
    nic = r.nic()
    r.drv(nic).set_default("if_sa_newkey", rc)
    sav = r.add_sa(0x1000)
    assert r.handles(sav) == ({"tnic0": kind} if kind else {})
    assert r.off.stats.drv_spi_in_use == 1
    assert (r.off.stats.installs, r.off.stats.rejects, r.off.stats.errors) == \
        ((1, 0, 0) if rc == 0 else (0, 1, 0) if rc == EOPNOTSUPP else (0, 0, 1))
    r.check()


def test_flow_accel_ifname_restricts_sa(offload_rig: OffloadRig) -> None:
    """ipsec_accel_sa_newkey_cb: an SA created with SADB_X_EXT_IF_HW_OFFL
    (key_newsav: accel_ifname) is installed only there; every other
    interface gets a REJECTED handle without its driver being called."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sav = r.add_sa(0x1000, ifname="tnic1")
    assert r.handles(sav) == {"tnic0": "REJECTED", "tnic1": "HANDLED"}
    assert r.drv(a).calls == [] and r.drv(b).count("if_sa_newkey", 0) == 1
    r.check()


def test_flow_getspi_ifname_applies_after_update(offload_rig: OffloadRig) -> None:
    """key_newsav (GETSPI) stores accel_ifname; key_update ignores IF_HW_OFFL,
    so the restriction of a negotiated SA comes from its GETSPI."""
    r = offload_rig
    r.nic("tnic0")
    r.nic("tnic1")
    from pfkey.extensions import SadbXIfHwOffl
    sav = r.getspi(0x1000, extra=(SadbXIfHwOffl("tnic0"),))
    r.update_sa(0x1000, extra=(SadbXIfHwOffl("tnic1"),))
    assert r.handles(sav) == {"tnic0": "HANDLED", "tnic1": "REJECTED"}


def test_flow_newkey_carrier_nomem_never_offloaded(make_offload_rig) -> None:
    """ipsec_accel_sa_newkey_impl: the install carrier is malloc(M_NOWAIT);
    if that fails the SA is silently never offloaded (XXXKIB)."""
    r = make_offload_rig(TqMode.INLINE, nowait_fail=lambda what: what == "newkey_tq")
    nic = r.nic()
    sav = r.add_sa(0x1000)
    assert not sav.accel_ifps and r.drv(nic).calls == [] and sav.accel_flags == 0
    assert r.off.stats.newkey_nomem == 2       # key_newsav and key_add
    r.check()


def test_flow_handle_sav_refuses_second_handle_per_ifp(offload_rig: OffloadRig) -> None:
    """ipsec_accel_handle_sav: EALREADY when the SA already has a handle for
    that interface (the caller then leaks the drv_spi: XXXKIB)."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000)
    u = r.off.drv_spi_unr.alloc_unr()
    assert r.off._handle_sav(sav, nic, u, None, IFP_HS_REJECTED) == errno.EALREADY
    assert r.off.stats.handle_errors == 1 and len(sav.accel_ifps) == 1
    r.off.drv_spi_unr.free_unr(u)
    r.check()


def test_flow_handle_records_hdr_ext_size_and_xform_history(offload_rig: OffloadRig) -> None:
    """ipsec_accel_handle_sav: hdr_ext_size = esp_hdrsiz(sav) and (002b12b5)
    the SA index copied into xfh for ipsec_accel_fill_xh."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000, enc=SADB_EALG.X_AESGCM16, auth=SADB_AALG.NONE, auth_key=None,
                   enc_key=GCM_KEY)
    i = sav.accel_ifps[0]
    # 8 (newesp) + AES-ICM block 1 + 9 + ah_hdrsiz(GMAC: roundup(12 + 16, 4))
    assert i.hdr_ext_size == esp_hdrsiz_sav(sav) == 8 + 1 + 9 + 28
    saidx = sav.sah.saidx
    assert i.xfh == xform_history(saidx.dst, sav.spi, saidx.proto, saidx.mode)
    assert r.off.ipsec_accel_fill_xh(nic, i.drv_spi) == i.xfh


# -- §6.2 forget ---------------------------------------------------------------------

@pytest.mark.parametrize("how", ["delete", "delete-all", "flush", "flush-esp", "hard",
                                 "updateaddresses"])
def test_flow_forget_on_every_dead_transition(offload_rig: OffloadRig, how: str) -> None:
    """ipsec_accel_forget_sav_impl from key_unlinksav, key_delete_all,
    key_flush, key_flush_sad (hard expiry), key_updateaddresses: every
    transition to DEAD deinstalls the SA's handles."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000, extra=lifetimes((0, 0, 5, 0), (0, 0, 3, 0)))
    if how == "delete":
        r.delete_sa(0x1000)
    elif how == "delete-all":
        r.delete_sa(None)
    elif how == "flush":
        r.flush()
    elif how == "flush-esp":
        r.flush(ESP)
    elif how == "hard":
        r.tick(6)
    else:
        from pfkey.extensions import SadbAddress
        from pfkey.key_testing import sa_in
        r.update_sa(0x1000, auth_key=None, enc_key=None,
                    extra=(SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.9")),))
    r.sync()
    assert sav.state == DEAD and not sav.accel_ifps
    assert sav.accel_flags == SADB_KEY_ACCEL_INST | SADB_KEY_ACCEL_DEINST
    assert r.drv(nic).count("if_sa_deinstall") == 1
    r.check(balanced=True)


def test_flow_forget_larval_sa_has_nothing_to_do(offload_rig: OffloadRig) -> None:
    """ipsec_accel_forget_sav_impl for a LARVAL SA (key_flush_sad larval
    expiry): DEINST set, no carrier, no task."""
    r = offload_rig
    r.nic()
    sav = r.getspi(0x1000)
    r.tick(31)
    assert sav.state == DEAD and sav.accel_flags == SADB_KEY_ACCEL_DEINST
    assert r.off.stats.forget_tasks == 0
    r.check()


def test_flow_forget_task_is_asynchronous(offload_rig_manual: OffloadRig) -> None:
    """ipsec_accel_forget_sav_impl / _act: SADB_DELETE returns with the
    forget task queued (no sync on SA deletes); the task deinstalls only
    HANDLED handles and frees every drv_spi."""
    r = offload_rig_manual
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(a).set_default("if_sa_newkey", EOPNOTSUPP)
    sav = r.add_sa(0x1000)
    r.sync()
    r.delete_sa(0x1000)
    assert len(sav.accel_ifps) == 2 and r.tq.depth == 1 and sav.accel_forget_tq is None
    r.sync()
    assert not sav.accel_ifps and r.off.stats.drv_spi_in_use == 0
    assert r.drv(a).count("if_sa_deinstall") == 0 and r.drv(b).count("if_sa_deinstall") == 1
    r.check(balanced=True)


def test_flow_forget_waits_for_net_epoch_readers(make_offload_rig) -> None:
    """ipsec_accel_forget_handle_sav: unlink, then NET_EPOCH_WAIT before the
    driver call and free_unr -- a datapath reader inside the epoch keeps the
    drv_spi from being deinstalled (and reused) under it."""
    r = make_offload_rig(TqMode.THREAD)
    nic = r.nic()
    sav = r.add_sa(0x1000)
    r.sync()
    entered, release = threading.Event(), threading.Event()

    def reader() -> None:
        with r.off.net_epoch:
            assert r.off.ipsec_accel_sav_handle(sav, nic) is not None
            entered.set()
            release.wait(10)

    t = threading.Thread(target=reader)
    t.start()
    entered.wait(10)
    try:
        r.delete_sa(0x1000)
        # The forget task unlinked the handle and now sits in the epoch wait.
        assert wait_for(lambda: r.off.net_epoch.waits == 1)
        assert not sav.accel_ifps and r.drv(nic).count("if_sa_deinstall") == 0
        assert r.off.drv_spi_unr.in_use == 1
    finally:
        release.set()
    t.join()
    r.sync()
    assert r.drv(nic).count("if_sa_deinstall") == 1 and r.off.drv_spi_unr.in_use == 0
    r.check(balanced=True)


# -- §10 counters and lifetimes ------------------------------------------------------

def test_flow_lifetime_update_cumulative_into_current_lifetime(offload_rig: OffloadRig) -> None:
    """ipsec_accel_drv_sa_lifetime_update_impl: cumulative counters; only
    the delta since the last report is added to lft_c and accel_hw_*;
    firstused/accel_firstused set at the first report with allocs != 0, so
    the soft byte lifetime (key_flush_sad) expires the SA."""
    r = offload_rig
    nic = r.nic()
    sav = r.add_sa(0x1000, extra=lifetimes((0, 10000, 0, 0), (0, 5000, 0, 0)))
    d = r.drv(nic)
    hw = d.find(0x1000)
    r.clock.advance(3)
    d.traffic(hw, 3000, 3)
    d.poll()
    d.poll()                                     # same cumulative value: no delta
    assert (sav.lft_c_bytes, sav.lft_c_allocations) == (3000, 3)
    assert sav.firstused == sav.accel_firstused == r.clock.now()
    d.traffic(hw, 3000, 3)
    d.poll()
    assert (sav.accel_hw_octets, sav.accel_hw_allocs) == (6000, 6)
    assert r.off.ipsec_accel_drv_sa_lifetime_fetch(sav, nic, hw.drv_spi) == (0, 6000, 6)
    assert r.off.ipsec_accel_drv_sa_lifetime_fetch(sav, nic, hw.drv_spi + 1)[0] == errno.ENOENT
    assert r.key.ipsec_accel_drv_sa_lifetime_fetch(sav, nic, hw.drv_spi) == (0, 6000, 6)
    r.tick()
    assert sav.state == 2                         # DYING: soft bytes
    d.traffic(hw, 5000, 1)
    d.poll()
    r.tick()
    assert sav.state == DEAD
    r.check(balanced=True)


def test_flow_lifetime_op_variants(offload_rig: OffloadRig) -> None:
    """ipsec_accel_sa_lifetime_op_impl: IFP_HW_VAL (one interface's
    if_sa_cnt), TOTAL_HW_VAL (sum over installed handles, the SAHTREE
    tracker released around each driver call), TOTAL_SW_VAL; _UPD merges
    (add, usetime = min), without it lft_c is reset first."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    c = r.nic("tnic2")
    r.drv(c).set_default("if_sa_newkey", EOPNOTSUPP)
    sav = r.add_sa(0x1000)
    r.drv(a).traffic(r.drv(a).find(0x1000), 100, 1)
    r.drv(b).traffic(r.drv(b).find(0x1000), 200, 2)
    off = r.off
    lft = seclifetime(allocations=7, bytes=7, usetime=7)
    assert off.ipsec_accel_sa_lifetime_op(sav, lft, b, IF_SA_CNT_WHICH.IFP_HW_VAL) == 0
    assert (lft.allocations, lft.bytes, lft.usetime) == (2, 200, 0)
    assert off.ipsec_accel_sa_lifetime_op(sav, lft, c, IF_SA_CNT_WHICH.IFP_HW_VAL) == 0
    assert (lft.allocations, lft.bytes) == (0, 0)          # REJECTED: nothing
    tracker = r.key.sahtree_lock
    released: list[bool] = []
    r.drv(a).script("if_sa_cnt", lambda *a_: (released.append(tracker.acquire(False)), 0)[1])
    with tracker:
        assert off.ipsec_accel_sa_lifetime_op(sav, lft, None, IF_SA_CNT_WHICH.TOTAL_HW_VAL,
                                              tracker) == 0
    assert (lft.allocations, lft.bytes) == (3, 300)
    assert released == [True]      # RLock re-acquirable by its owner: check it was dropped
    off.ipsec_accel_sa_lifetime_op(sav, lft, None, IF_SA_CNT_WHICH.TOTAL_HW_UPD)
    assert (lft.allocations, lft.bytes) == (6, 600)
    r.drv(b).script("if_sa_cnt", errno.EIO)      # b is walked first, a last: error = a's (0)
    assert off.ipsec_accel_sa_lifetime_op(sav, lft, None, IF_SA_CNT_WHICH.TOTAL_HW_VAL) == 0
    assert (lft.allocations, lft.bytes) == (1, 100)
    assert r.key.hooks.ipsec_accel_sa_lifetime_op(sav, lft, None,
                                                  IF_SA_CNT_WHICH.TOTAL_SW_VAL) == 0
    r.check()


def test_flow_lifetime_op_total_hw_error_is_last_drivers(offload_rig: OffloadRig) -> None:
    """ipsec_accel_sa_lifetime_op_impl(TOTAL_HW_VAL): each driver's result
    overwrites `error`; a failing driver's values are not merged and, if it
    was the last one, lft_c is left untouched."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sav = r.add_sa(0x1000)
    r.drv(a).traffic(r.drv(a).find(0x1000), 100, 1)
    r.drv(b).traffic(r.drv(b).find(0x1000), 200, 2)
    first = sav.accel_ifps[-1].ifp             # walk order: newest (tnic1) first
    r.drv(first).set_default("if_sa_cnt", errno.EIO)
    lft = seclifetime(allocations=9)
    assert r.off.ipsec_accel_sa_lifetime_op(sav, lft, None,
                                            IF_SA_CNT_WHICH.TOTAL_HW_VAL) == errno.EIO
    assert lft.allocations == 9
    r.drv(first).set_default("if_sa_cnt", 0)
    r.drv(sav.accel_ifps[0].ifp).set_default("if_sa_cnt", errno.EIO)
    assert r.off.ipsec_accel_sa_lifetime_op(sav, lft, None,
                                            IF_SA_CNT_WHICH.TOTAL_HW_VAL) == 0
    assert (lft.allocations, lft.bytes) == (1, 100)


def test_flow_recordxfer_sw_view(offload_rig: OffloadRig) -> None:
    """ipsec_accel_sa_recordxfer: one allocation and pkthdr.len bytes into
    accel_lft_sw, accel_firstused set once; lft_c untouched."""
    r = offload_rig
    r.nic()
    sav = r.add_sa(0x1000)
    r.clock.advance(5)
    r.off.ipsec_accel_sa_recordxfer(sav, 1400)
    t0 = r.clock.now()
    r.clock.advance(5)
    r.off.ipsec_accel_sa_recordxfer(sav, 600)
    assert sav.accel_lft_sw == [2, 2000] and sav.accel_firstused == t0
    assert sav.lft_c_bytes == 0 and sav.firstused == 0


# -- §11 dump --------------------------------------------------------------------------

def test_flow_dump_extensions(offload_rig: OffloadRig) -> None:
    """key_setdumpsa + ipsec_accel_key_setaccelif_impl: after NAT-T, SW_OFFL
    (TOTAL_SW_VAL), HW_OFFL (accel_hw_*) and one IF_HW_OFFL per HANDLED
    interface, newest first; none of them for an SA without handles; the
    same in SADB_DUMP."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    c = r.nic("tnic2")
    r.drv(c).set_default("if_sa_newkey", EOPNOTSUPP)
    r.nic("tnic3", enabled=False)
    sav = r.add_sa(0x1000)
    sav.accel_lft_sw[:] = [4, 400]
    r.drv(a).traffic(r.drv(a).find(0x1000), 1000, 10)
    r.drv(a).poll()
    rep = r.get_sa(0x1000)
    assert rep.ext_types[-4:] == (E.X_LFT_CUR_SW_OFFL, E.X_LFT_CUR_HW_OFFL, E.X_IF_HW_OFFL,
                                  E.X_IF_HW_OFFL)
    exts = [x for x in rep.exts if x.exttype in (29, 30, 31)]
    assert [x.exttype for x in exts] == [29, 30, 31, 31]
    assert (exts[0].allocations, exts[0].bytes, exts[0].usetime) == (4, 400, 0)
    assert (exts[1].allocations, exts[1].bytes) == (10, 1000)
    assert [x.ifname for x in exts[2:]] == ["tnic1", "tnic0"] and exts[2].flags == 0
    r.off.ipsec_accel_on_ifdown(a)
    r.off.ipsec_accel_on_ifdown(b)
    rep = r.get_sa(0x1000)
    assert [x.exttype for x in rep.exts if x.exttype in (29, 30, 31)] == [29, 30]   # REJECTED left
    r.off.ipsec_accel_on_ifdown(c)
    assert not {29, 30, 31} & set(r.get_sa(0x1000).ext_types)
    r.add_sa(0x2000)
    got = r.send(Message(SADB.DUMP, ESP))
    by_spi = {m.sa.spi: m for m in got}
    assert 31 in by_spi[0x2000].ext_types and 31 not in by_spi[0x1000].ext_types


def test_flow_verbose_log_and_stats(make_offload_rig, caplog) -> None:
    """net.inet.ipsec.offload.verbose (dprintf): silent by default; when set,
    install / refusal / deinstall events are logged (and kept in a ring)."""
    r = make_offload_rig(TqMode.INLINE, verbose=False)
    nic = r.nic()
    r.add_sa(0x1000)
    assert r.off.log_lines() == []
    assert r.off.sysctl("net.inet.ipsec.offload.verbose", 1) == 0
    r.drv(nic).set_default("if_sa_newkey", EOPNOTSUPP)
    with caplog.at_level(logging.DEBUG, logger="ipsec_accel.ipsec_offload"):
        r.add_sa(0x2000)
        r.flush()
    lines = r.off.log_lines()
    assert any("refused" in s and "0x2000" in s for s in lines)
    assert any("deinstall" in s and "0x1000" in s for s in lines)
    assert any("refused" in rec.getMessage() for rec in caplog.records)
    with pytest.raises(KeyError):
        r.off.sysctl("net.inet.ipsec.offload.nope")
    st = r.off.stats
    assert (st.installs, st.rejects, st.deinstalls, st.drv_spi_in_use) == (1, 1, 1, 0)


def test_flow_attach_detach_hooks(offload_rig: OffloadRig) -> None:
    """SYSINIT ipsec_accel_init / SYSUNINIT ipsec_accel_fini: attaching fills
    the key's hook table and registers the departure handler; detaching
    clears both (live handles are not deinstalled, as in FreeBSD)."""
    r = offload_rig
    assert isinstance(r.key.hooks, OffloadHooks) and r.key.hooks.off is r.off
    n = len(r.ifnets.ifnet_departure_event)
    r.off.detach()
    assert not r.key.hooks.attached and len(r.ifnets.ifnet_departure_event) == n - 1
    with pytest.raises(ValueError):
        IpsecOffload(quirks=["nope"])


def test_flow_two_vnets_share_drv_spi_space(offload_rig: OffloadRig) -> None:
    """drv_spi_unr and the handle lists are global (all vnets): a second
    attached key engine's SAs take drv_spis from the same space."""
    r = offload_rig
    r.nic()
    from ipsec_accel.ifnet import IfnetRegistry
    from ipsec_accel.testing import TestDriver
    from pfkey.key_testing import KeyHarness, add_msg, exchange
    h2 = KeyHarness(seed=2)
    reg2 = IfnetRegistry("vnet1")
    r.off.attach(h2.key, reg2)
    TestDriver(kernel=h2.key).make_ifnet(reg2, "tnic0")
    r.add_sa(0x1000)
    exchange(h2.socket(), add_msg(0x1000))
    spis = sorted(h.drv_spi for h in r.off.sav_handles())
    assert spis == [3, 4]
    r.off.detach(h2.key)
    r.check()


def test_flow_setkey_dump_shows_offload_lines(offload_rig: OffloadRig) -> None:
    """key_setdumpsa's extensions printed by libipsec pfkey_sadump: the
    `hw offl if:` line lists the HANDLED interfaces, then the sw/hw offl
    counter lines (setkey -D)."""
    from pfkey.pfkey_dump import pfkey_sadump
    r = offload_rig
    a = r.nic("tnic0")
    r.nic("tnic1")
    r.add_sa(0x1000)
    hw = r.drv(a).find(0x1000)
    r.drv(a).traffic(hw, 4242, 3)
    r.drv(a).poll()
    text = pfkey_sadump(r.get_sa(0x1000), now=r.clock.now())
    assert "\thw offl if: tnic1,tnic0\n" in text
    assert "hw offl allocated: 3\thw offl: 4242(bytes)" in text
    assert "sw offl allocated: 0\tsw offl: 0(bytes)" in text
