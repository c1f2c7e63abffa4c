"""The Chelsio-T6-like NIC (drivers/chelsio.py).

Reference: linux_xfrm_offload.md §7 (ch_ipsec: TX-only crypto offload, no
table, AEAD ICV 96/128, ESN supported, EBUSY on ULD contention, EOPNOTSUPP
when the ULD is not loaded) and P5 of §10; the offload layer's
"sa_direction" extension (issue 5 item 5).
"""

from __future__ import annotations

import errno
from typing import Iterator

import pytest

from drivers import ChelsioNic
from drivers.hw import DIR_IN, DIR_OUT
from drivers.testing import (
    GCM256_KEY, Capture, crypto_offload_frame, gcm_sa, make_sav, sw_state, tagged,
)
from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.packet import udp_packet
from ipsec_accel.taskqueue import TqMode
from ipsec_accel.testing import OffloadRig
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.ipsec import IPSEC_DIR, IPSEC_MODE
from pfkey.pfkeyv2 import SADB_EALG, SADB_SAFLAGS

PKT = udp_packet("10.0.0.1", "10.0.0.2", 7, 9, b"t6" * 40)


def _cc(**kw: object) -> ChelsioNic:
    return ChelsioNic("cc0", **kw).attach(registry=IfnetRegistry())  # type: ignore[arg-type]


def test_needs_the_direction() -> None:
    """No direction (FreeBSD's KPI): EOPNOTSUPP.  OUTBOUND: a TX key context
    (no table); INBOUND: accepted, nothing in hardware (software decrypts)."""
    nic = _cc()
    assert nic.if_sa_newkey(nic.ifp, make_sav(), 3) == (errno.EOPNOTSUPP, None)
    err, out = nic.if_sa_newkey_dir(nic.ifp, make_sav(0x1), 4, DIR_OUT)
    assert err == 0 and [e.direction for e in out.entries] == [DIR_OUT]
    assert out.entries[0].table is not None and out.entries[0].table.capacity is None
    err, inb = nic.if_sa_newkey_dir(nic.ifp, make_sav(0x2), 5, DIR_IN)
    assert err == 0 and inb.entries == []
    sav = make_sav(0x2)
    wire = esp_transport_output(sw_state(sav), PKT)
    nic.wire_input(wire)
    assert bytes(nic.rx_queue.popleft().data) == wire


def test_ebusy_under_uld_contention_and_uld_not_loaded() -> None:
    """The ULD mutex held elsewhere -> EBUSY (hard, transient); the ULD not
    loaded -> EOPNOTSUPP (software fallback), in both errno styles."""
    nic = _cc()
    with nic.uld_lock:
        assert nic.if_sa_newkey_dir(nic.ifp, make_sav(), 3, DIR_OUT) == (errno.EBUSY, None)
    assert nic.if_sa_newkey_dir(nic.ifp, make_sav(), 3, DIR_OUT)[0] == 0
    off = _cc(uld_loaded=False, errno_style="linux")
    assert off.if_sa_newkey_dir(off.ifp, make_sav(), 3, DIR_OUT) == (errno.EOPNOTSUPP, None)


@pytest.mark.parametrize("kw", [
    {"proto": 51}, {"natt": (4500, 4500)}, {"enc": SADB_EALG.X_AESCBC, "key": bytes(16)},
    {"key": bytes(28)}, {"alg_comp": 2},
])
def test_refusals(kw: dict[str, object]) -> None:
    nic = _cc()
    assert nic.if_sa_newkey_dir(nic.ifp, make_sav(**kw), 3, DIR_OUT) == (  # type: ignore[arg-type]
        errno.EOPNOTSUPP, None)


@pytest.mark.parametrize("sav_kw", [
    {}, {"key": GCM256_KEY}, {"mode": IPSEC_MODE.TUNNEL},
    {"flags": int(SADB_SAFLAGS.X_SAFLAGS_ESN), "replay": 4},
])
def test_tx_crypto_equals_software(sav_kw: dict[str, object]) -> None:
    """ESN supported: the stack passes seq_hi with the packet."""
    nic = _cc()
    cap = Capture()
    nic.set_transmit(cap)
    sav = make_sav(**sav_kw)  # type: ignore[arg-type]
    assert nic.if_sa_newkey_dir(nic.ifp, sav, 3, DIR_OUT)[0] == 0
    sw = sw_state(sav)
    seq = (3 << 32 | 9) if sav.flags else 9
    frame = crypto_offload_frame(sw, PKT, seq=seq, iv=b"\x01" * 8)
    nic.if_transmit(nic.ifp, tagged(frame, 3, crypto=True, seq_hi=seq >> 32))
    assert cap.pop() == esp_transport_output(sw, PKT, seq=seq, iv=b"\x01" * 8)


@pytest.fixture
def rig() -> Iterator[OffloadRig]:
    r = OffloadRig(TqMode.INLINE, extensions=("sa_direction",))
    yield r
    r.close()


def test_with_the_direction_extension(rig: OffloadRig) -> None:
    """The SPD implies OUTBOUND for an SA matching an outbound policy: the
    layer calls if_sa_newkey_dir and the SA is offloaded; an SA no policy
    covers gets SA_DIR_UNKNOWN and is REJECTED."""
    nic = ChelsioNic("cc0").attach(registry=rig.ifnets, key=rig.key)
    rig.spdadd(dir=IPSEC_DIR.OUTBOUND, src="10.0.0.0", dst="10.0.0.0")
    sav = rig.add_sa(0x1000, **gcm_sa())
    lone = rig.add_sa(0x1001, **gcm_sa(src="10.8.0.1", dst="10.8.0.2"))
    rig.sync()
    assert rig.off.ipsec_accel_sav_handle(sav, nic.ifp) is not None
    assert nic.handles()[0].entries[0].direction == DIR_OUT
    assert rig.off.ipsec_accel_sav_handle(lone, nic.ifp) is None
    assert rig.off.ipsec_accel_is_accel_sav(lone)
    rig.flush()
    rig.check(balanced=True)
