"""The mlx5-like NIC (drivers/mlx5.py), alone and under the real offload layer.

Reference: freebsd_ipsec_offload.md §13 (mlx5_ipsec.c: mlx5e_if_sa_newkey,
mlx5e_xfrm_validate_state, mlx5e_xfrm_validate_policy, the 1 s counter
work, mlx5e_if_ipsec_hwassist), §6.4 (SIOCSIFCAP toggle), §10, §17.
"""

from __future__ import annotations

import errno
from typing import Any, Iterator

import pytest

from drivers import Mlx5Nic
from drivers.hw import DIR_IN, DIR_OUT
from drivers.mlx5 import MLX5_REPLAY_WINDOWS
from drivers.testing import (
    GCM128_KEY, GCM256_KEY, Capture, gcm_sa, make_sav, make_sp, sw_state, tagged,
)
from ipsec_accel.ifnet import LINK_STATE_DOWN, LINK_STATE_UP, IfnetRegistry
from ipsec_accel.mbuf import CSUM_IP, CSUM_TSO, CSUM_UDP
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import OffloadRig
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.ipsec import IPSEC_DIR, IPSEC_MODE, IPSEC_POLICY
from pfkey.key_testing import lifetimes
from pfkey.keydb import DEAD
from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG, SADB_SAFLAGS

ESN = int(SADB_SAFLAGS.X_SAFLAGS_ESN)
PKT = udp_packet("10.0.0.1", "10.0.0.2", 1000, 2000, b"z" * 64)
GCM192_KEY = bytes(28)


def _nic(**kw: Any) -> Mlx5Nic:
    return Mlx5Nic("mce0", **kw).attach(registry=IfnetRegistry())


@pytest.mark.parametrize("sav_kw, nic_kw, reason", [
    ({}, {"packet_offload": False}, "FULL offload is not supported"),
    ({"state": DEAD}, {}, "SA is DEAD"),
    ({"enc": SADB_EALG.NONE, "key": b""}, {}, "Cannot offload authenticated xfrm states"),
    ({"enc": SADB_EALG.X_AESCBC, "key": bytes(16)}, {}, "Only IPSec aes-gcm-16"),
    ({"alg_comp": 2}, {}, "Cannot offload compressed"),
    ({"key": GCM192_KEY}, {}, "AEAD key length other than 128/256 bits"),
    ({"proto": 51}, {}, "Only ESP xfrm state"),
    ({"mode": IPSEC_MODE.TUNNEL}, {}, "Only transport xfrm states"),
    ({"mode": IPSEC_MODE.ANY}, {}, "Only transport xfrm states"),
    ({"natt": (4500, 4500)}, {"natt": False}, "Encapsulation is not supported"),
    ({"replay": 12, "flags": ESN}, {}, "Unsupported replay window size 12"),
    ({"flags": ESN}, {"esn": False}, "ESN is not supported"),
    ({"replay": 4}, {}, "non-ESN but replay-protect"),
])
def test_validate_state_refusals_are_eopnotsupp(sav_kw: dict[str, Any], nic_kw: dict[str, Any],
                                                 reason: str) -> None:
    """mlx5e_xfrm_validate_state: every refusal is EOPNOTSUPP (REJECTED
    handle, software fallback); Linux style answers EINVAL."""
    nic = _nic(**nic_kw)
    assert nic.if_sa_newkey(nic.ifp, make_sav(**sav_kw), 3) == (errno.EOPNOTSUPP, None)
    assert reason in nic.refusals[-1].reason
    assert nic.sa_table.count == 0
    lin = Mlx5Nic("mce1", errno_style="linux", **nic_kw).attach(registry=IfnetRegistry())
    assert lin.if_sa_newkey(lin.ifp, make_sav(**sav_kw), 3)[0] == errno.EINVAL


@pytest.mark.parametrize("sav_kw, nic_kw", [
    ({"key": GCM128_KEY}, {}),
    ({"key": GCM256_KEY}, {}),
    ({"natt": (4500, 4500)}, {}),
    ({"flags": ESN, "replay": 32}, {}),
    ({"src": "2001:db8::1", "dst": "2001:db8::2"}, {}),
    ({"mode": IPSEC_MODE.TUNNEL}, {"tunnel": True}),
])
def test_accepted_states(sav_kw: dict[str, Any], nic_kw: dict[str, Any]) -> None:
    nic = _nic(**nic_kw)
    err, priv = nic.if_sa_newkey(nic.ifp, make_sav(**sav_kw), 3)
    assert err == 0 and len(priv.entries) == 2


def test_replay_windows() -> None:
    assert MLX5_REPLAY_WINDOWS == {0, 4, 8, 16, 32}


def test_installs_inbound_then_outbound_and_rolls_back() -> None:
    """mlx5e_if_sa_newkey: INBOUND then OUTBOUND; an outbound failure tears
    the inbound SA down (ENOSPC with one slot left)."""
    nic = _nic(capacity=3)
    err, priv = nic.if_sa_newkey(nic.ifp, make_sav(0x1), 3)
    assert err == 0 and [e.direction for e in priv.entries] == [DIR_IN, DIR_OUT]
    assert [e.index for e in priv.entries] == [0, 1]
    assert nic.if_sa_newkey(nic.ifp, make_sav(0x2), 4) == (errno.ENOSPC, None)
    assert nic.sa_table.count == 2
    assert nic.if_sa_newkey_dir(nic.ifp, make_sav(0x3), 5, DIR_OUT)[0] == 0


def test_hwassist_mask() -> None:
    """mlx5e_if_ipsec_hwassist: the trunk's hwassist & TSO/TCP/UDP/IP."""
    nic = _nic()
    nic.ifp.if_hwassist = CSUM_TSO | CSUM_UDP | CSUM_IP | 0x00800000
    assert nic.if_hwassist(nic.ifp, None, 3, None) == CSUM_TSO | CSUM_UDP | CSUM_IP


class _Inp:
    def __init__(self, proto: int) -> None:
        self.inp_ip_p = proto


@pytest.mark.parametrize("sp_kw, inp, nic_kw, reason", [
    ({}, None, {"packet_offload": False}, "FULL offload"),
    ({"templates": 2}, None, {}, "exactly one template, not 2"),
    ({"policy": IPSEC_POLICY.BYPASS}, _Inp(17), {"prio": False}, "policy priority"),
    ({}, _Inp(17), {}, "Not valid input data"),
    ({"dir": IPSEC_DIR.ANY}, None, {}, "Wrong policy direction"),
    ({"mode": IPSEC_MODE.TUNNEL}, None, {}, "transport mode only"),
    ({"policy": IPSEC_POLICY.NONE}, None, {}, "specific on its action"),
    ({"policy": IPSEC_POLICY.BYPASS}, None, {}, "Missing port information"),
    ({"policy": IPSEC_POLICY.BYPASS}, _Inp(6), {}, "Unsupported IKE bypass protocol 6"),
])
def test_validate_policy_refusals_are_einval(sp_kw: dict[str, Any], inp: Any,
                                             nic_kw: dict[str, Any], reason: str) -> None:
    """mlx5e_xfrm_validate_policy: EINVAL (the SP handle becomes REJECTED)."""
    nic = _nic(**nic_kw)
    assert nic.if_spdadd(nic.ifp, make_sp(**sp_kw), inp) == (errno.EINVAL, None)
    assert reason in nic.refusals[-1].reason


def test_policy_attrs_and_spddel() -> None:
    """Global policies: prio 0, own action, reqid of the template; socket
    (IKE bypass) policies: prio 1, action IPSEC."""
    nic = _nic()
    err, pol = nic.if_spdadd(nic.ifp, make_sp(reqid=7), None)
    assert err == 0 and (pol["prio"], pol["action"], pol["reqid"]) == (0, 2, 7)
    err, pol2 = nic.if_spdadd(nic.ifp, make_sp(policy=IPSEC_POLICY.BYPASS, dir=1), _Inp(17))
    assert err == 0 and (pol2["prio"], pol2["action"]) == (1, int(IPSEC_POLICY.IPSEC))
    assert nic.if_spddel(nic.ifp, None, pol) == 0
    assert nic.policies() == [pol2]
    assert nic.if_spddel(nic.ifp, None, pol) == errno.ENOENT


# -- under the real offload layer --------------------------------------------------------

@pytest.fixture
def rig() -> Iterator[OffloadRig]:
    r = OffloadRig(TqMode.INLINE)
    yield r
    r.close()


def _attach(rig: OffloadRig, name: str = "mce0", **kw: Any) -> Mlx5Nic:
    return Mlx5Nic(name, **kw).attach(registry=rig.ifnets, key=rig.key)


def test_offload_handled_and_rejected(rig: OffloadRig) -> None:
    """A GCM transport SA is HANDLED (two hardware SAs); setkey's default
    mode "any" and a CBC SA are REJECTED (EOPNOTSUPP); nothing leaks."""
    nic = _attach(rig)
    ok = rig.add_sa(0x1000, **gcm_sa())
    anymode = rig.add_sa(0x1001, **gcm_sa(mode=None))
    cbc = rig.add_sa(0x1002)
    rig.sync()
    h = rig.off.ipsec_accel_sav_handle(ok, nic.ifp)
    assert h is not None and nic.handle(h.drv_spi) is h.ifdata
    assert rig.off.ipsec_accel_sav_handle(anymode, nic.ifp) is None
    assert rig.off.ipsec_accel_is_accel_sav(cbc)
    assert nic.sa_table.count == 2 and rig.off.stats.rejects == 2
    rig.flush()
    rig.check(balanced=True)
    assert nic.outstanding() == {} and nic.sa_table.count == 0 and not nic.check_invariants()


def test_counters_feed_lifetimes_and_byte_expiry(rig: OffloadRig) -> None:
    """§10: the poll's cumulative counters become SA current lifetime (and
    accel_hw_*): a hard byte lifetime expires the SA, which is forgotten."""
    nic = _attach(rig)
    cap = Capture()
    nic.set_transmit(cap)
    hard, soft = lifetimes(hard=(0, 10 * len(PKT) - 1, 0, 0), soft=(0, 8 * len(PKT), 0, 0))
    sav = rig.add_sa(0x1000, extra=[hard, soft], **gcm_sa())
    rig.sync()
    h = rig.off.ipsec_accel_sav_handle(sav, nic.ifp)
    assert h is not None
    for _ in range(4):
        nic.if_transmit(nic.ifp, tagged(PKT, h.drv_spi))
    assert cap.frames[0] == esp_transport_output(sw_state(sav), PKT)
    nic.poll_now()
    assert (sav.lft_c_bytes, sav.lft_c_allocations) == (4 * len(PKT), 4)
    assert (sav.accel_hw_octets, sav.accel_hw_allocs) == (4 * len(PKT), 4)
    nic.poll_now()                       # cumulative: a second report adds nothing
    assert sav.accel_hw_octets == 4 * len(PKT)
    for _ in range(6):
        nic.if_transmit(nic.ifp, tagged(PKT, h.drv_spi))
    nic.poll_now()
    rig.tick(1)                          # soft, then hard: DYING, then DEAD
    rig.tick(1)
    rig.sync()
    assert sav.state == DEAD
    assert nic.handles() == [] and nic.outstanding() == {}
    rig.check(balanced=True)


def test_capability_toggle_forgets_and_never_replays(rig: OffloadRig) -> None:
    """§6.4: ifconfig mce0 -ipsec closes the port, ipsec_accel_on_ifdown,
    toggles, reopens; enabling again replays nothing (§17.9)."""
    nic = _attach(rig)
    sav = rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    assert nic.handles()
    assert rig.ifnets.if_setipsec(nic.ifp, False) == 0
    rig.sync()
    assert not nic.ifp.ipsec_offload and nic.running
    assert nic.handles() == [] and rig.off.ipsec_accel_sav_handle(sav, nic.ifp) is None
    assert rig.ifnets.if_setipsec(nic.ifp, True) == 0
    rig.sync()
    assert nic.handles() == []
    rig.check()


def test_capability_toggle_reports_link_down_then_up(rig: OffloadRig) -> None:
    """FreeBSD sys/dev/mlx5/mlx5_en/mlx5_en_main.c, mlx5e_ioctl, case
    SIOCSIFCAP/SIOCSIFCAPNV under IPSEC_OFFLOAD: when the
    IFCAP2_IPSEC_OFFLOAD bit changes it calls mlx5e_close_locked (which
    reports if_link_state_change(LINK_STATE_DOWN) when the port was open),
    ipsec_accel_on_ifdown if IPSEC was on, toggles the bit, then
    mlx5e_open_locked (whose mlx5e_update_carrier reports the carrier:
    LINK_STATE_UP with the cable in).  Both directions, in that order."""
    nic = _attach(rig)
    rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    events: list[tuple[int, bool, int]] = []
    rig.ifnets.ifnet_link_event.register(
        lambda ifp, state: events.append((state, ifp.ipsec_offload, len(nic.handles())))
        if ifp is nic.ifp else None)
    assert nic.ifp.if_link_state == LINK_STATE_UP and len(nic.handles()) == 1
    assert rig.ifnets.if_setipsec(nic.ifp, False) == 0
    rig.sync()
    # DOWN before on_ifdown and the toggle; UP after both.
    assert events == [(LINK_STATE_DOWN, True, 1), (LINK_STATE_UP, False, 0)]
    assert nic.running and nic.ifp.if_link_state == LINK_STATE_UP
    del events[:]
    assert rig.ifnets.if_setipsec(nic.ifp, True) == 0
    assert events == [(LINK_STATE_DOWN, False, 0), (LINK_STATE_UP, True, 0)]
    rig.check()


def test_capability_toggle_keeps_a_pulled_cable_down(rig: OffloadRig) -> None:
    """mlx5_en_main.c: the reopen's mlx5e_update_carrier reports the vport
    state, so with the cable out the link stays DOWN across the toggle (the
    close's LINK_STATE_DOWN changes nothing either)."""
    nic = _attach(rig)
    rig.ifnets.if_link_state_change(nic.ifp, LINK_STATE_DOWN)
    events: list[int] = []
    rig.ifnets.ifnet_link_event.register(lambda ifp, state: events.append(state))
    assert rig.ifnets.if_setipsec(nic.ifp, False) == 0
    assert events == [] and nic.ifp.if_link_state == LINK_STATE_DOWN and nic.running


def test_capability_toggle_on_a_down_interface(rig: OffloadRig) -> None:
    """mlx5_en_main.c, mlx5e_ioctl: the toggle calls mlx5e_close_locked and
    mlx5e_open_locked whatever the interface state, but mlx5e_close_locked
    returns at once when the port is not open (the interface is down), so
    no LINK_STATE_DOWN; ipsec_accel_on_ifdown still runs when IPSEC was on,
    and neither call touches IFF_UP or IFF_DRV_RUNNING: the interface stays
    down, the handles are gone."""
    nic = _attach(rig)
    sav = rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    rig.ifnets.if_setupdown(nic.ifp, False)
    assert not nic.running and len(nic.handles()) == 1
    events: list[int] = []
    rig.ifnets.ifnet_link_event.register(lambda ifp, state: events.append(state))
    assert rig.ifnets.if_setipsec(nic.ifp, False) == 0
    rig.sync()
    assert LINK_STATE_DOWN not in events
    assert not nic.running and not nic.ifp.ipsec_offload
    assert nic.handles() == [] and rig.off.ipsec_accel_sav_handle(sav, nic.ifp) is None
    rig.check()


def _two_sas_then_down(rig: OffloadRig, **opts: Any) -> Mlx5Nic:
    """An mlx5 NIC (``opts``) with two offloaded SAs, then ``ifconfig
    down``; returns the NIC."""
    nic = _attach(rig, **opts)
    rig.add_sa(0x1000, **gcm_sa())
    rig.add_sa(0x1001, **gcm_sa(key=GCM256_KEY))
    rig.sync()
    assert len(nic.handles()) == 2
    rig.ifnets.if_setupdown(nic.ifp, False)
    rig.sync()
    return nic


def test_ifdown_keeps_handles(rig: OffloadRig) -> None:
    """FreeBSD sys/dev/mlx5/mlx5_en/mlx5_en_main.c, mlx5e_ioctl SIOCSIFFLAGS
    with IFF_UP cleared: port status DOWN, mlx5e_close_locked (which only
    marks the port closed, reports LINK_STATE_DOWN and closes the channels),
    mlx5e_update_carrier, IFF_DRV_RUNNING cleared -- no
    ipsec_accel_on_ifdown; net/if.c's if_down/if_unroute does not call it
    either.  The handles (and the hardware SAs, which live in flow tables
    that only mlx5e_destroy_ifp closes) survive ``ifconfig mce0 down; up``."""
    nic = _two_sas_then_down(rig)
    assert not nic.running
    assert len(nic.handles()) == 2 and len(rig.off.sav_handles()) == 2
    rig.ifnets.if_setupdown(nic.ifp, True)
    rig.sync()
    assert nic.running and len(nic.handles()) == 2
    rig.check()


def test_link_down_keeps_handles(rig: OffloadRig) -> None:
    """FreeBSD mlx5_en_main.c: a port event (MLX5_DEV_EVENT_PORT_DOWN in
    mlx5e_async_event_sub) only queues update_carrier_work, and
    mlx5e_update_carrier only calls if_link_state_change(LINK_STATE_DOWN);
    the stack's if_link_state_change/do_link_state_change (net/if.c) does
    not call ipsec_accel_on_ifdown.  A cable pull keeps the handles."""
    nic = _attach(rig)
    rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    assert len(nic.handles()) == 1
    rig.ifnets.if_link_state_change(nic.ifp, LINK_STATE_DOWN)
    rig.sync()
    assert len(nic.handles()) == 1 and len(rig.off.sav_handles()) == 1
    rig.check()


def test_detach_forgets_handles(rig: OffloadRig) -> None:
    """FreeBSD mlx5_en_main.c, mlx5e_destroy_ifp: after ether_ifdetach it
    calls ipsec_accel_on_ifdown (under IPSEC_OFFLOAD); if_detach's
    ifnet_departure_event already ran ipsec_offload.c's
    ipsec_accel_ifdetach_event, so the second call finds nothing."""
    nic = _attach(rig)
    rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    assert len(nic.handles()) == 1
    nic.detach()
    rig.sync()
    assert nic.handles() == [] and rig.off.sav_handles() == []
    rig.check(balanced=True)


def test_ifdown_forgets_opt_in(rig: OffloadRig) -> None:
    """``ifdown_forgets=True``: the model's opt-in for a driver whose stop
    path calls ipsec_accel_on_ifdown (FreeBSD's mlx5 does not)."""
    nic = _two_sas_then_down(rig, ifdown_forgets=True)
    assert nic.handles() == [] and rig.off.sav_handles() == []
    rig.check(balanced=True)


def test_vlan_handles_report_against_the_vlan(rig: OffloadRig) -> None:
    """A vlan proxies to mlx5 with the vlan ifp: the SA is installed twice
    (parent and vlan handle), counters are reported per handle."""
    nic = _attach(rig)
    err, vname = rig.ifnets.if_clone_create("mce0.5")
    assert err == 0
    vlan = rig.ifnets[vname]
    sav = rig.add_sa(0x1000, **gcm_sa())
    rig.sync()
    hv = rig.off.ipsec_accel_sav_handle(sav, vlan)
    hp = rig.off.ipsec_accel_sav_handle(sav, nic.ifp)
    assert hv is not None and hp is not None and hv.drv_spi != hp.drv_spi
    assert nic.handle(hv.drv_spi).ifpo is vlan
    vlan.if_transmit(vlan, tagged(PKT, hv.drv_spi))    # vlan_transmit -> parent
    nic.poll_now()
    assert sav.accel_hw_allocs == 1
    rig.flush()
    rig.check(balanced=True)


def test_spd_offload_through_the_layer(rig: OffloadRig) -> None:
    """if_spdadd under the layer: a transport policy is installed, a
    two-template one REJECTED (handle kept, never retried)."""
    nic = _attach(rig)
    sp = rig.spdadd()
    rig.sync()
    assert len(nic.policies()) == 1 and nic.policies()[0]["sp"] is sp
    rig.spdflush()
    rig.sync()
    assert nic.policies() == []
    rig.check()


def test_gmac_auth_ids() -> None:
    """esp_init sets alg_auth to the GMAC of the key size; mlx5 accepts
    AES128GMAC/AES256GMAC only."""
    assert make_sav(key=GCM128_KEY).alg_auth == SADB_AALG.X_AES128GMAC
    assert make_sav(key=GCM256_KEY).alg_auth == SADB_AALG.X_AES256GMAC
