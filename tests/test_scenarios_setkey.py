"""Issue 5's setkey-level scenarios on the default model host (an mlx5-like
mce0 and an ixgbe-like ix0, IPsec offload enabled), driven only through the
tools a FreeBSD user has: setkey(8) and ifconfig(8).

* a 256-bit AES-GCM SA installs on mce0 (mlx5 takes 128/256-bit keys) and is
  REJECTED on ix0 (82599: AES-128-GCM only): ``hw offl if: mce0``; a 128-bit
  one shows ``hw offl if: ix0,mce0`` (freebsd_ipsec_offload.md §11, §13,
  linux_xfrm_offload.md §5);
* ``ifconfig ix0 down`` runs ipsec_accel_on_ifdown: ix0's handles go, mce0's
  stay (§6.4, §17.10);
* ``-hwif mce0`` restricts the SA to mce0: ix0 gets a REJECTED handle without
  its driver being called (§6.1, §12);
* an AES-CBC SA that no NIC accepts carries only REJECTED handles: zero
  sw/hw offl lines and no ``hw offl if:`` line (§17.1).
"""

from __future__ import annotations

import io
from typing import Iterator

import pytest

from drivers import build_host, nics
from ipsec_accel.host import Host
from ipsec_accel.ifconfig import ifconfig
from pfkey.clock import FakeClock
from tools import setkey

K128 = "0x" + "11" * 16 + "01020304"   # AES-128 key + 4-byte salt
K256 = "0x" + "22" * 32 + "01020304"   # AES-256 key + 4-byte salt
CBC = "0x" + "33" * 16
SHA256 = "0x" + "44" * 32


@pytest.fixture
def host() -> Iterator[Host]:
    h = build_host(clock=FakeClock())
    try:
        yield h
    finally:
        h.stop()


def run_setkey(host: Host, *args: str, stdin: str | None = None) -> str:
    out, err = io.StringIO(), io.StringIO()
    status = setkey.main(list(args), stdout=out, stderr=err, host=host, pid=4242,
                         clock=host.clock,
                         stdin=io.BytesIO(stdin.encode()) if stdin is not None else None)
    assert status == 0 and err.getvalue() == "", (status, err.getvalue())
    return out.getvalue()


def blocks(dump: str) -> dict[str, str]:
    """SA blocks of a `setkey -D` dump keyed by their spi= text."""
    result: dict[str, str] = {}
    current: list[str] = []
    for line in dump.splitlines():
        if not line.startswith(("\t", " ")) and current:   # hex dumps wrap with a space
            text = "\n".join(current)
            result[text.split("spi=")[1].split("(")[0]] = text
            current = []
        current.append(line)
    if current:
        text = "\n".join(current)
        result[text.split("spi=")[1].split("(")[0]] = text
    return result


def offl_if(block: str) -> str | None:
    for line in block.splitlines():
        if line.startswith("\thw offl if: "):
            return line[len("\thw offl if: "):]
    return None


def test_key_size_decides_which_nic_offloads(host: Host) -> None:
    """ipsec_accel_sa_newkey offers every SA to every IPSEC-capable ifnet;
    mlx5 accepts AES-GCM 128 and 256, ix0 refuses 256 with EOPNOTSUPP, which
    records a REJECTED handle (ipsec_accel_handle_sav)."""
    run_setkey(host, "-c", stdin=(
        f"add 10.0.0.1 10.0.0.2 esp 0x1001 -m transport -E aes-gcm-16 {K256};\n"
        f"add 10.0.0.1 10.0.0.3 esp 0x1002 -m transport -E aes-gcm-16 {K128};\n"))
    dump = blocks(run_setkey(host, "-D"))
    assert offl_if(dump["4097"]) == "mce0"
    assert offl_if(dump["4098"]) == "ix0,mce0"
    for b in dump.values():
        assert "\tsw offl use:" in b and "\thw offl use:" in b
    assert len(nics(host)["ix0"].handles()) == 1     # only the 128-bit SA


def test_ifdown_removes_that_interfaces_handles(host: Host) -> None:
    """ipsec_accel_on_ifdown: ``ifconfig ix0 down`` deinstalls ix0's handles
    and leaves mce0's; nothing is re-offered on ``up`` (§17.9)."""
    run_setkey(host, "-c", stdin=(
        f"add 10.0.0.1 10.0.0.3 esp 0x1002 -m transport -E aes-gcm-16 {K128};\n"))
    assert offl_if(blocks(run_setkey(host, "-D"))["4098"]) == "ix0,mce0"
    out = io.StringIO()
    assert ifconfig(host.ifnets, ["ix0", "down"], out, io.StringIO()) == 0
    host.sync()
    assert offl_if(blocks(run_setkey(host, "-D"))["4098"]) == "mce0"
    assert nics(host)["ix0"].handles() == []
    assert ifconfig(host.ifnets, ["ix0", "up"], out, io.StringIO()) == 0
    host.sync()
    assert offl_if(blocks(run_setkey(host, "-D"))["4098"]) == "mce0"


def test_hwif_restricts_the_sa_to_one_interface(host: Host) -> None:
    """key_newsav stores IF_HW_OFFL as accel_ifname; ipsec_accel_handle_sav
    then records a REJECTED handle on every other interface without calling
    its driver, and the dump names only the chosen interface."""
    ix = nics(host)["ix0"]
    calls_before = len(ix.handles())
    run_setkey(host, "-c", stdin=(
        f"add 10.0.0.1 10.0.0.4 esp 0x1003 -m transport -hwif mce0 -E aes-gcm-16 {K128};\n"))
    assert offl_if(blocks(run_setkey(host, "-D"))["4099"]) == "mce0"
    assert len(ix.handles()) == calls_before


def test_sa_no_nic_accepts_shows_zero_offload_lines(host: Host) -> None:
    """§17.1: REJECTED handles make is_accel_sav true, so the dump carries the
    sw/hw offl lines with zeros, but no ``hw offl if:`` (no HANDLED handle)."""
    run_setkey(host, "-c", stdin=(
        f"add 10.0.0.1 10.0.0.5 esp 0x1004 -m transport -E aes-cbc {CBC} "
        f"-A hmac-sha2-256 {SHA256};\n"))
    b = blocks(run_setkey(host, "-D"))["4100"]
    assert offl_if(b) is None
    assert "\tsw offl use:                     \tsw offl allocated: 0\tsw offl: 0(bytes)" in b
    assert "\thw offl use:                     \thw offl allocated: 0\thw offl: 0(bytes)" in b
