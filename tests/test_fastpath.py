"""The output fast path (``net.inet.ipsec.offload.fastpath``, model knob;
see :mod:`ipsec_accel.ipsec_state` and :mod:`ipsec_accel.ipsec_output`).

It memoises a flow's packet-offload decision -- what ipsec4_checkpolicy /
key_allocsp, ipsec4_allocsa / key_allocsa_policy and ipsec_accel_output
would decide again for the next packet of the same selector -- so it must be
*invisible*: every counter, every lifetime, every tag, every frame on the
wire is the same with it on and off, whatever changes between packets
(the SAD, the SPD, handles, interface capabilities, sysctls, the tag
strategy, MTU, allocation failures).  The differential tests run one event
script twice and compare everything observable after every step; the unit
tests check that the memo is used, and that each kind of change sends the
next packet down the full path (freebsd_ipsec_offload.md §8).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

import ipsec_accel.ipsec_output as ipsec_output_mod
from ipsec_accel.ifnet import IFCAP2_IPSEC_OFFLOAD_MASK
from ipsec_accel.ipsec_state import FastOut, Inpcb
from ipsec_accel.lab import Lab
from ipsec_accel.mbuf import CSUM_TSO, Mbuf

KEY2 = "0x" + bytes(range(0x40, 0x54)).hex()


class _Counting:
    """Wraps ipsec_output._common_output (the full path) to count calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = ipsec_output_mod._common_output

        def wrapped(*a: Any, **kw: Any) -> int:
            self.calls += 1
            return real(*a, **kw)
        monkeypatch.setattr(ipsec_output_mod, "_common_output", wrapped)


def _observe(lab: Lab) -> dict[str, Any]:
    """Everything a user can see after a step."""
    lab.poll()
    zones = {}
    for n, h in lab.hosts.items():
        zones[n] = {k: v for k, v in h.ip.ipsec.tags.stats().items() if k != "per_handle"}
    rows = sorted(lab.sa_counters(), key=lambda r: (r["host"], r["spi"]))
    return {
        "counters": lab._counters(),
        "sas": rows,
        "dump_a": lab.setkey_dump("a"),
        "dump_b": lab.setkey_dump("b"),
        "spd_a": lab.setkey_dump("a", policies=True),
        "zones": zones,
    }


def _script(lab: Lab, frames: list[bytes]) -> list[tuple[str, Any]]:
    """The event script: (step name, observation) after each step."""
    out: list[tuple[str, Any]] = []
    a = lab.hosts["a"]
    ipsec = a.ip.ipsec
    ifp = lab.ifp("a")

    def step(name: str, fn: Callable[[], Any]) -> None:
        res = fn()
        if res is not None and hasattr(res, "errors"):
            out.append((name + ":errors", dict(res.errors)))
        out.append((name, _observe(lab)))
        out.append((name + ":frames", list(frames)))
        frames.clear()

    lab.install_transport(replay=32, esn=True)
    step("udp", lambda: lab.push(40, 200, flows=3))
    step("tcp", lambda: lab.push(20, 300, "tcp", flows=2))
    # A newer SA for the same SA index: preferred_oldsa=1 keeps the old one.
    step("add newer", lambda: (lab.setkey("a", f"add {lab.addrs['a']} {lab.addrs['b']} esp "
                                               f"0x1100 -m transport -r 32 -esn "
                                               f"-E aes-gcm-16 {KEY2};"),
                               lab.setkey("b", f"add {lab.addrs['a']} {lab.addrs['b']} esp "
                                               f"0x1100 -m transport -r 32 -esn "
                                               f"-E aes-gcm-16 {KEY2};"),
                               lab.push(10, 200))[-1])
    step("newest", lambda: (a.key.sysctl("net.key.preferred_oldsa", 0),
                            lab.push(10, 200))[-1])
    step("delete newest", lambda: (lab.setkey("a", f"delete {lab.addrs['a']} "
                                                   f"{lab.addrs['b']} esp 0x1100;"),
                                   lab.push(10, 200))[-1])
    step("cap off", lambda: (setattr(ifp, "if_capenable2",
                                     ifp.if_capenable2 & ~IFCAP2_IPSEC_OFFLOAD_MASK),
                             lab.push(10, 200))[-1])
    step("cap on", lambda: (setattr(ifp, "if_capenable2",
                                    ifp.if_capenable2 | IFCAP2_IPSEC_OFFLOAD_MASK),
                            lab.push(10, 200))[-1])
    step("too big", lambda: lab.push(6, 1480))
    step("mixed sizes", lambda: [lab.push(2, s) for s in (1200, 1440, 1450, 1460, 100)][-1])
    step("tag nomem", lambda: (ipsec.tags.zone.fail_next(2) if ipsec.tags.zone else None,
                               lab.push(5, 200))[-1])
    step("sndtag", lambda: (lab.set_tag_strategy("sndtag"), lab.push(10, 200))[-1])
    step("phfield", lambda: (lab.set_tag_strategy("phfield"), lab.push(10, 200))[-1])
    step("mtag", lambda: (lab.set_tag_strategy("mtag"), lab.push(10, 200))[-1])
    step("policy use", lambda: (lab.setkey("a", f"spddelete {lab.addrs['a']} "
                                                f"{lab.addrs['b']} any -P out;\n"
                                                f"spdadd {lab.addrs['a']} {lab.addrs['b']} "
                                                f"any -P out ipsec esp/transport//use;"),
                                lab.push(10, 200))[-1])
    step("esp off", lambda: (ipsec.sysctl("net.inet.esp.esp_enable", 0),
                             lab.push(3, 200))[-1])
    step("esp on", lambda: (ipsec.sysctl("net.inet.esp.esp_enable", 1),
                            lab.push(3, 200))[-1])
    step("soft expire", lambda: (lab.tick(1), lab.push(10, 200))[-1])
    step("mode crypto", lambda: (lab.set_mode("crypto", ["a"]), lab.push(5, 200))[-1])
    step("mode packet", lambda: (lab.set_mode("auto", ["a"]), lab.push(5, 200))[-1])
    step("ifdown", lambda: (a.ifnets.if_setupdown(ifp, False),
                            a.ifnets.if_setupdown(ifp, True), lab.push(10, 200))[-1])
    step("delete all", lambda: (lab.setkey("a", f"deleteall {lab.addrs['a']} "
                                                f"{lab.addrs['b']} esp;"),
                                lab.push(3, 200))[-1])
    return out


def _run(fastpath: bool, af: int) -> list[tuple[str, Any]]:
    with Lab.build("mlx5", af=af) as lab:
        for h in lab.hosts.values():
            h.ip.ipsec.fastpath = int(fastpath)
        frames: list[bytes] = []
        nic = lab.nic("a")
        wire = nic._wire_tx
        nic.set_transmit(lambda f: (frames.append(bytes(f)), wire(f)))
        return _script(lab, frames)


@pytest.mark.parametrize("af", [4, 6])
def test_fast_path_is_invisible(af: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same script with the fast path off and on: identical counters
    (netstat -s, accel, NIC), per-SA lifetimes and path counts, setkey -D /
    -DP text, tag zone statistics and wire frames after every step -- across
    SA additions and deletions, net.key.preferred_oldsa, capability flips,
    oversize packets, tag allocation failures, tag strategy switches,
    a policy replaced, esp_enable, soft expiry, mode switches and ifdown
    (ipsec4_checkpolicy, key_allocsa_policy, ipsec_accel_output)."""
    off = _run(False, af)
    counting = _Counting(monkeypatch)
    on = _run(True, af)
    assert [n for n, _ in on] == [n for n, _ in off]
    for (name, got), (_, want) in zip(on, off):
        assert got == want, f"step {name!r} differs with the fast path on"
    # ... and the fast path did serve packets: the script sends 230 from
    # sockets, most of them repeats of a memoised flow.
    assert 0 < counting.calls < 150


def test_fast_path_serves_repeat_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a flow's first offloaded packet the next ones skip the full path
    (one _common_output call per flow); with the knob off every packet
    takes it."""
    counting = _Counting(monkeypatch)
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        r = lab.push(50, 200, flows=5)
        assert r.paths["out_packet"] == 50 and r.delivered == 50
        assert counting.calls == 5
        fast = lab.a.ip.ipsec.fast
        assert fast is not None and len(fast) == 5
        assert all(isinstance(e, FastOut) for e in fast.values())
        lab.a.ip.ipsec.sysctl("net.inet.ipsec.offload.fastpath", 0)
        assert lab.a.ip.ipsec.fast is None
        counting.calls = 0
        r = lab.push(20, 200, flows=5)
        assert r.paths["out_packet"] == 20 and counting.calls == 20


def _one(lab: Lab, size: int = 200, proto: str = "udp", csum: int = 0) -> int:
    inp = Inpcb(17 if proto == "udp" else 6)
    return lab.a.ip.ip_output(Mbuf(lab.packet(size, proto), csum_flags=csum), inp)


def test_memo_not_used_after_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each change that can alter the decision sends the next packet down
    the full path: SPD generation (V_sp_genid), SAD generation, the SA's
    handle list, the handle's flags, the interface capability (§17.11, read
    per packet), a different MTU, a packet above the memoised size limit
    (unless TSO, §8.4)."""
    counting = _Counting(monkeypatch)
    with Lab.build("mlx5") as lab:
        lab.install_transport()
        ipsec = lab.a.ip.ipsec
        ifp = lab.ifp("a")
        _one(lab)
        assert counting.calls == 1
        _one(lab)
        assert counting.calls == 1
        # SPD generation
        lab.setkey("a", "spdadd 10.9.9.9 10.9.9.8 any -P out none;")
        _one(lab)
        assert counting.calls == 2
        _one(lab)
        assert counting.calls == 2
        # SAD generation: an unrelated SA appears
        lab.setkey("a", f"add 10.9.9.9 10.9.9.8 esp 0x7777 -E aes-gcm-16 {KEY2};")
        _one(lab)
        assert counting.calls == 3
        # capability off: full path (software) every time, no memo refill
        ifp.if_capenable2 &= ~IFCAP2_IPSEC_OFFLOAD_MASK
        _one(lab)
        _one(lab)
        assert counting.calls == 5
        # on again: the memo (still valid for its generations) serves again
        ifp.if_capenable2 |= IFCAP2_IPSEC_OFFLOAD_MASK
        _one(lab)
        _one(lab)
        assert counting.calls == 5
        # above the size limit: full path (which counts out_too_big) ...
        e = next(iter(ipsec.fast.values()))
        before = lab.stats("a").get("accel.out_too_big", 0)
        _one(lab, e.maxlen + 1)
        assert counting.calls == 6
        assert lab.stats("a")["accel.out_too_big"] == before + 1
        # ... the limit itself still fits (same memo: the key is the
        # addresses and ports); TSO skips the size checks.
        _one(lab, e.maxlen)
        assert counting.calls == 6
        _one(lab, e.maxlen + 1, csum=CSUM_TSO)
        assert counting.calls == 6
        assert lab.stats("a")["accel.out_too_big"] == before + 1
        # the handle goes without an interface event (ifconfig -ipsec, then
        # ipsec again: mlx5 calls ipsec_accel_on_ifdown, the handles are not
        # re-offered): the SA's handle list changed, full path, software.
        sw0 = lab.stats("a").get("accel.out_sw", 0)
        assert lab.a.ifnets.if_setipsec("mce0", False) == 0
        assert lab.a.ifnets.if_setipsec("mce0", True) == 0
        assert not lab.nic("a").handles()
        n = counting.calls
        _one(lab)
        assert counting.calls == n + 1
        assert lab.stats("a")["accel.out_sw"] == sw0 + 1
        # the handle goes (ifdown): full path, software
        reg = lab.a.ifnets
        reg.if_setupdown(ifp, False)
        reg.if_setupdown(ifp, True)
        n = counting.calls
        _one(lab)
        assert counting.calls == n + 1
        assert lab.stats("a")["accel.out_sw"] >= 1
