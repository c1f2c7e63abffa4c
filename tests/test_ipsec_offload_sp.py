"""SP flows of ipsec_offload.c (freebsd_ipsec_offload.md §6.3): one-shot
spdadd / spddel, the add-task filters, and the SPD sync points."""

from __future__ import annotations

import errno

from ipsec_accel.ipsec_offload import IFP_HP_HANDLED, IFP_HP_REJECTED
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    OffloadRig)
from pfkey.ipsec import IPSEC_DIR, IPSEC_POLICY
from pfkey.key_testing import policy
from pfkey.keydb import IPSEC_SPSTATE_DEAD, ipsecrequest, secasindex, secpolicy
from pfkey.spd import SecPolicyIndex
from pfkey.extensions import Sockaddr
from pfkey.pfkeyv2 import SADB


def _sp(tcount: int = 1) -> secpolicy:
    idx = SecPolicyIndex(IPSEC_DIR.OUTBOUND, Sockaddr.from_ip("10.0.0.1"),
                         Sockaddr.from_ip("10.0.0.2"), 32, 32, 6)
    req = [ipsecrequest(secasindex(Sockaddr(0, 0, b""), Sockaddr(0, 0, b""), 50, 1, 0), 2)]
    return secpolicy(idx, IPSEC_POLICY.IPSEC, req=req[:tcount], state=3)


def test_flow_spdadd_offers_ipsec_policies(offload_rig: OffloadRig) -> None:
    """ipsec_accel_spdadd_impl (from key_insertsp) -> ipsec_accel_spdadd_act
    -> ipsec_accel_spdadd_cb: a handle is created HANDLED *before* the driver
    is called (ipsec_accel_remember_sp), then if_spdadd(ifp, sp, inp)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    seen: list[list[str]] = []
    r.drv(a).script("if_spdadd", lambda ifp, sp, inp: (
        seen.append([h.ifp.if_xname for h in sp.accel_ifps]), 0)[1])
    sp = r.spdadd()
    assert seen == [["tnic0"]]
    assert [(h.ifp.if_xname, h.flags) for h in sp.accel_ifps] == \
        [("tnic1", IFP_HP_HANDLED), ("tnic0", IFP_HP_HANDLED)]
    assert sp.accel_add_tq.adddel_scheduled == 1 and sp.ipsec_accel_add_sp_inp is None
    assert r.off.stats.sp_installs == 2
    r.check()


def test_flow_spdadd_ignores_requestless_global_policies(offload_rig: OffloadRig) -> None:
    """ipsec_accel_spdadd_impl: a global SP with tcount 0 (none, discard,
    entrust, bypass) is never offered; a PCB policy (inp != NULL) is offered
    even with tcount 0, and inp is handed to the driver, then released."""
    r = offload_rig
    nic = r.nic()
    sp = r.spdadd(pol=policy(IPSEC_DIR.OUTBOUND, IPSEC_POLICY.DISCARD))
    assert sp.accel_add_tq.adddel_scheduled == 0 and r.drv(nic).calls == []
    pcb = _sp(tcount=0)
    inp = object()
    got: list[object] = []
    r.drv(nic).script("if_spdadd", lambda ifp, s, i: (got.append(i), 0)[1])
    r.off.ipsec_accel_spdadd(pcb, inp)
    assert got == [inp] and pcb.ipsec_accel_add_sp_inp is None
    assert len(pcb.accel_ifps) == 1
    r.off.ipsec_accel_spdadd(None)           # sp == NULL: ignored
    r.off.ipsec_accel_spddel(pcb)
    r.check()


def test_flow_spdadd_name_restriction_creates_no_handle(offload_rig: OffloadRig) -> None:
    """ipsec_accel_spdadd_match: accel_ifname set and different -> the
    interface is skipped (no handle; contrast the SA REJECTED handle)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sp = r.spdadd(ifname="tnic1")
    assert [h.ifp.if_xname for h in sp.accel_ifps] == ["tnic1"]
    assert r.drv(a).calls == []


def test_flow_spdadd_failure_marks_rejected(offload_rig: OffloadRig) -> None:
    """ipsec_accel_spdadd_cb: any nonzero if_spdadd result ORs in REJECTED;
    the handle stays (and is never passed to if_spddel)."""
    r = offload_rig
    nic = r.nic()
    r.drv(nic).set_default("if_spdadd", errno.EINVAL)
    sp = r.spdadd()
    assert sp.accel_ifps[0].flags == IFP_HP_HANDLED | IFP_HP_REJECTED
    assert r.off.stats.sp_rejects == 1
    r.spddelete()
    assert not sp.accel_ifps and r.drv(nic).count("if_spddel") == 0
    r.check()


def test_flow_spddel_task_removes_all_handles(offload_rig_manual: OffloadRig) -> None:
    """ipsec_accel_spddel_impl / ipsec_accel_spddel_act (key_spdflush): one
    task removes every handle of the SP, calling if_spddel for installed
    ones with the driver's private data."""
    r = offload_rig_manual
    a, b = r.nic("tnic0"), r.nic("tnic1")
    sp = r.spdadd()
    r.sync()
    r.spdflush()                               # SPDFLUSH: no sync, task queued
    assert sp.state == IPSEC_SPSTATE_DEAD and len(sp.accel_ifps) == 2 and r.tq.depth == 1
    r.sync()
    assert not sp.accel_ifps
    assert r.drv(a).count("if_spddel") == 1 and r.drv(b).count("if_spddel") == 1
    assert r.off.stats.sp_deinstalls == 2
    r.check(balanced=True)


def test_flow_spd_delete_and_update_sync(make_offload_rig) -> None:
    """key_unlink (SPDDELETE, SPDDELETE2) and key_spdadd replacing an SP
    (SPDUPDATE) call ipsec_accel_sync: when the reply is read the driver has
    already removed the old policy."""
    r = make_offload_rig(TqMode.THREAD)
    nic = r.nic()
    d = r.drv(nic)
    d.delay = {"if_spddel": 0.02}
    old = r.spdadd()
    r.sync()
    r.spdadd(mtype=SADB.X_SPDUPDATE)
    assert d.count("if_spddel") == 1 and not old.accel_ifps
    r.spddelete()
    assert d.count("if_spddel") == 2
    r.check(balanced=True)


def test_flow_spdadd_after_spddel_scheduled_still_runs(offload_rig_manual: OffloadRig) -> None:
    """FIFO: an SPDADD followed at once by SPDFLUSH queues the add task
    before the delete task -- the driver sees if_spdadd then if_spddel."""
    r = offload_rig_manual
    nic = r.nic()
    r.spdadd()
    r.spdflush()
    r.sync()
    assert [c.method for c in r.drv(nic).calls] == ["if_spdadd", "if_spddel"]
    r.check(balanced=True)
