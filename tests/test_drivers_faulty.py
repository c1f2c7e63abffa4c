"""The faulty NIC (drivers/faulty.py) and randomized races through the real
offload layer on a threaded taskqueue.

Reference: freebsd_ipsec_offload.md §6.1-§6.4 (install, forget, on_ifdown,
capability toggle), §7 (drv_spi), §17.5-§17.9 (delete before/while the
install task runs, one-shot flags, no replay); issue 5's race tests: delete
during install, ifdown during install, capability toggle, driver hang --
1,000+ randomized iterations each (heavier runs marked slow), then drain and
check: no handle on a DEAD SA, every successful if_sa_newkey matched by
exactly one if_sa_deinstall, no drv_spi live twice, drv_spi count back to
zero after a flush.
"""

from __future__ import annotations

import errno
import random
import threading
import time
from typing import Any, Callable, Iterator

import pytest

from drivers import Fault, FaultPlan, FaultyNic, InjectedFault
from drivers.testing import make_sav, sw_state, tagged
from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.ipsec_offload import installed
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import OffloadRig, wait_for
from pfkey.key_testing import add_msg, sa_req_msg
from pfkey.keydb import DEAD
from pfkey.pfkeyv2 import SADB
from thread_helpers import run_threads

PKT = udp_packet("10.0.0.1", "10.0.0.2", 1, 2, b"f" * 32)


# -- the fault plan ----------------------------------------------------------------------

def _flt(**kw: Any) -> FaultyNic:
    return FaultyNic("flt0", **kw).attach(registry=IfnetRegistry())


def test_script_then_default() -> None:
    nic = _flt()
    nic.faults.script("if_sa_newkey", [Fault.fail(errno.ENOSPC), Fault.raise_(),
                                       Fault.ok()])
    nic.faults.set_default("if_sa_newkey", Fault.fail(errno.EOPNOTSUPP))
    assert nic.if_sa_newkey(nic.ifp, make_sav(), 3) == (errno.ENOSPC, None)
    with pytest.raises(InjectedFault):
        nic.if_sa_newkey(nic.ifp, make_sav(), 3)
    assert nic.if_sa_newkey(nic.ifp, make_sav(), 3)[0] == 0
    assert nic.if_sa_newkey(nic.ifp, make_sav(0x2), 4) == (errno.EOPNOTSUPP, None)
    assert nic.faults.seen["if_sa_newkey:fail"] == 2
    with pytest.raises(ValueError):
        nic.faults.script("if_nonsense", [])


def test_hang_released_and_bounded() -> None:
    """A hang blocks until release() -- or hang_limit seconds, so a test can
    never deadlock on it."""
    nic = _flt(hang_limit=30.0)
    nic.faults.script("if_sa_newkey", [Fault.hang(then=errno.EIO)])
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(nic.if_sa_newkey(nic.ifp, make_sav(), 3)))
    t.start()
    assert wait_for(lambda: nic.faults.hanging == 1)
    nic.faults.release()
    t.join(10)
    assert out == [(errno.EIO, None)]
    short = FaultPlan(hang_limit=0.01)
    short.script("if_sa_cnt", [Fault.hang()])
    assert short.apply(nic, "if_sa_cnt", ()) is None and short.hang_timeouts == 1


def test_call_fault_and_deinstall_leak() -> None:
    """A call fault runs code inside the driver (its int result is the
    errno).  A failed deinstall is still a deinstall *call* for the ledger,
    the card's state leaks (the faulty NIC keeps it)."""
    nic = _flt()
    seen: list[str] = []

    def fn(n: FaultyNic, cb: str, args: tuple[Any, ...]) -> int:
        seen.append(cb)
        return errno.EBUSY

    nic.faults.script("if_sa_newkey", [Fault.call(fn)])
    assert nic.if_sa_newkey(nic.ifp, make_sav(), 3) == (errno.EBUSY, None)
    _, priv = nic.if_sa_newkey(nic.ifp, make_sav(), 3)
    nic.faults.script("if_sa_deinstall", [Fault.fail(errno.EIO)])
    assert nic.if_sa_deinstall(nic.ifp, 3, priv) == errno.EIO
    assert seen == ["if_sa_newkey"] and nic.outstanding() == {}
    assert nic.sa_table.count == 2, "leaked inside the card"
    assert nic.if_sa_newkey(nic.ifp, make_sav(0x9), 3)[0] == 0, "drv_spi reusable"
    assert not nic.violations


def test_randomized_plan_is_reproducible() -> None:
    def kinds(seed: int) -> list[str]:
        p = FaultPlan(seed)
        p.randomize("if_spdadd", p_fail=0.3, p_raise=0.2, latency=(0.0, 0.0))
        return [p.next("if_spdadd").kind for _ in range(50)]

    assert kinds(7) == kinds(7) and set(kinds(7)) == {"ok", "fail", "raise"}


def test_other_callbacks_faulted() -> None:
    nic = _flt()
    for cb in ("if_spdadd", "if_spddel", "if_sa_cnt", "if_hwassist"):
        nic.faults.set_default(cb, Fault.fail(errno.EIO))
    assert nic.if_spdadd(nic.ifp, None, None) == (errno.EIO, None)
    assert nic.if_spddel(nic.ifp, None, None) == errno.EIO
    assert nic.if_sa_cnt(nic.ifp, None, 3, None, None) == errno.EIO
    assert nic.if_hwassist(nic.ifp, None, 3, None) == 0


# -- races through the offload layer ------------------------------------------------------

class _Race:
    """A threaded rig with a faulty NIC and a second PF_KEY socket that the
    driver-side fault code uses (the taskqueue's helper thread)."""

    def __init__(self, seed: int, **off_kw: Any) -> None:
        off_kw.setdefault("extensions", ("free_drv_spi_on_error",))
        self.rig = OffloadRig(TqMode.THREAD, verbose=False, **off_kw)
        self.nic = FaultyNic("flt0", seed=seed, hang_limit=2.0,
                             cap_toggle_ifdown=True).attach(registry=self.rig.ifnets,
                                                            key=self.rig.key)
        self.rng = random.Random(seed)
        self.drv_rng = random.Random(seed + 1)     # used on the driver's thread only
        self.so2 = self.rig.h.socket(recvspace=1 << 30)
        self.spi = 0x10000

    def add(self) -> int:
        self.spi += 1
        self.rig.so.send(add_msg(self.spi).encode())
        return self.spi

    def delete(self, spi: int, so: Any = None) -> None:
        (so or self.rig.so).send(sa_req_msg(SADB.DELETE, spi).encode())

    def jitter(self) -> None:
        x = self.rng.random()
        if x < 0.3:
            time.sleep(0)                   # let the taskqueue thread run
        elif x < 0.35:
            time.sleep(0.0002)

    def add_and_delete(self, n: int, p_delete: float) -> None:
        """``n`` SADB_ADDs, each followed with probability ``p_delete`` (after a
        jitter) by its SADB_DELETE; the sockets drained every 200."""
        for i in range(n):
            spi = self.add()
            if self.rng.random() < p_delete:
                self.jitter()
                self.delete(spi)
            if i % 200 == 199:
                self.drain_sockets()

    def drain_sockets(self) -> None:
        self.rig.so.recv_all()
        self.so2.recv_all()

    def settle(self) -> None:
        self.nic.faults.release()
        self.rig.sync()
        assert wait_for(lambda: not self.rig.off.drv.stuck, 30), self.rig.off.drv.stuck
        self.rig.sync()

    def check(self) -> None:
        """Quiescent invariants, then flush and the after-flush ones."""
        rig, nic = self.rig, self.nic
        self.settle()
        rig.off._check(quiescent=True)
        rig.key._check()
        hs = rig.off.sav_handles()
        assert not [h for h in hs if h.sav.state == DEAD], "handle on a DEAD SA"
        live = {h.drv_spi for h in hs if installed(h.flags) and h.ifp is nic.ifp}
        assert live == set(nic.outstanding()), "kernel and card disagree"
        assert not nic.check_invariants()
        rig.flush()
        self.settle()
        rig.off._check(quiescent=True)
        assert rig.off.sav_handles() == []
        assert rig.off.drv_spi_unr.in_use == 0, "drv_spi count back to zero after a flush"
        assert nic.outstanding() == {}, "every successful newkey matched by one deinstall"
        assert not nic.violations and nic.handles() == []
        self.drain_sockets()

    def close(self) -> None:
        self.nic.faults.release()
        self.rig.close()


@pytest.fixture
def race_factory() -> Iterator[Callable[..., _Race]]:
    made: list[_Race] = []

    def make(seed: int, **kw: Any) -> _Race:
        r = _Race(seed, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _delete_during_install(r: _Race, n: int) -> None:
    """SADB_DELETE before the install task runs (§17.6), while the driver is
    inside if_sa_newkey (from the driver's own thread: §17.7, the install
    task forgets inline), and after it (an ordinary forget)."""
    def in_driver(nic: FaultyNic, cb: str, args: tuple[Any, ...]) -> Any:
        x = r.drv_rng.random()
        if x < 0.25:
            r.delete(args[1].spi, r.so2)
        elif x < 0.3:
            time.sleep(0.0001)
        if x > 0.95:
            return errno.ENOSPC
        if x > 0.9:
            return errno.EOPNOTSUPP
        return None

    r.nic.faults.set_default("if_sa_newkey", Fault.call(in_driver))
    r.add_and_delete(n, p_delete=0.6)


def _ifdown_during_install(r: _Race, n: int) -> None:
    """Interface down (stop path -> ipsec_accel_on_ifdown) and up again while
    installs and deletes are in flight on the taskqueue thread."""
    r.nic.faults.randomize("if_sa_newkey", latency=(0.0, 0.0002))
    reg = r.rig.ifnets
    for i in range(n):
        spi = r.add()
        x = r.rng.random()
        if x < 0.1:
            reg.if_setupdown(r.nic.ifp, False)
            r.jitter()
            reg.if_setupdown(r.nic.ifp, True)
        elif x < 0.4:
            r.jitter()
            r.delete(spi)
        if i % 200 == 199:
            r.drain_sockets()


def _capability_toggle(r: _Race, n: int) -> None:
    """ifconfig flt0 -ipsec / ipsec (close, on_ifdown, toggle, reopen) while
    installs run; nothing is re-offered after enabling (§17.9)."""
    r.nic.faults.randomize("if_sa_newkey", latency=(0.0, 0.0002), p_fail=0.05,
                           errnos=(errno.EOPNOTSUPP,))
    reg = r.rig.ifnets
    for i in range(n):
        spi = r.add()
        x = r.rng.random()
        if x < 0.1:
            assert reg.if_setipsec(r.nic.ifp, False) == 0
            r.jitter()
            assert reg.if_setipsec(r.nic.ifp, True) == 0
        elif x < 0.3:
            r.delete(spi)
        if i % 200 == 199:
            r.drain_sockets()


def _driver_hang(r: _Race, n: int) -> None:
    """Installs and deinstalls that hang past the layer's drv_timeout (the
    call is abandoned, reconciled when it returns), raise, or fail."""
    r.nic.faults.hang_limit = 0.03
    r.nic.faults.randomize("if_sa_newkey", p_hang=0.01, p_raise=0.02, p_fail=0.03,
                           errnos=(errno.ENOMEM, errno.EOPNOTSUPP))
    r.nic.faults.randomize("if_sa_deinstall", p_hang=0.01)
    r.add_and_delete(n, p_delete=0.5)


RACES = {
    "delete_during_install": (_delete_during_install, {}),
    "ifdown_during_install": (_ifdown_during_install, {}),
    "capability_toggle": (_capability_toggle, {}),
    "driver_hang": (_driver_hang, {"drv_timeout": 0.005}),
}


@pytest.mark.parametrize("name", sorted(RACES))
def test_race(name: str, race_factory: Callable[..., _Race]) -> None:
    """2,000 randomized iterations, then the invariants (module docstring)."""
    fn, kw = RACES[name]
    r = race_factory(seed=sorted(RACES).index(name) + 1, **kw)
    fn(r, 2000)
    r.check()
    if name == "driver_hang":
        assert r.rig.off.stats.drv_timeouts > 0 or r.nic.faults.seen["if_sa_newkey:hang"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RACES))
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_race_heavy(name: str, seed: int, race_factory: Callable[..., _Race]) -> None:
    fn, kw = RACES[name]
    r = race_factory(seed=seed, **kw)
    fn(r, 20000)
    r.check()


def test_race_freebsd_leaks_are_accounted(race_factory: Callable[..., _Race]) -> None:
    """Without "free_drv_spi_on_error" (FreeBSD), driver errors leak their
    drv_spi: after a flush the count equals the leaked set, nothing else."""
    r = race_factory(seed=5, extensions=())
    r.nic.faults.randomize("if_sa_newkey", p_fail=0.2, errnos=(errno.ENOSPC,))
    for _ in range(300):
        spi = r.add()
        if r.rng.random() < 0.5:
            r.delete(spi)
    r.settle()
    assert r.rig.off.stats.errors > 0
    r.rig.flush()
    r.settle()
    r.rig.off._check(quiescent=True)
    assert r.rig.off.drv_spi_unr.in_use == len(r.rig.off.drv_spi_leaked) > 0, r.rig.off.stats
    assert r.nic.outstanding() == {}


def test_counters_add_up_under_concurrency(race_factory: Callable[..., _Race]) -> None:
    """Two datapath threads transmit on offloaded SAs while the poll thread
    reports: after a final poll, the SA's hardware lifetime equals what the
    card encrypted."""
    r = race_factory(seed=9)
    nic, rig = r.nic, r.rig
    nic.set_transmit(lambda b: None)
    savs = [rig.add_sa(0x500 + i) for i in range(4)]
    rig.sync()
    handles = [rig.off.ipsec_accel_sav_handle(s, nic.ifp) for s in savs]
    assert all(h is not None for h in handles)
    nic.start_poll(0.001)
    n = 248

    def run(k: int) -> None:
        for j in range(n):
            h = handles[(j + k) % 4]
            nic.if_transmit(nic.ifp, tagged(PKT, h.drv_spi))    # type: ignore[union-attr]

    run_threads(run, [(0,), (1,)])
    nic.stop_poll()
    nic.poll_now()
    assert sum(s.accel_hw_allocs for s in savs) == 2 * n
    assert sum(s.lft_c_bytes for s in savs) == 2 * n * len(PKT)
    assert all(s.accel_hw_allocs == n // 2 for s in savs)
    r.check()


def test_nic_bytes_match_software_through_the_layer(race_factory: Callable[..., _Race]) -> None:
    """The faulty NIC still really encrypts (CBC + HMAC SA of key_testing):
    what it sends opens with the SA's software state."""
    from ipsec_accel.esp_encap import esp_input_packet
    r = race_factory(seed=3)
    frames: list[bytes] = []
    r.nic.set_transmit(frames.append)
    sav = r.rig.add_sa(0x777)
    r.rig.sync()
    h = r.rig.off.ipsec_accel_sav_handle(sav, r.nic.ifp)
    assert h is not None
    r.nic.if_transmit(r.nic.ifp, tagged(PKT, h.drv_spi))
    assert esp_input_packet(sw_state(sav), frames[0])[0] == PKT
    r.check()
