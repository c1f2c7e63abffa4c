"""Opt-in extensions beyond FreeBSD (ipsec_accel/ipsec_offload_ext.py,
docs/OFFLOAD_EXTENSIONS.md), each with the reviewer question it answers.
With an extension off, FreeBSD's behaviour is what the other test modules
check."""

from __future__ import annotations

import io

import pytest

from ipsec_accel.ifconfig import ifconfig
from ipsec_accel.ipsec_offload import (
    EXTENSIONS, SA_DIR_UNKNOWN, SADB_X_IF_HW_OFFL_F_NOFALLBACK, SaOffloadInfo,
)
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import (
    OffloadRig)
from pfkey.extensions import IpsecRequest, SadbAddress, SadbXIfHwOffl, Sockaddr
from pfkey.ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE
from pfkey.key_testing import E, lifetimes, policy, sa_in
from pfkey.keydb import DYING

OUT, IN = int(IPSEC_DIR.OUTBOUND), int(IPSEC_DIR.INBOUND)


def _rig(make, *ext: str, mode: TqMode = TqMode.INLINE) -> OffloadRig:
    return make(mode, extensions=list(ext))


# -- reoffer --------------------------------------------------------------------------

def test_ext_reoffer_on_capability_enable(make_offload_rig) -> None:
    """Review D44219: "allow existing SA/SP to be claimed ... when the cap is
    first enabled".  ifnet_capchange_event (IPSEC 0 -> 1) queues a re-offer
    of the SAD and SPD to that interface."""
    r = _rig(make_offload_rig, "reoffer")
    nic = r.nic()
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    n = r.off.stats.reoffers
    assert ifconfig(r.ifnets, ["tnic0", "-ipsec"], out=io.StringIO()) == 0
    assert not sav.accel_ifps and not sp.accel_ifps
    assert ifconfig(r.ifnets, ["tnic0", "ipsec"], out=io.StringIO()) == 0
    assert r.handles(sav) == {"tnic0": "HANDLED"} and len(sp.accel_ifps) == 1
    assert r.off.stats.reoffers == n + 1
    r.flush()
    r.spdflush()
    r.check(balanced=True)


def test_ext_reoffer_on_attach_not_on_rename(make_offload_rig) -> None:
    """Review D44219: "... when it first starts".  ifnet_arrival_event of a
    new IPSEC-capable interface re-offers; a rename (IFF_RENAMING) does not."""
    r = _rig(make_offload_rig, "reoffer")
    a = r.nic("tnic0")
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    b = r.nic("tnic1")
    assert r.handles(sav) == {"tnic0": "HANDLED", "tnic1": "HANDLED"}
    assert {h.ifp.if_xname for h in sp.accel_ifps} == {"tnic0", "tnic1"}
    n = r.off.stats.reoffers
    assert r.ifnets.if_rename(b, "tnic9") == 0
    assert r.off.stats.reoffers == n and r.drv(b).count("if_sa_newkey") == 1
    r.nic("tnic2", enabled=False)                       # IPSEC off: nothing
    assert r.off.stats.reoffers == n
    r.check()
    _ = a


def test_ext_reoffer_covers_never_installed_and_dying(make_offload_rig) -> None:
    """A re-offer gives an SA whose install task ran (INST) its missing
    interface even when DYING; a never-installed SA (offered in FIPS mode)
    gets an ordinary newkey -- which, like FreeBSD's, needs MATURE."""
    r = _rig(make_offload_rig, "reoffer")
    a = r.nic("tnic0", enabled=False)
    inst = r.add_sa(0x1000, extra=lifetimes((0, 0, 100, 0), (0, 0, 5, 0)))
    r.off.set_fips(True)
    never = r.add_sa(0x2000)
    never_dying = r.add_sa(0x3000, extra=lifetimes((0, 0, 100, 0), (0, 0, 5, 0)))
    r.off.set_fips(False)
    assert inst.accel_flags != 0 and never.accel_flags == never_dying.accel_flags == 0
    r.tick(6)
    assert inst.state == never_dying.state == DYING
    r.nic("tnic1")
    assert r.handles(inst) == {"tnic1": "HANDLED"}
    assert r.handles(never) == {"tnic1": "HANDLED"}
    assert r.handles(never_dying) == {}
    assert r.ifnets.if_setipsec(a, True) == 0
    assert r.handles(never) == {"tnic0": "HANDLED", "tnic1": "HANDLED"}
    r.check()


def test_ext_reoffer_races_with_forget(make_offload_rig) -> None:
    """Re-offer and forget: a delete before the re-offer task runs sets
    DEINST and the re-offer skips the SA; a delete while the re-offer is
    inside the driver is resolved at its end (inline forget, as the install
    task does) -- nothing is left installed."""
    r = _rig(make_offload_rig, "reoffer", mode=TqMode.MANUAL)
    r.nic("tnic0")
    sav = r.add_sa(0x1000)
    sav2 = r.add_sa(0x2000)
    r.sync()
    b = r.nic("tnic1")                       # re-offer queued
    r.delete_sa(0x1000)                      # DEINST now; forget task queued
    r.drv(b).script("if_sa_newkey", lambda ifp, s, d: (r.delete_sa(0x2000), 0)[1])
    r.sync()
    assert [c.key for c in r.drv(b).calls if c.method == "if_sa_newkey"] == [0x2000]
    assert r.drv(b).count("if_sa_deinstall") == 1
    assert not sav.accel_ifps and not sav2.accel_ifps
    r.check(balanced=True)


def test_ext_reoffer_requires_extension(offload_rig: OffloadRig) -> None:
    nic = offload_rig.nic()
    with pytest.raises(RuntimeError):
        offload_rig.off.ipsec_accel_reoffer(nic)


# -- push to software ------------------------------------------------------------------

def test_ext_push_to_sw(offload_rig: OffloadRig) -> None:
    """Review D44219: "Allow removal of live SA/SP from the hw to force
    processing back into sw".  ipsec_accel_push_to_sw removes the handles of
    one SA, one SP, one interface, or everything; SAs stay in the SAD and
    output falls back to software (no handle)."""
    r = offload_rig
    a, b = r.nic("tnic0"), r.nic("tnic1")
    s1, s2 = r.add_sa(0x1000), r.add_sa(0x2000)
    sp = r.spdadd()
    off = r.off
    assert off.ipsec_accel_push_to_sw(sav=s1, ifp=a) == 1
    assert r.handles(s1) == {"tnic1": "HANDLED"} and off.ipsec_accel_sav_handle(s1, a) is None
    assert off.ipsec_accel_push_to_sw(sp=sp) == 2 and not sp.accel_ifps
    assert off.ipsec_accel_push_to_sw(ifp=b) == 2
    assert r.handles(s2) == {"tnic0": "HANDLED"}
    assert off.ipsec_accel_push_to_sw() == 1
    assert off.stats.pushed_to_sw == 6 and r.key.savhash[0x1000] is s1
    r.check(balanced=True)


# -- direction -------------------------------------------------------------------------

def test_ext_sa_direction_from_spd(make_offload_rig) -> None:
    """Review D44219: "it is incorrect for the infrastructure to explicitly
    announce that the SA will be used in both directions".  With
    "sa_direction" a driver providing if_sa_newkey_dir is told OUTBOUND or
    INBOUND when the SPD implies it, else SA_DIR_UNKNOWN."""
    r = _rig(make_offload_rig, "sa_direction")
    nic = r.nic(driver=r.driver(ext=True))
    r.spdadd(src="10.0.0.1", dst="10.0.0.2", prefs=32, prefd=32)
    r.spdadd(dir=IN, src="10.0.0.2", dst="10.0.0.1", prefs=32, prefd=32)
    r.add_sa(0x1000, src="10.0.0.1", dst="10.0.0.2")
    r.add_sa(0x2000, src="10.0.0.2", dst="10.0.0.1")
    r.add_sa(0x3000, src="10.9.9.1", dst="10.9.9.2")
    assert r.drv(nic).directions == [(0x1000, OUT), (0x2000, IN), (0x3000, SA_DIR_UNKNOWN)]
    assert r.drv(nic).count("if_sa_newkey") == 0
    r.check()


def test_ext_sa_direction_tunnel_and_ambiguous(make_offload_rig) -> None:
    """Tunnel requests match by endpoints; an SA two opposite policies
    imply is SA_DIR_UNKNOWN; with the extension off the plain if_sa_newkey
    is used even by a driver that has if_sa_newkey_dir."""
    r = _rig(make_offload_rig, "sa_direction")
    nic = r.nic(driver=r.driver(ext=True))
    tun = IpsecRequest(50, IPSEC_MODE.TUNNEL, IPSEC_LEVEL.REQUIRE, 0,
                       Sockaddr.from_ip("192.0.2.1"), Sockaddr.from_ip("192.0.2.2"))
    r.spdadd(pol=policy(OUT, requests=(tun,)))
    r.add_sa(0x1000, src="192.0.2.1", dst="192.0.2.2", mode=IPSEC_MODE.TUNNEL)
    r.spdadd(src="10.0.0.0", dst="10.0.0.0", prefs=24, prefd=24)
    r.spdadd(dir=IN, src="10.0.0.0", dst="10.0.0.0", prefs=24, prefd=24)
    r.add_sa(0x2000)
    assert r.drv(nic).directions == [(0x1000, OUT), (0x2000, SA_DIR_UNKNOWN)]
    plain = make_offload_rig(TqMode.INLINE)
    n2 = plain.nic(driver=plain.driver(ext=True))
    plain.add_sa(0x1000)
    assert plain.drv(n2).count("if_sa_newkey") == 1 and plain.drv(n2).directions == []


# -- combined SA+SP --------------------------------------------------------------------

def test_ext_combined_deferred_until_policy(make_offload_rig) -> None:
    """Review D44219: devices "that require direction, mode (tunnel/transport),
    and the IP addresses" and "callbacks that provide combined SA+SP
    information".  if_sa_sp_newkey gets SaOffloadInfo; without a policy
    implying the SA the install waits, and the SPDADD that brings one
    installs it."""
    r = _rig(make_offload_rig, "sa_sp_combined")
    d = r.driver(ext=True)
    nic = r.nic(driver=d)
    sav = r.add_sa(0x1000, src="10.0.0.1", dst="10.0.1.5")
    assert not sav.accel_ifps and r.off.stats.deferred == 1 and d.calls == []
    sp = r.spdadd()                    # 10.0.0.0/24 -> 10.0.1.0/24 outbound
    assert r.handles(sav) == {"tnic0": "HANDLED"}
    (spi, info), = d.infos
    assert spi == 0x1000 and isinstance(info, SaOffloadInfo)
    assert (info.direction, info.mode, info.proto) == (OUT, 0, 50)
    assert info.policies == (sp,) and info.src == sav.sah.saidx.src
    # an SA a policy already implies is installed at once
    sav2 = r.add_sa(0x2000, src="10.0.0.3", dst="10.0.1.7")
    assert r.handles(sav2) == {"tnic0": "HANDLED"}
    r.check()
    _ = nic


def test_ext_combined_pending_dropped_on_forget_and_ifdown(make_offload_rig) -> None:
    """A deferred SA that is deleted, or whose interface goes down, is no
    longer pending: a later policy installs nothing."""
    r = _rig(make_offload_rig, "sa_sp_combined")
    d = r.driver(ext=True)
    a = r.nic("tnic0", driver=d)
    r.add_sa(0x1000, src="10.0.0.1", dst="10.0.1.5")
    keep = r.add_sa(0x2000, src="10.0.0.1", dst="10.0.1.6")
    r.delete_sa(0x1000, dst="10.0.1.5")
    r.off.ipsec_accel_on_ifdown(a)
    assert r.off._combined_pending == {keep: set()}
    r.spdadd()
    assert d.infos == [] and not keep.accel_ifps
    r.check()


# -- no software fallback --------------------------------------------------------------

def test_ext_nofallback_flag(make_offload_rig) -> None:
    """Seed 002: "some users might not want a software fallback ... the
    crypto operation _must_ be processed by a special NIC".  Bit 0x1 of the
    IF_HW_OFFL flags (key_newsav now keeps them in accel_ifflags) marks the
    SA; an empty name with the bit restricts nothing; the predicate tells the
    datapath to drop what it cannot offload; the dump reports the bit."""
    r = _rig(make_offload_rig, "nofallback")
    a, b = r.nic("tnic0"), r.nic("tnic1")
    r.drv(b).set_default("if_sa_newkey", 95)        # EOPNOTSUPP on Linux hosts
    import errno
    r.drv(b).set_default("if_sa_newkey", errno.EOPNOTSUPP)
    sav = r.add_sa(0x1000, ifname="", ifflags=SADB_X_IF_HW_OFFL_F_NOFALLBACK)
    assert sav.accel_ifname == "" and sav.accel_ifflags == SADB_X_IF_HW_OFFL_F_NOFALLBACK
    assert r.handles(sav) == {"tnic0": "HANDLED", "tnic1": "REJECTED"}
    off = r.off
    assert off.ipsec_accel_sa_nofallback(sav)
    assert off.ipsec_accel_sav_handle(sav, b) is None      # datapath: drop, not software
    ext = r.get_sa(0x1000).get(E.X_IF_HW_OFFL)
    assert ext == SadbXIfHwOffl("tnic0", SADB_X_IF_HW_OFFL_F_NOFALLBACK)
    plain = r.add_sa(0x2000)
    assert not off.ipsec_accel_sa_nofallback(plain)
    off.ipsec_accel_sa_set_nofallback(plain)
    assert off.ipsec_accel_sa_nofallback(plain)
    off.ipsec_accel_sa_set_nofallback(plain, False)
    assert not off.ipsec_accel_sa_nofallback(plain)
    r.check()


def test_ext_nofallback_off_is_freebsd(offload_rig: OffloadRig) -> None:
    """Without the extension the flag is stored but means nothing: an empty
    name rejects every interface (FreeBSD strcmp), the predicate is False,
    the dump's flags are 0, and the setter refuses."""
    r = offload_rig
    r.nic()
    sav = r.add_sa(0x1000, ifname="", ifflags=SADB_X_IF_HW_OFFL_F_NOFALLBACK)
    assert r.handles(sav) == {"tnic0": "REJECTED"}
    assert not r.off.ipsec_accel_sa_nofallback(sav)
    assert r.get_sa(0x1000).get(E.X_IF_HW_OFFL) == SadbXIfHwOffl("", 0)
    with pytest.raises(RuntimeError):
        r.off.ipsec_accel_sa_set_nofallback(sav)


def test_ext_accel_ifflags_survive_updateaddresses(offload_rig: OffloadRig) -> None:
    """key_updateaddresses clones the SA with attrs.evolve: the stored flags
    (like accel_ifname in the fixed model) go to the clone."""
    r = offload_rig
    r.add_sa(0x1000, ifname="tnic0", ifflags=1)
    r.update_sa(0x1000, auth_key=None, enc_key=None,
                extra=(SadbAddress(E.X_NEW_ADDRESS_DST, sa_in("10.0.0.7")),))
    assert r.key.savhash[0x1000].accel_ifflags == 1


# -- FIPS ------------------------------------------------------------------------------

def test_ext_fips_switch(make_offload_rig) -> None:
    """Seed 002: "If the private IPsec SA key get pushed into the card then we
    also have FIPS issues ... disable offload in FIPS mode."  Turning it on
    pushes every handle back to software and offers nothing; off (with
    "reoffer") offers the SAD and SPD again."""
    r = _rig(make_offload_rig, "reoffer")
    nic = r.nic()
    sav = r.add_sa(0x1000)
    sp = r.spdadd()
    assert r.off.sysctl("net.inet.ipsec.offload.fips", 1) == 0
    assert not sav.accel_ifps and not sp.accel_ifps
    new = r.add_sa(0x2000)
    sp2 = r.spdadd(src="10.9.0.0")
    assert not new.accel_ifps and not sp2.accel_ifps
    r.off.set_fips(False)
    r.sync()
    assert r.handles(sav) == r.handles(new) == {"tnic0": "HANDLED"}
    assert len(sp.accel_ifps) == len(sp2.accel_ifps) == 1
    r.check()
    _ = nic


def test_ext_names_documented() -> None:
    """Every extension is documented here and in docs/OFFLOAD_EXTENSIONS.md."""
    import pathlib
    doc = (pathlib.Path(__file__).parents[1] / "docs" / "OFFLOAD_EXTENSIONS.md").read_text()
    for name in list(EXTENSIONS) + ["push_to_sw", "fips"]:
        assert f"`{name}`" in doc, name
