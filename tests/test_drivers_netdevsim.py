"""The netdevsim-like NIC (drivers/netdevsim.py).

Reference: linux_xfrm_offload.md §4 (netdevsim ipsec.c: 33 shared slots,
handle = index | BIT(31), rfc4106 ICV 128 with a 128-bit key, ENOSPC,
nsim_ipsec_tx, the debugfs ``ipsec`` file) and P1 of §10; the selftest
``rtnetlink.sh`` ``kci_test_ipsec_offload`` whose expected dump is replayed.
"""

from __future__ import annotations

import errno
import logging

import pytest

from drivers import NetdevsimNic
from drivers.hw import DIR_IN, DIR_OUT
from drivers.netdevsim import NSIM_IPSEC_MAX_SA_COUNT, NSIM_IPSEC_VALID
from drivers.testing import (
    GCM256_KEY, Capture, crypto_offload_frame, make_sav, sw_state, tagged,
)
from ipsec_accel.ifnet import IfnetRegistry
from ipsec_accel.packet import icmp_echo
from ipsec_accel.esp_encap import esp_transport_output
from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import SADB_EALG, SADB_SAFLAGS

#: rtnetlink.sh: key "1234567890123456" + salt "dcba", 128 bits + 32.
RTNL_KEY = b"1234567890123456dcba"
SRC, DST = "192.168.123.3", "192.168.123.4"


def _nsim(**kw: object) -> NetdevsimNic:
    return NetdevsimNic("nsim0", **kw).attach(registry=IfnetRegistry())  # type: ignore[arg-type]


def test_rtnetlink_selftest_dump_replayed() -> None:
    """kci_test_ipsec_offload: an out and an in SA with SPI 9, three pings,
    then the exact debugfs text (classic and >= 6.13 formats); after the
    flush ``SA count=0``."""
    nic = _nsim()
    cap = Capture()
    nic.set_transmit(cap)
    out = make_sav(9, src=SRC, dst=DST, key=RTNL_KEY)
    inb = make_sav(9, src=DST, dst=SRC, key=RTNL_KEY)
    e1, p_out = nic.if_sa_newkey_dir(nic.ifp, out, 3, DIR_OUT)
    e2, p_in = nic.if_sa_newkey_dir(nic.ifp, inb, 4, DIR_IN)
    assert (e1, e2) == (0, 0)
    sw = sw_state(out)
    for seq in (1, 2, 3):
        ping = icmp_echo(SRC, DST, 1, seq, b"p" * 56)
        nic.if_transmit(nic.ifp, tagged(crypto_offload_frame(sw, ping, seq=seq,
                                                             iv=seq.to_bytes(8, "big")),
                                        3, crypto=True))
        assert cap.pop() == esp_transport_output(sw_state(out), ping, seq=seq,
                                                 iv=seq.to_bytes(8, "big"))
    assert nic.debugfs_ipsec() == (
        "SA count=2 tx=3\n"
        "sa[0] tx ipaddr=0x00000000 00000000 00000000 00000000\n"
        "sa[0]    spi=0x00000009 proto=0x32 salt=0x61626364 crypt=1\n"
        "sa[0]    key=0x34333231 38373635 32313039 36353433\n"
        "sa[1] rx ipaddr=0x00000000 00000000 00000000 037ba8c0\n"
        "sa[1]    spi=0x00000009 proto=0x32 salt=0x61626364 crypt=1\n"
        "sa[1]    key=0x34333231 38373635 32313039 36353433\n")
    dotted = nic.debugfs_ipsec("dotted").splitlines()
    assert dotted[1] == f"sa[0] tx ipaddr={DST}" and dotted[4] == f"sa[1] rx ipaddr={SRC}"
    assert [p_out.entries[0].aux["handle"], p_in.entries[0].aux["handle"]] == \
        [0 | NSIM_IPSEC_VALID, 1 | NSIM_IPSEC_VALID]
    nic.if_sa_deinstall(nic.ifp, 3, p_out)
    nic.if_sa_deinstall(nic.ifp, 4, p_in)
    assert nic.debugfs_ipsec().startswith("SA count=0 tx=3\n")


def test_33_slots_shared_and_enospc() -> None:
    """One 33-slot table for RX and TX.  Direction known: 33 SAs; without a
    direction each SA takes two slots, so the 17th does not fit (ENOSPC,
    the half placed first is removed)."""
    nic = _nsim()
    for i in range(NSIM_IPSEC_MAX_SA_COUNT):
        assert nic.if_sa_newkey_dir(nic.ifp, make_sav(0x100 + i), 3 + i, DIR_OUT)[0] == 0
    assert nic.if_sa_newkey_dir(nic.ifp, make_sav(0x999), 99, DIR_IN) == (errno.ENOSPC, None)
    assert nic.refusals[-1].reason == "No space for SA in Rx table!"
    nic2 = NetdevsimNic("nsim1").attach(registry=IfnetRegistry())
    for i in range(16):
        assert nic2.if_sa_newkey(nic2.ifp, make_sav(0x100 + i), 3 + i)[0] == 0
    assert nic2.if_sa_newkey(nic2.ifp, make_sav(0x999), 99) == (errno.ENOSPC, None)
    assert nic2.count == 32


@pytest.mark.parametrize("kw, reason", [
    ({"enc": SADB_EALG.X_AESCBC, "key": bytes(16)}, "rfc4106(gcm(aes))"),
    ({"key": GCM256_KEY}, "only supports 128 bit keys"),
    ({"proto": 51}, "AH"),
    ({"proto": 108}, "Unsupported protocol"),
    ({"alg_comp": 2}, "Compression"),
    ({"flags": int(SADB_SAFLAGS.X_SAFLAGS_ESN)}, "ESN"),
])
def test_refusals(kw: dict[str, object], reason: str) -> None:
    nic = _nsim()
    sav = make_sav(**kw)  # type: ignore[arg-type]
    assert nic.if_sa_newkey(nic.ifp, sav, 3) == (errno.EOPNOTSUPP, None)
    assert reason in nic.refusals[-1].reason and nic.refusals[-1].linux_errno == errno.EINVAL


def test_mode_and_family_not_checked() -> None:
    nic = _nsim()
    assert nic.if_sa_newkey(nic.ifp, make_sav(mode=IPSEC_MODE.TUNNEL), 3)[0] == 0
    assert nic.if_sa_newkey(nic.ifp, make_sav(0x2, src="2001:db8::1", dst="2001:db8::2"),
                            4)[0] == 0


def test_truncate_key_quirk_programs_a_wrong_key() -> None:
    """With the quirk a 256-bit key is accepted, the card keeps 16 bytes and
    a "salt" from inside the key: its ciphertext is not the SA's."""
    nic = _nsim(truncate_key_quirk=True)
    cap = Capture()
    nic.set_transmit(cap)
    sav = make_sav(key=GCM256_KEY)
    assert nic.if_sa_newkey(nic.ifp, sav, 3)[0] == 0
    sw = sw_state(sav)
    ping = icmp_echo(SRC, DST, 1, 1)
    nic.if_transmit(nic.ifp, tagged(crypto_offload_frame(sw, ping, seq=1, iv=bytes(8)), 3,
                                    crypto=True))
    assert cap.pop() != esp_transport_output(sw_state(sav), ping, seq=1, iv=bytes(8))
    assert nic.handle(3).entries[0].aux["salt"] == int.from_bytes(GCM256_KEY[16:20], "little")


def test_tx_unknown_handle_dropped_and_teardown_message(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    nic = _nsim()
    nic.if_transmit(nic.ifp, tagged(icmp_echo(SRC, DST), 77, crypto=True))
    assert nic.stats()["tx_steering_miss"] == 1 and nic.tx == 0
    nic.if_sa_newkey(nic.ifp, make_sav(), 3)
    with caplog.at_level(logging.ERROR, logger="drivers.netdevsim"):
        nic.detach()
    assert "tearing down IPsec offload with 2 SAs left" in caplog.text
