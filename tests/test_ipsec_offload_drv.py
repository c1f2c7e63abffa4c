"""Driver failures (exceptions, hangs, bad results) never kill the taskqueue
thread or corrupt the handle lists (ipsec_offload_defs "Driver calls"), the
net epoch, the intrusive handle list, the invariant checker, and the
TestDriver helper itself."""

from __future__ import annotations

import errno
import threading

import pytest

from ipsec_accel.ipsec_offload import (
    CALL_EXC, CALL_OK, CALL_TIMEOUT, DRV_EXCEPTION_ERRNO, DrvGuard, OffloadCheckError,
    ifp_handle_sav,
)
from ipsec_accel.ipsec_offload_defs import CkList, NetEpoch
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    Hang, OffloadRig, Raise, wait_for)


def _threaded(make, timeout: float = 0.3, **kw) -> OffloadRig:  # type: ignore[no-untyped-def]
    """A THREAD rig whose driver calls are abandoned after ``timeout``: the
    hangs below are gated by events, so only they ever reach it."""
    return make(TqMode.THREAD, drv_timeout=timeout, **kw)


# -- exceptions -------------------------------------------------------------------------

def test_drv_exception_in_newkey_is_other_error(offload_rig_threaded: OffloadRig) -> None:
    """A raising if_sa_newkey is caught, logged and counted, and handled as
    an "other" error (no handle, drv_spi leaked); the worker thread lives on
    and the next install works."""
    r = offload_rig_threaded
    nic = r.nic()
    r.drv(nic).script("if_sa_newkey", Raise(ValueError("firmware says no")))
    sav = r.add_sa(0x1000)
    r.sync()
    assert not sav.accel_ifps
    st = r.off.stats
    assert (st.drv_exceptions, st.errors, st.drv_spi_leaked) == (1, 1, 1)
    assert r.off.drv_errors[-1][0] == "if_sa_newkey"
    assert any("raised" in s for s in r.off.log_lines())
    sav2 = r.add_sa(0x2000)
    r.sync()
    assert r.handles(sav2) == {"tnic0": "HANDLED"} and r.tq.thread.is_alive()
    assert r.tq.stats.failed == 0            # nothing escaped into the taskqueue
    r.check()


def test_drv_exceptions_in_removal_paths(offload_rig: OffloadRig) -> None:
    """Raising if_sa_deinstall / if_spddel / if_sa_cnt / if_hwassist: the
    handle is still removed and its drv_spi freed; counters read as
    failures; hwassist as 0."""
    r = offload_rig
    nic = r.nic()
    d = r.drv(nic)
    sav = r.add_sa(0x1000)
    r.spdadd()
    from pfkey.hooks import IF_SA_CNT_WHICH
    from pfkey.keydb import seclifetime
    d.script("if_sa_cnt", Raise())
    assert r.off.ipsec_accel_sa_lifetime_op(sav, seclifetime(), None,
                                            IF_SA_CNT_WHICH.TOTAL_HW_VAL) == DRV_EXCEPTION_ERRNO
    d.if_hwassist = lambda *a: 1 / 0    # type: ignore[method-assign]
    nic.if_ipsec_accel_m = d.methods()
    assert r.off.ipsec_accel_hwassist(sav.accel_ifps[0], sav) == 0
    d.script("if_sa_deinstall", Raise())
    d.script("if_spddel", Raise())
    r.flush()
    r.spdflush()
    assert not sav.accel_ifps and r.off.stats.drv_spi_in_use == 0
    assert r.off.stats.drv_exceptions == 4
    r.check()


def test_drv_bad_return_value(offload_rig: OffloadRig) -> None:
    """A driver returning something other than (error, priv) counts as a
    raising driver."""
    r = offload_rig
    nic = r.nic()
    nic.if_ipsec_accel_m.if_sa_newkey = lambda ifp, sav, s: 0
    nic.if_ipsec_accel_m.if_spdadd = lambda ifp, sp, inp: None
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    assert not sav.accel_ifps and r.off.stats.drv_exceptions == 2
    assert [h.flags for h in sp.accel_ifps] == [3]            # HANDLED|REJECTED
    r.check()


# -- hangs ----------------------------------------------------------------------------

@pytest.mark.parametrize("fix", [False, True])
def test_drv_hang_in_newkey_abandoned_and_reconciled(make_offload_rig, fix: bool) -> None:
    """A hung if_sa_newkey on the taskqueue thread is abandoned after
    drv_timeout (ETIMEDOUT, an "other" error: no handle), later installs go
    on; when the stuck call finally succeeds, the hardware SA is undone with
    if_sa_deinstall and the drv_spi released (leaked, as FreeBSD's other
    errors, unless "free_drv_spi_on_error")."""
    r = _threaded(make_offload_rig, extensions=["free_drv_spi_on_error"] if fix else [])
    nic = r.nic()
    d = r.drv(nic)
    gate = threading.Event()
    d.script("if_sa_newkey", Hang(30, gate))
    sav = r.add_sa(0x1000)
    sav2 = r.add_sa(0x2000)
    r.sync()
    assert not sav.accel_ifps and r.handles(sav2) == {"tnic0": "HANDLED"}
    assert r.off.stats.drv_timeouts == 1 and len(r.off.drv.stuck) == 1
    assert r.off.drv_spi_unr.in_use == 2          # the stuck call still holds its drv_spi
    r.off._check(quiescent=True)
    gate.set()
    assert wait_for(lambda: r.off.stats.late_completions == 1)
    assert not r.off.drv.stuck
    assert d.find(0x1000) is None                 # rolled back in hardware
    assert r.off.drv_spi_unr.in_use == (1 if fix else 2)
    r.flush()
    r.check(balanced=True)


def test_drv_hang_in_deinstall_holds_drv_spi(make_offload_rig) -> None:
    """A hung if_sa_deinstall: the handle is unlinked and the queue moves on,
    but its drv_spi (and ifnet reference) stay with the stuck call until it
    returns -- a drv_spi is never reused while a driver may still use it."""
    r = _threaded(make_offload_rig)
    nic = r.nic()
    d = r.drv(nic)
    sav = r.add_sa(0x1000)
    r.sync()
    i = sav.accel_ifps[0]
    gate = threading.Event()
    d.script("if_sa_deinstall", Hang(30, gate))
    refs = nic.if_refcount
    r.delete_sa(0x1000)
    r.sync()
    r.add_sa(0x2000)
    r.sync()
    assert not sav.accel_ifps and r.off.drv_spi_unr.is_allocated(i.drv_spi)
    assert r.key.savhash[0x2000].accel_ifps[0].drv_spi != i.drv_spi
    assert nic.if_refcount == refs + 1     # 0x1000 ref kept by the stuck call, +1 for 0x2000
    r.off._check(quiescent=True)
    gate.set()
    assert wait_for(lambda: not r.off.drv.stuck)
    assert not r.off.drv_spi_unr.is_allocated(i.drv_spi)
    r.flush()
    r.check(balanced=True)


def test_drv_guard_modes() -> None:
    """DrvGuard: "taskqueue" guards only the worker thread, "always" every
    caller, "never" none; a late completion reports through on_late."""
    late: list[tuple[str, object]] = []
    worker: list[threading.Thread] = []
    g = DrvGuard(0.3, "always", lambda: None, lambda what, res, exc: late.append((what, res)))
    assert g.call("x", lambda a: a + 1, (1,)) == (CALL_OK, 2)
    st, exc = g.call("x", lambda: 1 / 0, ())
    assert st == CALL_EXC and isinstance(exc, ZeroDivisionError)
    ev = threading.Event()
    got: list[object] = []
    assert g.call("slow", lambda: (ev.wait(5), 7)[1], (),
                  lambda res, e: got.append(res)).status == CALL_TIMEOUT
    ev.set()
    assert wait_for(lambda: late == [("slow", 7)]) and got == [7]
    g.shutdown()
    n = DrvGuard(0.02, "never", lambda: None, lambda *a: None)
    assert not n.guarded()
    t = DrvGuard(0.02, "taskqueue", lambda: worker[0] if worker else None, lambda *a: None)
    assert not t.guarded()
    with pytest.raises(ValueError):
        DrvGuard(1.0, "sometimes", lambda: None, lambda *a: None)


# -- epoch, list, checker ---------------------------------------------------------------

def test_net_epoch_wait_waits_for_open_sections() -> None:
    """NET_EPOCH_WAIT: returns at once with no reader; otherwise only after
    every section open at the call closed; nested sections count once;
    waiting inside a section is refused."""
    ep = NetEpoch()
    ep.wait()
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def reader() -> None:
        with ep:
            with ep:
                inside.set()
                release.wait(5)

    t = threading.Thread(target=reader)
    t.start()
    inside.wait(5)
    w = threading.Thread(target=lambda: (ep.wait(), done.set()))
    w.start()
    assert not done.wait(0.02)
    release.set()
    assert done.wait(5)
    t.join()
    w.join()
    with ep:
        with pytest.raises(RuntimeError):
            ep.wait()
    assert not ep.in_epoch()


def test_cklist_marker_operations() -> None:
    """CK_LIST_INSERT_HEAD / INSERT_AFTER / REMOVE as the marker walk uses them."""
    lst = CkList()
    hs = [ifp_handle_sav(drv_spi=i) for i in range(3)]
    for h in hs:
        lst.insert_head(h)
    assert [h.drv_spi for h in lst] == [2, 1, 0]
    m = ifp_handle_sav(flags=0x10)
    lst.insert_head(m)
    lst.remove(m)
    lst.insert_after(hs[1], m)
    assert [h.drv_spi for h in lst] == [2, 1, 0, 0] and lst.count == 4
    lst.remove(hs[1])
    lst.remove(m)
    assert [h.drv_spi for h in lst] == [2, 0] and hs[1].allh_next is None


def test_check_detects_corruption(offload_rig: OffloadRig) -> None:
    """_check() names the broken invariant: a drv_spi in two handles, a
    handle missing from its SA's list, a stale index entry, a DEAD SA's
    handle when quiescent, wrong drv_spi accounting."""
    r = offload_rig
    r.nic("tnic0")
    r.nic("tnic1")
    sav = r.add_sa(0x1000)
    r.off._check(quiescent=True)
    h0, h1 = sav.accel_ifps
    keep = h1.drv_spi
    h1.drv_spi = h0.drv_spi
    with pytest.raises(OffloadCheckError, match="two handles|indexed"):
        r.off._check()
    h1.drv_spi = keep
    sav.accel_ifps = [h0]
    with pytest.raises(OffloadCheckError, match="SA's list"):
        r.off._check()
    sav.accel_ifps = [h0, h1]
    sav.state = 3
    with pytest.raises(OffloadCheckError, match="DEAD"):
        r.off._check(quiescent=True)
    sav.state = 1
    u = r.off.drv_spi_unr.alloc_unr()
    with pytest.raises(OffloadCheckError, match="in use"):
        r.off._check(quiescent=True)
    r.off.drv_spi_unr.free_unr(u)
    r.off._check(quiescent=True)


def test_testdriver_capacity_and_balance(offload_rig: OffloadRig) -> None:
    """TestDriver: a full table answers ENOSPC; check_balanced catches a
    hardware SA left behind."""
    r = offload_rig
    nic = r.nic(driver=r.driver(capacity=1))
    r.add_sa(0x1000)
    sav = r.add_sa(0x2000)
    assert not sav.accel_ifps and r.drv(nic).count("if_sa_newkey", errno.ENOSPC) == 1
    with pytest.raises(AssertionError):
        r.drv(nic).check_balanced()
    r.flush()
    r.check(balanced=True)


def test_drv_hang_in_spdadd_rejected_then_undone(make_offload_rig) -> None:
    """A hung if_spdadd is abandoned: the handle is HANDLED|REJECTED (never
    passed to if_spddel), so a late success is undone with if_spddel."""
    r = _threaded(make_offload_rig)
    nic = r.nic()
    d = r.drv(nic)
    gate = threading.Event()
    d.script("if_spdadd", Hang(30, gate))
    sp = r.spdadd()
    r.sync()
    assert [h.flags for h in sp.accel_ifps] == [3] and r.off.stats.drv_timeouts == 1
    gate.set()
    assert wait_for(lambda: not r.off.drv.stuck)
    assert d.sps == {} and d.count("if_spddel") == 1
    r.spdflush()
    r.check(balanced=True)


def test_output_tag_nowait_failure(offload_rig: OffloadRig) -> None:
    """ipsec_accel_output_tag: m_tag_get(M_NOWAIT) may fail -> False (the
    packet then goes to software)."""
    from ipsec_accel.mbuf import Mbuf, tag_zone
    tag_zone.fail_next(1)
    assert not offload_rig.off.ipsec_accel_output_tag(Mbuf(b"x"), 5)
    assert offload_rig.off.ipsec_accel_output_tag(Mbuf(b"x"), 5)


@pytest.mark.parametrize("name", [
    "ipsec_accel.ipsec_offload", "ipsec_accel.ipsec_offload_defs",
    "ipsec_accel.ipsec_offload_sa", "ipsec_accel.ipsec_offload_sp",
    "ipsec_accel.ipsec_offload_lft", "ipsec_accel.ipsec_offload_datapath",
    "ipsec_accel.ipsec_offload_ext", "ipsec_accel.testing"])
def test_offload_modules_public_api(name: str) -> None:
    """Every offload module declares __all__ and every listed name resolves."""
    import importlib
    mod = importlib.import_module(name)
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []
    assert len(set(mod.__all__)) == len(mod.__all__)
